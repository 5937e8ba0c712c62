"""CloudWatch alarms evaluated on every datapoint and on the lab clock, with their actions."""

from dealab.engines.cloudwatch.engine import CloudWatchEngine

__all__ = ["CloudWatchEngine"]
