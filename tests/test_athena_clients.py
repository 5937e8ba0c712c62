"""Real Athena clients, unchanged, against the engine: pyathena (plain and pandas cursors), awswrangler
(with and without the CTAS approach) and the AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import client

AWS_CLI = Path(sys.executable).parent / "aws"


@pytest.fixture
def sales(aws_env):
    """A CSV table `<db>.sales` of 30 rows (id 0..29, amount = id * 2, shop in a, b, c) and a results bucket."""
    suffix = uuid.uuid4().hex[:8]
    bucket, database = f"clients-{suffix}", f"clients_{suffix}"
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket=bucket)
    body = "".join(f"{i},{i * 2},{'abc'[i % 3]}\n" for i in range(30)).encode()
    s3.put_object(Bucket=bucket, Key="sales/part.csv", Body=body)
    glue = client(aws_env, "glue")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": "sales",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                "Columns": [{"Name": "id", "Type": "int"}, {"Name": "amount", "Type": "bigint"}, {"Name": "shop", "Type": "string"}],
                "Location": f"s3://{bucket}/sales/",
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}},
            },
        },
    )
    return {"bucket": bucket, "database": database, "output": f"s3://{bucket}/athena-results/"}


def test_pyathena_plain_and_pandas_cursors(sales):
    from pyathena import connect
    from pyathena.pandas.cursor import PandasCursor

    connection = connect(s3_staging_dir=sales["output"], region_name="us-east-1", schema_name=sales["database"], poll_interval=0.05)
    cursor = connection.cursor()
    cursor.execute("SELECT shop, sum(amount) AS total, count(*) AS n FROM sales GROUP BY shop ORDER BY shop")
    assert cursor.fetchall() == [("a", 270, 10), ("b", 290, 10), ("c", 310, 10)]
    assert [d[0] for d in cursor.description] == ["shop", "total", "n"]
    assert cursor.data_scanned_in_bytes > 0
    cursor.execute("SELECT id FROM sales WHERE id < %(limit)s ORDER BY id", {"limit": 3})
    assert cursor.fetchall() == [(0,), (1,), (2,)]

    frame = connection.cursor(PandasCursor).execute("SELECT id, amount, shop FROM sales ORDER BY id").as_pandas()
    assert list(frame.columns) == ["id", "amount", "shop"] and len(frame) == 30
    assert int(frame["amount"].sum()) == sum(i * 2 for i in range(30))


@pytest.mark.parametrize("approach", ["plain", "ctas", "unload"])
def test_awswrangler_read_sql_query(sales, approach):
    import awswrangler as wr

    frame = wr.athena.read_sql_query(
        "SELECT shop, sum(amount) AS total FROM sales GROUP BY shop ORDER BY shop",
        database=sales["database"],
        s3_output=sales["output"] + (f"unload-{uuid.uuid4().hex[:6]}/" if approach == "unload" else ""),
        ctas_approach=approach == "ctas",
        unload_approach=approach == "unload",
        athena_query_wait_polling_delay=0.05,
    )
    if approach == "unload":
        frame = frame.sort_values("shop").reset_index(drop=True)
    assert frame.to_dict("records") == [{"shop": "a", "total": 270}, {"shop": "b", "total": 290}, {"shop": "c", "total": 310}]


def _aws(*args: str) -> dict:
    completed = subprocess.run([str(AWS_CLI), "athena", *args, "--output", "json"], capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout) if completed.stdout.strip() else {}


def test_aws_cli_athena_commands(sales):
    started = _aws("start-query-execution", "--query-string", "SELECT count(*) AS n FROM sales WHERE shop = 'b'",
                   "--query-execution-context", f"Database={sales['database']}",
                   "--result-configuration", f"OutputLocation={sales['output']}")
    execution_id = started["QueryExecutionId"]
    for _ in range(200):
        state = _aws("get-query-execution", "--query-execution-id", execution_id)["QueryExecution"]["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.05)
    assert state == "SUCCEEDED"
    rows = _aws("get-query-results", "--query-execution-id", execution_id)["ResultSet"]["Rows"]
    assert [[d["VarCharValue"] for d in row["Data"]] for row in rows] == [["n"], ["10"]]
    assert execution_id in _aws("list-query-executions")["QueryExecutionIds"]
    tables = _aws("list-table-metadata", "--catalog-name", "AwsDataCatalog", "--database-name", sales["database"])
    assert [t["Name"] for t in tables["TableMetadataList"]] == ["sales"]


def test_awswrangler_quoted_database_and_escaped_csv(sales, aws_env):
    """awswrangler sends `db` (backticks) as the query's database for repair_table, describe_table and
    show_create_table, and writes CSV tables with escape.delim '\\' and values like y\\,z."""
    import awswrangler as wr
    import pandas as pd

    database, output = sales["database"], sales["output"]
    frame = pd.DataFrame({"id": [1, 2], "note": ["y,z", "plain"], "dt": ["2024-01-01", "2024-01-02"]})
    wr.s3.to_csv(frame, path=f"s3://{sales['bucket']}/notes/", dataset=True, database=database, table="notes",
                 partition_cols=["dt"], index=False)
    assert client(aws_env, "glue").get_table(DatabaseName=database, Name="notes")["Table"]["StorageDescriptor"]["SerdeInfo"]["Parameters"]["escape.delim"] == "\\"
    read = wr.athena.read_sql_query("SELECT id, note FROM notes ORDER BY id", database=database, s3_output=output,
                                    ctas_approach=False, athena_query_wait_polling_delay=0.05)
    assert read.to_dict("records") == [{"id": 1, "note": "y,z"}, {"id": 2, "note": "plain"}]

    glue = client(aws_env, "glue")
    glue.batch_delete_partition(DatabaseName=database, TableName="notes", PartitionsToDelete=[{"Values": ["2024-01-02"]}])
    assert wr.athena.repair_table("notes", database=database, s3_output=output, athena_query_wait_polling_delay=0.05) == "SUCCEEDED"
    assert len(glue.get_partitions(DatabaseName=database, TableName="notes")["Partitions"]) == 2
    described = wr.athena.describe_table("notes", database=database, s3_output=output, athena_query_wait_polling_delay=0.05)
    assert list(described["Column Name"])[:3] == ["id", "note", "dt"]
    created = wr.athena.show_create_table("notes", database=database, s3_output=output, athena_query_wait_polling_delay=0.05)
    assert f"CREATE EXTERNAL TABLE `{database}`.`notes`(" in created


@pytest.mark.parametrize("cardinality", [7, 1000, 20000, 150000])
def test_approx_distinct_stays_within_trinos_standard_error(sales, cardinality):
    from pyathena import connect

    cursor = connect(s3_staging_dir=sales["output"], region_name="us-east-1", schema_name=sales["database"], poll_interval=0.05).cursor()
    cursor.execute(f"SELECT approx_distinct(x % {cardinality}), approx_distinct(x, 0.01) FROM UNNEST(sequence(1, {cardinality * 3})) AS t(x)")
    default_error, asked_error = cursor.fetchone()
    assert abs(default_error - cardinality) <= 0.023 * cardinality  # Trino documents 2.3 % standard error
    assert abs(asked_error - cardinality * 3) <= 0.01 * cardinality * 3


def test_information_schema_lists_the_glue_catalog(sales, aws_env):
    from pyathena import connect

    glue = client(aws_env, "glue")
    database = sales["database"]
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "events", "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint", "Comment": "event id"}, {"Name": "tags", "Type": "array<string>"},
                                          {"Name": "price", "Type": "decimal(10,2)"}], "Location": f"s3://{sales['bucket']}/events/"}})
    cursor = connect(s3_staging_dir=sales["output"], region_name="us-east-1", schema_name=database, poll_interval=0.05).cursor()
    cursor.execute("CREATE VIEW shops AS SELECT DISTINCT shop FROM sales")
    cursor.execute(f"SELECT table_catalog, table_name, table_type FROM information_schema.tables WHERE table_schema = '{database}' ORDER BY table_name")
    assert cursor.fetchall() == [("awsdatacatalog", "events", "BASE TABLE"), ("awsdatacatalog", "sales", "BASE TABLE"),
                                 ("awsdatacatalog", "shops", "VIEW")]
    cursor.execute("SELECT column_name, ordinal_position, data_type, is_nullable, comment, extra_info FROM information_schema.columns "
                   f"WHERE table_schema = '{database}' AND table_name = 'events' ORDER BY ordinal_position")
    assert cursor.fetchall() == [("id", 1, "bigint", "YES", "event id", None), ("tags", 2, "array(varchar)", "YES", None, None),
                                 ("price", 3, "decimal(10,2)", "YES", None, None), ("dt", 4, "varchar", "YES", None, "partition key")]
    cursor.execute(f"SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('{database}', 'information_schema') ORDER BY 1")
    assert cursor.fetchall() == [(database,), ("information_schema",)]
    cursor.execute(f"SELECT table_name, view_definition FROM information_schema.views WHERE table_schema = '{database}'")
    assert cursor.fetchall() == [("shops", "SELECT DISTINCT shop FROM sales")]
    cursor.execute(f"SELECT count(*) FROM information_schema.columns c JOIN sales s ON c.ordinal_position = s.id WHERE c.table_schema = '{database}'")
    assert cursor.fetchone()[0] > 0  # joins with ordinary tables like any table
