"""S3 storage prices, dated, per GB-month: the clock engine's storage report and the lab 4 grader both price
buckets with them (data on the shared floor, no engine state). us-east-1 list prices.

Storage only (no requests, retrievals or early-deletion charges). Minimum billable sizes, the archive
per-object overhead and the Intelligent-Tiering monitoring fee are part of what an object costs at rest, so
they are applied, object by object as AWS bills them: a storage class's totals carry, beside its bytes and
objects, the bytes its objects are billed for and how many of them are monitored (`tally`).

The AWS pricing page (https://aws.amazon.com/s3/pricing/) fills its price cells in with JavaScript, so the
numbers were checked on 2026-11-29 against pages that quote it for US East (N. Virginia), first 50 TB tier;
every one agreed with the table below:
- https://www.usage.ai/blogs/aws/storage-cost/glacier-deep-archive-pricing/ ("Complete S3 Storage Class
  Pricing Table (US East, May 2026)", updated 2026-06-05): STANDARD 0.023, STANDARD_IA 0.0125, ONEZONE_IA
  0.01, GLACIER_IR 0.004, GLACIER 0.0036, DEEP_ARCHIVE 0.00099; 128 KB minimum object size for STANDARD_IA,
  ONEZONE_IA and GLACIER_IR; 40 KB overhead per object in GLACIER and DEEP_ARCHIVE.
- https://awsnegotiations.com/glacier-vs-glacier-deep-archive.html ("US East, May 2026 list"): GLACIER
  0.0036, DEEP_ARCHIVE 0.00099, the 40 KB as 32 KB of index plus 8 KB of metadata.
- https://serveraide.com/explain-aws-s3-glacier-storage-class-charges-141957 (an AWS Pricing Calculator
  breakdown, undated): the 32 KB billed at the archive class's rate, the 8 KB at STANDARD's.
- http://my.globalxperts.net/?p=5330 (undated; quotes us-east-2, priced as us-east-1):
  INTELLIGENT_TIERING frequent access tier 0.023, monitoring 0.0025 per 1,000 objects of more than 128 KB.
- https://mysteriouscode.com/blog/aws-s3-storage-classes-pricing-is-not-what-you-think (2017-01-02):
  REDUCED_REDUNDANCY 0.024, the last published us-east-1 price of a class AWS no longer lists or recommends.
The table stays dated 2025-06-01: these rates were already in force then (the newest of them, GLACIER_IR's
and GLACIER's, date from November 2021) and the 2026 pages show them unchanged.
"""

from __future__ import annotations

PRICE_TABLE = {
    "region": "us-east-1",
    "as_of": "2025-06-01",
    "source": "https://aws.amazon.com/s3/pricing/ (first-tier list prices)",
    "gb": 1024 ** 3,
    # storage class → USD per GB-month
    "usd_per_gb_month": {
        "STANDARD": 0.023,
        "REDUCED_REDUNDANCY": 0.024,
        "INTELLIGENT_TIERING": 0.023,  # frequent-access tier; the monitoring fee is below
        "STANDARD_IA": 0.0125,
        "ONEZONE_IA": 0.01,
        "GLACIER_IR": 0.004,
        "GLACIER": 0.0036,
        "DEEP_ARCHIVE": 0.00099,
    },
    # objects smaller than this are billed as this size
    "minimum_billable_bytes": {"STANDARD_IA": 128 * 1024, "ONEZONE_IA": 128 * 1024, "GLACIER_IR": 128 * 1024},
    # archived objects carry index data: bytes billed at the class's rate and at STANDARD's rate
    "archive_overhead_bytes": {"GLACIER": (32 * 1024, 8 * 1024), "DEEP_ARCHIVE": (32 * 1024, 8 * 1024)},
    # Intelligent-Tiering monitoring and automation, per 1,000 objects of 128 KiB or more per month
    "intelligent_tiering_monitoring_per_1000_objects": 0.0025,
    "intelligent_tiering_monitored_from_bytes": 128 * 1024,
}


# a storage class's totals, in this order (the storage report names them so)
TOTALS_FIELDS = ("bytes", "objects", "billed_bytes", "monitored_objects")


def new_totals() -> list[int]:
    return [0] * len(TOTALS_FIELDS)


def tally(totals: list[int], storage_class: str, size: int, objects: int = 1) -> None:
    """Adds `objects` objects of `size` bytes to a class's totals (a negative count takes them away)."""
    table = PRICE_TABLE
    billed = max(size, table["minimum_billable_bytes"].get(storage_class, 0))
    monitored = storage_class == "INTELLIGENT_TIERING" and size >= table["intelligent_tiering_monitored_from_bytes"]
    totals[0] += size * objects
    totals[1] += objects
    totals[2] += billed * objects
    totals[3] += objects if monitored else 0


def monthly_cost(storage_class: str, totals: list[int]) -> float:
    """Estimated USD per month for one class's totals (TOTALS_FIELDS)."""
    table = PRICE_TABLE
    _, objects, billed, monitored = totals
    rate = table["usd_per_gb_month"].get(storage_class, table["usd_per_gb_month"]["STANDARD"])
    cost = billed / table["gb"] * rate
    overhead = table["archive_overhead_bytes"].get(storage_class)
    if overhead:
        class_bytes, standard_bytes = overhead
        cost += objects * (class_bytes * rate + standard_bytes * table["usd_per_gb_month"]["STANDARD"]) / table["gb"]
    return cost + monitored / 1000 * table["intelligent_tiering_monitoring_per_1000_objects"]


def cost_of(classes: dict[str, list[int]]) -> float:
    """USD per month for {storage class: totals}."""
    return sum(monthly_cost(storage_class, totals) for storage_class, totals in classes.items())
