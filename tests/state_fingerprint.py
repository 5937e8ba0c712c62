"""What a learner's AWS state looks like through the APIs, as one comparable value: used to prove that a
restart (from a snapshot, from the journal alone, or from both) brings back exactly what was there."""

from __future__ import annotations

import hashlib

from dealab.config import Settings
from tests.conftest import client


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def s3_state(settings: Settings) -> dict:
    s3 = client(settings, "s3")
    state = {}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        versions = s3.list_object_versions(Bucket=name)
        objects = []
        for version in versions.get("Versions", []):
            body = s3.get_object(Bucket=name, Key=version["Key"], VersionId=version["VersionId"])
            objects.append((version["Key"], version["VersionId"], version["ETag"], str(version["LastModified"]),
                            _digest(body["Body"].read()), body.get("ContentType"), body.get("Metadata")))
        markers = [(m["Key"], m["VersionId"]) for m in versions.get("DeleteMarkers", [])]
        uploads = [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", [])]
        state[name] = {
            "created": str(bucket["CreationDate"]),
            "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
            "objects": sorted(objects),
            "markers": sorted(markers),
            "uploads": sorted(uploads),
        }
    return state


def dynamodb_state(settings: Settings) -> dict:
    ddb = client(settings, "dynamodb")
    state = {}
    for table in ddb.list_tables()["TableNames"]:
        described = ddb.describe_table(TableName=table)["Table"]
        items = ddb.scan(TableName=table)["Items"]
        state[table] = {
            "arn": described["TableArn"],
            "created": str(described["CreationDateTime"]),
            "items": sorted(repr(sorted(item.items())) for item in items),
        }
    return state


def kinesis_state(settings: Settings) -> dict:
    kinesis = client(settings, "kinesis")
    state = {}
    for stream in kinesis.list_streams()["StreamNames"]:
        records = []
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                records += [(shard["ShardId"], r["SequenceNumber"], r["PartitionKey"], _digest(r["Data"])) for r in page["Records"]]
                iterator = page.get("NextShardIterator") if page["Records"] else None
        state[stream] = records
    return state


def sqs_state(settings: Settings) -> dict:
    sqs = client(settings, "sqs")
    state = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        state[url] = {key: attributes[key] for key in ("QueueArn", "ApproximateNumberOfMessages", "CreatedTimestamp", "VisibilityTimeout") if key in attributes}
    return state


def kms_state(settings: Settings) -> dict:
    kms = client(settings, "kms")
    return {
        key["KeyId"]: str(kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CreationDate"])
        for key in kms.list_keys()["Keys"]
    }


def glue_state(settings: Settings) -> dict:
    glue = client(settings, "glue")
    state = {}
    for database in glue.get_databases()["DatabaseList"]:
        tables = glue.get_tables(DatabaseName=database["Name"])["TableList"]
        state[database["Name"]] = sorted((t["Name"], repr(t["StorageDescriptor"].get("Columns")), t["StorageDescriptor"].get("Location")) for t in tables)
    return state


def fingerprint(settings: Settings) -> dict:
    return {
        "s3": s3_state(settings),
        "dynamodb": dynamodb_state(settings),
        "kinesis": kinesis_state(settings),
        "sqs": sqs_state(settings),
        "kms": kms_state(settings),
        "glue": glue_state(settings),
    }
