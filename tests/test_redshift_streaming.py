"""Redshift streaming ingestion: an external schema FROM KINESIS, a materialized view over a stream refreshed
from every shard since the last refresh (positions kept through a kill -9), and AUTO REFRESH on the lab clock."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from tests.conftest import client, kill_hard, service_role
from tests.test_glue_api import _advance_clock
from tests.test_redshift import ok, rows, run

ROLE = "arn:aws:iam::123456789012:role/redshift-streaming"
VIEW = ("CREATE MATERIALIZED VIEW clicks {auto} AS SELECT approximate_arrival_timestamp, partition_key, shard_id, "
        "sequence_number, refresh_time, JSON_PARSE(kinesis_data) AS payload FROM kds.\"click-stream\" "
        "WHERE CAN_JSON_PARSE(kinesis_data)")


def _serverless(settings, name: str = "lab") -> dict:
    rs = client(settings, "redshift-serverless")
    rs.create_namespace(namespaceName=name, adminUsername="admin", adminUserPassword="Passw0rd!", dbName="dev")
    rs.create_workgroup(workgroupName=f"{name}-wg", namespaceName=name)
    return {"WorkgroupName": f"{name}-wg"}


def _stream(settings, shards: int = 2):
    service_role(settings, "redshift-streaming", "redshift")  # ROLE, which the streams' external schemas name
    kinesis = client(settings, "kinesis")
    kinesis.create_stream(StreamName="click-stream", ShardCount=shards)
    return kinesis


def _put(kinesis, *clicks: dict, raw: bytes | None = None) -> None:
    for number, click in enumerate(clicks):
        kinesis.put_record(StreamName="click-stream", Data=json.dumps(click).encode(), PartitionKey=f"user-{number}-{click['page']}")
    if raw is not None:
        kinesis.put_record(StreamName="click-stream", Data=raw, PartitionKey="broken")


def test_refresh_reads_each_shard_from_where_the_last_refresh_stopped(clean_stack):
    target, kinesis = _serverless(clean_stack), _stream(clean_stack)
    data = client(clean_stack, "redshift-data")
    ok(data, f"CREATE EXTERNAL SCHEMA kds FROM KINESIS IAM_ROLE '{ROLE}'", **target)
    ok(data, VIEW.format(auto=""), **target)
    assert rows(data, "SELECT count(*) FROM clicks", **target) == [[0]]  # empty until its first refresh
    _put(kinesis, *({"page": f"p{n}", "n": n} for n in range(6)), raw=b"\xff not json")
    ok(data, "REFRESH MATERIALIZED VIEW clicks", **target)
    got = rows(data, "SELECT partition_key, shard_id, payload, sequence_number FROM clicks ORDER BY partition_key", **target)
    assert len(got) == 6 and {row[1] for row in got} <= {"shardId-000000000000", "shardId-000000000001"}
    assert json.loads(got[0][2]) == {"page": "p0", "n": 0}  # the bad record is left out by CAN_JSON_PARSE
    ok(data, "REFRESH MATERIALIZED VIEW clicks", **target)  # nothing new: nothing appended twice
    assert rows(data, "SELECT count(*) FROM clicks", **target) == [[6]]
    _put(kinesis, {"page": "late", "n": 99})
    ok(data, "REFRESH MATERIALIZED VIEW clicks", **target)
    assert rows(data, "SELECT count(*), max(json_extract(payload, '$.n')::INT) FROM clicks", **target) == [[7, 99]]
    # FROM_VARBYTE as the streaming docs write it
    ok(data, "CREATE MATERIALIZED VIEW texts AS SELECT FROM_VARBYTE(kinesis_data, 'utf-8') AS body, "
             "JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'n', true)::int AS n FROM kds.\"click-stream\" "
             "WHERE CAN_JSON_PARSE(kinesis_data) AND LENGTH(kinesis_data) < 65355;", **target)
    ok(data, "REFRESH MATERIALIZED VIEW texts", **target)
    assert rows(data, "SELECT body, n FROM texts WHERE body LIKE '%late%'", **target) == [['{"page": "late", "n": 99}', 99]]
    assert rows(data, "SELECT name, is_stale, autorefresh FROM svv_mv_info WHERE name = 'clicks'", **target) == [["clicks", "t", "f"]]
    failed = run(data, "CREATE MATERIALIZED VIEW nothing AS SELECT kinesis_data FROM kds.\"no-such-stream\"", **target)
    assert failed["Status"] == "FAILED" and 'Kinesis stream "no-such-stream" does not exist' in failed["Error"]
    missing_role = run(data, "CREATE EXTERNAL SCHEMA k2 FROM KINESIS", **target)
    assert "IAM_ROLE is required" in missing_role["Error"]
    ok(data, "DROP MATERIALIZED VIEW texts", **target)
    depended = run(data, "DROP SCHEMA kds", **target)
    assert depended["Status"] == "FAILED" and "other objects depend on it" in depended["Error"]
    ok(data, "DROP SCHEMA kds CASCADE", **target)
    assert run(data, "SELECT * FROM clicks", **target)["Status"] == "FAILED"


def test_auto_refresh_follows_the_lab_clock_and_positions_survive_a_kill_9(private_stack):
    target, kinesis = _serverless(private_stack), _stream(private_stack, shards=1)
    data = client(private_stack, "redshift-data")
    ok(data, f"CREATE EXTERNAL SCHEMA kds FROM KINESIS IAM_ROLE '{ROLE}'", **target)
    ok(data, VIEW.format(auto="AUTO REFRESH YES"), **target)
    _put(kinesis, {"page": "a"}, {"page": "b"})
    _advance_clock(private_stack, "1m")  # the lab timer refreshes the view on the way
    assert rows(data, "SELECT count(*) FROM clicks", **target) == [[2]]
    time.sleep(0.5)
    kill_hard(private_stack)
    from dealab.stack import control

    control.up(private_stack)
    kinesis = client(private_stack, "kinesis")
    data = client(private_stack, "redshift-data")
    client(private_stack, "redshift-serverless").list_namespaces()  # the engine is up; no statement opens the database
    _put(kinesis, {"page": "c"})
    _advance_clock(private_stack, "1m")  # resumed after the restart, from the position kept before the kill
    # a refresh the ticker started before the move may still be ending: wait for it (a deadline, not a timing check)
    deadline = time.monotonic() + 20
    while len(rows(data, "SELECT partition_key FROM clicks", **target)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rows(data, "SELECT partition_key FROM clicks ORDER BY 1", **target) == [["user-0-a"], ["user-0-c"], ["user-1-b"]]
