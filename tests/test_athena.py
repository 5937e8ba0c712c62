"""The Athena engine through boto3: queries on DuckDB over Glue tables and S3 files, DDL, CTAS, errors,
work groups, named queries, catalog calls, asynchronous states, measured bytes, state across a restart."""

from __future__ import annotations

import io
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dealab.stack import control
from tests.conftest import client, make_settings

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class Athena:
    """A small boto3 driver: start, wait, read results."""

    def __init__(self, settings, output: str):
        self.athena = client(settings, "athena")
        self.output = output

    def start(self, sql: str, database: str = "default", **extra) -> str:
        extra.setdefault("ResultConfiguration", {"OutputLocation": self.output})
        return self.athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database}, **extra)["QueryExecutionId"]

    def wait(self, execution_id: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            execution = self.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            if execution["Status"]["State"] in FINAL:
                return execution
            time.sleep(0.02)
        raise AssertionError(f"query {execution_id} did not finish")

    def run(self, sql: str, database: str = "default", expect: str = "SUCCEEDED", **extra) -> dict:
        execution = self.wait(self.start(sql, database, **extra))
        assert execution["Status"]["State"] == expect, execution["Status"]
        return execution

    def rows(self, execution: dict) -> list[list[str | None]]:
        pages = self.athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution["QueryExecutionId"])
        return [[d.get("VarCharValue") for d in row["Data"]] for page in pages for row in page["ResultSet"]["Rows"]]


@pytest.fixture
def lake(aws_env):
    """A bucket for data, one for results, a Glue database, and an Athena driver writing to it."""
    s3 = client(aws_env, "s3")
    bucket, results, database = unique("lake-"), unique("results-"), unique("db_")
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=results)
    client(aws_env, "glue").create_database(DatabaseInput={"Name": database})
    driver = Athena(aws_env, f"s3://{results}/out/")
    return type("Lake", (), {"s3": s3, "bucket": bucket, "results": results, "db": database, "athena": driver, "settings": aws_env})


def put_sales_csv(lake, days: int = 3, rows_per_day: int = 200) -> dict[str, int]:
    """Hive-style CSV partitions dt=2024-01-0N/; returns each partition's object size."""
    sizes = {}
    for day in range(1, days + 1):
        lines = ["id,item,price"] + [f"{day * 1000 + i},item{i % 7},{i * 0.5}" for i in range(rows_per_day)]
        body = ("\n".join(lines) + "\n").encode()
        lake.s3.put_object(Bucket=lake.bucket, Key=f"raw/sales/dt=2024-01-0{day}/part-0.csv", Body=body)
        sizes[f"2024-01-0{day}"] = len(body)
    return sizes


CREATE_SALES = """CREATE EXTERNAL TABLE {db}.sales (id bigint, item string, price double)
PARTITIONED BY (dt string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
LOCATION 's3://{bucket}/raw/sales/'
TBLPROPERTIES ('skip.header.line.count'='1')"""


def test_select_returns_athena_types_header_and_names(lake):
    athena = lake.athena
    execution = athena.run("SELECT 1, 'a' AS word, 7 / 2 AS div, 7.0 / 2 AS real_div, NULL AS nothing, CAST(2.5 AS double) AS d, DATE '2024-01-31' AS day, true AS flag")
    result = athena.athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    types = [(c["Name"], c["Type"]) for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types[:3] == [("_col0", "integer"), ("word", "varchar"), ("div", "integer")]
    assert ("d", "double") in types and ("day", "date") in types and ("flag", "boolean") in types
    header, row = result["ResultSet"]["Rows"]
    assert [d["VarCharValue"] for d in header["Data"]] == [name for name, _ in types]
    assert row["Data"][4] == {}  # NULL has no VarCharValue
    assert [d.get("VarCharValue") for d in row["Data"]] == ["1", "a", "3", "3.5", None, "2.5", "2024-01-31", "true"]
    assert execution["StatementType"] == "DML"
    assert execution["Statistics"]["EngineExecutionTimeInMillis"] >= 0
    assert execution["Statistics"]["TotalExecutionTimeInMillis"] >= execution["Statistics"]["EngineExecutionTimeInMillis"]


def test_result_csv_and_metadata_are_written_where_get_query_execution_says(lake):
    execution = lake.athena.run("SELECT 'say \"hi\"' AS quote, CAST(NULL AS varchar) AS missing, '' AS empty")
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"s3://{lake.results}/out/{execution['QueryExecutionId']}.csv"
    key = location.split("/", 3)[3]
    body = lake.s3.get_object(Bucket=lake.results, Key=key)["Body"].read().decode()
    assert body == '"quote","missing","empty"\n"say ""hi""",,""\n'
    lake.s3.head_object(Bucket=lake.results, Key=key + ".metadata")
    assert lake.athena.rows(execution)[1] == ['say "hi"', None, ""]


def test_trino_functions_translate_to_duckdb(lake):
    execution = lake.athena.run(
        "SELECT format_datetime(TIMESTAMP '2024-03-05 07:08:09', 'yyyy/MM/dd HH:mm'), "
        "parse_datetime('05.03.2024', 'dd.MM.yyyy'), url_extract_host('https://shop.example.com:8443/a?x=1'), "
        "url_extract_parameter('https://e.com/p?a=1&b=two', 'b'), typeof(1), typeof(ARRAY['x']), "
        "date_diff('day', DATE '2024-01-01', DATE '2024-01-31'), -7 / 2, "
        "element_at(map_agg(k, v), 'b') FROM (VALUES ('a', 1), ('b', 2)) AS t(k, v)"
    )
    assert lake.athena.rows(execution)[1] == ["2024/03/05 07:08", "2024-03-05 00:00:00.000", "shop.example.com", "two", "integer", "array(varchar)", "30", "-3", "2"]


def test_csv_table_reads_only_registered_partitions_and_measures_bytes(lake):
    athena, db = lake.athena, lake.db
    sizes = put_sales_csv(lake)
    athena.run(CREATE_SALES.format(db=db, bucket=lake.bucket))
    assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.sales"))[1] == ["0"]  # nothing registered yet
    repair = athena.run(f"MSCK REPAIR TABLE {db}.sales")
    assert any("Added partition to metastore sales:dt=2024-01-02" in row[0] for row in athena.rows(repair))
    partitions = client(lake.settings, "glue").get_partitions(DatabaseName=db, TableName="sales")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == sorted(sizes)

    full = athena.run(f"SELECT dt, count(*) AS n, sum(price) AS total FROM {db}.sales GROUP BY dt ORDER BY dt")
    expected_total = str(sum(i * 0.5 for i in range(200)))
    assert athena.rows(full)[1:] == [[day, "200", expected_total] for day in sorted(sizes)]
    assert full["Statistics"]["DataScannedInBytes"] == sum(sizes.values())

    one_day = athena.run(f"SELECT count(*), min(\"$path\") FROM {db}.sales WHERE dt = '2024-01-02'")
    assert athena.rows(one_day)[1] == ["200", f"s3://{lake.bucket}/raw/sales/dt=2024-01-02/part-0.csv"]
    assert one_day["Statistics"]["DataScannedInBytes"] == sizes["2024-01-02"]

    athena.run(f"ALTER TABLE {db}.sales DROP PARTITION (dt='2024-01-03')")
    assert athena.rows(athena.run(f"SHOW PARTITIONS {db}.sales")) == [["dt=2024-01-01"], ["dt=2024-01-02"]]
    athena.run(f"ALTER TABLE {db}.sales ADD PARTITION (dt='2024-01-03') LOCATION 's3://{lake.bucket}/raw/sales/dt=2024-01-03/'")
    assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.sales"))[1] == ["600"]


def test_ctas_writes_partitioned_compressed_parquet_and_registers_it(lake):
    athena, db = lake.athena, lake.db
    put_sales_csv(lake, rows_per_day=20_000)
    athena.run(CREATE_SALES.format(db=db, bucket=lake.bucket))
    athena.run(f"MSCK REPAIR TABLE {db}.sales")
    ctas = (f"CREATE TABLE {db}.sales_parquet WITH (format = 'PARQUET', write_compression = 'SNAPPY', "
            f"external_location = 's3://{lake.bucket}/curated/sales/', partitioned_by = ARRAY['dt']) "
            f"AS SELECT id, item, price, dt FROM {db}.sales")
    execution = athena.run(ctas)
    assert execution["StatementType"] == "DDL" and execution["SubstatementType"] == "CREATE_TABLE_AS_SELECT"
    manifest_key = execution["Statistics"]["DataManifestLocation"].split("/", 3)[3]
    data_files = lake.s3.get_object(Bucket=lake.results, Key=manifest_key)["Body"].read().decode().split()
    assert len(data_files) == 3 and all(f.startswith(f"s3://{lake.bucket}/curated/sales/dt=2024-01-0") for f in data_files)
    first = lake.s3.get_object(Bucket=lake.bucket, Key=data_files[0].split("/", 3)[3])["Body"].read()
    metadata = pq.ParquetFile(io.BytesIO(first)).metadata
    assert metadata.row_group(0).column(0).compression == "SNAPPY"
    assert "dt" not in metadata.schema.names

    glue = client(lake.settings, "glue")
    table = glue.get_table(DatabaseName=db, Name="sales_parquet")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
    assert "parquet" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].lower()
    assert len(glue.get_partitions(DatabaseName=db, TableName="sales_parquet")["Partitions"]) == 3

    csv_scan = athena.run(f"SELECT sum(price) FROM {db}.sales")
    parquet_scan = athena.run(f"SELECT sum(price) FROM {db}.sales_parquet")
    assert athena.rows(csv_scan)[1] == athena.rows(parquet_scan)[1]
    assert 0 < parquet_scan["Statistics"]["DataScannedInBytes"] < csv_scan["Statistics"]["DataScannedInBytes"] / 3

    again = athena.run(ctas.replace("sales_parquet", "sales_again"), expect="FAILED")
    assert again["Status"]["StateChangeReason"] == (
        f"HIVE_PATH_ALREADY_EXISTS: Target directory for table '{db}.sales_again' already exists: s3://{lake.bucket}/curated/sales/"
    )

    athena.run(f"INSERT INTO {db}.sales_parquet SELECT 1, 'late', 9.5, '2024-02-01'")
    assert athena.rows(athena.run(f"SELECT count(*), max(dt) FROM {db}.sales_parquet"))[1] == ["60001", "2024-02-01"]


def test_partition_projection_needs_no_registered_partitions(lake):
    athena, db = lake.athena, lake.db
    for day in ("2024-05-01", "2024-05-02", "2024-05-03"):
        for region in ("eu", "us"):
            table = pa.table({"amount": [1, 2, 3] if region == "eu" else [10, 20]})
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            lake.s3.put_object(Bucket=lake.bucket, Key=f"proj/{day}/{region}/data.parquet", Body=buffer.getvalue())
    athena.run(f"""CREATE EXTERNAL TABLE {db}.projected (amount bigint) PARTITIONED BY (day string, region string)
        STORED AS PARQUET LOCATION 's3://{lake.bucket}/proj/'
        TBLPROPERTIES ('projection.enabled'='true', 'projection.day.type'='date', 'projection.day.format'='yyyy-MM-dd',
                       'projection.day.range'='2024-05-01,2024-05-10', 'projection.region.type'='enum',
                       'projection.region.values'='eu,us', 'storage.location.template'='s3://{lake.bucket}/proj/${{day}}/${{region}}/')""")
    everything = athena.run(f"SELECT count(*), sum(amount) FROM {db}.projected")
    assert athena.rows(everything)[1] == ["15", "108"]
    one = athena.run(f"SELECT sum(amount) FROM {db}.projected WHERE day = '2024-05-02' AND region = 'us'")
    assert athena.rows(one)[1] == ["30"]
    assert one["Statistics"]["DataScannedInBytes"] < everything["Statistics"]["DataScannedInBytes"] / 4


def test_views_json_tables_unload_show_and_describe(lake):
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="events/e.json", Body=b'{"user": "ann", "n": 2}\n{"user": "bob", "n": 5}\n{"user": "ann", "n": 1}\n')
    athena.run(f"CREATE EXTERNAL TABLE {db}.events (user string, n int) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://{lake.bucket}/events/'")
    athena.run(f"CREATE OR REPLACE VIEW {db}.per_user AS SELECT user, sum(n) AS total FROM events GROUP BY user", database=db)
    assert athena.rows(athena.run(f"SELECT * FROM {db}.per_user ORDER BY user"))[1:] == [["ann", "3"], ["bob", "5"]]
    view = client(lake.settings, "glue").get_table(DatabaseName=db, Name="per_user")["Table"]
    assert view["TableType"] == "VIRTUAL_VIEW" and view["ViewOriginalText"].startswith("/* Presto View: ")
    assert athena.rows(athena.run("SHOW TABLES", database=db)) == [["events"], ["per_user"]]
    described = athena.run(f"DESCRIBE {db}.events")
    assert athena.rows(described)[:2] == [["user\tstring\t"], ["n\tint\t"]]
    columns = athena.athena.get_query_results(QueryExecutionId=described["QueryExecutionId"])["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [c["Name"] for c in columns] == ["col_name", "data_type", "comment"]  # as Athena names them; awswrangler reads by them
    unload = athena.run(f"UNLOAD (SELECT * FROM {db}.events WHERE n > 1) TO 's3://{lake.bucket}/unloaded/' WITH (format = 'PARQUET')")
    assert athena.rows(unload)[1] == ["2"]
    keys = [o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="unloaded/")["Contents"]]
    assert len(keys) == 1
    assert athena.rows(athena.run(f"EXPLAIN SELECT * FROM {db}.events"))[0] == ["Query Plan"]
    athena.run(f"DROP VIEW {db}.per_user")
    athena.run(f"DROP TABLE {db}.events")
    assert athena.rows(athena.run("SHOW TABLES", database=db)) == []


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FORM sales", "line 1:15: mismatched input 'sales'."),
        ("SELECT *\nFROM missing_table", "TABLE_NOT_FOUND: line 2:6: Table 'awsdatacatalog.{db}.missing_table' does not exist"),
        ("SELECT nope FROM t", "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"),
        ("SELEC 1", "line 1:1: mismatched input 'SELEC'."),
        ("SELECT no_such_function(1)", "FUNCTION_NOT_FOUND: line 1:8: Function 'no_such_function' not registered"),
    ],
)
def test_errors_read_like_athena(lake, sql, reason):
    lake.s3.put_object(Bucket=lake.bucket, Key="t/a.csv", Body=b"1\n")
    lake.athena.run(f"CREATE EXTERNAL TABLE IF NOT EXISTS {lake.db}.t (a int) LOCATION 's3://{lake.bucket}/t/'")
    execution = lake.athena.run(sql, database=lake.db, expect="FAILED")
    message = execution["Status"]["StateChangeReason"]
    assert message.startswith(reason.format(db=lake.db)), message
    assert "Traceback" not in message and execution["Status"]["AthenaError"]["ErrorCategory"] == 2
    with pytest.raises(lake.athena.athena.exceptions.InvalidRequestException, match="FAILED"):
        lake.athena.athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])


def test_queries_run_asynchronously_and_can_be_stopped(lake):
    athena = lake.athena
    execution_id = athena.start("SELECT count(*) FROM range(40000000000) AS a(x) WHERE x % 7 = 3")
    state = athena.athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]["State"]
    assert state in ("QUEUED", "RUNNING")
    with pytest.raises(athena.athena.exceptions.InvalidRequestException, match="has not yet finished"):
        athena.athena.get_query_results(QueryExecutionId=execution_id)
    athena.athena.stop_query_execution(QueryExecutionId=execution_id)
    assert athena.wait(execution_id, timeout=20)["Status"]["State"] == "CANCELLED"


def test_work_group_output_location_enforcement_and_bytes_cutoff(lake):
    athena, db = lake.athena, lake.db
    group = unique("wg-")
    athena.athena.create_work_group(
        Name=group,
        Configuration={"ResultConfiguration": {"OutputLocation": f"s3://{lake.results}/enforced/"},
                       "EnforceWorkGroupConfiguration": True, "BytesScannedCutoffPerQuery": 10_000_000},
    )
    enforced = athena.run("SELECT 1", WorkGroup=group)
    assert enforced["ResultConfiguration"]["OutputLocation"].startswith(f"s3://{lake.results}/enforced/")
    assert enforced["WorkGroup"] == group
    big_file = ("x" * 1000 + "\n").encode() * 6_000
    for number in range(12):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"big/data-{number:02d}.txt", Body=big_file)
    athena.run(f"CREATE EXTERNAL TABLE {db}.big (line string) LOCATION 's3://{lake.bucket}/big/'")
    over = athena.run(f"SELECT count(*) FROM {db}.big", WorkGroup=group, expect="CANCELLED")
    assert over["Status"]["StateChangeReason"] == "Bytes scanned limit was exceeded"
    assert 10_000_000 < over["Statistics"]["DataScannedInBytes"] < 12 * len(big_file)  # stopped while scanning
    athena.athena.update_work_group(WorkGroup=group, ConfigurationUpdates={"RemoveBytesScannedCutoffPerQuery": True})
    assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.big", WorkGroup=group))[1] == ["72000"]
    config = athena.athena.get_work_group(WorkGroup=group)["WorkGroup"]["Configuration"]
    assert "BytesScannedCutoffPerQuery" not in config and config["EnforceWorkGroupConfiguration"] is True
    assert group in [g["Name"] for g in athena.athena.list_work_groups()["WorkGroups"]]
    assert enforced["QueryExecutionId"] in athena.athena.list_query_executions(WorkGroup=group)["QueryExecutionIds"]
    with pytest.raises(athena.athena.exceptions.InvalidRequestException, match="not found"):
        athena.athena.start_query_execution(QueryString="SELECT 1", WorkGroup="no-such-group")
    athena.athena.delete_work_group(WorkGroup=group, RecursiveDeleteOption=True)


def test_named_queries_catalog_calls_and_batch_get(lake):
    athena, db = lake.athena, lake.db
    api = athena.athena
    query_id = api.create_named_query(Name="top", Database=db, QueryString="SELECT 42")["NamedQueryId"]
    assert api.get_named_query(NamedQueryId=query_id)["NamedQuery"]["QueryString"] == "SELECT 42"
    assert query_id in api.list_named_queries()["NamedQueryIds"]
    assert api.batch_get_named_query(NamedQueryIds=[query_id])["NamedQueries"][0]["Name"] == "top"
    lake.s3.put_object(Bucket=lake.bucket, Key="t/a.csv", Body=b"1\n")
    athena.run(f"CREATE EXTERNAL TABLE {db}.t (a int) PARTITIONED BY (p string) LOCATION 's3://{lake.bucket}/t/'")
    assert api.list_data_catalogs()["DataCatalogsSummary"][0]["CatalogName"] == "AwsDataCatalog"
    assert db in [d["Name"] for d in api.list_databases(CatalogName="AwsDataCatalog")["DatabaseList"]]
    metadata = api.get_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=db, TableName="t")["TableMetadata"]
    assert metadata["Columns"] == [{"Name": "a", "Type": "int"}] and metadata["PartitionKeys"] == [{"Name": "p", "Type": "string"}]
    assert [t["Name"] for t in api.list_table_metadata(CatalogName="AwsDataCatalog", DatabaseName=db)["TableMetadataList"]] == ["t"]
    ids = [athena.start("SELECT 1"), "no-such-id"]
    batch = api.batch_get_query_execution(QueryExecutionIds=ids)
    assert [e["QueryExecutionId"] for e in batch["QueryExecutions"]] == ids[:1]
    assert batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "no-such-id"
    api.delete_named_query(NamedQueryId=query_id)
    assert query_id not in api.list_named_queries()["NamedQueryIds"]


def test_get_query_results_paginates_with_the_header_on_the_first_page(lake):
    execution = lake.athena.run("SELECT x FROM range(2500) AS t(x) ORDER BY x")
    api = lake.athena.athena
    first = api.get_query_results(QueryExecutionId=execution["QueryExecutionId"], MaxResults=1000)
    assert len(first["ResultSet"]["Rows"]) == 1000 and first["ResultSet"]["Rows"][0]["Data"][0]["VarCharValue"] == "x"
    rows = lake.athena.rows(execution)
    assert len(rows) == 2501 and rows[-1] == ["2499"]


def test_state_survives_a_restart(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        s3, api = client(settings, "s3"), client(settings, "athena")
        s3.create_bucket(Bucket="restart-results")
        api.create_work_group(Name="kept", Configuration={"ResultConfiguration": {"OutputLocation": "s3://restart-results/"}})
        driver = Athena(settings, "s3://restart-results/")
        execution = driver.run("SELECT 'still here' AS word", WorkGroup="kept")
        endless = driver.start("SELECT count(*) FROM range(40000000000) AS a(x) WHERE x % 7 = 3", WorkGroup="kept")
        control.down(settings)
        control.up(settings)
        again = api.get_query_execution(QueryExecutionId=execution["QueryExecutionId"])["QueryExecution"]
        assert again["Status"]["State"] == "SUCCEEDED"
        interrupted = api.get_query_execution(QueryExecutionId=endless)["QueryExecution"]["Status"]
        assert interrupted["State"] == "FAILED" and "stack stopped" in interrupted["StateChangeReason"]
        assert driver.rows(again) == [["word"], ["still here"]]
        assert api.get_work_group(WorkGroup="kept")["WorkGroup"]["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://restart-results/"
    finally:
        control.down(settings)


def test_ctas_bucketed_by_writes_one_file_per_bucket_and_records_it(lake):
    athena, db = lake.athena, lake.db
    put_sales_csv(lake, days=2)
    athena.run(CREATE_SALES.format(db=db, bucket=lake.bucket))
    athena.run(f"MSCK REPAIR TABLE {db}.sales")
    athena.run(f"CREATE TABLE {db}.bucketed WITH (external_location = 's3://{lake.bucket}/bucketed/', partitioned_by = ARRAY['dt'], "
               f"bucketed_by = ARRAY['item'], bucket_count = 3) AS SELECT id, item, dt FROM {db}.sales")
    keys = [o["Key"] for o in lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="bucketed/")["Contents"]]
    assert {k.split("/")[1] for k in keys} == {"dt=2024-01-01", "dt=2024-01-02"}
    assert all("_bucket-0000" in k for k in keys) and len(keys) <= 6
    descriptor = client(lake.settings, "glue").get_table(DatabaseName=db, Name="bucketed")["Table"]["StorageDescriptor"]
    assert descriptor["BucketColumns"] == ["item"] and descriptor["NumberOfBuckets"] == 3
    items_by_file = {k: set(pq.read_table(io.BytesIO(lake.s3.get_object(Bucket=lake.bucket, Key=k)["Body"].read()))["item"].to_pylist()) for k in keys}
    for day in ("dt=2024-01-01", "dt=2024-01-02"):
        sets = [items for key, items in items_by_file.items() if f"/{day}/" in key]
        assert sum(len(items) for items in sets) == 7  # each item lands in exactly one bucket of the day
    assert athena.rows(athena.run(f"SELECT count(DISTINCT item), count(*) FROM {db}.bucketed"))[1] == ["7", "400"]


def test_serdes_integer_projection_parameters_and_show(lake):
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="quoted/a.csv", Body=b'"name","note"\n"Smith, Ann","said ""hi"""\n"Bob",""\n')
    athena.run(f"""CREATE EXTERNAL TABLE {db}.quoted (name string, note string)
        ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' WITH SERDEPROPERTIES ('separatorChar'=',', 'quoteChar'='"', 'escapeChar'='"')
        LOCATION 's3://{lake.bucket}/quoted/' TBLPROPERTIES ('skip.header.line.count'='1')""")
    assert athena.rows(athena.run(f"SELECT name, note FROM {db}.quoted ORDER BY name")) == [["name", "note"], ["Bob", ""], ["Smith, Ann", 'said "hi"']]

    lake.s3.put_object(Bucket=lake.bucket, Key="tsv/a.tsv", Body=b"1\tone\n2\ttwo\n")
    athena.run(f"CREATE EXTERNAL TABLE {db}.tabbed (n int, word string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' LOCATION 's3://{lake.bucket}/tsv/'")
    assert athena.rows(athena.run(f"SELECT sum(n), max(word) FROM {db}.tabbed"))[1] == ["3", "two"]

    for hour in (1, 2, 3):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"hours/hour={hour:02d}/a.csv", Body=f"{hour * 10}\n".encode())
    athena.run(f"""CREATE EXTERNAL TABLE {db}.hourly (v int) PARTITIONED BY (hour int) LOCATION 's3://{lake.bucket}/hours/'
        TBLPROPERTIES ('projection.enabled'='true', 'projection.hour.type'='integer', 'projection.hour.range'='0,23', 'projection.hour.digits'='2')""")
    assert athena.rows(athena.run(f"SELECT sum(v) FROM {db}.hourly WHERE hour BETWEEN 2 AND 5"))[1] == ["50"]

    bound = athena.run(f"SELECT name FROM {db}.quoted WHERE name = ? AND length(name) > ?", ExecutionParameters=["'Bob'", "1"])
    assert athena.rows(bound)[1:] == [["Bob"]] and bound["ExecutionParameters"] == ["'Bob'", "1"]

    assert [db] in athena.rows(athena.run("SHOW DATABASES"))
    assert athena.rows(athena.run(f"SHOW COLUMNS IN {db}.hourly")) == [["v"], ["hour"]]
    assert athena.run("SHOW TABLES", database=db)["StatementType"] == "UTILITY"


@pytest.mark.parametrize("older_file_first", [True, False])
def test_parquet_files_with_evolving_schemas_are_read_by_column_name(lake, older_file_first):
    athena, db = lake.athena, lake.db
    old = pa.table({"id": [1, 2], "name": ["a", "b"]})
    new = pa.table({"name": ["c"], "id": [3], "score": [9.5]})
    for key, table in ((("a" if older_file_first else "b") + ".parquet", old), (("b" if older_file_first else "a") + ".parquet", new)):
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        lake.s3.put_object(Bucket=lake.bucket, Key=f"evolving/{key}", Body=buffer.getvalue())
    athena.run(f"CREATE EXTERNAL TABLE {db}.evolving (id bigint, name string, score double) STORED AS PARQUET LOCATION 's3://{lake.bucket}/evolving/'")
    rows = athena.rows(athena.run(f"SELECT id, name, score FROM {db}.evolving ORDER BY id"))
    assert rows[1:] == [["1", "a", None], ["2", "b", None], ["3", "c", "9.5"]]


def test_alter_table_set_location_and_show_views(lake):
    """Two statements that went in through the statement table: each one entry and one handler."""
    athena, db = lake.athena, lake.db
    for folder, value in (("v1", 1), ("v2", 20)):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"moving/{folder}/a.csv", Body=f"{value}\n".encode())
        lake.s3.put_object(Bucket=lake.bucket, Key=f"parts/{folder}/a.csv", Body=f"{value}\n".encode())
    athena.run(f"CREATE EXTERNAL TABLE {db}.moving (n int) LOCATION 's3://{lake.bucket}/moving/v1/'")
    assert athena.rows(athena.run(f"SELECT sum(n) FROM {db}.moving"))[1] == ["1"]
    moved = athena.run(f"ALTER TABLE {db}.moving SET LOCATION 's3://{lake.bucket}/moving/v2/'")
    assert moved["StatementType"] == "DDL"
    glue = client(lake.settings, "glue")
    assert glue.get_table(DatabaseName=db, Name="moving")["Table"]["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/moving/v2/"
    assert athena.rows(athena.run(f"SELECT sum(n) FROM {db}.moving"))[1] == ["20"]

    athena.run(f"CREATE EXTERNAL TABLE {db}.parted (n int) PARTITIONED BY (dt string) LOCATION 's3://{lake.bucket}/parts/'")
    athena.run(f"ALTER TABLE {db}.parted ADD PARTITION (dt = 'a') LOCATION 's3://{lake.bucket}/parts/v1/'")
    athena.run(f"ALTER TABLE `{db}`.parted PARTITION (dt = 'a') SET LOCATION 's3://{lake.bucket}/parts/v2/'")
    partition = glue.get_partition(DatabaseName=db, TableName="parted", PartitionValues=["a"])["Partition"]
    assert partition["StorageDescriptor"]["Location"] == f"s3://{lake.bucket}/parts/v2/"
    assert athena.rows(athena.run(f"SELECT sum(n) FROM {db}.parted WHERE dt = 'a'"))[1] == ["20"]
    missing = athena.run(f"ALTER TABLE {db}.parted PARTITION (dt = 'zz') SET LOCATION 's3://{lake.bucket}/x/'", expect="FAILED")
    assert "Partition not found" in missing["Status"]["StateChangeReason"]
    assert "s3://" in athena.run(f"ALTER TABLE {db}.moving SET LOCATION 'moving/v3'", expect="FAILED")["Status"]["StateChangeReason"]

    athena.run(f"CREATE VIEW {db}.orders_recent AS SELECT n FROM moving", database=db)
    athena.run(f"CREATE VIEW {db}.orders_old AS SELECT n FROM moving", database=db)
    athena.run(f"CREATE VIEW {db}.totals AS SELECT sum(n) AS t FROM moving", database=db)
    shown = athena.run("SHOW VIEWS", database=db)
    assert athena.rows(shown) == [["orders_old"], ["orders_recent"], ["totals"]]  # tables are not views
    assert athena.rows(athena.run(f"SHOW VIEWS IN {db} LIKE 'orders*'")) == [["orders_old"], ["orders_recent"]]
    assert athena.rows(athena.run(f"SHOW VIEWS IN `{db}` LIKE 'tot*|*old'")) == [["orders_old"], ["totals"]]
    assert athena.rows(athena.run("SHOW TABLES", database=db)) == [["moving"], ["orders_old"], ["orders_recent"], ["parted"], ["totals"]]


def test_a_table_whose_listing_takes_pages_and_awkward_keys_is_read_whole(lake):
    """The catalog lists a table's folder through the loopback's raw seam: every page of the listing (S3 answers
    at most 1,000 keys a page), a prefix that needs percent-encoding, keys that need escaping in the XML, and
    hidden and empty files left out."""
    athena, db, folder = lake.athena, lake.db, "odd folder/a&b+c"
    for number in range(1005):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"{folder}/part <{number:04d}>.csv", Body=f"{number}\n".encode())
    lake.s3.put_object(Bucket=lake.bucket, Key=f"{folder}/_SUCCESS", Body=b"7\n")
    lake.s3.put_object(Bucket=lake.bucket, Key=f"{folder}/empty.csv", Body=b"")
    athena.run(f"CREATE EXTERNAL TABLE {db}.many (n bigint) LOCATION 's3://{lake.bucket}/{folder}/'")
    rows = athena.rows(athena.run(f"SELECT count(*), sum(n) FROM {db}.many"))
    assert rows[1:] == [["1005", str(sum(range(1005)))]]
