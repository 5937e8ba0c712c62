"""Secrets Manager rotation: the rotation Lambda's four steps, on demand and on the lab clock."""

from dealab.engines.secrets.engine import SecretsEngine

__all__ = ["SecretsEngine"]
