"""Lab 06 proves its grader: the solution gets full marks, the starter does not, each realistic mistake in the
solution fails exactly the check that names it (a FAIL, never an ERROR), and other correct spellings keep full
marks. The job runs on the stack's warm Spark worker; every solution run costs two Spark runs, so mistakes in
unrelated checks share one run, and mistakes in the job definition alone are judged on the solved state."""

import contextlib
import io

import pytest

from dealab.engines.glue.pyshell import script_outcome
from tests.labkit import (assert_fails_only, edited_solution, explain, fresh_lab, grade_lab, prove_breakage, prove_variant,
                          run_solution, solution_report, starter_report)

pytestmark = pytest.mark.slow
SCRIPT = "etl_orders.py"
DEPLOY = "deploy_job.py"

GZIP = ('sink.setFormat("glueparquet", compression="snappy")', 'sink.setFormat("glueparquet", compression="gzip")')
QUARANTINE_ELSEWHERE = ('        connection_options={"path": args["quarantine_path"]},', '        connection_options={"path": args["quarantine_path"] + "../rejected-elsewhere/"},')
QUANTITY_AS_TEXT = ('F.when(F.col("quantity").rlike(r"^-?\\d+$"), F.col("quantity").cast("int")).alias("quantity")',
                    'F.when(F.col("quantity").rlike(r"^-?\\d+$"), F.col("quantity")).alias("quantity")')
PARTITION_BY_STATUS = ('        partitionKeys=["order_date"],', '        partitionKeys=["status"],')
QUARANTINE_FRAME = '''    quarantine = orders.where(~F.col("valid")).select(F.from_json("raw_record", "order_id string, customer_id string, amount string, "
                                                                   "quantity string, status string, order_ts string, updated_at string").alias("r")).select("r.*")'''

# name: (the checks it must fail, {file: [(old, new), ...]}) — each run of the job costs two Spark runs, so
# mistakes judged by unrelated checks share a run where each check still proves its own mistake
MUTANTS = {
    "gzip instead of snappy + quarantine written elsewhere": ({"L06-06", "L06-08"}, {SCRIPT: [GZIP, QUARANTINE_ELSEWHERE]}),
    "quantity kept as text + partitioned by status": ({"L06-04", "L06-07", "L06-09"}, {SCRIPT: [QUANTITY_AS_TEXT, PARTITION_BY_STATUS]}),
    "no deduplication": ({"L06-05"}, {SCRIPT: [('        .where(F.col("version") == 1)\n', "")]}),
    "deduplication keeps the oldest version": ({"L06-04"}, {SCRIPT: [('orderBy(F.col("updated_at").desc())', 'orderBy(F.col("updated_at").asc())')]}),
    "quarantine of typed rows (bad raw values lost)": ({"L06-08"}, {SCRIPT: [(QUARANTINE_FRAME, '''    quarantine = orders.where(~F.col("valid")).select("order_id", "customer_id", "amount", "quantity", "status", "order_ts", "updated_at")''')]}),
    "source read without transformation_ctx": ({"L06-10"}, {SCRIPT: [('    format="json",\n    transformation_ctx="raw_orders",\n', '    format="json",\n')]}),
    "job.commit() forgotten": ({"L06-10"}, {SCRIPT: [("\njob.commit()\n", "\n")]}),
}

# mistakes in the job definition alone: deployed over the solved state, judged without running the job again
DEFINITION_MUTANTS = {
    "Glue 4.0": ({"L06-01"}, [('"GlueVersion": "5.0",', '"GlueVersion": "4.0",')]),
    "Python shell instead of Spark": ({"L06-01"}, [('"Name": "glueetl"', '"Name": "pythonshell"')]),
    "bookmarks paused": ({"L06-01"}, [('"--job-bookmark-option": "job-bookmark-enable"', '"--job-bookmark-option": "job-bookmark-pause"')]),
    "script location with a typo": ({"L06-01"}, [('"ScriptLocation": f"s3://{SCRIPTS_BUCKET}/{SCRIPT_KEY}"', '"ScriptLocation": f"s3://{SCRIPTS_BUCKET}/job/etl_orders.py"')]),
}
DEPLOY_ONLY = ('if __name__ == "__main__":\n    run_and_wait(JOB)', 'if False:\n    run_and_wait(JOB)')

VARIANTS = {
    "plain parquet format with snappy": {SCRIPT: [('sink.setFormat("glueparquet", compression="snappy")', 'sink.setFormat("parquet", compression="snappy")')]},
    "quarantine with a reason column beside the raw fields": {SCRIPT: [(QUARANTINE_FRAME, QUARANTINE_FRAME + '.withColumn("reason", F.lit("failed a rule"))')]},
    "latest version by SQL over a temp view": {SCRIPT: [('''    latest_first = Window.partitionBy("order_id").orderBy(F.col("updated_at").desc())
    curated = (
        orders.where(F.col("valid"))
        .withColumn("version", F.row_number().over(latest_first))
        .where(F.col("version") == 1)
        .select(''', '''    orders.where(F.col("valid")).createOrReplaceTempView("valid_orders")
    ranked = glue_context.spark_session.sql(
        "SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY updated_at DESC) AS version FROM valid_orders")
    curated = (
        ranked.where("version = 1")
        .select(''')]},
}


def test_solution_gets_full_marks_is_rerunnable_and_each_definition_mistake_fails_l06_01(aws_env, tmp_path):
    lab = fresh_lab(6, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks
    for name, (check_ids, edits) in DEFINITION_MUTANTS.items():
        folder = edited_solution(lab, tmp_path / name.replace(" ", "-"), {DEPLOY: edits, "run_job.py": [DEPLOY_ONLY]})
        run_solution(lab, aws_env, folder)
        assert_fails_only(grade_lab(lab, aws_env), check_ids)
    run_solution(lab, aws_env, edited_solution(lab, tmp_path / "redeployed", {"run_job.py": [DEPLOY_ONLY]}))
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(6, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)
    assert not [r for r in report.results if r.status not in ("PASS", "FAIL")], explain(report)


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(6, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(6, aws_env), aws_env, tmp_path, VARIANTS[name])


def test_a_syntax_error_in_a_job_script_shows_the_scripts_line_not_the_runners_frames():
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        state, message = script_outcome(lambda: exec(compile("orders = (1,\nprint(orders\n", "etl_orders.py", "exec")), "etl_orders.py")
    assert (state, message.split(":")[0]) == ("FAILED", "SyntaxError")
    assert errors.getvalue().startswith('  File "etl_orders.py", line 2'), errors.getvalue()
    assert "Traceback" not in errors.getvalue() and __file__ not in errors.getvalue()
