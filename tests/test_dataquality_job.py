"""EvaluateDataQuality inside a Glue Spark job, written as AWS's examples write it: rule outcomes, row-level
outcomes with AWS's four columns, and the rule counts published to CloudWatch."""

import json

import pytest

from tests.conftest import client
from tests.gluekit import create_job, log_lines, run_job, upload_script

BUCKET = "dq-job"
SCRIPT = '''
import sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsgluedq.transforms import EvaluateDataQuality
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "bucket"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)
orders = glue_context.spark_session.createDataFrame(
    [(1, "shipped", 20.0), (2, "pending", 35.5), (3, None, 12.0), (3, "shipped", -4.0)], ["order_id", "status", "amount"])
frame = DynamicFrame.fromDF(orders, glue_context, "orders")
ruleset = """Rules = [
    RowCount = 4,
    RowCount > avg(last(3)),
    IsComplete "status",
    ColumnValues "amount" > 0
]"""
results = EvaluateDataQuality().process_rows(
    frame=frame, ruleset=ruleset,
    publishing_options={"dataQualityEvaluationContext": "orders_check", "enableDataQualityCloudWatchMetrics": True,
                        "enableDataQualityResultsPublishing": True})
outcomes = {row["Rule"]: row["Outcome"] for row in results["ruleOutcomes"].toDF().collect()}
rows = results["rowLevelOutcomes"].toDF()
print("OUTCOMES " + __import__("json").dumps(outcomes, sort_keys=True))
print("ROW_COLUMNS " + ",".join(rows.columns))
print("FAILED_ROWS " + str(rows.filter(rows["DataQualityEvaluationResult"] == "Failed").count()))
job.commit()
'''


@pytest.mark.slow
def test_evaluate_data_quality_in_a_spark_job(clean_stack):
    client(clean_stack, "s3").create_bucket(Bucket=BUCKET)
    create_job(clean_stack, "dq-orders", upload_script(clean_stack, BUCKET, "scripts/dq.py", SCRIPT))
    run = run_job(clean_stack, "dq-orders", {"--bucket": BUCKET})
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    printed = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"])
               if line.split(" ", 1)[0] in ("OUTCOMES", "ROW_COLUMNS", "FAILED_ROWS")}
    assert json.loads(printed["OUTCOMES"]) == {'RowCount = 4': "Passed", 'IsComplete "status"': "Failed",
                                               'ColumnValues "amount" > 0': "Failed",
                                               'RowCount > avg(last(3))': "Passed"}  # no history yet: last(k) is [0.0]
    assert printed["ROW_COLUMNS"].split(",")[-4:] == ["DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip",
                                                      "DataQualityEvaluationResult"]
    assert printed["FAILED_ROWS"] == "2"  # the row without a status and the row with a negative amount
    metrics = client(clean_stack, "cloudwatch").list_metrics(Namespace="Glue Data Quality")["Metrics"]
    assert {metric["MetricName"] for metric in metrics} >= {"glue.data.quality.rules.passed", "glue.data.quality.rules.failed"}

    # published to Glue Data Quality: listed by job, and the history the next run's dynamic rule compares with
    glue = client(clean_stack, "glue")
    [first] = glue.list_data_quality_results(Filter={"JobName": "dq-orders"})["Results"]
    assert first["JobRunId"] == run["Id"]
    again = run_job(clean_stack, "dq-orders", {"--bucket": BUCKET})
    assert again["JobRunState"] == "SUCCEEDED", again.get("ErrorMessage")
    newest = glue.list_data_quality_results(Filter={"JobName": "dq-orders", "JobRunId": again["Id"]})["Results"][0]
    result = glue.get_data_quality_result(ResultId=newest["ResultId"])
    dynamic = next(rule for rule in result["RuleResults"] if rule["Description"] == "RowCount > avg(last(3))")
    assert (dynamic["Result"], dynamic["EvaluatedRule"]) == ("FAIL", "RowCount > 4.0")  # 4 rows, not more than the last run's 4
    assert result["EvaluationContext"] == "orders_check" and result["Score"] == 0.25
