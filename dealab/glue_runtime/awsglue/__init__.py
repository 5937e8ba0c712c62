"""dealab's `awsglue`: the AWS Glue ETL library API over plain Spark DataFrames, for scripts run by dealab."""

from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection

__all__ = ["DynamicFrame", "DynamicFrameCollection"]
