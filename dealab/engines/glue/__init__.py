"""Glue for real: job scripts run on a warm local Spark worker with our awsglue API, crawlers read the data."""

__all__ = ["GlueEngine"]


def __getattr__(name: str):
    # The engine, and moto with it, loads on first use: the Spark worker and the pythonshell runner are
    # modules of this package and need neither (importing them cost each worker start ~0.3 s).
    if name == "GlueEngine":
        from dealab.engines.glue.engine import GlueEngine

        return GlueEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
