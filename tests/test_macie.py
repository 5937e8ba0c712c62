"""Macie's sensitive data discovery and Glue's Detect PII transform: the identifiers table (Luhn, IBAN check digits,
SSN rules, keyword proximity), what a job finds in CSV, JSON, JSON Lines, Parquet, gzip and text objects and where,
custom data identifiers, the selectors, the refusal before EnableMacie, findings kept over a restart, and
EntityDetector detecting and masking in a Glue job."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time

import pyarrow
import pyarrow.parquet
import pytest
from botocore.exceptions import ClientError

from dealab.engines.macie.identifiers import GLUE_ENTITY_TYPES, MACIE_MANAGED, custom_detector, glue_detectors, iban, luhn
from dealab.engines.macie.scan import scan
from dealab.stack import control
from tests.conftest import client
from tests.gluekit import create_job, log_lines, run_job, upload_script
from tests.test_lambda import queue_arn, receive
from tests.test_secrets_rotation import advance

CARD = MACIE_MANAGED["CREDIT_CARD_NUMBER"]
CARD_NO_KEYWORD = MACIE_MANAGED["CREDIT_CARD_NUMBER_(NO_KEYWORD)"]
SSN = MACIE_MANAGED["USA_SOCIAL_SECURITY_NUMBER"]
VALID_CARD = "4539 1488 0343 6467"  # Luhn-valid Visa
ACCOUNT = "123456789012"


# ---------------------------------------------------------------- the identifiers table

def test_cards_need_luhn_an_issuer_prefix_and_split_on_keyword_proximity():
    assert luhn("4539148803436467") and not luhn("4539148803436468")
    assert CARD.find(f"visa card {VALID_CARD}") == [(10, 29)]
    assert CARD.find("visa card 4539 1488 0343 6468") == []  # one digit off: fails Luhn
    assert CARD.find("visa card 9539 1488 0343 6465") == []  # Luhn-valid, no issuer starts with 9
    assert CARD.find("visa card 4111111111111111") == []  # a documented test number Macie never reports
    # a keyword within 30 characters: CREDIT_CARD_NUMBER; farther or none: CREDIT_CARD_NUMBER_(NO_KEYWORD)
    far = "card" + " " * 31 + VALID_CARD
    assert (CARD.find(far), CARD_NO_KEYWORD.find(far)) == ([], [(35, 54)])
    near = "card" + " " * 30 + VALID_CARD
    assert (CARD.find(near), CARD_NO_KEYWORD.find(near)) == ([(34, 53)], [])
    assert CARD.find(VALID_CARD, field_name="card_number") == [(0, 19)]  # a keyword in the column name counts


def test_ibans_are_checked_with_mod_97_and_the_country_length():
    assert iban("GB29NWBK60161331926819") and iban("GB29 NWBK 6016 1331 9268 19") and iban("DE89-3704-0044-0532-0130-00")
    assert not iban("GB28NWBK60161331926819")  # wrong check digits
    assert not iban("GB29NWBK6016133192681")  # one character short for the UK
    uk = MACIE_MANAGED["UK_BANK_ACCOUNT_NUMBER"]
    assert uk.find("pay GB29 NWBK 6016 1331 9268 19 today") == [(4, 31)]  # no keyword needed
    assert uk.find("pay GB28 NWBK 6016 1331 9268 19") == [] and MACIE_MANAGED["GERMANY_BANK_ACCOUNT_NUMBER"].find("GB29NWBK60161331926819") == []


def test_ssns_follow_the_issuing_rules_and_need_a_keyword():
    assert SSN.find("ssn: 123-45-6789") == [(5, 16)]
    assert SSN.find("ref: 123-45-6789") == []  # no keyword
    assert [SSN.find(f"ssn {number}") for number in ("666-45-6789", "000-45-6789", "923-45-6789", "123-00-6789", "123-45-0000")] == [[]] * 5
    assert SSN.find("123456789", field_name="customer_ssn") == [(0, 9)]


def test_custom_identifiers_take_keywords_before_the_match_and_ignore_words():
    employee = custom_detector({"regex": r"EMP-\d{6}", "keywords": ["employee"], "maximumMatchDistance": 20, "ignoreWords": ["EMP-000000"]})
    assert employee.find("employee id EMP-123456") == [(12, 22)]
    assert employee.find("EMP-123456 employee") == []  # the keyword must precede
    assert employee.find("employee" + " " * 12 + "EMP-123456") == []  # 22 characters from the keyword's end to the match's end
    assert employee.find("employee EMP-000000") == []


def test_glue_and_macie_names_come_from_one_table():
    assert {"CREDIT_CARD", "USA_SSN", "EMAIL", "PHONE_NUMBER", "BANK_ACCOUNT"} <= set(GLUE_ENTITY_TYPES)
    assert "EMAIL" not in MACIE_MANAGED and not any("EMAIL" in key for key in MACIE_MANAGED)  # Macie has no email identifier
    assert glue_detectors(["USA_SSN"]) == [SSN]
    with pytest.raises(ValueError, match="unknown entity types"):
        glue_detectors(["PASSPORT"])


def test_scheduled_runs_fall_at_the_start_of_their_day():
    import datetime

    from dealab.engines.macie.schedule import FrequencyError, check, next_run

    wednesday_noon = datetime.datetime(2026, 12, 2, 12, 0)
    assert next_run({"dailySchedule": {}}, wednesday_noon) == datetime.datetime(2026, 12, 3)
    assert next_run({"weeklySchedule": {"dayOfWeek": "WEDNESDAY"}}, wednesday_noon) == datetime.datetime(2026, 12, 9)
    assert next_run({"weeklySchedule": {"dayOfWeek": "FRIDAY"}}, wednesday_noon) == datetime.datetime(2026, 12, 4)
    assert next_run({"monthlySchedule": {"dayOfMonth": 31}}, datetime.datetime(2027, 1, 31)) == datetime.datetime(2027, 2, 28)
    assert next_run({"monthlySchedule": {"dayOfMonth": 1}}, datetime.datetime(2026, 12, 31, 23)) == datetime.datetime(2027, 1, 1)
    with pytest.raises(FrequencyError):
        check({"monthlySchedule": {"dayOfMonth": 32}})


def test_scan_reports_occurrences_where_each_format_puts_them():
    detectors = [CARD, SSN]
    text = scan("notes.txt", f"hello\nmy card is {VALID_CARD}\n".encode(), detectors)
    assert text.detections["CREDIT_CARD_NUMBER"].occurrences == {"lineRanges": [{"start": 2, "end": 2, "startColumn": 12}]}
    table = scan("people.csv.gz", gzip.compress(b"name,ssn\nana,123-45-6789\nbo,n/a\ncy,234-56-7890\n"), detectors)
    assert table.mime_type == "text/csv"
    assert table.detections["USA_SOCIAL_SECURITY_NUMBER"].occurrences["cells"] == [
        {"row": 2, "column": 2, "columnName": "ssn", "cellReference": None}, {"row": 4, "column": 2, "columnName": "ssn", "cellReference": None}]
    records = scan("people.jsonl", b'{"id": 1}\n{"id": 2, "payment": {"card": ["x", "' + VALID_CARD.encode() + b'"]}}\n', detectors)
    assert records.detections["CREDIT_CARD_NUMBER"].occurrences == {"records": [{"recordIndex": 1, "jsonPath": "$.payment.card[1]"}]}
    buffer = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table({"ssn": ["n/a", "123-45-6789"]}), buffer)
    parquet = scan("people.parquet", buffer.getvalue(), detectors)
    assert parquet.detections["USA_SOCIAL_SECURITY_NUMBER"].occurrences == {"records": [{"recordIndex": 1, "jsonPath": "$.ssn"}]}


# ---------------------------------------------------------------- the API, end to end

BUCKET = "macie-pii"
PEOPLE_CSV = f"name,ssn,card_number,contact\nana,123-45-6789,{VALID_CARD},ana@example.com\nbo,234-56-7890,n/a,bo@example.com\n"
ORDERS_JSON = {"orders": [{"id": 1, "payment": {"iban": "GB29 NWBK 6016 1331 9268 19"}}, {"id": 2, "payment": {"iban": "GB28NWBK60161331926819"}}]}
NOTES_TXT = "meeting notes\nnothing sensitive here\nphone: (206) 555-0100\n"
SECRET = "Zq7wB2xR9/kLmN4pQs8TuV1yXc3dEf5gHi6jKo0A"


def _seed(s3) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="hr/people.csv", Body=PEOPLE_CSV.encode())
    s3.put_object(Bucket=BUCKET, Key="sales/orders.json", Body=json.dumps(ORDERS_JSON).encode())
    s3.put_object(Bucket=BUCKET, Key="notes/notes.txt", Body=NOTES_TXT.encode())
    s3.put_object(Bucket=BUCKET, Key="ops/deploy.log.gz", Body=gzip.compress(f"aws_secret_access_key={SECRET}\n".encode()))
    s3.put_object(Bucket=BUCKET, Key="clean/readme.txt", Body=b"nothing to see\n")


def _definition(**scoping) -> dict:
    return {"bucketDefinitions": [{"accountId": ACCOUNT, "buckets": [BUCKET]}], **({"scoping": scoping} if scoping else {})}


def _finished(macie, job_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = macie.describe_classification_job(jobId=job_id)
        if job["jobStatus"] != "RUNNING":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still RUNNING after {timeout}s")


def _by_key(macie, **criteria) -> dict[str, dict]:
    ids = macie.list_findings(**criteria)["findingIds"]
    found = macie.get_findings(findingIds=ids)["findings"] if ids else []
    return {finding["resourcesAffected"]["s3Object"]["key"]: finding for finding in found}


def _detections(finding: dict) -> dict[str, tuple[int, dict]]:
    result = finding["classificationDetails"]["result"]
    found = {d["type"]: (d["count"], d["occurrences"]) for data in result["sensitiveData"] for d in data["detections"]}
    found.update({d["name"]: (d["count"], d["occurrences"]) for d in result["customDataIdentifiers"].get("detections", [])})
    return found


def test_a_job_finds_exactly_the_seeded_identifiers_and_where_they_are(clean_stack):
    macie, s3, sqs, events = (client(clean_stack, name) for name in ("macie2", "s3", "sqs", "events"))
    with pytest.raises(ClientError) as refused:
        macie.list_classification_jobs()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException" and "not enabled" in str(refused.value)
    macie.enable_macie()
    assert macie.get_macie_session()["status"] == "ENABLED"
    _seed(s3)
    queue = sqs.create_queue(QueueName="macie-findings")["QueueUrl"]
    events.put_rule(Name="macie-findings", EventPattern=json.dumps({"source": ["aws.macie"], "detail-type": ["Macie Finding"]}))
    events.put_targets(Rule="macie-findings", Targets=[{"Id": "q", "Arn": queue_arn(sqs, queue)}])
    emails = macie.create_custom_data_identifier(name="email addresses", regex=r"[a-z]+@example\.com", keywords=["contact"],
                                                 maximumMatchDistance=30)["customDataIdentifierId"]
    assert macie.test_custom_data_identifier(regex=r"[a-z]+@example\.com", keywords=["contact"], sampleText="contact: a@example.com, b@example.com")["matchCount"] == 2

    job = macie.create_classification_job(name="all-pii", jobType="ONE_TIME", s3JobDefinition=_definition(),
                                          managedDataIdentifierSelector="ALL", customDataIdentifierIds=[emails])
    described = _finished(macie, job["jobId"])
    assert (described["jobStatus"], described["statistics"]["approximateNumberOfObjectsToProcess"]) == ("COMPLETE", 5)

    findings = _by_key(macie)
    assert set(findings) == {"hr/people.csv", "sales/orders.json", "notes/notes.txt", "ops/deploy.log.gz"}  # not the clean one
    people = findings["hr/people.csv"]
    assert people["type"] == "SensitiveData:S3Object/Multiple" and people["severity"] == {"description": "High", "score": 3}
    assert _detections(people) == {
        "USA_SOCIAL_SECURITY_NUMBER": (2, {"cells": [{"row": 2, "column": 2, "columnName": "ssn"}, {"row": 3, "column": 2, "columnName": "ssn"}]}),
        "CREDIT_CARD_NUMBER": (1, {"cells": [{"row": 2, "column": 3, "columnName": "card_number"}]}),
        "email addresses": (2, {"cells": [{"row": 2, "column": 4, "columnName": "contact"}, {"row": 3, "column": 4, "columnName": "contact"}]}),
    }
    orders = findings["sales/orders.json"]
    assert orders["type"] == "SensitiveData:S3Object/Financial"
    assert _detections(orders) == {"UK_BANK_ACCOUNT_NUMBER": (1, {"records": [{"recordIndex": 0, "jsonPath": "$.orders[0].payment.iban"}]})}
    assert _detections(findings["notes/notes.txt"]) == {"PHONE_NUMBER": (1, {"lineRanges": [{"start": 3, "end": 3, "startColumn": 8}]})}
    assert findings["notes/notes.txt"]["type"] == "SensitiveData:S3Object/Personal"
    secret = findings["ops/deploy.log.gz"]
    assert (secret["type"], secret["severity"]["description"]) == ("SensitiveData:S3Object/Credentials", "High")
    assert secret["classificationDetails"]["jobId"] == job["jobId"] and secret["classificationDetails"]["jobArn"] == job["jobArn"]
    assert secret["resourcesAffected"]["s3Bucket"]["name"] == BUCKET

    # ListFindings criteria and sort, statistics
    assert set(_by_key(macie, findingCriteria={"criterion": {"type": {"eq": ["SensitiveData:S3Object/Personal"]}}})) == {"notes/notes.txt"}
    assert len(_by_key(macie, findingCriteria={"criterion": {"classificationDetails.jobId": {"eq": [job["jobId"]]},
                                                             "resourcesAffected.s3Bucket.name": {"eq": [BUCKET]}}})) == 4
    assert _by_key(macie, findingCriteria={"criterion": {"resourcesAffected.s3Bucket.name": {"eq": ["elsewhere"]}}}) == {}
    by_severity = macie.list_findings(sortCriteria={"attributeName": "severity.score", "orderBy": "ASC"})["findingIds"]
    assert macie.get_findings(findingIds=by_severity[:1])["findings"][0]["resourcesAffected"]["s3Object"]["key"] == "notes/notes.txt"
    counts = macie.get_finding_statistics(groupBy="type")["countsByGroup"]
    assert {c["groupKey"]: c["count"] for c in counts} == {"SensitiveData:S3Object/Multiple": 1, "SensitiveData:S3Object/Financial": 1,
                                                          "SensitiveData:S3Object/Personal": 1, "SensitiveData:S3Object/Credentials": 1}
    # each finding went to EventBridge
    seen = []
    deadline = time.monotonic() + 15
    while len(seen) < 4 and time.monotonic() < deadline:
        for message in receive(sqs, queue, timeout=2):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(event["detail"]["resourcesAffected"]["s3Object"]["key"] for event in seen) == sorted(findings)
    assert {(event["source"], event["detail-type"]) for event in seen} == {("aws.macie", "Macie Finding")}


def test_selectors_scoping_and_refusals(clean_stack):
    macie, s3 = client(clean_stack, "macie2"), client(clean_stack, "s3")
    macie.enable_macie()
    _seed(s3)
    cards_excluded = macie.create_classification_job(
        name="no-cards", jobType="ONE_TIME", s3JobDefinition=_definition(includes={"and": [{"simpleScopeTerm": {
            "comparator": "STARTS_WITH", "key": "OBJECT_KEY", "values": ["hr/"]}}]}),
        managedDataIdentifierSelector="EXCLUDE", managedDataIdentifierIds=["CREDIT_CARD_NUMBER", "CREDIT_CARD_NUMBER_(NO_KEYWORD)"])
    _finished(macie, cards_excluded["jobId"])
    [people] = _by_key(macie, findingCriteria={"criterion": {"classificationDetails.jobId": {"eq": [cards_excluded["jobId"]]}}}).values()
    assert set(_detections(people)) == {"USA_SOCIAL_SECURITY_NUMBER"} and people["type"] == "SensitiveData:S3Object/Personal"

    employee = macie.create_custom_data_identifier(name="notes-word", regex=r"nothing \w+ here",
                                                   severityLevels=[{"occurrencesThreshold": 1, "severity": "LOW"}])["customDataIdentifierId"]
    custom_only = macie.create_classification_job(name="custom-only", jobType="ONE_TIME", s3JobDefinition=_definition(),
                                                  managedDataIdentifierSelector="NONE", customDataIdentifierIds=[employee])
    _finished(macie, custom_only["jobId"])
    found = _by_key(macie, findingCriteria={"criterion": {"classificationDetails.jobId": {"eq": [custom_only["jobId"]]}}})
    assert set(found) == {"notes/notes.txt"}
    assert (found["notes/notes.txt"]["type"], found["notes/notes.txt"]["severity"]["description"]) == ("SensitiveData:S3Object/CustomIdentifier", "Low")
    [listed] = macie.list_classification_jobs(filterCriteria={"includes": [{"comparator": "EQ", "key": "name", "values": ["custom-only"]}]})["items"]
    assert (listed["jobId"], listed["jobStatus"], listed["bucketDefinitions"][0]["buckets"]) == (custom_only["jobId"], "COMPLETE", [BUCKET])
    newest_first = macie.list_classification_jobs(sortCriteria={"attributeName": "name", "orderBy": "DESC"})["items"]
    assert [job["name"] for job in newest_first] == ["no-cards", "custom-only"]

    def code(call, **params) -> str:
        with pytest.raises(ClientError) as error:
            call(**params)
        return error.value.response["Error"]["Code"]

    assert code(macie.create_classification_job, name="n", jobType="ONE_TIME", s3JobDefinition=_definition(),
                managedDataIdentifierSelector="NONE") == "ValidationException"  # nothing to detect with
    assert code(macie.create_classification_job, name="s", jobType="SCHEDULED", s3JobDefinition=_definition(),
                scheduleFrequency={"weeklySchedule": {"dayOfWeek": "FUNDAY"}}) == "ValidationException"
    assert code(macie.create_classification_job, name="u", jobType="ONE_TIME", s3JobDefinition=_definition(),
                managedDataIdentifierSelector="INCLUDE", managedDataIdentifierIds=["EMAIL_ADDRESS"]) == "ValidationException"
    assert code(macie.update_classification_job, jobId=custom_only["jobId"], jobStatus="CANCELLED") == "ValidationException"
    assert code(macie.describe_classification_job, jobId="0" * 32) == "ResourceNotFoundException"
    assert code(macie.create_custom_data_identifier, name="bad", regex="(unclosed") == "ValidationException"
    assert code(macie.enable_macie) == "ConflictException"
    assert {item["id"] for item in macie.list_managed_data_identifiers()["items"]} >= {"CREDIT_CARD_NUMBER", "USA_SOCIAL_SECURITY_NUMBER", "AWS_CREDENTIALS"}
    macie.delete_custom_data_identifier(id=employee)
    assert macie.batch_get_custom_data_identifiers(ids=[employee])["customDataIdentifiers"][0]["deleted"] is True
    assert code(macie.get_custom_data_identifier, id=employee) == "ResourceNotFoundException"
    macie.disable_macie()
    assert code(macie.list_findings) == "AccessDeniedException"


def test_a_scheduled_job_runs_on_the_lab_clock_over_what_changed(clean_stack):
    macie, s3 = client(clean_stack, "macie2"), client(clean_stack, "s3")
    macie.enable_macie()
    _seed(s3)
    advance(clean_stack, "1h")  # S3 keeps whole seconds: the seeded objects are older than the first run's second
    job = macie.create_classification_job(name="nightly", jobType="SCHEDULED", initialRun=True, s3JobDefinition=_definition(),
                                          scheduleFrequency={"dailySchedule": {}}, managedDataIdentifierSelector="ALL")
    first = _finished(macie, job["jobId"])
    assert (first["jobStatus"], first["statistics"]["numberOfRuns"]) == ("IDLE", 1)
    assert len(macie.list_findings()["findingIds"]) == 4
    s3.put_object(Bucket=BUCKET, Key="hr/new-hire.csv", Body=b"name,ssn\ncy,345-67-8901\n")
    advance(clean_stack, "1d")  # past midnight UTC: the daily run reads only what changed since the first run began
    second = _finished(macie, job["jobId"])
    assert (second["jobStatus"], second["statistics"]["numberOfRuns"]) == ("IDLE", 2)
    assert second["statistics"]["approximateNumberOfObjectsToProcess"] == 1
    keys = sorted(f["resourcesAffected"]["s3Object"]["key"] for f in macie.get_findings(findingIds=macie.list_findings()["findingIds"])["findings"])
    assert keys == ["hr/new-hire.csv", "hr/people.csv", "notes/notes.txt", "ops/deploy.log.gz", "sales/orders.json"]
    macie.update_classification_job(jobId=job["jobId"], jobStatus="USER_PAUSED")
    advance(clean_stack, "1d")
    paused = macie.describe_classification_job(jobId=job["jobId"])
    assert (paused["jobStatus"], paused["statistics"]["numberOfRuns"]) == ("USER_PAUSED", 2) and paused["userPausedDetails"]["jobPausedAt"]
    macie.update_classification_job(jobId=job["jobId"], jobStatus="RUNNING")  # resumed: it waits for its next day
    assert macie.describe_classification_job(jobId=job["jobId"])["jobStatus"] == "IDLE"
    advance(clean_stack, "1d")
    assert _finished(macie, job["jobId"])["statistics"]["numberOfRuns"] == 3
    macie.update_classification_job(jobId=job["jobId"], jobStatus="CANCELLED")
    advance(clean_stack, "1d")
    assert macie.describe_classification_job(jobId=job["jobId"])["statistics"]["numberOfRuns"] == 3  # a cancelled job runs no more


def test_findings_survive_a_restart_and_an_interrupted_job_runs_again(private_stack):
    macie, s3 = client(private_stack, "macie2"), client(private_stack, "s3")
    macie.enable_macie()
    _seed(s3)
    kept = macie.create_classification_job(name="finished", jobType="ONE_TIME", managedDataIdentifierSelector="ALL",
                                           s3JobDefinition=_definition(includes={"and": [{"simpleScopeTerm": {
                                               "comparator": "EQ", "key": "OBJECT_EXTENSION", "values": ["csv"]}}]}))
    interrupted = macie.create_classification_job(name="interrupted", jobType="ONE_TIME", s3JobDefinition=_definition(),
                                                  managedDataIdentifierSelector="ALL")
    for job in (kept, interrupted):
        _finished(macie, job["jobId"])
    of_job = lambda job: {"criterion": {"classificationDetails.jobId": {"eq": [job["jobId"]]}}}  # noqa: E731
    kept_ids = macie.list_findings(findingCriteria=of_job(kept))["findingIds"]
    interrupted_keys = set(_by_key(macie, findingCriteria=of_job(interrupted)))
    assert len(kept_ids) == 1 and len(interrupted_keys) == 4

    # the stack stops while the second job runs (as if): at the next start it runs again, each object's finding once
    control.down(private_stack)
    folder = private_stack.state_dir / "macie"
    jobs = json.loads((folder / "jobs.json").read_text())
    jobs[interrupted["jobId"]]["jobStatus"] = "RUNNING"
    (folder / "jobs.json").write_text(json.dumps(jobs))
    findings = json.loads((folder / "findings.json").read_text())
    partial = {k: f for k, f in findings.items() if f["classificationDetails"]["jobId"] == kept["jobId"] or "people" in k}
    (folder / "findings.json").write_text(json.dumps(partial))
    control.up(private_stack)
    macie = client(private_stack, "macie2")
    assert macie.get_macie_session()["status"] == "ENABLED"
    assert _finished(macie, interrupted["jobId"])["jobStatus"] == "COMPLETE"
    assert macie.list_findings(findingCriteria=of_job(kept))["findingIds"] == kept_ids  # kept as they were
    assert len(macie.list_findings(findingCriteria=of_job(interrupted))["findingIds"]) == 4
    assert set(_by_key(macie, findingCriteria=of_job(interrupted))) == interrupted_keys


# ---------------------------------------------------------------- Glue's Detect PII transform

DETECT_PII_SCRIPT = '''
import hashlib, json, sys
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsglueml.transforms import EntityDetector
from pyspark.context import SparkContext
from pyspark.sql.functions import lit, udf
from pyspark.sql.types import StringType

args = getResolvedOptions(sys.argv, ["JOB_NAME"])
glueContext = GlueContext(SparkContext.getOrCreate())
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
people = DynamicFrame.fromDF(glueContext.spark_session.createDataFrame(
    [("ana", "write to ana@example.com", "123-45-6789", "4539 1488 0343 6467"),
     ("bo", "no email", "000-12-3456", "4539 1488 0343 6468")], ["name", "note", "ssn", "card"]), glueContext, "people")

# Script generated for node Detect Sensitive Data (Glue Studio: find in each cell, replace with a string)
entity_detector = EntityDetector()
detected_df = entity_detector.detect(people, ["EMAIL", "USA_SSN", "CREDIT_CARD"], "DetectedEntities")

def replace_cell(original_cell_value, sorted_reverse_start_end_tuples):
    if sorted_reverse_start_end_tuples:
        for entity in sorted_reverse_start_end_tuples:
            to_mask_value = original_cell_value[entity[0] : entity[1]]
            original_cell_value = original_cell_value.replace(to_mask_value, "XXXXXXX")
    return original_cell_value

def row_pii(column_name, original_cell_value, detected_entities):
    if column_name in detected_entities.keys():
        entities = detected_entities[column_name]
        start_end_tuples = map(lambda entity: (entity["start"], entity["end"]), entities)
        sorted_reverse_start_end_tuples = sorted(start_end_tuples, key=lambda start_end: start_end[1], reverse=True)
        return replace_cell(original_cell_value, sorted_reverse_start_end_tuples)
    return original_cell_value

row_pii_udf = udf(row_pii, StringType())
masked = detected_df.toDF()
for key in people.toDF().columns:
    masked = masked.withColumn(key, row_pii_udf(lit(key), key, "DetectedEntities"))
print("DETECTED " + json.dumps([{c: [e.asDict() for e in es] for c, es in r["DetectedEntities"].items()} for r in detected_df.toDF().orderBy("name").collect()]))
print("MASKED " + json.dumps([r.asDict() for r in masked.drop("DetectedEntities").orderBy("name").collect()]))

# Script generated for node Detect Sensitive Data (Glue Studio: find columns, hash them)
classified_map = entity_detector.classify_columns(people, ["EMAIL", "USA_SSN", "CREDIT_CARD"], 1.0, 0.5)
pii_column_hash_udf = udf(lambda value: hashlib.sha256(str(value).encode()).hexdigest(), StringType())
hashed = people.toDF()
for key in classified_map.keys():
    hashed = hashed.withColumn(key, pii_column_hash_udf(key))
print("CLASSIFIED " + json.dumps(classified_map, sort_keys=True))
print("HASHED " + json.dumps([r.asDict() for r in hashed.orderBy("name").collect()]))
job.commit()
'''


@pytest.mark.slow
def test_entity_detector_detects_masks_and_hashes_in_a_glue_job(clean_stack):
    client(clean_stack, "s3").create_bucket(Bucket="detect-pii")
    create_job(clean_stack, "detect-pii", upload_script(clean_stack, "detect-pii", "scripts/pii.py", DETECT_PII_SCRIPT))
    run = run_job(clean_stack, "detect-pii")
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    printed = {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"])
               if line.split(" ", 1)[0] in ("DETECTED", "MASKED", "CLASSIFIED", "HASHED")}
    assert printed["DETECTED"] == [
        {"note": [{"entityType": "EMAIL", "start": 9, "end": 24}], "ssn": [{"entityType": "USA_SSN", "start": 0, "end": 11}],
         "card": [{"entityType": "CREDIT_CARD", "start": 0, "end": 19}]},
        {},  # an SSN with area 000 and a card failing Luhn are not entities
    ]
    assert printed["MASKED"] == [
        {"name": "ana", "note": "write to XXXXXXX", "ssn": "XXXXXXX", "card": "XXXXXXX"},
        {"name": "bo", "note": "no email", "ssn": "000-12-3456", "card": "4539 1488 0343 6468"},
    ]
    # one row of two has each entity: at a 0.5 threshold every column but name is PII
    assert printed["CLASSIFIED"] == {"card": ["CREDIT_CARD"], "note": ["EMAIL"], "ssn": ["USA_SSN"]}
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert printed["HASHED"][0] == {"name": "ana", "note": sha("write to ana@example.com"), "ssn": sha("123-45-6789"), "card": sha("4539 1488 0343 6467")}


def test_an_iam_principal_is_authorized_by_its_policy(clean_stack):
    macie, iam = client(clean_stack, "macie2"), client(clean_stack, "iam")
    macie.enable_macie()
    client(clean_stack, "s3").create_bucket(Bucket=BUCKET)
    job = macie.create_classification_job(name="empty", jobType="ONE_TIME", s3JobDefinition=_definition(), managedDataIdentifierSelector="ALL")
    iam.create_user(UserName="analyst")
    iam.put_user_policy(UserName="analyst", PolicyName="one-job", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "macie2:DescribeClassificationJob", "Resource": job["jobArn"]}]}))
    keys = iam.create_access_key(UserName="analyst")["AccessKey"]
    import boto3
    analyst = boto3.client("macie2", endpoint_url=clean_stack.endpoint_url, region_name=clean_stack.region,
                           aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])
    assert analyst.describe_classification_job(jobId=job["jobId"])["name"] == "empty"
    with pytest.raises(ClientError) as denied:
        analyst.list_findings()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException" and "macie2:ListFindings" in str(denied.value)
