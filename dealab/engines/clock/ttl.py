"""DynamoDB Time to Live, executed on the lab clock, and the TTL service identity on its stream records.

When the clock moves, every table with TTL enabled is scanned once for items whose TTL attribute (a Number,
epoch seconds) falls before the clock's destination. TTL's background sweep deletes them at the first sweep
after they expire (AWS deletes "typically within two days"; here a sweep runs every SWEEP_INTERVAL of lab
time), through BatchWriteItem, in time order, with the clock at the sweep's moment.

DynamoDB Streams records of TTL deletions carry userIdentity {"Type": "Service", "PrincipalId":
"dynamodb.amazonaws.com"}. The backend's stream records cannot carry it: they are built from the delete
alone, not from who asked. So each sweep's deletions are remembered (table, item keys, the sweep's time
window) and GetRecords answers passing through the gateway have the identity added to exactly the REMOVE
records that match one of them. A window is kept on both clocks: the embedded backend stamps its records
with lab time, a remote backend (ministack, LocalStack) with its own real time, and the engine owns the
identity whichever clock the backend keeps.
"""

from __future__ import annotations

import datetime
import heapq
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

from dealab.engines.clock.clock import UTC
from dealab.wire.store import JsonFile

SWEEP_INTERVAL = datetime.timedelta(hours=6)
# as the GetRecords API spells it (Lambda event records spell the same fields type / principalId)
TTL_IDENTITY = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
WRITE_BATCH = 25  # BatchWriteItem takes at most 25 requests
# Slack around a sweep's window when matching stream records (their times have second precision).
MATCH_SLACK_SECONDS = 1.0


def sweep_after(expiry: datetime.datetime) -> datetime.datetime:
    """The first sweep strictly after an item's expiry time."""
    interval = SWEEP_INTERVAL.total_seconds()
    seconds = (int(expiry.timestamp() // interval) + 1) * interval
    return datetime.datetime.fromtimestamp(seconds, UTC)


def canonical_keys(keys: dict) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def table_of_stream_arn(arn: str) -> str | None:
    # arn:aws:dynamodb:region:account:table/NAME/stream/LABEL (a shard iterator may start with it)
    marker = ":table/"
    if marker not in arn:
        return None
    return arn.split(marker, 1)[1].split("/", 1)[0]


class TtlMarks:
    """Which deletions were TTL's, persisted: table → canonical keys → [[start, end, ...] epoch seconds], one
    (start, end) pair per clock the sweep ran on (lab time, then real time)."""

    def __init__(self, state_dir: Path):
        self._file = JsonFile(state_dir / "ttl-deletions.json")
        self._lock = threading.Lock()
        self._marks: dict[str, dict[str, list[list[float]]]] = defaultdict(dict)
        for table, keys in self._file.load({}).items():
            self._marks[table] = keys

    def add(self, table: str, keys: list[dict], windows: list[tuple[float, float]]) -> None:
        with self._lock:
            for item_keys in keys:
                self._marks[table].setdefault(canonical_keys(item_keys), []).append([edge for window in windows for edge in window])

    def is_ttl_deletion(self, table: str | None, keys: dict, when: float | None) -> bool:
        canonical = canonical_keys(keys)
        tables = [table] if table else list(self._marks)
        for name in tables:
            for edges in self._marks.get(name, {}).get(canonical, []):
                if when is None or any(start - MATCH_SLACK_SECONDS <= when <= end + MATCH_SLACK_SECONDS
                                       for start, end in zip(edges[::2], edges[1::2])):
                    return True
        return False

    def label(self, table: str | None, records: list[dict]) -> int:
        """Adds the TTL identity to the REMOVE records that TTL made; returns how many."""
        labelled = 0
        for record in records:
            if record.get("eventName") != "REMOVE" or "userIdentity" in record:
                continue
            body = record.get("dynamodb", {})
            when = body.get("ApproximateCreationDateTime")
            if isinstance(when, str):
                when = datetime.datetime.fromisoformat(when.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()
            if self.is_ttl_deletion(table, body.get("Keys", {}), when):
                record["userIdentity"] = dict(TTL_IDENTITY)
                labelled += 1
        return labelled

    def save(self) -> None:
        with self._lock:
            self._file.save(self._marks)

    def clear(self) -> None:
        with self._lock:
            self._marks.clear()
        self._file.remove()


class TtlRun:
    """One clock move's worth of TTL deletions, over every table with TTL enabled."""

    def __init__(self, dynamodb, marks: TtlMarks, until: datetime.datetime):
        self.dynamodb = dynamodb
        self.marks = marks
        self.deleted = 0
        self._queue: list[tuple[datetime.datetime, str, int]] = []  # (sweep, table, index into _items)
        self._items: dict[str, list[tuple[dict, str, float]]] = {}  # table → [(keys, ttl attribute, expiry)]
        for table in self._tables():
            self._scan(table, until)

    def _tables(self) -> list[str]:
        names, kwargs = [], {}
        while True:
            page = self.dynamodb.list_tables(**kwargs)
            names += page.get("TableNames", [])
            if "LastEvaluatedTableName" not in page:
                return names
            kwargs["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]

    def _scan(self, table: str, until: datetime.datetime) -> None:
        ttl = self.dynamodb.describe_time_to_live(TableName=table).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") != "ENABLED":
            return
        attribute = ttl["AttributeName"]
        key_names = [k["AttributeName"] for k in self.dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
        # Whole items, without a ProjectionExpression: the embedded backend projects by converting every item
        # to Python values and back (~80 µs an item, the slowest part of the scan), and a projection would
        # spare no capacity on DynamoDB either (a Scan is charged for the items it reads, whole).
        kwargs = {"TableName": table}
        # filtered here rather than with a FilterExpression: the embedded backend fails comparing a String
        # TTL attribute with a Number, where DynamoDB simply does not match it
        limit = until.timestamp()
        found = []
        while True:
            page = self.dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                value = item.get(attribute, {})
                if "N" not in value or float(value["N"]) >= limit:  # TTL only reads Number attributes
                    continue
                found.append(({name: item[name] for name in key_names}, attribute, float(value["N"])))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found.sort(key=lambda entry: entry[2])
        self._items[table] = found
        if found:
            heapq.heappush(self._queue, (sweep_after(datetime.datetime.fromtimestamp(found[0][2], UTC)), table, 0))

    def next_due(self) -> datetime.datetime | None:
        return self._queue[0][0] if self._queue else None

    def run_due(self, moment: datetime.datetime, lab_now) -> None:
        while self._queue and self._queue[0][0] <= moment:
            sweep, table, index = heapq.heappop(self._queue)
            items = self._items[table]
            end = index
            while end < len(items) and sweep_after(datetime.datetime.fromtimestamp(items[end][2], UTC)) <= sweep:
                end += 1
            batch_keys = [keys for keys, _, _ in items[index:end]]
            # real time too: a remote backend dates its stream records by its own clock, not the lab's
            started, started_real = lab_now().timestamp(), time.time()
            for start in range(0, len(batch_keys), WRITE_BATCH):
                self._write(table, batch_keys[start:start + WRITE_BATCH])
            self.marks.add(table, batch_keys, [(started, lab_now().timestamp()), (started_real, time.time())])
            self.deleted += len(batch_keys)
            if end < len(items):
                heapq.heappush(self._queue, (sweep_after(datetime.datetime.fromtimestamp(items[end][2], UTC)), table, end))

    def _write(self, table: str, keys: list[dict]) -> None:
        pending = {table: [{"DeleteRequest": {"Key": item_keys}} for item_keys in keys]}
        while pending:
            pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
