"""Partition projection of type `injected`: the partition values come from the query's static equality
conditions, and a query without them fails with Athena's CONSTRAINT_VIOLATION."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from tests.test_athena import lake  # noqa: F401  (fixture)

READINGS = {("a1", "eu"): [1, 2], ("a1", "us"): [4], ("b2", "eu"): [10], ("c3", "us"): [100, 200]}
VIOLATION = ("CONSTRAINT_VIOLATION: For the injected projected partition column device_id, the WHERE clause must contain "
             "only static equality conditions, and at least one such condition must be present.")


def _devices_table(lake) -> str:
    for (device, region), values in READINGS.items():
        buffer = io.BytesIO()
        pq.write_table(pa.table({"reading": values}), buffer)
        lake.s3.put_object(Bucket=lake.bucket, Key=f"devices/{device}/{region}/data.parquet", Body=buffer.getvalue())
    table = f"{lake.db}.devices"
    lake.athena.run(f"""CREATE EXTERNAL TABLE {table} (reading bigint) PARTITIONED BY (device_id string, region string)
        STORED AS PARQUET LOCATION 's3://{lake.bucket}/devices/'
        TBLPROPERTIES ('projection.enabled'='true', 'projection.device_id.type'='injected', 'projection.region.type'='enum',
                       'projection.region.values'='eu,us', 'storage.location.template'='s3://{lake.bucket}/devices/${{device_id}}/${{region}}/')""")
    return table


def test_injected_values_come_from_the_where_clause(lake):
    athena, table = lake.athena, _devices_table(lake)

    def total(where: str) -> str | None:
        return athena.rows(athena.run(f"SELECT sum(reading) FROM {table} WHERE {where}"))[1][0]

    assert total("device_id = 'a1'") == "7"
    assert total("device_id = 'a1' AND region = 'us'") == "4"
    assert total("device_id IN ('a1', 'b2')") == "17"
    assert total("(device_id = 'b2' OR device_id = 'c3') AND reading > 5") == "310"
    assert total("device_id = concat('c', '3')") == "300"  # a constant expression: evaluated without reading data
    assert total("device_id IN ('a1', 'b2') AND device_id = 'b2'") == "10"  # conditions on one column intersect
    assert total("'zz' = device_id") is None  # a device with no folder: no data, not an error
    one = athena.run(f"SELECT count(*) FROM {table} WHERE device_id = 'b2'")
    every = athena.run(f"SELECT count(*) FROM {table} WHERE device_id IN ('a1', 'b2', 'c3')")
    assert one["Statistics"]["DataScannedInBytes"] < every["Statistics"]["DataScannedInBytes"] / 2  # only b2's folders read


def test_a_query_without_static_equality_on_an_injected_column_fails(lake):
    athena, table = lake.athena, _devices_table(lake)
    for where in ("", "WHERE region = 'eu'", "WHERE device_id LIKE 'a%'", "WHERE device_id = 'a1' OR region = 'eu'",
                  "WHERE device_id = region", f"WHERE device_id IN (SELECT device_id FROM {table} WHERE device_id = 'a1')"):
        failed = athena.run(f"SELECT count(*) FROM {table} {where}", expect="FAILED")
        assert failed["Status"]["StateChangeReason"] == VIOLATION, where
