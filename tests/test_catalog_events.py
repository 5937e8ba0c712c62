"""The Data Catalog's state-change events ("Glue Data Catalog Database State Change", "Glue Data Catalog Table State
Change"), as AWS Glue sends them for the learner's catalog writes, Athena's DDL and a crawler's changes."""

from __future__ import annotations

from dealab.engines.glue import catalogevents
from tests.conftest import client, service_role
from tests.test_service_events import _capture, _events

ARN = "arn:aws:glue:us-east-1:123456789012"
BUCKET = "catalog-events-test"


def test_each_catalog_write_names_what_it_changed_in_aws_shape():
    create = catalogevents.events_of("CreateTable", {"DatabaseName": "d1", "TableInput": {"Name": "t1"}}, {}, ARN)
    assert create == [("Glue Data Catalog Database State Change", {"databaseName": "d1", "typeOfChange": "CreateTable", "changedTables": ["t1"]},
                       [f"{ARN}:table/d1/t1"])]
    database = catalogevents.events_of("CreateDatabase", {"DatabaseInput": {"Name": "d1"}}, {}, ARN)
    assert database == [("Glue Data Catalog Database State Change", {"databaseName": "d1", "typeOfChange": "CreateDatabase"}, [f"{ARN}:database/d1"])]
    update = catalogevents.events_of("UpdateTable", {"DatabaseName": "d1", "TableInput": {"Name": "t1"}}, {}, ARN)
    assert update == [("Glue Data Catalog Table State Change", {"databaseName": "d1", "tableName": "t1", "typeOfChange": "UpdateTable"}, [f"{ARN}:table/d1/t1"])]

    partitions = {"DatabaseName": "d1", "TableName": "t1", "PartitionInputList": [{"Values": ["2024", "01"]}, {"Values": ["2024", "02"]}]}
    refused = {"Errors": [{"PartitionValues": ["2024", "02"], "ErrorDetail": {"ErrorCode": "AlreadyExistsException"}}]}
    [(_, detail, resources)] = catalogevents.events_of("BatchCreatePartition", partitions, refused, ARN)
    assert detail == {"databaseName": "d1", "tableName": "t1", "typeOfChange": "BatchCreatePartition", "changedPartitions": ["[2024, 01]"]}
    assert resources == [f"{ARN}:table/d1/t1"]
    everything_refused = {"Errors": [{"PartitionValues": values["Values"]} for values in partitions["PartitionInputList"]]}
    assert catalogevents.events_of("BatchCreatePartition", partitions, everything_refused, ARN) == []

    many = {"DatabaseName": "d1", "TableName": "t1", "PartitionsToDelete": [{"Values": [str(n)]} for n in range(250)]}
    chunks = [detail["changedPartitions"] for _, detail, _ in catalogevents.events_of("BatchDeletePartition", many, {}, ARN)]
    assert [len(chunk) for chunk in chunks] == [100, 100, 50] and chunks[2][-1] == "[249]"
    tables = catalogevents.events_of("BatchDeleteTable", {"DatabaseName": "d1", "TablesToDelete": ["a", "b"]},
                                     {"Errors": [{"TableName": "b"}]}, ARN)
    assert [detail["changedTables"] for _, detail, _ in tables] == [["a"]]


def test_catalog_writes_athena_ddl_and_a_crawler_reach_the_default_bus(clean_stack):
    url = _capture(clean_stack, "catalog-events", [catalogevents.DATABASE_CHANGE, catalogevents.TABLE_CHANGE])
    glue, s3 = client(clean_stack, "glue"), client(clean_stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="sales/year=2024/part-0.csv", Body=b"id,total\n1,10\n")
    glue.create_database(DatabaseInput={"Name": "cat_db"})
    table = {"Name": "manual", "PartitionKeys": [{"Name": "year", "Type": "string"}],
             "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}], "Location": f"s3://{BUCKET}/manual/"}}
    glue.create_table(DatabaseName="cat_db", TableInput=table)
    glue.batch_create_partition(DatabaseName="cat_db", TableName="manual",
                                PartitionInputList=[{"Values": ["2023"], "StorageDescriptor": table["StorageDescriptor"]},
                                                    {"Values": ["2024"], "StorageDescriptor": table["StorageDescriptor"]}])
    glue.delete_partition(DatabaseName="cat_db", TableName="manual", PartitionValues=["2023"])
    try:
        glue.delete_table(DatabaseName="cat_db", Name="no_such_table")
    except glue.exceptions.EntityNotFoundException:
        pass  # refused: no event
    athena = client(clean_stack, "athena")
    athena.start_query_execution(QueryString=f"CREATE EXTERNAL TABLE cat_db.ddl (id int) LOCATION 's3://{BUCKET}/ddl/'",
                                 ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/results/"})
    glue.create_crawler(Name="cat-crawler", Role=service_role(clean_stack, "glue", "glue"), DatabaseName="cat_db",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/sales/"}]})
    glue.start_crawler(Name="cat-crawler")

    found = _events(clean_stack, url, 7)
    changes = {(event["detail"]["typeOfChange"], event["detail"].get("tableName") or ",".join(event["detail"].get("changedTables", []))): event
               for event in found}
    assert set(changes) == {("CreateDatabase", ""), ("CreateTable", "manual"), ("BatchCreatePartition", "manual"),
                            ("DeletePartition", "manual"), ("CreateTable", "ddl"), ("CreateTable", "sales"),
                            ("BatchCreatePartition", "sales")}
    assert all(event["source"] == "aws.glue" for event in found)
    assert changes[("BatchCreatePartition", "manual")]["detail"]["changedPartitions"] == ["[2023]", "[2024]"]
    assert changes[("DeletePartition", "manual")]["detail-type"] == catalogevents.TABLE_CHANGE
    crawled = changes[("BatchCreatePartition", "sales")]
    assert crawled["detail"] == {"databaseName": "cat_db", "tableName": "sales", "typeOfChange": "BatchCreatePartition", "changedPartitions": ["[2024]"]}
    assert crawled["resources"][0].endswith(":table/cat_db/sales")
    assert changes[("CreateTable", "sales")]["detail-type"] == catalogevents.DATABASE_CHANGE
