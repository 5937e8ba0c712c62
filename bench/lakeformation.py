"""Lake Formation benchmark: what enforcement adds to an Athena query and a Glue GetTable by an IAM role session
whose access to the table is a two-column grant, against the same calls by the account root (not governed), in one
run on one stack.

Each round runs both sides back to back (alternating which goes first); medians per call are compared. The Athena
side is the whole query as a client sees it (StartQueryExecution, GetQueryExecution every 5 ms, GetQueryResults):
Lake Formation adds one glue:GetUnfilteredTableMetadata per table of the query and a projection of the granted
columns; that call is timed on its own too (the analyst's includes IAM evaluating its session). Run: `.venv/bin/python bench/lakeformation.py [--rounds 15]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.stack import control  # noqa: E402

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bench-analyst"
ROWS = 2000


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000 and control._port_free(port + 1):
            return port


def root_client(settings: Settings, service: str):
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)


def setup(settings: Settings) -> boto3.Session:
    s3, glue, iam, lakeformation = (root_client(settings, s) for s in ("s3", "glue", "iam", "lakeformation"))
    for bucket in ("bench-lf", "bench-lf-results"):
        s3.create_bucket(Bucket=bucket)
    body = "".join(f"{n},customer-{n},c{n}@example.com,{n % 97}\n" for n in range(ROWS)).encode()
    s3.put_object(Bucket="bench-lf", Key="orders/part-0.csv", Body=body)
    glue.create_database(DatabaseInput={"Name": "bench"})
    glue.create_table(DatabaseName="bench", TableInput={"Name": "orders", "StorageDescriptor": {
        "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "customer", "Type": "string"}, {"Name": "email", "Type": "string"},
                    {"Name": "amount", "Type": "bigint"}],
        "Location": "s3://bench-lf/orders/", "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}}})
    lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
                                     Resource={"Table": {"DatabaseName": "bench", "Name": "orders"}}, Permissions=["ALL"])
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["SELECT"], Resource={
        "TableWithColumns": {"DatabaseName": "bench", "Name": "orders", "ColumnNames": ["id", "amount"]}})
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="bench-analyst", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="bench-analyst", PolicyName="q", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["athena:*", "glue:*", "s3:*", "lakeformation:GetDataAccess"], "Resource": "*"}]}))
    iam.create_user(UserName="bench-user")
    iam.put_user_policy(UserName="bench-user", PolicyName="a", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}]}))
    keys = iam.create_access_key(UserName="bench-user")["AccessKey"]
    sts = boto3.client("sts", endpoint_url=settings.endpoint_url, region_name=settings.region,
                       aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])
    credentials = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="bench")["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name=settings.region)


def query_seconds(athena, sql: str) -> float:
    started = time.perf_counter()
    query_id = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "bench"},
                                            ResultConfiguration={"OutputLocation": "s3://bench-lf-results/"})["QueryExecutionId"]
    while True:
        state = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.005)
    if state != "SUCCEEDED":
        raise RuntimeError(f"{sql}: {state}")
    athena.get_query_results(QueryExecutionId=query_id)
    return time.perf_counter() - started


def get_table_seconds(glue) -> float:
    started = time.perf_counter()
    glue.get_table(DatabaseName="bench", Name="orders")
    return time.perf_counter() - started


def lake_formation_question_seconds(glue) -> float:
    """What Athena asks Lake Formation per table of a governed caller's query (here asked by a client, for itself)."""
    started = time.perf_counter()
    glue.get_unfiltered_table_metadata(CatalogId=ACCOUNT, DatabaseName="bench", Name="orders", SupportedPermissionTypes=["COLUMN_PERMISSION"])
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dealab-bench-lf-"))
    settings = None
    try:
        port = free_port()
        settings = Settings(state_dir=scratch / "state", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        session = setup(settings)
        sides = {"root": (root_client(settings, "athena"), root_client(settings, "glue")),
                 "analyst": (session.client("athena", endpoint_url=settings.endpoint_url), session.client("glue", endpoint_url=settings.endpoint_url))}
        sql = "SELECT id, amount FROM orders WHERE amount > 50"
        for athena, glue in sides.values():  # warm: the query database, the clients' first connections
            query_seconds(athena, sql)
            get_table_seconds(glue)
        times = {(side, kind): [] for side in sides for kind in ("query", "get_table", "question")}
        for number in range(args.rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for side in order:
                athena, glue = sides[side]
                times[(side, "query")].append(query_seconds(athena, sql))
                times[(side, "get_table")].append(get_table_seconds(glue))
                times[(side, "question")].append(lake_formation_question_seconds(glue))
        load = open("/proc/loadavg").read().split(" ")[0] if os.path.exists("/proc/loadavg") else "?"
        print(f"{args.rounds} rounds, load {load}; medians")
        for kind, label in (("query", "Athena query, end to end"), ("get_table", "Glue GetTable"),
                            ("question", "GetUnfilteredTableMetadata")):
            root, analyst = (statistics.median(times[(side, kind)]) * 1000 for side in ("root", "analyst"))
            print(f"  {label:28s} root {root:7.2f} ms   analyst (2 of 4 columns granted) {analyst:7.2f} ms   "
                  f"added {analyst - root:+6.2f} ms   ratio {analyst / root:.2f}")
    finally:
        if settings is not None:
            control.down(settings)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
