"""S3 event notifications to SQS, SNS and Lambda (see engine.py)."""

from dealab.engines.s3notify.engine import S3NotifyEngine

__all__ = ["S3NotifyEngine"]
