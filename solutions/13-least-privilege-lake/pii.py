"""Lab 13, part 5 — find the personal data Macie can see in the raw zone, then give analysts a masked copy of the
EU customers: the same rows, every identifier replaced by a token or its last digits."""

import csv
import hashlib
import io
import time

import boto3

from roles import ANALYST, DATABASE, LAKE, account

JOB = "dea-gov-pii-scan"
RAW_KEY = "raw/customers/customers.csv"
MASKED_PREFIX = "masked/customers/"
MASKED_TABLE = "customers_masked"
COLUMNS = ["customer_id", "full_name", "email", "phone", "ssn", "card_number", "iban", "region", "country", "segment",
           "lifetime_value"]

macie = boto3.client("macie2")
s3 = boto3.client("s3")
glue = boto3.client("glue")
lakeformation = boto3.client("lakeformation")


def scan_raw_zone() -> dict:
    try:
        macie.enable_macie()
    except macie.exceptions.ConflictException:
        pass  # already enabled
    job_id = macie.create_classification_job(
        name=JOB, jobType="ONE_TIME", managedDataIdentifierSelector="ALL", clientToken=f"{JOB}-{time.time_ns()}",
        s3JobDefinition={"bucketDefinitions": [{"accountId": account, "buckets": [LAKE]}],
                         "scoping": {"includes": {"and": [{"simpleScopeTerm": {"comparator": "STARTS_WITH", "key": "OBJECT_KEY", "values": ["raw/"]}}]}}},
    )["jobId"]
    while macie.describe_classification_job(jobId=job_id)["jobStatus"] == "RUNNING":
        time.sleep(0.5)
    ids = macie.list_findings(findingCriteria={"criterion": {"classificationDetails.jobId": {"eq": [job_id]}}})["findingIds"]
    detected = {}
    for finding in macie.get_findings(findingIds=ids)["findings"] if ids else []:
        for category in finding["classificationDetails"]["result"].get("sensitiveData", []):
            for detection in category["detections"]:
                detected[detection["type"]] = detected.get(detection["type"], 0) + detection["count"]
    return detected


def token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""


def last4(value: str, shown: str) -> str:
    digits = "".join(char for char in value if char.isalnum())
    return f"{shown}{digits[-4:]}" if digits else ""


def masked(row: dict) -> dict:
    return {**row, "full_name": token(row["full_name"]), "email": token(row["email"].lower()),
            "phone": last4(row["phone"], "***-***-"), "ssn": last4(row["ssn"], "***-**-"),
            "card_number": last4(row["card_number"], "**** **** **** "), "iban": last4(row["iban"], row["iban"][:2] + "** **** ")}


def masked_copy() -> int:
    rows = list(csv.DictReader(io.StringIO(s3.get_object(Bucket=LAKE, Key=RAW_KEY)["Body"].read().decode())))
    eu = [masked(row) for row in rows if row["region"] == "EU"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(eu)
    s3.put_object(Bucket=LAKE, Key=MASKED_PREFIX + "customers.csv", Body=out.getvalue().encode())
    table = {"Name": MASKED_TABLE, "TableType": "EXTERNAL_TABLE",
             "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
             "StorageDescriptor": {
                 "Columns": [{"Name": c, "Type": "double" if c == "lifetime_value" else "string"} for c in COLUMNS],
                 "Location": f"s3://{LAKE}/{MASKED_PREFIX}",
                 "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                 "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                 "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}}}
    try:
        glue.create_table(DatabaseName=DATABASE, TableInput=table)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=DATABASE, TableInput=table)
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": f"arn:aws:iam::{account}:role/{ANALYST}"},
                                    Resource={"Table": {"DatabaseName": DATABASE, "Name": MASKED_TABLE}}, Permissions=["SELECT", "DESCRIBE"])
    return len(eu)


if __name__ == "__main__":
    found = scan_raw_zone()
    print(f"Macie job {JOB} found in s3://{LAKE}/raw/: " + ", ".join(f"{kind} ×{count}" for kind, count in sorted(found.items())))
    print(f"{masked_copy()} EU customers masked into s3://{LAKE}/{MASKED_PREFIX} (table {DATABASE}.{MASKED_TABLE})")
