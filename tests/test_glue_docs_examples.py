"""Example scripts from the AWS Glue documentation run unchanged, on tables our crawler made from the
documentation's sample data layout (s3://awsglue-datasets/examples/us-legislators/all/*.json)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import client, service_role
from tests.gluekit import create_job, run_job, upload_script, wait_for_crawler

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "glue_scripts"
PERSONS = [
    {"id": "p1", "name": "Ada Adams", "gender": "female", "birth_date": "1950-02-01",
     "identifiers": [{"scheme": "bioguide", "identifier": "A1"}], "other_names": [{"lang": "en", "name": "Ada"}]},
    {"id": "p2", "name": "Ben Brown", "gender": "male", "birth_date": "1961-07-14",
     "identifiers": [{"scheme": "bioguide", "identifier": "B2"}], "other_names": []},
    {"id": "p3", "name": "Cy Chen", "gender": "male", "birth_date": "1970-11-30", "identifiers": [], "other_names": []},
]
MEMBERSHIPS = [
    {"person_id": "p1", "organization_id": "senate", "role": "member", "start_date": "2001-01-03"},
    {"person_id": "p2", "organization_id": "house", "role": "member", "start_date": "2003-01-03"},
    {"person_id": "p3", "organization_id": "house", "role": "member", "start_date": "2005-01-03"},
    {"person_id": "p1", "organization_id": "house", "role": "member", "start_date": "1995-01-03"},
]
ORGANIZATIONS = [
    {"id": "senate", "name": "Senate", "classification": "upper house", "identifiers": [{"scheme": "x", "identifier": "s"}],
     "other_names": [{"lang": "en", "name": "US Senate"}], "seats": 100},
    {"id": "house", "name": "House", "classification": "lower house", "identifiers": [], "other_names": [], "seats": 435},
]


@pytest.fixture
def legislators(clean_stack):
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    for bucket in ("awsglue-datasets", "glue-sample-target", "glue-scripts"):
        s3.create_bucket(Bucket=bucket)
    for name, rows in (("persons", PERSONS), ("memberships", MEMBERSHIPS), ("organizations", ORGANIZATIONS)):
        s3.put_object(Bucket="awsglue-datasets", Key=f"examples/us-legislators/all/{name}.json",
                      Body="".join(json.dumps(row) + "\n" for row in rows).encode())
    glue.create_database(DatabaseInput={"Name": "legislators"})
    glue.create_crawler(Name="legislators", Role=service_role(clean_stack, "crawler", "glue"), DatabaseName="legislators",
                        Targets={"S3Targets": [{"Path": "s3://awsglue-datasets/examples/us-legislators/all"}]})
    glue.start_crawler(Name="legislators")
    wait_for_crawler(clean_stack, "legislators")
    return s3, glue


def _parquet_rows(s3, bucket: str, prefix: str) -> list[dict]:
    rows = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        if item["Key"].endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())).to_pylist()
    return rows


def test_the_crawler_makes_one_table_per_file_of_the_legislators_folder(legislators):
    s3, glue = legislators
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="legislators")["TableList"]}
    assert sorted(tables) == ["memberships_json", "organizations_json", "persons_json"]
    assert tables["persons_json"]["StorageDescriptor"]["Location"] == "s3://awsglue-datasets/examples/us-legislators/all/persons.json"


def test_join_and_relationalize_example_runs_unchanged(clean_stack, legislators):
    s3, glue = legislators
    create_job(clean_stack, "join-and-relationalize", upload_script(
        clean_stack, "glue-scripts", "join_and_relationalize.py", (SCRIPTS / "aws_docs_join_and_relationalize.py").read_text()))

    run = run_job(clean_stack, "join-and-relationalize")

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    history = _parquet_rows(s3, "glue-sample-target", "output-dir/legislator_history/")
    assert sorted((row["name"], row["org_name"]) for row in history) == [
        ("Ada Adams", "House"), ("Ada Adams", "Senate"), ("Ben Brown", "House"), ("Cy Chen", "House")]
    assert "person_id" not in history[0] and "org_id" not in history[0]
    single = [i["Key"] for i in s3.list_objects_v2(Bucket="glue-sample-target", Prefix="output-dir/legislator_single/")["Contents"]]
    assert len([key for key in single if key.endswith(".parquet")]) == 1
    parts = {i["Key"].split("/")[2] for i in s3.list_objects_v2(Bucket="glue-sample-target", Prefix="output-dir/legislator_part/")["Contents"]}
    assert parts == {"org_name=House", "org_name=Senate"}


def test_generated_etl_script_runs_unchanged(clean_stack, legislators):
    s3, glue = legislators
    create_job(clean_stack, "generated", upload_script(
        clean_stack, "glue-scripts", "generated.py", (SCRIPTS / "aws_docs_generated_etl.py").read_text()))

    run = run_job(clean_stack, "generated")

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    rows = sorted(_parquet_rows(s3, "glue-sample-target", "output-dir/persons_parquet/"), key=lambda row: row["id"])
    assert [(row["id"], str(row["birth_date"])) for row in rows] == [("p1", "1950-02-01"), ("p2", "1961-07-14"), ("p3", "1970-11-30")]
