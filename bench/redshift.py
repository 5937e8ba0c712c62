"""Redshift benchmark: COPY and an aggregate join through the Data API, against DuckDB doing the same work on
the same bytes, in one run.

- COPY: `--rows` rows of CSV (about 60 bytes a row; 4M rows ≈ 250 MB) in 8 objects in the stack's S3. "Redshift"
  is ExecuteStatement of `COPY ... CSV` polled every 5 ms until FINISHED; the baseline fetches the same objects
  through the same S3 endpoint with boto3 and loads them with DuckDB's `read_csv` into a table of a DuckDB file.
- Aggregate join: the loaded fact table joined with a 10,000-row dimension, grouped and summed. "Redshift" is
  ExecuteStatement → FINISHED → GetStatementResult; the baseline is the same SQL on the baseline's DuckDB file.
  Median of `--repeat` runs each.
Goals (issue 18): COPY ≤ 1.3x, the join ≤ 1.5x.

Run: `.venv/bin/python bench/redshift.py [--rows 4000000] [--repeat 5] [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from types import SimpleNamespace

import boto3
import duckdb
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.engines.redshift import pgwire, tls  # noqa: E402
from dealab.stack import control  # noqa: E402

BUCKET = "bench-warehouse"
OBJECTS = 8
CUSTOMERS = 10_000
ADMIN, PASSWORD = "admin", "Bench-password-1"
WIRE_ROUND_TRIPS = 300
FACT_COLUMNS = {"id": "BIGINT", "customer": "INTEGER", "amount": "DECIMAL(12,2)", "day": "DATE", "note": "VARCHAR"}
JOIN_SQL = ("SELECT c.region, count(*) AS orders, sum(f.amount) AS total FROM facts f JOIN customers c ON f.customer = c.id "
            "GROUP BY c.region ORDER BY c.region")
TARGET = {"WorkgroupName": "bench-wg", "Database": "dev"}
ROLE = "arn:aws:iam::123456789012:role/bench-copy"  # what COPY acts as: it trusts Redshift and reads the bucket
ROLE_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
ROLE_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                       "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}]}


def make_csv(rows: int, part: int, generator: random.Random) -> bytes:
    lines = [f"{part * rows + n},{generator.randrange(CUSTOMERS)},{generator.randrange(100_000) / 100:.2f},"
             f"2024-{1 + n % 12:02d}-{1 + n % 28:02d},note number {n % 977}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def statement(data, sql: str) -> tuple[float, dict]:
    started = time.perf_counter()
    statement_id = data.execute_statement(Sql=sql, **TARGET)["Id"]
    while (described := data.describe_statement(Id=statement_id))["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
        time.sleep(0.005)
    if described["Status"] != "FINISHED":
        raise SystemExit(f"{sql[:60]}: {described.get('Error')}")
    if described["HasResultSet"]:
        data.get_statement_result(Id=statement_id)
    return time.perf_counter() - started, described


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200k rows, one run: a check that everything runs")
    args = parser.parse_args()
    rows, repeat = (200_000, 1) if args.quick else (args.rows, args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        port = control.free_port_pair()
        settings = Settings(state_dir=Path(folder) / "state", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        try:
            run(settings, Path(folder), rows, repeat)
        finally:
            control.down(settings)


def run(settings: Settings, folder: Path, rows: int, repeat: int) -> None:
    clients = {name: boto3.client(name, endpoint_url=settings.endpoint_url, region_name="us-east-1",
                                  aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)
               for name in ("s3", "redshift-serverless", "redshift-data", "iam")}
    s3, data = clients["s3"], clients["redshift-data"]
    s3.create_bucket(Bucket=BUCKET)
    generator = random.Random(18)
    size = 0
    for part in range(OBJECTS):
        body = make_csv(rows // OBJECTS, part, generator)
        size += len(body)
        s3.put_object(Bucket=BUCKET, Key=f"facts/part-{part:02d}.csv", Body=body)
    customers = "\n".join(f"{n},region-{n % 7}" for n in range(CUSTOMERS)).encode() + b"\n"
    s3.put_object(Bucket=BUCKET, Key="customers/all.csv", Body=customers)
    clients["iam"].create_role(RoleName="bench-copy", AssumeRolePolicyDocument=json.dumps(ROLE_TRUST))
    clients["iam"].put_role_policy(RoleName="bench-copy", PolicyName="read-bench", PolicyDocument=json.dumps(ROLE_ACCESS))
    clients["redshift-serverless"].create_namespace(namespaceName="bench", dbName="dev", adminUsername=ADMIN, adminUserPassword=PASSWORD,
                                                    iamRoles=[ROLE])
    clients["redshift-serverless"].create_workgroup(workgroupName="bench-wg", namespaceName="bench")
    columns = ", ".join(f"{name} {kind}" for name, kind in FACT_COLUMNS.items())
    statement(data, f"CREATE TABLE facts ({columns}) DISTKEY(customer) SORTKEY(day)")
    statement(data, "CREATE TABLE customers (id INTEGER, region VARCHAR(20)) DISTSTYLE ALL")
    statement(data, f"COPY customers FROM 's3://bench-warehouse/customers/' IAM_ROLE '{ROLE}' CSV")
    print(f"{rows:,} rows, {size / 1e6:.0f} MB of CSV in {OBJECTS} objects")

    copy_times, baseline_copy = [], []
    database = duckdb.connect(str(folder / "baseline.duckdb"))
    database.execute("CREATE TABLE customers (id INTEGER, region VARCHAR)")
    for attempt in range(repeat):
        statement(data, "TRUNCATE facts")
        seconds, described = statement(data, f"COPY facts FROM 's3://bench-warehouse/facts/' IAM_ROLE '{ROLE}' CSV")
        assert described["ResultRows"] == rows // OBJECTS * OBJECTS, described
        copy_times.append(seconds)

        started = time.perf_counter()
        local = folder / "fetched"
        local.mkdir(exist_ok=True)
        files = []
        for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="facts/")["Contents"]:
            path = local / Path(item["Key"]).name
            path.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
            files.append(str(path))
        database.execute("CREATE OR REPLACE TABLE facts AS SELECT * FROM read_csv(?, header=false, auto_detect=false, columns=?)",
                         [files, FACT_COLUMNS])
        baseline_copy.append(time.perf_counter() - started)
    customer_path = folder / "customers.csv"
    customer_path.write_bytes(customers)
    database.execute("INSERT INTO customers SELECT * FROM read_csv(?, header=false, columns={'id': 'INTEGER', 'region': 'VARCHAR'})", [str(customer_path)])

    join_times, baseline_join = [], []
    for attempt in range(repeat):
        join_times.append(statement(data, JOIN_SQL)[0])
        started = time.perf_counter()
        database.execute(JOIN_SQL).fetchall()
        baseline_join.append(time.perf_counter() - started)
    for name, ours, theirs, goal in (("COPY CSV", copy_times, baseline_copy, 1.3), ("aggregate join", join_times, baseline_join, 1.5)):
        mine, base = statistics.median(ours), statistics.median(theirs)
        print(f"{name:16} Data API {mine:.3f} s   DuckDB direct {base:.3f} s   ratio {mine / base:.2f} (goal <= {goal})")
    wire_round_trip(settings, clients["redshift-serverless"])


class BareSession:
    """The wire server's baseline: a DuckDB cursor behind the same protocol code, no engine."""

    def __init__(self, cursor):
        self.cursor = cursor

    def execute(self, sql, parameters):
        self.cursor.execute(sql)
        columns = [(name, str(kind)) for name, kind, *_ in self.cursor.description or []]
        return SimpleNamespace(columns=columns, rows=self.cursor.fetchall() if columns else [], affected=-1)

    def describe(self, sql):
        return None

    def cancel(self):
        self.cursor.interrupt()

    def close(self):
        self.cursor.close()


class BareSessions:
    def __init__(self):
        self.database = duckdb.connect()

    def md5_secret_of(self, user):
        return pgwire.md5_secret(ADMIN, PASSWORD) if user == ADMIN else None

    def open(self, user, database):
        return BareSession(self.database.cursor())


def select_one_ms(port: int, tls_folder: Path | None) -> float:
    options = {"sslmode": "verify-full", "sslrootcert": str(tls_folder / tls.CA_FILE)} if tls_folder else {"sslmode": "disable"}
    with psycopg.connect(host="127.0.0.1", port=port, user=ADMIN, password=PASSWORD, dbname="dev", autocommit=True, **options) as connection:
        for _ in range(20):  # warm
            connection.execute("SELECT 1").fetchone()
        times = []
        for _ in range(WIRE_ROUND_TRIPS):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def wire_round_trip(settings: Settings, serverless) -> None:
    """SELECT 1 over the Postgres wire protocol (psycopg, TLS) on the workgroup's endpoint, against the same
    protocol code over a bare DuckDB cursor in this process (plain TCP): what the engine adds per statement."""
    port = serverless.get_workgroup(workgroupName="bench-wg")["workgroup"]["endpoint"]["port"]
    endpoint = select_one_ms(port, settings.state_dir / "redshift" / "tls")
    bare = pgwire.WireServer(0, BareSessions()).start()
    try:
        baseline = select_one_ms(bare.port, None)
    finally:
        bare.stop()
    print(f"wire SELECT 1     endpoint {endpoint:.2f} ms   bare protocol over DuckDB {baseline:.2f} ms   ratio {endpoint / baseline:.2f} "
          f"(goal: endpoint <= 5 ms)")


if __name__ == "__main__":
    main()
