"""S3 storage prices used by the storage report: us-east-1 list prices, dated, per GB-month.

Storage only (no requests, retrievals or early-deletion charges). Minimum billable sizes and the archive
per-object overhead are part of what an object costs at rest, so they are applied.
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
}


def monthly_cost(storage_class: str, total_bytes: int, objects: int) -> float:
    """Estimated USD per month for `objects` objects of `total_bytes` in one class (sizes averaged)."""
    table = PRICE_TABLE
    rate = table["usd_per_gb_month"].get(storage_class, table["usd_per_gb_month"]["STANDARD"])
    billed = total_bytes
    minimum = table["minimum_billable_bytes"].get(storage_class)
    if minimum and objects and total_bytes / objects < minimum:
        billed = minimum * objects
    cost = billed / table["gb"] * rate
    overhead = table["archive_overhead_bytes"].get(storage_class)
    if overhead:
        class_bytes, standard_bytes = overhead
        cost += objects * (class_bytes * rate + standard_bytes * table["usd_per_gb_month"]["STANDARD"]) / table["gb"]
    if storage_class == "INTELLIGENT_TIERING":
        cost += objects / 1000 * table["intelligent_tiering_monitoring_per_1000_objects"]
    return cost


def cost_of(classes: dict[str, list[int]]) -> float:
    """USD per month for {storage class: [bytes, objects]}."""
    return sum(monthly_cost(storage_class, size, count) for storage_class, (size, count) in classes.items())
