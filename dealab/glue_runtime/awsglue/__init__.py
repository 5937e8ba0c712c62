"""dealab's `awsglue`: the AWS Glue ETL library API over plain Spark DataFrames, for scripts run by dealab."""

__all__ = ["DynamicFrame", "DynamicFrameCollection"]


def __getattr__(name: str):
    # Imported on first use: a Glue Python shell job has no Spark, yet imports awsglue.utils.
    if name in __all__:
        from awsglue import dynamicframe

        return getattr(dynamicframe, name)
    raise AttributeError(f"module 'awsglue' has no attribute {name!r}")
