"""Glue for real: job scripts run on a warm local Spark worker with our awsglue API, crawlers read the data."""

from dealab.engines.glue.engine import GlueEngine

__all__ = ["GlueEngine"]
