"""Redshift Spectrum: an external schema over a Glue database (kept through a restart), external tables read through
Athena's catalog reader (CSV and partitioned Parquet, partitions pruned by the WHERE), joined with a local table,
CREATE EXTERNAL TABLE / ADD PARTITION / DROP TABLE writing the Glue catalog, and the lock-down left as it was."""

from __future__ import annotations

import io

import pyarrow
import pyarrow.parquet
import pytest

from dealab.engines.redshift.warehouse import Warehouse
from dealab.stack import control
from tests.conftest import client
from tests.test_redshift import ok, redshift_role, rows, run
from tests.test_redshift_wire import ADMIN, PASSWORD, _available_endpoint, _connect

ROLE = "arn:aws:iam::123456789012:role/spectrum"
CSV_SERDE = {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}
TEXT_FORMATS = {"InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"}
PARQUET_FORMATS = {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                   "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                   "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}


def _parquet(table: dict) -> bytes:
    sink = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table(table), sink)
    return sink.getvalue()


def _lake(s3, glue) -> None:
    """A crawler-less catalog: customers over CSV with a header, orders over Parquet partitioned by day, one of
    whose partitions holds a file that is not Parquet (only a query that prunes it away succeeds)."""
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="raw/customers/customers.csv",
                  Body=b"id,name,region\n1,Ana,north\n2,Ben,south\n3,Caro,north\n")
    for day, ids, amounts in (("2024-01-01", [1, 2], [10.0, 20.0]), ("2024-01-02", [1, 3, 3], [5.5, 7.0, 1.5])):
        s3.put_object(Bucket="lake", Key=f"orders/day={day}/part-0.parquet",
                      Body=_parquet({"customer_id": pyarrow.array(ids, pyarrow.int32()), "amount": amounts}))
    s3.put_object(Bucket="lake", Key="orders/day=2024-01-03/part-0.parquet", Body=b"not parquet at all")
    glue.create_database(DatabaseInput={"Name": "raw"})
    glue.create_table(DatabaseName="raw", TableInput={
        "Name": "customers", "TableType": "EXTERNAL_TABLE", "Parameters": {"skip.header.line.count": "1", "classification": "csv"},
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}, {"Name": "name", "Type": "string"},
                                          {"Name": "region", "Type": "string"}],
                              "Location": "s3://lake/raw/customers/", **TEXT_FORMATS, "SerdeInfo": CSV_SERDE}})
    descriptor = {"Columns": [{"Name": "customer_id", "Type": "int"}, {"Name": "amount", "Type": "double"}],
                  "Location": "s3://lake/orders/", **PARQUET_FORMATS}
    glue.create_table(DatabaseName="raw", TableInput={
        "Name": "orders", "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": "day", "Type": "string"}],
        "StorageDescriptor": descriptor, "Parameters": {"classification": "parquet"}})
    glue.batch_create_partition(DatabaseName="raw", TableName="orders", PartitionInputList=[
        {"Values": [day], "StorageDescriptor": {**descriptor, "Location": f"s3://lake/orders/day={day}/"}}
        for day in ("2024-01-01", "2024-01-02", "2024-01-03")])


def test_spectrum_over_the_glue_catalog(private_stack):
    s3, glue = client(private_stack, "s3"), client(private_stack, "glue")
    rs, data = client(private_stack, "redshift-serverless"), client(private_stack, "redshift-data")
    _lake(s3, glue)
    redshift_role("spectrum", iam=client(private_stack, "iam"))
    catalog_only = redshift_role("catalog-only", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetTable", "s3:ListBucket"], "Resource": "*"}]}, iam=client(private_stack, "iam"))
    rs.create_namespace(namespaceName="lab", adminUsername=ADMIN, adminUserPassword=PASSWORD, dbName="dev", iamRoles=[ROLE, catalog_only])
    rs.create_workgroup(workgroupName="lab-wg", namespaceName="lab")
    target = {"WorkgroupName": "lab-wg"}

    missing = run(data, f"CREATE EXTERNAL SCHEMA nowhere FROM DATA CATALOG DATABASE 'absent' IAM_ROLE '{ROLE}'", **target)
    assert missing["Status"] == "FAILED" and 'External database "absent" does not exist' in missing["Error"]
    ok(data, f"CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE 'raw' IAM_ROLE '{ROLE}'", **target)
    ok(data, f"CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum FROM DATA CATALOG DATABASE 'raw' IAM_ROLE '{ROLE}'", **target)
    assert rows(data, "SELECT schemaname, databasename FROM svv_external_schemas", **target) == [["spectrum", "raw"]]
    # the schema's role reads the catalog and the objects: one without s3:GetObject cannot read a table
    ok(data, f"CREATE EXTERNAL SCHEMA narrow FROM DATA CATALOG DATABASE 'raw' IAM_ROLE '{catalog_only}'", **target)
    unread = run(data, "SELECT id FROM narrow.customers", **target)
    assert unread["Status"] == "FAILED" and "Access Denied" in unread["Error"] and "S3 key being read : s3://lake/raw/customers/" in unread["Error"]
    ok(data, "DROP SCHEMA narrow", **target)
    created = run(data, f"CREATE EXTERNAL SCHEMA fresh FROM DATA CATALOG DATABASE 'fresh' IAM_ROLE '{catalog_only}' "
                        "CREATE EXTERNAL DATABASE IF NOT EXISTS", **target)
    assert "glue:CreateDatabase" in created["Error"] and "Error Code: AccessDeniedException" in created["Error"], created["Error"]

    # CSV with its header skipped; Parquet with its partition column, the unreadable partition pruned away
    assert rows(data, "SELECT id, name FROM spectrum.customers ORDER BY id", **target) == [[1, "Ana"], [2, "Ben"], [3, "Caro"]]
    assert rows(data, "SELECT count(*), sum(amount) FROM spectrum.orders o WHERE o.day = '2024-01-02'", **target) == [[3, 14.0]]
    assert rows(data, "SELECT count(*) FROM spectrum.orders WHERE day IN ('2024-01-01', '2024-01-02')", **target) == [[5]]
    unpruned = run(data, "SELECT count(*) FROM spectrum.orders", **target)
    assert unpruned["Status"] == "FAILED" and "Spectrum Scan Error" in unpruned["Error"] and "duckdb" not in unpruned["Error"].lower()

    # a join of external tables with a local one, in one query
    ok(data, "CREATE TABLE managers (region VARCHAR(10), manager VARCHAR(20))", **target)
    ok(data, "INSERT INTO managers VALUES ('north', 'Dee'), ('south', 'Eli')", **target)
    joined = rows(data, "SELECT m.manager, sum(o.amount) FROM spectrum.orders o JOIN spectrum.customers c ON c.id = o.customer_id "
                        "JOIN managers m ON m.region = c.region WHERE o.day <= '2024-01-02' GROUP BY 1 ORDER BY 1", **target)
    assert joined == [["Dee", 24.0], ["Eli", 20.0]]

    # over the wire (psycopg's extended protocol describes the statement first) and into UNLOAD
    with _connect(private_stack, _available_endpoint(private_stack, "lab-wg")) as connection:
        assert connection.execute("SELECT name FROM spectrum.customers WHERE id = %s", [2]).fetchall() == [("Ben",)]
    ok(data, "UNLOAD ('SELECT customer_id, amount FROM spectrum.orders WHERE day = ''2024-01-01''') TO 's3://lake/extract/' "
             f"IAM_ROLE '{ROLE}' PARQUET", **target)
    extract = s3.list_objects_v2(Bucket="lake", Prefix="extract/")["Contents"]
    assert sum(pyarrow.parquet.read_table(io.BytesIO(s3.get_object(Bucket="lake", Key=item["Key"])["Body"].read())).num_rows
               for item in extract) == 2

    # CREATE EXTERNAL TABLE and ADD PARTITION write the Glue catalog
    ok(data, "CREATE EXTERNAL TABLE spectrum.events (id INT, kind VARCHAR(20)) PARTITIONED BY (day VARCHAR(10)) "
             "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' STORED AS TEXTFILE LOCATION 's3://lake/events/' "
             "TABLE PROPERTIES ('skip.header.line.count'='1')", **target)
    created = glue.get_table(DatabaseName="raw", Name="events")["Table"]
    assert created["StorageDescriptor"]["Location"] == "s3://lake/events/"
    assert created["StorageDescriptor"]["SerdeInfo"]["Parameters"]["field.delim"] == ","
    assert [key["Name"] for key in created["PartitionKeys"]] == ["day"] and created["Parameters"]["skip.header.line.count"] == "1"
    s3.put_object(Bucket="lake", Key="events/day=d1/events.csv", Body=b"id,kind\n7,click\n8,view\n")
    ok(data, "ALTER TABLE spectrum.events ADD IF NOT EXISTS PARTITION (day='d1') LOCATION 's3://lake/events/day=d1/'", **target)
    assert [p["Values"] for p in glue.get_partitions(DatabaseName="raw", TableName="events")["Partitions"]] == [["d1"]]
    assert rows(data, "SELECT id, kind, day FROM spectrum.events ORDER BY id", **target) == [[7, "click", "d1"], [8, "view", "d1"]]
    listed = rows(data, "SELECT tablename, location FROM svv_external_tables WHERE schemaname = 'spectrum' ORDER BY 1", **target)
    assert listed == [["customers", "s3://lake/raw/customers/"], ["events", "s3://lake/events/"], ["orders", "s3://lake/orders/"]]

    # Redshift's words, never DuckDB's
    for sql, wording in [("SELECT * FROM spectrum.nope", 'relation "spectrum.nope" does not exist'),
                         ("CREATE EXTERNAL TABLE elsewhere.t (a INT) STORED AS PARQUET LOCATION 's3://lake/t/'", 'schema "elsewhere" does not exist'),
                         ("CREATE EXTERNAL TABLE bare (a INT) STORED AS PARQUET LOCATION 's3://lake/t/'", "named with its external schema"),
                         ("CREATE EXTERNAL SCHEMA s FROM POSTGRES", "FROM POSTGRES yet"),
                         ("EXPLAIN SELECT * FROM managers m JOIN spectrum.customers c ON c.region = m.region", "EXPLAIN over external tables yet"),
                         ("CREATE MATERIALIZED VIEW mv AS SELECT count(*) FROM spectrum.customers", "materialized views over external tables yet")]:
        failed = run(data, sql, **target)
        assert failed["Status"] == "FAILED" and wording in failed["Error"], (sql, failed.get("Error"))

    # a Glue table may name a local folder: the reader refuses it, and nothing of the host's files comes back
    glue.create_table(DatabaseName="raw", TableInput={
        "Name": "host", "StorageDescriptor": {"Columns": [{"Name": "line", "Type": "string"}], "Location": "file:///etc/",
                                              **TEXT_FORMATS, "SerdeInfo": CSV_SERDE}})
    host = run(data, "SELECT * FROM spectrum.host", **target)
    assert host["Status"] == "FAILED" and "Spectrum Scan Error: not an s3:// location" in host["Error"] and "root" not in host["Error"]

    ok(data, "DROP TABLE spectrum.events", **target)
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName="raw", Name="events")

    # the schema mapping is the database's own: a restart keeps it
    control.down(private_stack)
    control.up(private_stack)
    data = client(private_stack, "redshift-data")
    assert rows(data, "SELECT count(*) FROM spectrum.customers c JOIN managers m ON m.region = c.region", **target) == [[3]]
    ok(data, "DROP SCHEMA spectrum", **target)
    assert rows(data, "SELECT count(*) FROM svv_external_schemas", **target) == [[0]]
    gone = run(data, "SELECT * FROM spectrum.customers", **target)
    assert gone["Status"] == "FAILED" and "does not exist" in gone["Error"]
    assert glue.get_table(DatabaseName="raw", Name="customers")  # DROP SCHEMA without DROP EXTERNAL DATABASE keeps Glue's


def test_the_lock_down_stays_with_spectrum(tmp_path):
    """A warehouse with Spectrum still reads no local file outside its scratch folder, even on a cursor that
    just had an external relation registered and dropped."""
    import duckdb

    warehouse = Warehouse(tmp_path / "db.duckdb", tmp_path / "scratch", "dev", "serverless")
    try:
        cursor = warehouse.session()
        cursor.register("spectrum_relation_0", pyarrow.table({"a": [1]}))
        cursor.unregister("spectrum_relation_0")
        outside = tmp_path / "outside.csv"
        outside.write_text("a\n1\n")
        with pytest.raises(duckdb.PermissionException):
            cursor.execute(f"SELECT * FROM read_csv('{outside}')").fetchall()
        with pytest.raises(duckdb.Error):
            cursor.execute("SET enable_external_access = true")
    finally:
        warehouse.close()


def test_lake_formation_governs_what_the_schemas_role_reads(private_stack):
    """As on AWS, Lake Formation judges the IAM role of the external schema (Redshift reads the catalog and the data
    as that role): everything while IAMAllowedPrincipals holds the table, nothing once that grant is revoked, then
    only the columns granted to the role, whoever runs the statement."""
    s3, glue, lakeformation = client(private_stack, "s3"), client(private_stack, "glue"), client(private_stack, "lakeformation")
    rs, data = client(private_stack, "redshift-serverless"), client(private_stack, "redshift-data")
    _lake(s3, glue)
    role = redshift_role("spectrum", iam=client(private_stack, "iam"))
    rs.create_namespace(namespaceName="lab", adminUsername=ADMIN, adminUserPassword=PASSWORD, dbName="dev", iamRoles=[ROLE])
    rs.create_workgroup(workgroupName="lab-wg", namespaceName="lab")
    target = {"WorkgroupName": "lab-wg"}
    ok(data, f"CREATE EXTERNAL SCHEMA spectrum FROM DATA CATALOG DATABASE 'raw' IAM_ROLE '{ROLE}'", **target)
    customers = {"Table": {"DatabaseName": "raw", "Name": "customers"}}
    assert rows(data, "SELECT id, name FROM spectrum.customers ORDER BY id", **target) == [[1, "Ana"], [2, "Ben"], [3, "Caro"]]

    lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, Resource=customers,
                                     Permissions=["ALL"])
    refused = run(data, "SELECT id FROM spectrum.customers", **target)
    assert refused["Status"] == "FAILED" and "Insufficient Lake Formation permission(s) on customers" in refused["Error"], refused.get("Error")

    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": role}, Permissions=["SELECT"],
                                    Resource={"TableWithColumns": {"DatabaseName": "raw", "Name": "customers", "ColumnNames": ["id", "region"]}})
    assert rows(data, "SELECT id, region FROM spectrum.customers ORDER BY id", **target) == [[1, "north"], [2, "south"], [3, "north"]]
    hidden = run(data, "SELECT name FROM spectrum.customers", **target)
    assert hidden["Status"] == "FAILED" and "name" in hidden["Error"], hidden.get("Error")
