"""Lab 12 proves its grader: the solution gets full marks (and again on a second grading), the starter does not,
each realistic mistake fails exactly the checks that name it (a FAIL, never an ERROR), and other correct ways
of writing the gate keep full marks. Every grading lands three batches and runs the Glue job on each (three
Spark runs), so two mistakes judged by unrelated checks share one grading, each check still proving its own
mistake."""

import pytest

from tests.labkit import combined_mutants, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, solution_report, starter_report

pytestmark = pytest.mark.slow
RULESET = "create_ruleset.py"
JOB = "dq_gate.py"
ALERTS = "create_alerts.py"

DQ_EVENT_PATTERN = '"detail-type": ["Data Quality Evaluation Results Available"]'
REGISTERED_RULESET = 'ruleset = boto3.client("glue").get_data_quality_ruleset(Name=args["ruleset"])["Ruleset"]'
QUARANTINE_WRITE = '''glue_context.write_dynamic_frame.from_options(
    frame=DynamicFrame.fromDF(failing, glue_context, "quarantine"), connection_type="s3",
    connection_options={"path": args["quarantine_path"]}, format="json",
)'''
ALARM_STATISTIC = '''        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",'''

# mistake: (the checks it must fail, {file: [(old, new), ...]})
MUTANTS = {
    "IsComplete on the wrong column": ({"L12-03"}, {RULESET: [('    IsComplete "amount",\n', '    IsComplete "ingested_at",\n')]}),
    "event rule on a detail-type AWS does not send": ({"L12-13"}, {ALERTS: [(DQ_EVENT_PATTERN, '"detail-type": ["Glue Data Quality Evaluation Results Available"]')]}),
    "amount bound inclusive at 0 (the 0.00 edge passes)": ({"L12-04"}, {RULESET: [('ColumnValues "amount" > 0,', 'ColumnValues "amount" >= 0,')]}),
    "alarm on rules.passed": ({"L12-11"}, {ALERTS: [('MetricName="glue.data.quality.rules.failed"', 'MetricName="glue.data.quality.rules.passed"')]}),
    "uniqueness rule missing": ({"L12-06"}, {RULESET: [('    IsUnique "order_id",\n', "")]}),
    "threshold computed but never enforced": ({"L12-10"}, {JOB: [("    raise Exception(f\"Data quality score", "    print(f\"Data quality score")]}),
    "freshness on ingested_at": ({"L12-07"}, {RULESET: [('DataFreshness "order_ts"', 'DataFreshness "ingested_at"')]}),
    "failing rows written to curated too": ({"L12-09"}, {JOB: [('passing = rows.where(F.col("DataQualityEvaluationResult") == "Passed").drop(*outcome_columns)',
                                                                 "passing = rows.drop(*outcome_columns)")]}),
    "referential integrity against the orders table itself": ({"L12-08"}, {JOB: [('table_name=args["reference_table"])', 'table_name=args["table"])')]}),
    "job metrics not published": ({"L12-11", "L12-12"}, {JOB: [('"enableDataQualityCloudWatchMetrics": True', '"enableDataQualityCloudWatchMetrics": False')]}),
}
# mistakes judged by disjoint checks, graded together (one grading costs three Spark runs)
MUTANT_PAIRS = (
    ("IsComplete on the wrong column", "event rule on a detail-type AWS does not send"),
    ("amount bound inclusive at 0 (the 0.00 edge passes)", "alarm on rules.passed"),
    ("uniqueness rule missing", "threshold computed but never enforced"),
    ("freshness on ingested_at", "failing rows written to curated too"),
    ("referential integrity against the orders table itself", "job metrics not published"),
)

INLINE_RULESET = '''ruleset = """Rules = [
    RowCount > 0,
    IsComplete "order_id", IsComplete "customer_id", Completeness "amount" > 0.99, IsComplete "status", IsComplete "order_ts",
    IsUnique "order_id",
    (ColumnValues "amount" > 0) and (ColumnValues "amount" <= 5000),
    ColumnValues "status" in ["placed", "paid", "shipped", "delivered", "cancelled"],
    DataFreshness "order_ts" <= 24 hours,
    ReferentialIntegrity "customer_id" "customers.customer_id" = 1.0
]"""'''
VARIANTS = {
    "ruleset inline in the job (Completeness > 0.99, a composite range) + quarantine by Spark's writer": {
        JOB: [(REGISTERED_RULESET, INLINE_RULESET),
              (QUARANTINE_WRITE, 'failing.write.mode("append").json(args["quarantine_path"])')],
        RULESET: [('    IsComplete "amount",\n', '    Completeness "amount" > 0.99,\n')],
    },
    "alarm on Sum > 0 per minute + event rule for FAILED results only": {
        ALERTS: [(ALARM_STATISTIC, '''        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",'''),
                 (DQ_EVENT_PATTERN, DQ_EVENT_PATTERN + ', "detail": {"state": ["FAILED"]}')],
    },
}


def test_solution_gets_full_marks_twice(aws_env):
    lab = fresh_lab(12, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    again = grade_lab(lab, aws_env)  # new batches, the earlier gradings' rows still in the zones
    assert again.full_marks, explain(again)


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(12, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)
    assert not [r for r in report.results if r.status not in ("PASS", "FAIL")], explain(report)


@pytest.mark.parametrize("pair", MUTANT_PAIRS, ids=[" + ".join(pair) for pair in MUTANT_PAIRS])
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, pair):
    prove_breakage(fresh_lab(12, aws_env), aws_env, tmp_path, *combined_mutants(MUTANTS, pair))


def test_every_mutant_is_graded():
    assert sorted(name for pair in MUTANT_PAIRS for name in pair) == sorted(MUTANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(12, aws_env), aws_env, tmp_path, VARIANTS[name])
