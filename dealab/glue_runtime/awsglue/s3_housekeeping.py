"""GlueContext's purge and transition of S3 objects: purge_s3_path, purge_table, transition_s3_path, transition_table.

As in AWS Glue: objects older than `retentionPeriod` hours (168 unless given), by their LastModified against
the lab clock (what the stack stamps objects with), are deleted or copied onto themselves in another storage
class; objects whose storage class is in `excludeStorageClasses` are left alone; `manifestFilePath` gets a
Success.csv and a Failed.csv listing the objects done and not done. For a table, `partitionPredicate` picks
the partitions, and a partition whose objects are all purged is deleted from the catalog.
"""

from __future__ import annotations

import datetime
import io

from awsglue import catalog, run_context, s3_objects

DEFAULT_RETENTION_HOURS = 168
# The storage classes S3 accepts in CopyObject (GLACIER and DEEP_ARCHIVE objects cannot be read until restored).
STORAGE_CLASSES = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                             "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"})


def lab_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=run_context.current.lab_time_offset_seconds)


def due_objects(s3_path: str, options: dict) -> list[dict]:
    """The objects under `s3_path` (list_objects_v2 entries) older than the retention and not of an excluded class."""
    cutoff = lab_now() - datetime.timedelta(hours=float(options.get("retentionPeriod", DEFAULT_RETENTION_HOURS)))
    excluded = set(options.get("excludeStorageClasses") or ())
    bucket, prefix = s3_objects.split_uri(s3_path)
    paginator = s3_objects.s3().get_paginator("list_objects_v2")
    return [
        {**item, "Bucket": bucket}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["LastModified"] <= cutoff and item.get("StorageClass", "STANDARD") not in excluded
    ]


def purge(s3_path: str, options: dict, transformation_ctx: str = "") -> list[str]:
    """Deletes the due objects under `s3_path`; returns their s3:// URIs."""
    objects = due_objects(s3_path, options)
    done, failed = [], []
    for start in range(0, len(objects), 1000):
        batch = objects[start:start + 1000]
        answer = s3_objects.s3().delete_objects(Bucket=batch[0]["Bucket"], Delete={"Objects": [{"Key": item["Key"]} for item in batch]})
        errors = {error["Key"] for error in answer.get("Errors", [])}
        for item in batch:
            (failed if item["Key"] in errors else done).append(f"s3://{item['Bucket']}/{item['Key']}")
    _write_manifest(options, transformation_ctx, done, failed)
    return done


def transition(s3_path: str, transition_to: str, options: dict, transformation_ctx: str = "") -> list[str]:
    """Copies each due object onto itself in the storage class `transition_to`; returns their s3:// URIs."""
    if transition_to not in STORAGE_CLASSES:
        raise ValueError(f"transition_to {transition_to!r} is not an S3 storage class; use one of {sorted(STORAGE_CLASSES)}")
    missing = [name for name in ("accountId", "roleArn") if not options.get(name)]
    if missing:  # AWS runs the transition as an S3 Batch Operations job under that account and role
        raise ValueError(f"transition_s3_path needs options {' and '.join(missing)} (the account and role AWS Glue runs the transition with)")
    client = s3_objects.s3()
    done, failed = [], []
    for item in due_objects(s3_path, options):
        if item.get("StorageClass", "STANDARD") == transition_to:
            continue
        uri = f"s3://{item['Bucket']}/{item['Key']}"
        try:
            client.copy_object(Bucket=item["Bucket"], Key=item["Key"], CopySource={"Bucket": item["Bucket"], "Key": item["Key"]},
                               StorageClass=transition_to, MetadataDirective="COPY")
            done.append(uri)
        except client.exceptions.ClientError:
            failed.append(uri)
    _write_manifest(options, transformation_ctx, done, failed)
    return done


def table_paths(database: str, table_name: str, options: dict) -> list[tuple[dict | None, str]]:
    """(partition or None, location) of the table, or of its partitions that `partitionPredicate` selects."""
    table = catalog.get_table(database, table_name)
    keys = [key["Name"] for key in table.get("PartitionKeys", [])]
    if not keys:
        return [(None, table["StorageDescriptor"]["Location"])]
    predicate = options.get("partitionPredicate", "")
    partitions = catalog.partitions(database, table_name)
    if predicate:
        from pyspark.sql import SparkSession

        rows = [dict(zip(keys, partition["Values"])) for partition in partitions]
        spark = SparkSession.builder.getOrCreate()
        chosen = {tuple(row[key] for key in keys) for row in spark.createDataFrame(rows, ", ".join(f"`{k}` string" for k in keys)).where(predicate).collect()} if rows else set()
        partitions = [partition for partition in partitions if tuple(partition["Values"]) in chosen]
    return [(partition, partition["StorageDescriptor"]["Location"]) for partition in partitions]


def purge_table(database: str, table_name: str, options: dict, transformation_ctx: str = "") -> None:
    emptied = []
    for partition, location in table_paths(database, table_name, options):
        purge(location, options, transformation_ctx)
        bucket, prefix = s3_objects.split_uri(location)
        if partition is not None and not s3_objects.s3().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"):
            emptied.append({"Values": partition["Values"]})
    for start in range(0, len(emptied), 25):
        catalog.glue().batch_delete_partition(DatabaseName=database, TableName=table_name, PartitionsToDelete=emptied[start:start + 25])


def transition_table(database: str, table_name: str, transition_to: str, options: dict, transformation_ctx: str = "") -> None:
    for _partition, location in table_paths(database, table_name, options):
        transition(location, transition_to, options, transformation_ctx)


def _write_manifest(options: dict, transformation_ctx: str, done: list[str], failed: list[str]) -> None:
    folder = options.get("manifestFilePath")
    if not folder:
        return
    bucket, prefix = s3_objects.split_uri(folder.rstrip("/") + "/" + (transformation_ctx + "/" if transformation_ctx else ""))
    for name, uris in (("Success.csv", done), ("Failed.csv", failed)):
        s3_objects.s3().upload_fileobj(io.BytesIO("".join(uri + "\n" for uri in uris).encode()), bucket, prefix + name)
