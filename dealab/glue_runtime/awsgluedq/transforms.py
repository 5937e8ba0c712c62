"""EvaluateDataQuality for job scripts, as AWS Glue provides it (awsgluedq.transforms).

One evaluator, not two: the frame is handed to DuckDB as Arrow and judged by the same DQDL evaluator the
Data Quality engine runs over catalog tables (dealab/engines/dataquality/rules.py). Measured on this machine,
1M rows × 20 rules: collecting the frame as Arrow and evaluating on DuckDB takes a few seconds, where
evaluating each rule as Spark aggregations would cost one Spark job (~0.3-1 s each on a warm local session)
per scan and a second implementation of every rule.

`apply` returns the rule outcomes (Rule, Outcome, FailureReason, EvaluatedMetrics); `process_rows` returns a
DynamicFrameCollection with "ruleOutcomes" and "rowLevelOutcomes" (the frame's rows plus DataQualityRulesPass,
DataQualityRulesFail, DataQualityRulesSkip and DataQualityEvaluationResult). With publishing_options
enableDataQualityCloudWatchMetrics the rule counts go to CloudWatch ("Glue Data Quality" namespace, as the job's
role: it needs cloudwatch:PutMetricData), and the "Data Quality Evaluation Results Available" event goes to
EventBridge (as Glue's own event, not the role's), both through the stack's endpoint. Unless
enableDataQualityResultsPublishing is false, the result is published to Glue Data Quality (PublishDataQuality):
ListDataQualityResults lists it by JobName, and the job's later evaluations of the same dataQualityEvaluationContext
read it as the history dynamic rules (avg(last(5))) compare with."""

from __future__ import annotations

import datetime
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

import boto3
import duckdb
import pyarrow
from pyspark.sql import types as T

from awsglue import run_context
from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection
from dealab.engines.athena import sandbox
from dealab.engines.dataquality import publish
from dealab.engines.dataquality.dqdl import parse
from dealab.engines.dataquality.rules import PRIMARY, Datasets, evaluate, row_outcomes_sql

DEFAULT_CONTEXT = "default_context"
OUTCOME_LISTS = ("DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip")
RULE_OUTCOMES_SCHEMA = T.StructType([
    T.StructField("Rule", T.StringType()), T.StructField("Outcome", T.StringType()),
    T.StructField("FailureReason", T.StringType()), T.StructField("EvaluatedMetrics", T.MapType(T.StringType(), T.DoubleType())),
])


def _lab_now() -> datetime.datetime:
    offset = run_context.current.lab_time_offset_seconds
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)


def _history(job_name: str, context_name: str) -> Callable[[str], list[float]]:
    """The job's published results of this context, read once and only if a dynamic rule asks."""
    loaded: dict[str, Callable[[str], list[float]]] = {}

    def values(metric: str) -> list[float]:
        if "history" not in loaded:
            loaded["history"] = publish.history_of(boto3.client("glue"), job_name, context_name)
        return loaded["history"](metric)

    return values


def _locked_database(scratch: str) -> duckdb.DuckDBPyConnection:
    """DuckDB with nothing of the host reachable: the frame is its only data."""
    connection = duckdb.connect(config=sandbox.CONNECT_CONFIG)
    for statement in sandbox.lockdown_statements(Path(scratch)):
        connection.execute(statement)
    return connection


def _as_arrow(dataframe) -> pyarrow.Table:
    return pyarrow.Table.from_batches(dataframe._collect_as_arrow(), schema=None) if dataframe.columns else pyarrow.table({})


class EvaluateDataQuality:
    @staticmethod
    def apply(frame: DynamicFrame, ruleset: str, publishing_options: dict | None = None,
              additional_data_sources: dict[str, DynamicFrame] | None = None) -> DynamicFrame:
        return EvaluateDataQuality().process_rows(frame, ruleset, publishing_options, {"rowLevelOutcomes.enabled": "false"},
                                                  additional_data_sources)["ruleOutcomes"]

    def process_rows(self, frame: DynamicFrame, ruleset: str, publishing_options: dict | None = None,
                     additional_options: dict | None = None,
                     additional_data_sources: dict[str, DynamicFrame] | None = None) -> DynamicFrameCollection:
        """`additional_data_sources` maps an alias the ruleset names (ReferentialIntegrity, DatasetMatch, ...) to its
        frame, as in the scripts Glue Studio writes."""
        options = publishing_options or {}
        context_name = options.get("dataQualityEvaluationContext") or DEFAULT_CONTEXT
        parsed = parse(ruleset)  # invalid DQDL fails the job with the DQDL library's message
        started = _lab_now()
        dataframe = frame.toDF()
        spark = dataframe.sparkSession
        arrow = _as_arrow(dataframe)
        references = {alias: _as_arrow(source.toDF()) for alias, source in (additional_data_sources or {}).items()}
        with tempfile.TemporaryDirectory(prefix="dq-") as scratch:
            connection = _locked_database(scratch)
            try:
                connection.register("__dq_frame", arrow)
                relations = {PRIMARY: "SELECT * FROM __dq_frame"}
                for number, (alias, table) in enumerate(references.items()):
                    connection.register(f"__dq_reference_{number}", table)
                    relations[alias] = f"SELECT * FROM __dq_reference_{number}"
                datasets = Datasets(connection, relations, _lab_now())
                evaluation = evaluate(parsed, datasets, _history(run_context.current.job_name, context_name))
                want_rows = str((additional_options or {}).get("rowLevelOutcomes.enabled", "true")).lower() != "false"
                rows = connection.execute(row_outcomes_sql(evaluation, datasets.view(PRIMARY))).to_arrow_table() if want_rows else None
            finally:
                connection.close()
        self._publish(evaluation, options, context_name, started)
        outcomes = spark.createDataFrame(
            [(r.rule, r.outcome, r.failure_reason, {k: float(v) for k, v in r.metrics.items()}) for r in evaluation.rules],
            RULE_OUTCOMES_SCHEMA)
        frames = {"ruleOutcomes": DynamicFrame.fromDF(outcomes, frame.glue_ctx, "ruleOutcomes")}
        if rows is not None:
            # the frame's own columns keep their Spark types; the outcome columns are AWS's (three string arrays, a string)
            schema = T.StructType(dataframe.schema.fields + [T.StructField(name, T.ArrayType(T.StringType())) for name in OUTCOME_LISTS]
                                  + [T.StructField("DataQualityEvaluationResult", T.StringType())])
            outcome_rows = [tuple(row.values()) for row in rows.to_pylist()]
            frames["rowLevelOutcomes"] = DynamicFrame.fromDF(spark.createDataFrame(outcome_rows, schema), frame.glue_ctx, "rowLevelOutcomes")
        return DynamicFrameCollection(frames, frame.glue_ctx)

    @staticmethod
    def _publish(evaluation, options: dict, context_name: str, started: datetime.datetime) -> None:
        current = run_context.current
        moment = _lab_now()
        result_id = "dqresult-" + secrets.token_hex(20)
        if str(options.get("enableDataQualityResultsPublishing", True)).lower() == "true":
            result_id = publish.send_result(boto3.client("glue"), publish.job_result(evaluation, current.job_name, current.run_id,
                                                                                     context_name, started))
        if str(options.get("enableDataQualityCloudWatchMetrics", False)).lower() == "true":
            dimensions = {"JobName": current.job_name, "EvaluationContext": context_name}
            boto3.client("cloudwatch").put_metric_data(Namespace=publish.NAMESPACE,
                                                       MetricData=publish.metric_data(evaluation, dimensions, moment))
        context = {"contextType": "GLUE_JOB", "jobName": current.job_name, "jobRunId": current.run_id,
                   "evaluationContext": context_name}
        # Glue Data Quality's own event, as AWS sends it: not the job's role's call (it needs no events:PutEvents)
        current.service_client("events").put_events(
            Entries=[publish.event_entry(evaluation, context, result_id, [context_name], moment)])
