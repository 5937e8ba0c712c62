"""IAM at the gateway: callers known by their keys (root, IAM users, STS sessions), every request authorized
by AWS's policy evaluation logic, STS answered (docs/iam.md)."""

from dealab.engines.iam.engine import IamEngine

__all__ = ["IamEngine"]
