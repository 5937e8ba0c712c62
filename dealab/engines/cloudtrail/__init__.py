"""CloudTrail: every call recorded, event history for LookupEvents, trails delivered to S3, EventBridge, S3 access logs."""

from dealab.engines.cloudtrail.engine import CloudTrailEngine

__all__ = ["CloudTrailEngine"]
