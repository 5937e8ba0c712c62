"""Athena for real: the Athena API executed on DuckDB over the Glue Data Catalog and S3."""

from dealab.engines.athena.engine import AthenaEngine

__all__ = ["AthenaEngine"]
