"""Redshift: Serverless and cluster control plane, SQL on DuckDB through the Data API, COPY and UNLOAD with
S3, the system views, the lock-down, and the database surviving a kill -9."""

from __future__ import annotations

import datetime
import gzip
import io
import json
import re
import time

import boto3
import pyarrow
import pyarrow.parquet
import pytest

from dealab.engines.redshift import dialect
from dealab.engines.redshift.errors import RedshiftError
from dealab.engines.redshift.warehouse import Warehouse
from dealab.stack import control
from tests.conftest import client, kill_hard
from tests.test_events import drain, queue

ROLE = "arn:aws:iam::123456789012:role/redshift-load"
TRUSTS_REDSHIFT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# What a role COPY, UNLOAD and Spectrum act as needs: read and write the lake, read the Glue catalog
WAREHOUSE_ACCESS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "glue:*"], "Resource": "*"}]}


def redshift_role(name: str, policy: dict = WAREHOUSE_ACCESS, trust: dict = TRUSTS_REDSHIFT, iam=None) -> str:
    """A role Redshift may assume (it trusts redshift.amazonaws.com), allowed what `policy` allows; its ARN."""
    iam = iam or boto3.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(policy))
    return arn


def run(data, sql: str, wait: bool = True, **target) -> dict:
    """Runs one statement through the Data API and returns DescribeStatement once it has ended."""
    statement_id = data.execute_statement(Sql=sql, Database="dev", **target)["Id"]
    deadline = time.monotonic() + 30
    while True:
        described = data.describe_statement(Id=statement_id)
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED") or not wait or time.monotonic() > deadline:
            return described


def ok(data, sql: str, **target) -> dict:
    described = run(data, sql, **target)
    assert described["Status"] == "FINISHED", described.get("Error")
    return described


def rows(data, sql: str, **target) -> list[list]:
    described = ok(data, sql, **target)
    records = data.get_statement_result(Id=described["Id"])["Records"]
    return [[next(iter(field.values())) if "isNull" not in field else None for field in record] for record in records]


@pytest.fixture
def load_role(clean_stack) -> str:
    """The role the warehouses' COPY and UNLOAD name (ROLE), associated with each of them."""
    return redshift_role("redshift-load")


@pytest.fixture
def serverless(load_role):
    rs = boto3.client("redshift-serverless")
    rs.create_namespace(namespaceName="lab", adminUsername="admin", adminUserPassword="Passw0rd!", dbName="dev",
                        iamRoles=[load_role])
    rs.create_workgroup(workgroupName="lab-wg", namespaceName="lab")
    return {"WorkgroupName": "lab-wg"}


@pytest.fixture
def cluster(load_role):
    boto3.client("redshift").create_cluster(ClusterIdentifier="warehouse", NodeType="dc2.large", MasterUsername="admin",
                                            MasterUserPassword="Passw0rd1", DBName="dev", ClusterType="single-node",
                                            IamRoles=[load_role])
    return {"ClusterIdentifier": "warehouse", "DbUser": "admin"}


# ------------------------------------------------------------ the dialect, without a stack


def test_create_table_layout_is_taken_out_and_recorded():
    statement, name, layout = dialect.split_create_table(
        "CREATE TABLE Sales (id BIGINT IDENTITY(1,1), cust INT ENCODE az64 DISTKEY, day DATE SORTKEY, "
        "note VARCHAR(MAX) ENCODE zstd) DISTSTYLE KEY")
    assert name == "sales" and layout.diststyle == "KEY" and layout.distkey == "cust" and layout.sortkeys == ["day"]
    assert layout.encodings == {"cust": "az64", "note": "zstd"} and layout.identities == {"id": [1, 1]}
    assert "DISTKEY" not in statement.upper() and "ENCODE" not in statement.upper() and "nextval" in statement
    _, _, interleaved = dialect.split_create_table("CREATE TEMP TABLE t DISTKEY(a) INTERLEAVED SORTKEY(a, b) AS SELECT 1 AS a, 2 AS b")
    assert (interleaved.temporary, interleaved.distkey, interleaved.sortkey_kind, interleaved.sortkeys) == (True, "a", "INTERLEAVED", ["a", "b"])


@pytest.mark.parametrize("sql", ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_text('/etc/hosts')",
                                 "SELECT getenv('HOME')", "SELECT * FROM read_parquet('/tmp/x.parquet')"])
def test_host_reaching_functions_are_refused_before_duckdb(sql):
    with pytest.raises(RedshiftError, match="does not exist") as refused:
        dialect.translate(sql, "dev", {})
    assert refused.value.position


@pytest.mark.parametrize("sql, wording", [
    ("SELEC 1", 'ERROR: syntax error at or near "SELEC"\n  Position: 1'),
    ("SELECT * FROM nowhere", 'ERROR: relation "nowhere" does not exist\n  Position: 15'),
    ("SELECT missing FROM t", 'ERROR: column "missing" does not exist\n  Position: 8'),
    ("SELECT 'x'::int", 'ERROR: invalid input syntax for type integer: "x"'),
    ("PRAGMA database_list", "ERROR: dealab refuses this setting: learner SQL cannot reach the engine's configuration\n  Position: 1"),
    ("SET memory_limit = '100GB'", "ERROR: dealab refuses this setting: learner SQL cannot reach the engine's configuration\n  Position: 1"),
])
def test_errors_are_worded_as_redshift_words_them(tmp_path, sql, wording):
    warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "serverless")
    session = warehouse.session()
    warehouse.execute(session, "CREATE TABLE t (a INT)", None, None)
    warehouse.execute(session, "SET enable_result_cache_for_session TO off", None, None)  # Redshift's own settings pass
    assert warehouse.execute(session, "-- step 2\n/* the count */ SELECT count(*) FROM t", None, None).rows == [(0,)]
    with pytest.raises(RedshiftError) as failed:
        warehouse.execute(session, sql, None, None)
    assert str(failed.value) == wording
    warehouse.close()


def test_materialized_view_goes_stale_after_a_load_and_refresh_brings_it_up_to_date(tmp_path):
    warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "serverless")
    session = warehouse.session()

    def query(sql):
        return warehouse.execute(session, sql, None, None).rows

    query("CREATE TABLE sales (region VARCHAR(10), amount INT)")
    query("INSERT INTO sales VALUES ('eu', 1), ('us', 2), ('eu', 3)")
    query("CREATE MATERIALIZED VIEW by_region DISTKEY(region) AUTO REFRESH YES AS "
          "SELECT region, sum(amount) AS total FROM sales GROUP BY region")
    assert query("SELECT name, is_stale, autorefresh FROM svv_mv_info") == [("by_region", "f", "t")]
    query("INSERT INTO sales VALUES ('us', 10)")
    assert query("SELECT is_stale FROM svv_mv_info") == [("t",)]
    assert query("SELECT * FROM by_region ORDER BY region") == [("eu", 4), ("us", 2)]
    assert warehouse.execute(session, "REFRESH MATERIALIZED VIEW by_region", None, None).affected == 2
    assert query("SELECT * FROM by_region ORDER BY region") == [("eu", 4), ("us", 12)]
    assert query("SELECT is_stale FROM svv_mv_info") == [("f",)]
    assert ("by_region", "KEY(region)") in query('SELECT "table", diststyle FROM svv_table_info')
    log = tmp_path / "db.duckdb.wal"
    assert log.exists() and warehouse.checkpoint_if_idle(0) and not log.exists()  # an idle database is checkpointed
    assert not warehouse.checkpoint_if_idle(0)  # and only once per change
    query("CREATE TEMP TABLE scratch AS SELECT region FROM sales")  # a temporary table lives with its session
    assert query("SELECT count(*) FROM scratch") == [(4,)]
    with pytest.raises(RedshiftError, match='relation "scratch" does not exist'):
        warehouse.execute(warehouse.session(), "SELECT * FROM scratch", None, None)
    assert ("scratch",) not in query('SELECT "table" FROM svv_table_info')
    query("DROP MATERIALIZED VIEW by_region")
    with pytest.raises(RedshiftError, match='materialized view "by_region" does not exist'):
        query("REFRESH MATERIALIZED VIEW by_region")
    warehouse.close()


def test_explain_shows_the_data_movement_the_distribution_keys_cause(tmp_path):
    warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "provisioned")
    session = warehouse.session()
    for sql in ["CREATE TABLE facts (id INT, customer INT) DISTKEY(customer)", "CREATE TABLE facts_even (id INT, customer INT) DISTSTYLE EVEN",
                "CREATE TABLE customers (id INT, region VARCHAR(10)) DISTKEY(id)",
                "CREATE TABLE customers_all (id INT, region VARCHAR(10)) DISTSTYLE ALL",
                "INSERT INTO facts SELECT n, n % 100 FROM generate_series(1, 5000) g(n)", "INSERT INTO facts_even SELECT * FROM facts",
                "INSERT INTO customers SELECT n, 'r' FROM generate_series(0, 99) g(n)", "INSERT INTO customers_all SELECT * FROM customers"]:
        warehouse.execute(session, sql, None, None)

    def movement(sql):
        plan = [line for (line,) in warehouse.execute(session, "EXPLAIN " + sql, None, None).rows]
        return re.findall(r"Join (DS_[A-Z_]+)", "\n".join(plan)), plan

    collocated, plan = movement("SELECT c.region, count(*) FROM facts f JOIN customers c ON f.customer = c.id GROUP BY c.region ORDER BY 1")
    assert collocated == ["DS_DIST_NONE"] and plan[0].startswith("XN Merge") and any("HashAggregate" in line for line in plan)
    assert movement("SELECT * FROM facts f JOIN customers_all c ON f.customer = c.id")[0] == ["DS_DIST_ALL_NONE"]
    assert movement("SELECT * FROM facts_even f JOIN customers c ON f.customer = c.id")[0] == ["DS_BCAST_INNER"]  # 400 rows < 5000
    assert movement("SELECT * FROM facts f JOIN facts_even e ON f.id = e.id")[0] == ["DS_DIST_BOTH"]
    assert movement("SELECT * FROM facts f JOIN facts_even e ON f.customer = e.id")[0] == ["DS_DIST_INNER"]
    warehouse.execute(session, "DROP TABLE customers, customers_all", None, None)
    assert movement("SELECT * FROM facts_even f JOIN facts e ON f.customer = e.customer")[0] == ["DS_DIST_OUTER"]
    assert warehouse.execute(session, "SELECT count(*) FROM dealab_system.tables", None, None).rows == [(2,)]  # layouts dropped too
    warehouse.close()


def test_copy_reads_gzip_text_json_and_a_parquet_manifest_with_redshifts_options(tmp_path):
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        s3.put_object(Bucket="lake", Key="text/a.txt.gz", Body=gzip.compress(b"1|  |03/15/2024\n2||03/16/2024\n"))
        s3.put_object(Bucket="lake", Key="json/a.json", Body=b'{"id": 1, "name": "ada"}\n{"id": 2}\n')
        sink = io.BytesIO()
        pyarrow.parquet.write_table(pyarrow.table({"id": [5, 6], "name": ["p", "q"]}), sink)
        s3.put_object(Bucket="lake", Key="parquet/part-0.parquet", Body=sink.getvalue())
        s3.put_object(Bucket="lake", Key="manifest.json", Body=json.dumps({"entries": [{"url": "s3://lake/parquet/part-0.parquet"}]}).encode())
        warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "provisioned")
        session = warehouse.session()

        def run_sql(sql):
            return warehouse.execute(session, sql, None, s3)

        run_sql("CREATE SCHEMA staging")
        run_sql("CREATE TABLE staging.notes (id BIGINT IDENTITY(1,1), n INT, note VARCHAR(10), day DATE)")
        assert run_sql("COPY staging.notes (n, note, day) FROM 's3://lake/text/' IAM_ROLE 'r' GZIP DELIMITER '|' DATEFORMAT 'MM/DD/YYYY'").affected == 2
        run_sql("COPY staging.notes FROM 's3://lake/text/' IAM_ROLE 'r' GZIP DELIMITER '|' BLANKSASNULL DATEFORMAT 'MM/DD/YYYY'")
        assert run_sql("SELECT id, note, day FROM staging.notes ORDER BY id").rows == [
            (1, "  ", datetime.date(2024, 3, 15)), (2, "", datetime.date(2024, 3, 16)), (3, None, datetime.date(2024, 3, 15)), (4, None, datetime.date(2024, 3, 16))]
        run_sql("CREATE TABLE people (id INT, name VARCHAR(10))")
        assert run_sql("COPY people FROM 's3://lake/json/a.json' IAM_ROLE 'r' FORMAT AS JSON 'auto'").affected == 2
        assert run_sql("COPY people FROM 's3://lake/manifest.json' IAM_ROLE 'r' FORMAT PARQUET MANIFEST").affected == 2
        assert run_sql("SELECT * FROM people ORDER BY id").rows == [(1, "ada"), (2, None), (5, "p"), (6, "q")]
        with pytest.raises(RedshiftError, match="bucket does not exist"):
            run_sql("COPY people FROM 's3://no-such-bucket/x' IAM_ROLE 'r' PARQUET")
        with pytest.raises(RedshiftError, match="does not support AVRO yet"):
            run_sql("COPY people FROM 's3://lake/json/' IAM_ROLE 'r' AVRO 'auto'")
        warehouse.close()


def test_unload_splits_at_maxfilesize_and_refuses_a_destination_that_is_not_empty(tmp_path):
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="out")
        warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "serverless")
        session = warehouse.session()
        warehouse.execute(session, "CREATE TABLE wide AS SELECT n AS id, repeat('x', 60) AS filler FROM generate_series(1, 90000) AS g(n)", None, s3)
        unload = "UNLOAD ('SELECT * FROM wide') TO 's3://out/wide/' IAM_ROLE 'r' CSV PARALLEL OFF MAXFILESIZE 5 MB"
        assert warehouse.execute(session, unload, None, s3).affected == 90000
        listed = {item["Key"]: item["Size"] for item in s3.list_objects_v2(Bucket="out")["Contents"]}
        assert sorted(listed)[:2] == ["wide/000", "wide/001"] and all(size <= 5 * 1024 * 1024 for size in listed.values())
        assert sum(body.count(b"\n") for body in (s3.get_object(Bucket="out", Key=key)["Body"].read() for key in listed)) == 90000
        with pytest.raises(RedshiftError, match="unload destination on S3 is not empty"):
            warehouse.execute(session, unload, None, s3)
        assert warehouse.execute(session, unload.replace("PARALLEL OFF", "ALLOWOVERWRITE"), None, s3).affected == 90000
        assert "wide/0000_part_00" in {item["Key"] for item in s3.list_objects_v2(Bucket="out")["Contents"]}
        with pytest.raises(RedshiftError, match="bucket does not exist"):
            warehouse.execute(session, "UNLOAD ('SELECT 1') TO 's3://no-such-bucket/x_' IAM_ROLE 'r'", None, s3)
        warehouse.close()


# ------------------------------------------------------------ through the stack


def test_serverless_workgroup_becomes_available_and_clusters_have_a_local_endpoint(serverless, cluster):
    rs = boto3.client("redshift-serverless")
    deadline = time.monotonic() + 10
    while (workgroup := rs.get_workgroup(workgroupName="lab-wg")["workgroup"])["status"] != "AVAILABLE":
        assert workgroup["status"] == "CREATING" and time.monotonic() < deadline
        time.sleep(0.2)
    assert workgroup["endpoint"]["address"] == "127.0.0.1" and workgroup["endpoint"]["port"] > 1024
    assert rs.get_namespace(namespaceName="lab")["namespace"]["status"] == "AVAILABLE"
    assert [item["namespaceName"] for item in rs.list_namespaces()["namespaces"]] == ["lab"]
    with pytest.raises(rs.exceptions.ConflictException):
        rs.delete_namespace(namespaceName="lab")
    described = boto3.client("redshift").describe_clusters(ClusterIdentifier="warehouse")["Clusters"][0]
    assert described["ClusterStatus"] == "available" and described["Endpoint"]["Address"] == "127.0.0.1"
    assert described["Endpoint"]["Port"] not in (5439, workgroup["endpoint"]["port"])


def test_copy_csv_with_a_bad_row_under_maxerror_records_line_column_and_reason(cluster):
    data, s3 = boto3.client("redshift-data"), boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="sales/part-1.csv", Body=b"id,customer,amount,day\n1,7,9.50,2024-01-01\n2,7,x,2024-01-02\n3,8,1.25,2024-01-03\n")
    s3.put_object(Bucket="lake", Key="sales/part-2.csv", Body=b"id,customer,amount,day\n4,9,2.00,2024-01-04\n")
    ok(data, "CREATE TABLE sales (id INT, customer INT DISTKEY, amount DECIMAL(10,2), day DATE SORTKEY)", **cluster)

    failed = run(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{ROLE}' CSV IGNOREHEADER 1", **cluster)
    assert failed["Status"] == "FAILED" and "Load into table 'sales' failed" in failed["Error"] and "stl_load_errors" in failed["Error"]
    loaded = ok(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{ROLE}' FORMAT AS CSV IGNOREHEADER 1 MAXERROR 1", **cluster)
    assert loaded["ResultRows"] == 3
    assert rows(data, "SELECT count(*), sum(amount) FROM sales", **cluster) == [[3, "12.75"]]
    errors = rows(data, "SELECT filename, line_number, colname, err_code, err_reason, raw_field_value FROM stl_load_errors ORDER BY query", **cluster)
    assert errors[-1] == ["s3://lake/sales/part-1.csv", 3, "amount", 1207, "Invalid digit, Value 'x', Pos 0, Type: Decimal", "x"]
    assert rows(data, "SELECT count(*) FROM sys_load_error_detail", **cluster) == [[2]]  # the failed COPY's too
    assert rows(data, "SELECT \"column\", distkey, sortkey FROM pg_table_def WHERE tablename = 'sales' AND (distkey OR sortkey > 0)",
                **cluster) == [["customer", True, 0], ["day", False, 1]]
    missing = run(data, f"COPY sales FROM 's3://lake/nothing-here/' IAM_ROLE '{ROLE}' CSV", **cluster)
    assert missing["Error"] == "ERROR: The specified S3 prefix 'nothing-here/' does not exist"


def test_copy_and_unload_act_as_their_iam_role(serverless, cluster):
    """The role must be associated, exist and trust Redshift; its policies (and the bucket's) decide each S3 request."""
    data, s3, rs = boto3.client("redshift-data"), boto3.client("s3"), boto3.client("redshift-serverless")
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="sales/part-1.csv", Body=b"1,7\n2,8\n")
    ok(data, "CREATE TABLE sales (id INT, customer INT)", **serverless)
    ok(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{ROLE}' CSV", **serverless)

    lister = redshift_role("lister", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:PutObject"], "Resource": "*"}]})
    stranger = redshift_role("stranger", trust={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    unassociated = redshift_role("unassociated")
    rs.delete_workgroup(workgroupName="lab-wg")
    rs.delete_namespace(namespaceName="lab")
    rs.create_namespace(namespaceName="lab", adminUsername="admin", adminUserPassword="Passw0rd!", dbName="dev",
                        iamRoles=[ROLE, lister, stranger], defaultIamRoleArn=lister)
    rs.create_workgroup(workgroupName="lab-wg", namespaceName="lab")
    ok(data, "CREATE TABLE sales (id INT, customer INT)", **serverless)

    denied = run(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{lister}' CSV", **serverless)
    assert denied["Status"] == "FAILED"
    assert denied["Error"].startswith("ERROR: S3ServiceException:Access Denied,Status 403,Error AccessDenied")
    assert "context:   S3 key being read : s3://lake/sales/part-1.csv" in denied["Error"] and "code:      8001" in denied["Error"]
    assert "S3 key being read" in run(data, "COPY sales FROM 's3://lake/sales/' IAM_ROLE default CSV", **serverless)["Error"]
    for role in (stranger, unassociated, "arn:aws:iam::123456789012:role/nobody"):
        refused = run(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{role}' CSV", **serverless)
        assert refused["Error"].startswith(f"ERROR: User arn:aws:redshift:us-east-1:123456789012:dbuser:lab-wg/admin is not "
                                           f"authorized to assume IAM Role {role}"), refused["Error"]
    assert "IAM_ROLE is required" in run(data, "COPY sales FROM 's3://lake/sales/' CSV", **serverless)["Error"]
    rs.update_namespace(namespaceName="lab", iamRoles=[ROLE, lister, stranger, unassociated], defaultIamRoleArn=lister)
    ok(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{unassociated}' CSV", **serverless)  # associated now
    ok(data, f"COPY sales FROM 's3://lake/sales/' CREDENTIALS 'aws_iam_role={ROLE}' CSV", **serverless)
    ok(data, "UNLOAD ('SELECT * FROM sales') TO 's3://lake/out/sales_' IAM_ROLE default", **serverless)

    # a bucket policy's explicit deny binds the role, whatever its own policies allow
    s3.put_bucket_policy(Bucket="lake", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lake/private/*"}]}))
    written = run(data, f"UNLOAD ('SELECT * FROM sales') TO 's3://lake/private/sales_' IAM_ROLE '{ROLE}'", **serverless)
    assert "Access Denied" in written["Error"] and "S3 key being written : s3://lake/private/sales_0000_part_00" in written["Error"]
    assert "Contents" not in s3.list_objects_v2(Bucket="lake", Prefix="private/")

    # a provisioned cluster: IamRoles; DefaultIamRoleArn is what IAM_ROLE default names
    ok(data, "CREATE TABLE sales (id INT, customer INT)", **cluster)
    refused = run(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{lister}' CSV", **cluster)
    assert refused["Error"].startswith(f"ERROR: User arn:aws:redshift:us-east-1:123456789012:dbuser:warehouse/admin is not authorized "
                                       f"to assume IAM Role {lister}")
    assert "Default IAM role is not set" in run(data, "COPY sales FROM 's3://lake/sales/' IAM_ROLE default CSV", **cluster)["Error"]
    ok(data, f"COPY sales FROM 's3://lake/sales/' IAM_ROLE '{ROLE}' CSV", **cluster)


def test_svv_table_info_skew_follows_the_distkey_rows(serverless):
    data = boto3.client("redshift-data")
    ok(data, "CREATE TABLE skewed (region INT, n INT) DISTKEY(region)", **serverless)
    ok(data, "CREATE TABLE spread (id INT, n INT) DISTSTYLE KEY DISTKEY(id) COMPOUND SORTKEY(id, n)", **serverless)
    ok(data, "INSERT INTO skewed SELECT CASE WHEN n < 950 THEN 1 ELSE n END, n FROM generate_series(0, 999) AS g(n)", **serverless)
    ok(data, "INSERT INTO spread SELECT n, n FROM generate_series(0, 999) AS g(n)", **serverless)
    info = {row[0]: row[1:] for row in rows(data, 'SELECT "table", diststyle, sortkey1, skew_rows, tbl_rows FROM svv_table_info', **serverless)}
    assert info["skewed"][:2] == ["KEY(region)", None] and info["spread"][:2] == ["KEY(id)", "id"]
    assert float(info["skewed"][2]) > 10 > 1.3 > float(info["spread"][2]) and info["skewed"][3] == 1000
    failed = run(data, "SELECT * FROM stl_load_errors", **serverless)  # Serverless has the SYS_* views only
    assert failed["Error"].startswith('ERROR: relation "stl_load_errors" does not exist')


def test_unload_partitioned_parquet_writes_redshifts_object_names(serverless):
    data, s3 = boto3.client("redshift-data"), boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    ok(data, "CREATE TABLE orders (id INT, year INT, total DOUBLE PRECISION)", **serverless)
    ok(data, "INSERT INTO orders SELECT n, 2023 + n % 2, n * 1.5 FROM generate_series(0, 9) AS g(n)", **serverless)
    unloaded = ok(data, f"UNLOAD ('SELECT * FROM orders WHERE total > ''0''') TO 's3://exports/orders/' IAM_ROLE '{ROLE}' "
                        "FORMAT PARQUET PARTITION BY (year) MANIFEST", **serverless)
    assert unloaded["ResultRows"] == 9
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="exports")["Contents"])
    keys.remove("orders/manifest")
    assert keys[0] == "orders/year=2023/0000_part_00.parquet"
    assert all(key.startswith(("orders/year=2023/", "orders/year=2024/")) and key.endswith("_part_00.parquet") for key in keys)
    manifest = json.loads(s3.get_object(Bucket="exports", Key="orders/manifest")["Body"].read())
    assert sorted(entry["url"] for entry in manifest["entries"]) == [f"s3://exports/{key}" for key in keys]
    table = pyarrow.parquet.read_table(io.BytesIO(s3.get_object(Bucket="exports", Key=keys[0])["Body"].read()))
    assert table.column_names == ["id", "total"]
    ok(data, f"UNLOAD ('SELECT id FROM orders ORDER BY id') TO 's3://exports/flat/ids_' IAM_ROLE '{ROLE}' CSV HEADER PARALLEL OFF", **serverless)
    assert s3.get_object(Bucket="exports", Key="flat/ids_000")["Body"].read().decode().splitlines()[:3] == ["id", "0", "1"]


def test_data_api_statuses_typed_records_csv_results_and_redshift_errors(serverless, cluster):
    data = boto3.client("redshift-data")
    ok(data, "CREATE TABLE people (id INT IDENTITY(1,1), name VARCHAR(MAX), score DECIMAL(5,1), born DATE, active BOOLEAN)", **serverless)
    batch = data.batch_execute_statement(Sqls=["INSERT INTO people (name, score, born, active) VALUES ('ada', 9.5, '1815-12-10', true)",
                                               "INSERT INTO people (name, score, born, active) VALUES ('alan', NULL, '1912-06-23', false)"],
                                         Database="dev", **serverless)
    deadline = time.monotonic() + 30
    while (described := data.describe_statement(Id=batch["Id"]))["Status"] not in ("FINISHED", "FAILED"):
        assert described["Status"] in ("SUBMITTED", "PICKED", "STARTED") and time.monotonic() < deadline
        time.sleep(0.05)
    assert described["Status"] == "FINISHED" and [sub["ResultRows"] for sub in described["SubStatements"]] == [1, 1]

    statement = data.execute_statement(Sql="SELECT id, name, score, born, active FROM people WHERE name LIKE :prefix ORDER BY id",
                                       Parameters=[{"name": "prefix", "value": "a%"}], Database="dev", **serverless)
    while data.describe_statement(Id=statement["Id"])["Status"] != "FINISHED":
        time.sleep(0.05)
    result = data.get_statement_result(Id=statement["Id"])
    assert [column["typeName"] for column in result["ColumnMetadata"]] == ["int4", "varchar", "numeric", "date", "bool"]
    assert result["Records"][0] == [{"longValue": 1}, {"stringValue": "ada"}, {"stringValue": "9.5"}, {"stringValue": "1815-12-10"}, {"booleanValue": True}]
    assert result["Records"][1][2] == {"isNull": True} and result["TotalNumRows"] == 2

    csv_statement = data.execute_statement(Sql="SELECT name, born FROM people ORDER BY id", Database="dev", ResultFormat="CSV", **serverless)
    while data.describe_statement(Id=csv_statement["Id"])["Status"] != "FINISHED":
        time.sleep(0.05)
    assert data.get_statement_result_v2(Id=csv_statement["Id"])["Records"] == [{"CSVRecords": "name,born\nada,1815-12-10\nalan,1912-06-23\n"}]

    failed = run(data, "SELECT nope FROM people", **serverless)
    assert failed["Status"] == "FAILED" and failed["Error"] == 'ERROR: column "nope" does not exist\n  Position: 8'
    refused = run(data, "SELECT * FROM read_csv('/etc/passwd')", **serverless)
    assert refused["Status"] == "FAILED" and "function read_csv does not exist" in refused["Error"] and "Catalog" not in refused["Error"]
    later = run(data, "SHOW DATASHARES", **serverless)
    assert "SHOW DATASHARES" in later["Error"] and "later part" in later["Error"]

    assert data.list_databases(Database="dev", **serverless)["Databases"] == ["dev"]
    assert {"name": "people", "schema": "public", "type": "TABLE"} in data.list_tables(Database="dev", **serverless)["Tables"]
    assert [column["name"] for column in data.describe_table(Database="dev", Table="people", **serverless)["ColumnList"]][:2] == ["id", "name"]
    assert ok(data, "SELECT 1", **cluster)["HasResultSet"]  # the cluster is a database of its own
    assert run(data, "SELECT * FROM people", **cluster)["Error"].startswith('ERROR: relation "people" does not exist')
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url, queue_arn = queue(sqs, "redshift-events")
    events.put_rule(Name="statements", EventPattern=json.dumps({"source": ["aws.redshift-data"], "detail-type": ["Redshift Data Statement Status Change"]}))
    events.put_targets(Rule="statements", Targets=[{"Id": "q", "Arn": queue_arn}])
    announced = data.execute_statement(Sql="SELECT 1", Database="dev", WithEvent=True, StatementName="nightly", **serverless)
    deadline, received = time.monotonic() + 20, []
    while not received and time.monotonic() < deadline:
        received = drain(sqs, url, 1)
    event = json.loads(received[0]["Body"])
    assert event["detail-type"] == "Redshift Data Statement Status Change" and event["resources"][0].startswith("arn:aws:redshift-serverless:")
    assert {key: event["detail"][key] for key in ("statementId", "statementName", "state", "rows")} == {
        "statementId": announced["Id"], "statementName": "nightly", "state": "FINISHED", "rows": 1}

    endless = data.execute_statement(Sql="SELECT count(*) FROM generate_series(1, 100000000000) AS g(n)", Database="dev", **serverless)
    while data.describe_statement(Id=endless["Id"])["Status"] == "SUBMITTED":
        time.sleep(0.02)
    assert data.cancel_statement(Id=endless["Id"])["Status"] is True
    assert run(data, "SELECT 1", **serverless)["Status"] == "FINISHED"  # the engine is healthy after the cancel
    assert data.describe_statement(Id=endless["Id"])["Status"] == "ABORTED"
    with pytest.raises(data.exceptions.ValidationException, match="already in ABORTED state"):
        data.cancel_statement(Id=endless["Id"])
    listed = data.list_statements(Status="FAILED")["Statements"]
    assert failed["Id"] in [item["Id"] for item in listed]
    with pytest.raises(data.exceptions.ValidationException, match="Workgroup nope is not found"):
        data.execute_statement(Sql="SELECT 1", Database="dev", WorkgroupName="nope")
    with pytest.raises(data.exceptions.ValidationException, match="too long"):
        data.execute_statement(Sql="SELECT '" + "x" * 110_000 + "'", Database="dev", **serverless)
    with pytest.raises(data.exceptions.ValidationException, match="endpoint doesn't exist"):
        data.execute_statement(Sql="SELECT 1", Database="dev", ClusterIdentifier="nope", DbUser="admin")


def test_a_kill_9_keeps_committed_tables(private_stack):
    rs, data = client(private_stack, "redshift-serverless"), client(private_stack, "redshift-data")
    rs.create_namespace(namespaceName="keep", dbName="dev")
    rs.create_workgroup(workgroupName="keep-wg", namespaceName="keep")
    target = {"WorkgroupName": "keep-wg"}
    ok(data, "CREATE TABLE kept (id INT DISTKEY, label VARCHAR(10))", **target)
    inserted = ok(data, "INSERT INTO kept SELECT n, 'row' FROM generate_series(1, 500) AS g(n)", **target)

    kill_hard(private_stack)  # at once: the statement records are rewritten off the request, the journal has them
    control.up(private_stack)

    data = client(private_stack, "redshift-data")
    described = data.describe_statement(Id=inserted["Id"])
    assert (described["Status"], described["ResultRows"]) == ("FINISHED", 500)
    assert rows(data, "SELECT count(*) FROM kept", **target) == [[500]]
    assert rows(data, 'SELECT diststyle FROM svv_table_info WHERE "table" = \'kept\'', **target) == [["KEY(id)"]]
