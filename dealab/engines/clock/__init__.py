"""The lab clock, with S3 lifecycle and DynamoDB TTL executed on it."""

from dealab.engines.clock.engine import ClockEngine

__all__ = ["ClockEngine"]
