"""Distributed Map: ItemReader over an S3 JSON array, a CSV with a header row and an S3 listing (every page, in
AWS's item shape), and ResultWriter's manifest and result files in S3."""

from __future__ import annotations

import json

from tests.conftest import client
from tests.test_stepfunctions import machine, run

BUCKET = "sfn-distributed"
DISTRIBUTED = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}}


def _map(reader: dict, states: dict, **more) -> dict:
    return {"Items": {"Type": "Map", "ItemReader": reader, "End": True, **more,
                      "ItemProcessor": {**DISTRIBUTED, "StartAt": next(iter(states)), "States": states}}}


def test_item_reader_reads_a_json_array_a_csv_and_a_listing(clean_stack):
    settings = clean_stack
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="in/orders.json", Body=json.dumps([{"n": 1}, {"n": 2}, {"n": 5}]).encode())
    s3.put_object(Bucket=BUCKET, Key="in/orders.csv", Body=b"id,amount\n7,1.5\n8,2.25\n")
    for index in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"landing/part-{index:04d}.csv", Body=b"x" * (index % 3))

    doubled = machine(settings, "json-reader", _map(
        {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": BUCKET, "Key": "in/orders.json"}},
        {"Double": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, $.n)"}, "End": True}}))
    execution = run(settings, doubled)
    assert execution["status"] == "SUCCEEDED" and json.loads(execution["output"]) == [{"n": 2}, {"n": 4}, {"n": 10}]

    rows = machine(settings, "csv-reader", _map(
        {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "MaxItems": 1},
         "Parameters": {"Bucket": BUCKET, "Key": "in/orders.csv"}},
        {"Keep": {"Type": "Pass", "End": True}}))
    assert json.loads(run(settings, rows)["output"]) == [{"id": "7", "amount": "1.5"}]  # CSV fields are strings, as on AWS

    listing = machine(settings, "list-reader", _map(
        # two keys a page: the reader goes through every page
        {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": BUCKET, "Prefix": "landing/", "MaxKeys": 2}},
        {"Name": {"Type": "Pass", "Parameters": {"key.$": "$.Key", "size.$": "$.Size", "class.$": "$.StorageClass",
                                                 "etag.$": "$.Etag", "modified.$": "$.LastModified"}, "End": True}}))
    listed = run(settings, listing)
    assert listed["status"] == "SUCCEEDED", listed
    items = json.loads(listed["output"])
    assert [item["key"] for item in items] == [f"landing/part-{index:04d}.csv" for index in range(5)]
    assert items[4]["size"] == 1 and items[4]["class"] == "STANDARD" and items[4]["etag"].startswith('"')
    assert isinstance(items[0]["modified"], int)  # epoch seconds, as AWS gives a listed object's LastModified

    empty = machine(settings, "empty-listing", _map(
        {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": BUCKET, "Prefix": "nothing-here/"}},
        {"Keep": {"Type": "Pass", "End": True}}))
    nothing = run(settings, empty)
    assert nothing["status"] == "SUCCEEDED", nothing
    assert json.loads(nothing["output"]) == []


def test_result_writer_writes_a_manifest_and_the_results_of_every_child_execution(clean_stack):
    settings = clean_stack
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="in/orders.json", Body=json.dumps([{"n": 3}, {"n": 4}]).encode())
    arn = machine(settings, "with-writer", _map(
        {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Bucket": BUCKET, "Key": "in/orders.json"}},
        {"Square": {"Type": "Pass", "Parameters": {"square.$": "States.MathAdd($.n, 0)"}, "End": True}},
        ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "results"}}))
    execution = run(settings, arn)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    map_run_arn = output["MapRunArn"]
    manifest_key = output["ResultWriterDetails"]["Key"]
    assert output["ResultWriterDetails"]["Bucket"] == BUCKET
    assert manifest_key == f"results/{map_run_arn.rsplit(':', 1)[1]}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["DestinationBucket"] == BUCKET and manifest["MapRunArn"] == map_run_arn
    assert manifest["ResultFiles"]["FAILED"] == [] and manifest["ResultFiles"]["PENDING"] == []
    succeeded_file, = manifest["ResultFiles"]["SUCCEEDED"]
    body = s3.get_object(Bucket=BUCKET, Key=succeeded_file["Key"])["Body"].read()
    assert succeeded_file["Key"] == manifest_key.replace("manifest.json", "SUCCEEDED_0.json") and succeeded_file["Size"] == len(body)
    children = json.loads(body)
    assert [json.loads(child["Input"]) for child in children] == [{"n": 3}, {"n": 4}]
    assert [json.loads(child["Output"]) for child in children] == [{"square": 3}, {"square": 4}]
    assert all(child["Status"] == "SUCCEEDED" and child["ExecutionArn"].startswith(arn.replace(":stateMachine:", ":execution:") + "/")
               and child["StateMachineArn"].startswith(arn + "/") for child in children)
