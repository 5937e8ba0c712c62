"""CloudWatch Logs, executed: Logs Insights on DuckDB, metric and subscription filters, retention, exports."""

from dealab.engines.logs.engine import LogsEngine

__all__ = ["LogsEngine"]
