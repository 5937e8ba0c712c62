"""Redshift: Serverless namespaces and workgroups, clusters' endpoints, and SQL on DuckDB through the Data API."""

from dealab.engines.redshift.engine import RedshiftEngine

__all__ = ["RedshiftEngine"]
