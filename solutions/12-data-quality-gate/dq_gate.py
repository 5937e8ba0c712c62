"""Lab 12 — the Glue job: the landing batch through the quality gate (reference solution).

Rows that pass every rule go to the curated zone (Parquet), rows that fail one go to the quarantine (JSON, with
the rules they failed); a batch whose ruleset score is below --min_score fails the run and curates nothing.

Arguments (the job's DefaultArguments, --min_score overridable per run): --database --table --reference_table
--ruleset --curated_path --quarantine_path --min_score
"""

import sys

import boto3
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsgluedq.transforms import EvaluateDataQuality
from pyspark.context import SparkContext
from pyspark.sql import functions as F

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "table", "reference_table", "ruleset", "curated_path",
                                     "quarantine_path", "min_score"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

# one source of truth: the ruleset registered on the table is the one the job enforces
ruleset = boto3.client("glue").get_data_quality_ruleset(Name=args["ruleset"])["Ruleset"]

orders = glue_context.create_dynamic_frame.from_catalog(database=args["database"], table_name=args["table"])
customers = glue_context.create_dynamic_frame.from_catalog(database=args["database"], table_name=args["reference_table"])

results = EvaluateDataQuality().process_rows(
    frame=orders,
    ruleset=ruleset,
    publishing_options={"dataQualityEvaluationContext": "orders_gate", "enableDataQualityCloudWatchMetrics": True,
                        "enableDataQualityResultsPublishing": True},
    additional_options={"rowLevelOutcomes.enabled": "true"},
    additional_data_sources={"customers": customers},
)

outcomes = results["ruleOutcomes"].toDF().collect()
passed = sum(1 for outcome in outcomes if outcome["Outcome"] == "Passed")
score = passed / len(outcomes)
failed_rules = [outcome["Rule"] for outcome in outcomes if outcome["Outcome"] != "Passed"]
print(f"data quality score {score:.2f} ({passed}/{len(outcomes)} rules passed); failed: {failed_rules}")
if score < float(args["min_score"]):
    raise Exception(f"Data quality score {score:.2f} is below the gate's minimum {args['min_score']}: failed rules {failed_rules}")

rows = results["rowLevelOutcomes"].toDF().cache()
outcome_columns = ["DataQualityRulesPass", "DataQualityRulesFail", "DataQualityRulesSkip", "DataQualityEvaluationResult"]
passing = rows.where(F.col("DataQualityEvaluationResult") == "Passed").drop(*outcome_columns)
failing = rows.where(F.col("DataQualityEvaluationResult") == "Failed")
print(f"{passing.count()} rows curated, {failing.count()} quarantined")

glue_context.write_dynamic_frame.from_options(
    frame=DynamicFrame.fromDF(passing, glue_context, "curated"), connection_type="s3",
    connection_options={"path": args["curated_path"]}, format="parquet",
)
glue_context.write_dynamic_frame.from_options(
    frame=DynamicFrame.fromDF(failing, glue_context, "quarantine"), connection_type="s3",
    connection_options={"path": args["quarantine_path"]}, format="json",
)
job.commit()
