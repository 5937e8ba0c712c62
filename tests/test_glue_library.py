"""Our awsglue library inside a real job run: each transform's result, and getSink keeping the catalog current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import client
from tests.gluekit import create_job, run_job, upload_script

pytestmark = pytest.mark.slow

BUCKET = "glue-library-tour"
PEOPLE = [
    {"id": 1, "name": "ana", "age": "34", "address": {"city": "Lisbon", "zip": "1000"}, "tags": ["a", "b"]},
    {"id": 2, "name": "bo", "age": "29", "address": {"city": "Oslo", "zip": "0150"}, "tags": ["c"]},
    {"id": 3, "name": "cy", "age": "n/a", "address": {"city": "Lisbon", "zip": "1100"}, "tags": []},
]


def test_every_transform_of_the_tour_script_gives_aws_glue_results(clean_stack):
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="people/p.json", Body="".join(json.dumps(p) + "\n" for p in PEOPLE).encode())
    s3.put_object(Bucket=BUCKET, Key="cities/c.csv", Body=b"city_name;country\nLisbon;PT\nOslo;NO\n")
    glue.create_database(DatabaseInput={"Name": "tour"})
    source = (Path(__file__).parent / "glue_scripts" / "library_tour.py").read_text()
    create_job(clean_stack, "tour", upload_script(clean_stack, BUCKET, "scripts/library_tour.py", source))

    run = run_job(clean_stack, "tour", {"--bucket": BUCKET})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="report.json")["Body"].read())
    assert report["apply_mapping"] == [
        {"person_id": 1, "name": "ana", "age": 34, "city": "Lisbon", "missing": None},
        {"person_id": 2, "name": "bo", "age": 29, "city": "Oslo", "missing": None},
        {"person_id": 3, "name": "cy", "age": None, "city": "Lisbon", "missing": None},
    ]
    assert report["resolve_choice"] == ["double"]
    assert report["drop_null_fields"] == ["age", "city", "name", "person_id"]
    assert report["filter"] == ["ana"]
    assert report["map"] == ["ANA", "BO", "CY"]
    assert report["join"] == [["ana", "PT"], ["bo", "NO"], ["cy", "PT"]]
    assert report["select_fields"] == ["name", "city"]
    assert report["drop_fields"] == ["person_id", "name", "city"]
    assert report["rename_field"] == ["person_id", "full_name", "age", "city", "missing"]
    assert report["relationalize"] == {
        "root": ["address.city", "address.zip", "age", "id", "name", "tags"],
        "root_tags": ["id", "index", "tags.val"],
    }
    assert report["relationalized_tags"] == ["a", "b", "c"]
    assert report["split_fields"] == {"names": ["name"], "rest": ["person_id", "age", "city", "missing"]}
    assert report["unnest"] == ["address.city", "address.zip", "age", "id", "name", "tags"]
    assert report["count"] == 3 and report["from_df"] == 1 and report["partitions"] == [3, 1]
    table = glue.get_table(DatabaseName="tour", Name="people")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["city"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/people_out/"
    assert sorted(p["Values"] for p in glue.get_partitions(DatabaseName="tour", TableName="people")["Partitions"]) == [["Lisbon"], ["Oslo"]]
    assert sorted(r["name"] for r in report["from_catalog"]) == ["ana", "cy"]
    assert all(r["city"] == "Lisbon" for r in report["from_catalog"])
    assert report["rows_after_catalog_write"] == 6  # write_dynamic_frame.from_catalog appended the 3 rows again
    assert report["left_after_purge"] == 0
