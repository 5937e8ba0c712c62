"""SNS delivery the backend cannot make: to `lambda` subscriptions, through the Lambda Invoke API."""

from dealab.engines.sns.engine import SnsEngine

__all__ = ["SnsEngine"]
