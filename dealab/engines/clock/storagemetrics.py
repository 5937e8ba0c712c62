"""S3's daily storage metrics (AWS/S3, dimensions BucketName + StorageType), as "Metrics and dimensions" in the
S3 user guide lists them: BucketSizeBytes per storage type and NumberOfObjects (StorageType=AllStorageTypes), one
datapoint a day, stamped at midnight UTC.

The clock engine publishes them as a move crosses each midnight, for the buckets it takes stock of on a move
(those with a lifecycle configuration), from the same totals as the storage report (`prices.tally`).
"""

from __future__ import annotations

import datetime

from dealab import pricing as prices
from dealab.wire import metrics

NAMESPACE = "AWS/S3"
DAY = datetime.timedelta(days=1)
# storage class → the StorageType of its bytes
STORAGE_TYPES = {
    "STANDARD": "StandardStorage",
    "REDUCED_REDUNDANCY": "ReducedRedundancyStorage",
    "INTELLIGENT_TIERING": "IntelligentTieringFAStorage",  # the lab keeps every Intelligent-Tiering object in its frequent tier
    "STANDARD_IA": "StandardIAStorage",
    "ONEZONE_IA": "OneZoneIAStorage",
    "GLACIER_IR": "GlacierInstantRetrievalStorage",
    "GLACIER": "GlacierStorage",
    "DEEP_ARCHIVE": "DeepArchiveStorage",
}
# storage class → the StorageType of the bytes its 128 KiB minimum bills beyond the objects' own
SIZE_OVERHEAD_TYPES = {"STANDARD_IA": "StandardIASizeOverhead", "ONEZONE_IA": "OneZoneIASizeOverhead",
                       "GLACIER_IR": "GlacierInstantRetrievalSizeOverhead"}
# storage class → the StorageTypes of an archived object's index data (billed at its class, at STANDARD)
OBJECT_OVERHEAD_TYPES = {"GLACIER": ("GlacierObjectOverhead", "GlacierS3ObjectOverhead"),
                         "DEEP_ARCHIVE": ("DeepArchiveObjectOverhead", "DeepArchiveS3ObjectOverhead")}


def publish_days(totals: dict[str, dict[str, list[int]]], after: datetime.datetime, until: datetime.datetime) -> None:
    """The datapoints of each midnight in (after, until], with the buckets' totals as they stand."""
    first = after.replace(hour=0, minute=0, second=0, microsecond=0) + DAY
    for n in range(max(0, (until - first) // DAY + 1)):
        publish_day(totals, first + DAY * n)


def publish_day(totals: dict[str, dict[str, list[int]]], midnight: datetime.datetime) -> None:
    """One day's datapoints of every bucket: `totals` is bucket → storage class → prices totals."""
    at = midnight.replace(tzinfo=None)
    for bucket, classes in totals.items():
        objects = 0
        for storage_class, (size, count, billed, _monitored) in classes.items():
            if not count:
                continue
            objects += count
            put = lambda storage_type, value: metrics.put(NAMESPACE, "BucketSizeBytes", {"BucketName": bucket, "StorageType": storage_type}, value, "Bytes", at=at)
            put(STORAGE_TYPES.get(storage_class, "StandardStorage"), size)
            if storage_class in SIZE_OVERHEAD_TYPES:
                put(SIZE_OVERHEAD_TYPES[storage_class], billed - size)
            if storage_class in OBJECT_OVERHEAD_TYPES:
                own, standard = prices.PRICE_TABLE["archive_overhead_bytes"][storage_class]
                put(OBJECT_OVERHEAD_TYPES[storage_class][0], own * count)
                put(OBJECT_OVERHEAD_TYPES[storage_class][1], standard * count)
        metrics.put(NAMESPACE, "NumberOfObjects", {"BucketName": bucket, "StorageType": "AllStorageTypes"}, objects, at=at)
