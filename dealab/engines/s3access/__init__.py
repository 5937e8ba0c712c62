"""S3 access control the backend only stores: bucket-policy denies and Block Public Access, enforced."""

from dealab.engines.s3access.engine import S3AccessEngine

__all__ = ["S3AccessEngine"]
