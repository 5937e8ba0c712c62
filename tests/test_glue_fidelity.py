"""The DynamicFrame core as AWS Glue ships it, through real job runs: from_catalog over a crawler-made CSV table
laid out like the documentation's medicare sample (a padded header, a column whose last records are text),
resolveChoice in all its forms, nested apply_mapping, joins of frames that share fields, error records, and the
Glue 3+ create_data_frame readers. One script run batches them (Spark is slow on a 2-core machine)."""

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
BUCKET = "glue-fidelity"
ROWS = 1100  # more than the crawler's 1,000-row sample: it types `provider id` bigint, as AWS's 2 MB prefix did
MEDICARE_HEADER = "DRG Definition,Provider Id,Provider Name,Provider Zip Code, Total Discharges ,Average Covered Charges\n"
BAD_ROWS = [  # the documentation's two erroneous records at the end of the file: text where the ids are numbers
    "948 - SIGNS & SYMPTOMS,MILE BLUFF MEDICAL CENTER,INC,53948,12,$11961.41\n",
    "948 - SIGNS & SYMPTOMS,AURORA ST LUKES,INC- ST JOSEPH,53210,14,$10514.28\n",
]


def _medicare_csv() -> str:
    lines = [f"039 - EXTRACRANIAL PROCEDURES,{10001 + i},HOSPITAL {i},{35000 + i},{10 + i % 50},${1000 + i}.50\n" for i in range(ROWS)]
    return MEDICARE_HEADER + "".join(lines + BAD_ROWS)


def _jsonl(records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


SCHEMA = """root
|-- drg definition: string
|-- provider id: choice
|    |-- long
|    |-- string
|-- provider name: string
|-- provider zip code: long
|-- total discharges: long
|-- average covered charges: string
"""


@pytest.fixture
def payments(clean_stack):
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    s3.create_bucket(Bucket=BUCKET)
    put = lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)  # noqa: E731
    put("medicare/Medicare_Hospital_Provider.csv", _medicare_csv())
    put("pipes/a.txt", "1|alpha|2.5\n2|NA|NA\n4|delta|1|extra\n")
    put("pipes/b.txt", "3|gamma|4\n5|eps\n")
    put("join/persons/p.json", _jsonl([
        {"id": "p1", "name": "Ada", "image": "a.png", "org": "o1"},
        {"id": "p2", "name": "Ben", "org": "o2"},
        {"id": "p3", "name": "Cy", "image": "c.png", "org": "o2"}]))
    put("join/orgs/o.json", _jsonl([
        {"org_id": "o1", "name": "Senate", "image": "s.png", "seats": 100},
        {"org_id": "o2", "name": "House", "image": "h.png", "seats": 435}]))
    put("events/e.json", _jsonl([{"id": 1}, "{not json", {"id": 2}, '{"id": 3,', {"id": 3}]))
    put("headerless/h.csv", "1,a,2.5\n2,b,3\n")
    glue.create_database(DatabaseInput={"Name": "payments"})
    glue.create_crawler(Name="medicare", Role=service_role(clean_stack, "crawler", "glue"), DatabaseName="payments",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/medicare/"}]})
    glue.start_crawler(Name="medicare")
    glue.create_table(DatabaseName="payments", TableInput={
        "Name": "pipes", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "csv"},
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "label", "Type": "string"}, {"Name": "score", "Type": "double"}],
            "Location": f"s3://{BUCKET}/pipes/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"field.delim": "|", "serialization.null.format": "NA"}}}})
    wait_for_crawler(clean_stack, "medicare")
    return s3, glue


def test_dynamic_frames_behave_as_the_aws_glue_documentation_shows(clean_stack, payments):
    s3, glue = payments
    table = glue.get_table(DatabaseName="payments", Name="medicare")["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]][1:2] == [("provider id", "bigint")]
    assert table["Parameters"].get("skip.header.line.count") == "1"
    create_job(clean_stack, "fidelity", upload_script(clean_stack, BUCKET, "scripts/fidelity_tour.py", (SCRIPTS / "fidelity_tour.py").read_text()))

    run = run_job(clean_stack, "fidelity", {"--bucket": BUCKET})

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="report.json")["Body"].read())
    # from_catalog: the catalog's names (header skipped, ` Total Discharges ` → `total discharges`), a choice
    assert report["schema"] == SCHEMA
    assert report["count"] == ROWS + 2
    assert report["todf_unresolved"] == "struct<long:bigint,string:string>"
    # cast: values that do not parse become null (data_cleaning_and_lambda.md)
    assert report["cast_schema"] == SCHEMA.replace("choice\n|    |-- long\n|    |-- string", "long")
    assert report["cast_nulls"] == [{"drg definition": "948 - SIGNS & SYMPTOMS", "provider name": "INC"},
                                    {"drg definition": "948 - SIGNS & SYMPTOMS", "provider name": "INC- ST JOSEPH"}]
    assert report["cast_sum"] == sum(10001 + i for i in range(ROWS))
    assert report["project_values"] == [{"provider id": "AURORA ST LUKES"}, {"provider id": "MILE BLUFF MEDICAL CENTER"}]
    assert report["project_type"] == "string"
    # make_cols: `provider id_long` in place, `provider id_string` after the last field, as resolve_choice.md prints
    assert report["make_cols_columns"] == ["drg definition", "provider id_long", "provider name", "provider zip code",
                                           "total discharges", "average covered charges", "provider id_string"]
    assert report["make_cols_strings"] == [{"provider id_long": None, "provider id_string": "AURORA ST LUKES"},
                                           {"provider id_long": None, "provider id_string": "MILE BLUFF MEDICAL CENTER"}]
    assert report["make_struct_schema"] == SCHEMA.replace("choice\n|    |-- long\n|    |-- string",
                                                          "struct\n|    |-- long: long\n|    |-- string: string")
    assert report["make_struct_type"] == "struct<long:bigint,string:string>"
    assert report["match_catalog_type"] == "bigint" and report["match_catalog_nulls"] == 2
    assert report["match_catalog_spec_type"] == "bigint"
    # apply_mapping nests dotted targets; backticks keep a literal dot
    assert report["nested_schema"] == """root
|-- drg: string
|-- provider: struct
|    |-- id: long
|    |-- name: string
|    |-- zip: long
|-- charges: struct
|    |-- covered: string
|-- total.discharges: int
"""
    assert report["nested_first"] == [{"drg": "039 - EXTRACRANIAL PROCEDURES", "provider": {"id": 10001, "name": "HOSPITAL 0", "zip": 35000},
                                       "charges": {"covered": "$1000.50"}, "total.discharges": 10}]
    # SerDe parameters: field.delim, serialization.null.format; columns by position (extra dropped, missing null)
    assert report["pipes_schema"] == "root\n|-- id: long\n|-- label: string\n|-- score: double\n"
    assert report["pipes_rows"] == [{"id": 1, "label": "alpha", "score": 2.5}, {"id": 2, "label": None, "score": None},
                                    {"id": 3, "label": "gamma", "score": 4.0}, {"id": 4, "label": "delta", "score": 1.0},
                                    {"id": 5, "label": "eps", "score": None}]
    # a join of frames that share name and image: one field each, frame2's value where it has one
    assert report["join_schema"] == ("root\n|-- id: string\n|-- image: string\n|-- name: string\n|-- org: string\n"
                                     "|-- org_id: string\n|-- seats: long\n")
    assert report["join_written"] == [{"id": "p1", "name": "Senate", "image": "s.png", "seats": 100},
                                      {"id": "p2", "name": "House", "image": "h.png", "seats": 435},
                                      {"id": "p3", "name": "House", "image": "h.png", "seats": 435}]
    # error records: JSON lines that do not parse
    assert report["events_count"] == 3
    assert report["events_errors"] == [2, 2]
    assert report["events_error_records"] == [
        {"msg": "Malformed record: it does not parse as JSON", "input": '{"id": 3,'},
        {"msg": "Malformed record: it does not parse as JSON", "input": "{not json"}]
    assert report["mapped_errors"] == [2, 0]
    assert report["threshold"] == "GlueErrorThresholdException: 2 error records in this stage exceed its stageThreshold of 1"
    # create_data_frame (Glue 3+): catalog names and types; CSV without a header is col0, col1, ...
    assert report["data_frame_catalog"] == ["drg definition:string", "provider id:bigint", "provider name:string",
                                            "provider zip code:bigint", "total discharges:bigint", "average covered charges:string"]
    assert report["data_frame_catalog_nulls"] == 2
    assert report["data_frame_csv"] == ["col0:bigint", "col1:string", "col2:double"]
    assert report["avro"].startswith("ValueError: format 'avro' needs Spark's Avro data source") and "\n" not in report["avro"]
    assert report["from_df_round_trip"] == ROWS + 2


LEGISLATORS = {
    # persons and organizations share `image` and `links` besides the join keys, as the real legislators data does
    "persons": [
        {"id": "p1", "name": "Ada Adams", "image": "https://img/ada.jpg", "links": [{"note": "home", "url": "https://ada"}],
         "identifiers": [{"scheme": "bioguide", "identifier": "A1"}], "other_names": [{"lang": "en", "name": "Ada"}]},
        {"id": "p2", "name": "Ben Brown", "identifiers": [{"scheme": "bioguide", "identifier": "B2"}], "other_names": [{"lang": "en", "name": "Ben"}]},
    ],
    "memberships": [
        {"person_id": "p1", "organization_id": "senate", "role": "member", "start_date": "2001-01-03"},
        {"person_id": "p2", "organization_id": "house", "role": "member", "start_date": "2003-01-03"},
    ],
    "organizations": [
        {"id": "senate", "name": "Senate", "classification": "upper house", "image": "https://img/senate.jpg",
         "links": [{"note": "site", "url": "https://senate"}], "seats": 100},
        {"id": "house", "name": "House", "classification": "lower house", "image": "https://img/house.jpg", "seats": 435},
    ],
}


def test_the_join_and_relationalize_example_writes_frames_that_share_fields(clean_stack):
    s3, glue = client(clean_stack, "s3"), client(clean_stack, "glue")
    for bucket in ("awsglue-datasets", "glue-sample-target", "glue-scripts"):
        s3.create_bucket(Bucket=bucket)
    for name, records in LEGISLATORS.items():
        s3.put_object(Bucket="awsglue-datasets", Key=f"examples/us-legislators/all/{name}.json", Body=_jsonl(records))
    glue.create_database(DatabaseInput={"Name": "legislators"})
    glue.create_crawler(Name="legislators", Role=service_role(clean_stack, "crawler", "glue"), DatabaseName="legislators",
                        Targets={"S3Targets": [{"Path": "s3://awsglue-datasets/examples/us-legislators/all"}]})
    glue.start_crawler(Name="legislators")
    wait_for_crawler(clean_stack, "legislators")
    create_job(clean_stack, "join-and-relationalize", upload_script(
        clean_stack, "glue-scripts", "join_and_relationalize.py", (SCRIPTS / "aws_docs_join_and_relationalize.py").read_text()))

    run = run_job(clean_stack, "join-and-relationalize")

    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    rows = []
    for item in s3.list_objects_v2(Bucket="glue-sample-target", Prefix="output-dir/legislator_history/")["Contents"]:
        if item["Key"].endswith(".parquet"):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket="glue-sample-target", Key=item["Key"])["Body"].read()))
            rows += table.to_pylist()
            names = table.schema.names
    # the fields of l_history in join_and_relationalize.md that this data has: each once
    assert sorted(names) == sorted(["role", "seats", "org_name", "links", "classification", "image", "other_names", "name",
                                    "organization_id", "identifiers", "id", "start_date"])
    by_person = {row["id"]: row for row in rows}
    assert by_person["p1"]["image"] == "https://img/ada.jpg" and by_person["p2"]["image"] == "https://img/house.jpg"
    assert by_person["p1"]["links"] == [{"note": "home", "url": "https://ada"}]
    assert by_person["p2"]["links"] is None and by_person["p2"]["org_name"] == "House"
