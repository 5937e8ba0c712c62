"""Lab 12 — the Glue job: the landing batch through the quality gate.

Rows that pass every rule go to the curated zone (Parquet), rows that fail one go to the quarantine (JSON, with
the rules they failed); a batch whose ruleset score is below --min_score fails the run and curates nothing.

Arguments (the job's DefaultArguments, --min_score overridable per run): --database --table --reference_table
--ruleset --curated_path --quarantine_path --min_score
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

args = getResolvedOptions(sys.argv, ["JOB_NAME", "database", "table", "reference_table", "ruleset", "curated_path",
                                     "quarantine_path", "min_score"])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

orders = glue_context.create_dynamic_frame.from_catalog(database=args["database"], table_name=args["table"])

# TODO 1: fetch the ruleset registered as args["ruleset"] (glue GetDataQualityRuleset) and the customers frame
#         (args["reference_table"]), then evaluate with awsgluedq.transforms.EvaluateDataQuality().process_rows:
#         evaluation context "orders_gate", CloudWatch metrics on, row-level outcomes, the customers frame under
#         the alias the ruleset names.
# TODO 2: the score is rules passed / rules (ruleOutcomes); below float(args["min_score"]) the run must fail
#         before anything is written.
# TODO 3: rows whose DataQualityEvaluationResult is "Passed" go to the curated path (Parquet, without the four
#         outcome columns); the "Failed" ones, with their outcome columns, to the quarantine path (JSON).

# for now every row goes to the curated zone, unchecked
glue_context.write_dynamic_frame.from_options(
    frame=orders, connection_type="s3", connection_options={"path": args["curated_path"]}, format="parquet",
)
job.commit()
