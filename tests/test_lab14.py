"""Lab 14 proves its grader: the solution gets full marks (and again when run twice), the untouched starter scores
nothing, each realistic mistake fails exactly the checks that name it (a FAIL, never an ERROR), and other correct
warehouses — a provisioned cluster, other keys that keep the join collocated — keep full marks. Mistakes judged by
disjoint checks share one grading (one run of the whole solution each), each check still proving its own mistake."""

import pytest

from tests.labkit import FAIL, combined_mutants, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, solution_report, starter_report

pytestmark = pytest.mark.slow
SQL = "sql.py"
PROVISION = "provision.py"
LOAD = "load.py"
NIGHTLY = "nightly.py"
ACCESS = "access.py"

FACT_LAYOUT = "    DISTKEY (store_id) SORTKEY (sale_date)\"\"\""
DIM_LAYOUT = "    DISTSTYLE ALL SORTKEY (store_id)\"\"\""
SALES_COPY = "CSV GZIP IGNOREHEADER 1 DATEFORMAT 'YYYY-MM-DD' MAXERROR 20"
LATE_COPY = '''    run(f"COPY fact_sales FROM 's3://{LAKE}/late-sales/' IAM_ROLE '{COPY_ROLE_ARN}' CSV GZIP IGNOREHEADER 1 DATEFORMAT 'YYYY-MM-DD'")\n'''
UNLOAD_FORMAT = "FORMAT AS PARQUET PARTITION BY (region) CLEANPATH"
SELECT_GRANT = '''    run(f"GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO GROUP {GROUP}")'''
USAGE_GRANT = '''    run(f"GRANT USAGE ON SCHEMA reporting TO GROUP {GROUP}")\n'''
NEW_USER = '''run(f"CREATE USER {ANALYST} PASSWORD '{password}' IN GROUP {GROUP}")'''

# mistake: (the checks it must fail, {file: [(old, new), ...]})
MUTANTS = {
    # two values, one of them most rows': the sales pile onto two slices
    "fact_sales distributed on channel": ({"L14-06"}, {LOAD: [(FACT_LAYOUT, FACT_LAYOUT.replace("store_id", "channel"))]}),
    "dim_store distributed EVEN": ({"L14-08"}, {LOAD: [(DIM_LAYOUT, DIM_LAYOUT.replace("ALL", "EVEN"))]}),
    "fact_sales without a sort key": ({"L14-07"}, {LOAD: [(FACT_LAYOUT, '    DISTKEY (store_id)"""')]}),
    # MAXERROR raised until the load passed: it swallows the three header lines, now rejected with the garbled ones
    "IGNOREHEADER forgotten on the sales COPY, MAXERROR raised": ({"L14-05"}, {LOAD: [(SALES_COPY, SALES_COPY.replace(" IGNOREHEADER 1", "").replace("MAXERROR 20", "MAXERROR 100"))]}),
    "late sales never loaded": ({"L14-04", "L14-10", "L14-12"}, {NIGHTLY: [(LATE_COPY, "")]}),
    "view not refreshed after the late sales": ({"L14-10", "L14-11", "L14-14"}, {NIGHTLY: [('    run("REFRESH MATERIALIZED VIEW mv_daily_revenue")\n', "")]}),
    "export unloaded as CSV": ({"L14-12"}, {NIGHTLY: [(UNLOAD_FORMAT, UNLOAD_FORMAT.replace("PARQUET", "CSV"))]}),
    "export partitioned by day": ({"L14-12"}, {NIGHTLY: [(UNLOAD_FORMAT, UNLOAD_FORMAT.replace("(region)", "(sale_date)"))]}),
    # what the enforcement of IAM_ROLE cannot see: COPY and UNLOAD still work, with more than they need
    "warehouse role with s3:* on the lake": ({"L14-02"}, {PROVISION: [('"Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": f"arn:aws:s3:::{LAKE}/exports/*"',
                                                                      '"Action": "s3:*", "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"]')]}),
    # a mistyped database, which the docs' CREATE EXTERNAL DATABASE IF NOT EXISTS (and a role that may create one) quietly makes empty
    "external schema over a new, empty Glue database": ({"L14-09"}, {
        LOAD: [("DATABASE 'wh_lake' IAM_ROLE '{COPY_ROLE_ARN}'\")", "DATABASE 'wh_lake_raw' IAM_ROLE '{COPY_ROLE_ARN}' CREATE EXTERNAL DATABASE IF NOT EXISTS\")")],
        PROVISION: [('"Action": ["glue:GetDatabase",', '"Action": ["glue:CreateDatabase", "glue:GetDatabase",')]}),
    "analysts granted ALL on reporting": ({"L14-15"}, {ACCESS: [(SELECT_GRANT, SELECT_GRANT.replace("SELECT", "ALL"))]}),
    "analysts granted SELECT on public's tables too": ({"L14-15"}, {ACCESS: [(SELECT_GRANT, SELECT_GRANT + "\n" + SELECT_GRANT.replace("reporting", "public"))]}),
    "USAGE on reporting forgotten": ({"L14-14"}, {ACCESS: [(USAGE_GRANT, "")]}),
    "analyst made a superuser": ({"L14-13", "L14-15"}, {ACCESS: [(NEW_USER, NEW_USER.replace(" IN GROUP", " CREATEUSER IN GROUP"))]}),
    "analyst user left out of the group": ({"L14-13", "L14-14"}, {ACCESS: [(NEW_USER, NEW_USER.replace(" IN GROUP {GROUP}", ""))]}),
}
# mistakes judged by disjoint checks, graded together (one grading costs one run of the whole solution)
MUTANT_GROUPS = (
    ("fact_sales distributed on channel", "dim_store distributed EVEN", "IGNOREHEADER forgotten on the sales COPY, MAXERROR raised", "export unloaded as CSV",
     "external schema over a new, empty Glue database", "analysts granted ALL on reporting", "warehouse role with s3:* on the lake"),
    ("fact_sales without a sort key", "late sales never loaded", "USAGE on reporting forgotten", "analysts granted SELECT on public's tables too"),
    ("view not refreshed after the late sales", "export partitioned by day", "analyst made a superuser"),
    ("analyst user left out of the group",),
)

SERVERLESS = '''def warehouse() -> None:
    namespaces = [n["namespaceName"] for n in serverless.list_namespaces()["namespaces"]]
    if NAMESPACE not in namespaces:
        serverless.create_namespace(namespaceName=NAMESPACE, dbName="dev", adminUsername="admin", adminUserPassword=ADMIN_PASSWORD,
                                    iamRoles=[COPY_ROLE_ARN], defaultIamRoleArn=COPY_ROLE_ARN)
    workgroups = [w["workgroupName"] for w in serverless.list_workgroups()["workgroups"]]
    if WORKGROUP not in workgroups:
        serverless.create_workgroup(workgroupName=WORKGROUP, namespaceName=NAMESPACE, baseCapacity=8)
    while serverless.get_workgroup(workgroupName=WORKGROUP)["workgroup"]["status"] != "AVAILABLE":
        time.sleep(0.5)


if __name__'''
CLUSTER = '''def warehouse() -> None:
    redshift = boto3.client("redshift")
    try:
        redshift.create_cluster(ClusterIdentifier=WORKGROUP, NodeType="ra3.xlplus", ClusterType="multi-node", NumberOfNodes=2, DBName="dev",
                                MasterUsername="admin", MasterUserPassword=ADMIN_PASSWORD, IamRoles=[COPY_ROLE_ARN])
    except redshift.exceptions.ClusterAlreadyExistsFault:
        pass
    redshift.get_waiter("cluster_available").wait(ClusterIdentifier=WORKGROUP, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


if __name__'''

VARIANTS = {
    "a provisioned cluster instead of Serverless": {
        SQL: [('TARGET = {"WorkgroupName": WORKGROUP}', 'TARGET = {"ClusterIdentifier": WORKGROUP, "DbUser": "admin"}')],
        PROVISION: [(SERVERLESS, CLUSTER)],
    },
    "both tables on store_id, a compound sort key, the grant on the view by name": {
        LOAD: [(DIM_LAYOUT, DIM_LAYOUT.replace("DISTSTYLE ALL", "DISTKEY (store_id)")),
               (FACT_LAYOUT, FACT_LAYOUT.replace("SORTKEY (sale_date)", "COMPOUND SORTKEY (sale_date, store_id)"))],
        ACCESS: [(SELECT_GRANT, '''    run(f"GRANT SELECT ON reporting.daily_revenue TO GROUP {GROUP}")''')],
    },
    # DISTSTYLE AUTO keeps the 48 stores ALL (a small table), so the join stays collocated
    "fact_sales EVEN, dim_store AUTO, a smaller MAXERROR, the export overwritten serially": {
        LOAD: [(FACT_LAYOUT, FACT_LAYOUT.replace("DISTKEY (store_id)", "DISTSTYLE EVEN")), (DIM_LAYOUT, DIM_LAYOUT.replace("ALL", "AUTO")),
               (SALES_COPY, SALES_COPY.replace("MAXERROR 20", "MAXERROR 10"))],
        NIGHTLY: [(UNLOAD_FORMAT, UNLOAD_FORMAT.replace("CLEANPATH", "ALLOWOVERWRITE PARALLEL OFF"))],
    },
}


def test_solution_gets_full_marks_and_is_rerunnable(aws_env):
    lab = fresh_lab(14, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks, explain(grade_lab(lab, aws_env))


def test_untouched_starter_scores_nothing(aws_env):
    report = starter_report(fresh_lab(14, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert all(result.status == FAIL for result in report.results), explain(report)


def test_the_starter_asks_questions_and_holds_no_sql(aws_env):
    """The learner writes the statements: the starter says what to build, never the SQL to type."""
    lab = fresh_lab(14, aws_env)
    for script in lab.entrypoints:
        text = (lab.starter_dir / script).read_text().lower()
        for statement in ("distkey (", "sortkey (", "ignoreheader", "maxerror", "grant ", "refresh materialized", "partition by",
                          "from data catalog", "create user", "create materialized", "iamroles="):
            assert statement not in text, f"{script}: {statement}"


@pytest.mark.parametrize("group", MUTANT_GROUPS, ids=[" + ".join(group) for group in MUTANT_GROUPS])
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, group):
    prove_breakage(fresh_lab(14, aws_env), aws_env, tmp_path, *combined_mutants(MUTANTS, group))


def test_every_mutant_is_graded():
    assert sorted(name for group in MUTANT_GROUPS for name in group) == sorted(MUTANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(14, aws_env), aws_env, tmp_path, VARIANTS[name])
