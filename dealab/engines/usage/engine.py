"""The usage engine: AWS's usage metrics of SQS queues and DynamoDB tables, counted from the calls as they pass.

No other engine takes these services' data calls, so the counters get their own room: each call is passed on
first and counted from the backend's answer (`sqs.py`, `dynamodb.py`). Calls made by engines are AWS's own work
(a TTL sweep's deletions, which AWS does not charge) or are counted where they reach AWS through the learner's
pipeline (a state machine's task calls come unmarked), so marked calls are passed through uncounted.
"""

from __future__ import annotations

import base64
import json
import threading

from dealab.engines.usage import dynamodb as ddb
from dealab.engines.usage.sqs import SqsMetrics
from dealab.wire import metrics
from dealab.wire.engine import ENGINE_HEADER, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse

DYNAMODB_ITEM_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                            "BatchWriteItem", "TransactWriteItems")
BATCH_GET_LIMIT = 100  # items a BatchGetItem reads at most


class UsageEngine(Engine):
    name = "usage"
    operations = {
        ("sqs", "SendMessage"): "_sqs",
        ("sqs", "SendMessageBatch"): "_sqs",
        ("sqs", "ReceiveMessage"): "_sqs",
        ("sqs", "DeleteMessage"): "_sqs",
        ("sqs", "DeleteMessageBatch"): "_sqs",
        ("sqs", "PurgeQueue"): "_sqs",
        ("sqs", "DeleteQueue"): "_sqs",
    } | {("dynamodb", operation): "_dynamodb" for operation in DYNAMODB_ITEM_OPERATIONS}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self._lock = threading.Lock()
        self._indexes: dict[tuple[str, str], set[str]] = {}  # (region, table) → its global secondary indexes
        self.sqs = SqsMetrics(context.state_dir / self.name, self.own_client)

    # ---- SQS -----------------------------------------------------------------------------------------
    def _sqs(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200 or "json" not in request.headers.get("Content-Type", ""):  # JSON protocol: current SDKs
            return response
        params, operation = request.json, request.operation
        if operation in ("PurgeQueue", "DeleteQueue"):
            self.sqs.forget_queue(request.region, params)
            return response
        answer = json.loads(response.read() or b"{}")
        if operation.startswith("SendMessage"):
            self.sqs.sent(request.region, params, answer, batch=operation.endswith("Batch"))
        elif operation == "ReceiveMessage":
            self.sqs.received(request.region, params, answer)
        else:
            self.sqs.deleted(request.region, params, answer, batch=operation.endswith("Batch"))
        return response

    # ---- DynamoDB ------------------------------------------------------------------------------------
    def _dynamodb(self, request: AwsRequest) -> AwsResponse:
        if request.headers.get(ENGINE_HEADER):
            return request.send_on()
        params, region = request.json, request.region
        before = self._items_before(request.operation, params, region)
        response = request.send_on()
        conditional_failure = response.status == 400 and b"ConditionalCheckFailed" in response.read()
        if response.status != 200 and not conditional_failure:  # a failed condition still consumes write capacity
            return response
        answer = json.loads(response.read() or b"{}") if response.status == 200 else {}
        for table, index, metric, units in self._consumed(request.operation, params, answer, before, region):
            dimensions = {"TableName": table} | ({"GlobalSecondaryIndexName": index} if index else {})
            metrics.put(ddb.NAMESPACE, metric, dimensions, units, region=region)
        return response

    def _items_before(self, operation: str, params: dict, region: str) -> dict[tuple[str, str], int]:
        """(table, key as JSON) → the size of the item a write will replace or delete (absent: no such item)."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            keys = {params["TableName"]: [self._key_of(params["TableName"], params.get("Key") or params.get("Item", {}), region)]}
        elif operation == "BatchWriteItem":
            keys = {table: [self._key_of(table, (entry.get("PutRequest") or {}).get("Item") or (entry.get("DeleteRequest") or {}).get("Key", {}), region)
                            for entry in entries] for table, entries in params.get("RequestItems", {}).items()}
        elif operation == "TransactWriteItems":
            keys = {}
            for entry in params.get("TransactItems", []):
                action = next(iter(entry.values()))
                keys.setdefault(action["TableName"], []).append(self._key_of(action["TableName"], action.get("Key") or action.get("Item", {}), region))
        else:
            return {}
        return self._sizes(keys, region)

    def _key_of(self, table: str, item: dict, region: str) -> dict:
        names = self._describe(table, region)["keys"]
        return {name: item[name] for name in names if name in item}

    def _describe(self, table: str, region: str) -> dict:
        with self._lock:
            known = self._indexes.get((region, table))
        if known is None:
            description = self.own_client("dynamodb", region).describe_table(TableName=table)["Table"]
            known = {"keys": [part["AttributeName"] for part in description["KeySchema"]],
                     "global": {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}}
            with self._lock:
                self._indexes[(region, table)] = known
        return known

    def _sizes(self, keys: dict[str, list[dict]], region: str) -> dict[tuple[str, str], int]:
        """(table, key as JSON) → the size of each of these items that exists, read with BatchGetItem."""
        sizes: dict[tuple[str, str], int] = {}
        client = self.own_client("dynamodb", region)
        unique = list({(table, _key_text(key)): key for table, table_keys in keys.items() for key in table_keys}.items())
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            chunk: dict[str, dict] = {}
            for (table, _text), key in unique[start:start + BATCH_GET_LIMIT]:
                chunk.setdefault(table, {"Keys": [], "ConsistentRead": True})["Keys"].append(_plain(key))
            while chunk:
                page = client.batch_get_item(RequestItems=chunk)
                for table, items in page.get("Responses", {}).items():
                    for item in map(_typed, items):
                        sizes[(table, _key_text(self._key_of(table, item, region)))] = ddb.item_size(item)
                chunk = page.get("UnprocessedKeys") or {}
        return sizes

    def _consumed(self, operation: str, params: dict, answer: dict, before: dict, region: str):
        """(table, index or None, metric, units) for one call."""
        read, write = "ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            item = answer.get("Item")
            if item is not None and (params.get("ProjectionExpression") or params.get("AttributesToGet")):
                item = self.own_client("dynamodb", region).get_item(TableName=params["TableName"], Key=_plain(params["Key"]), ConsistentRead=True).get("Item")
                item = _typed(item) if item else None
            yield params["TableName"], None, read, ddb.read_units([ddb.item_size(item)] if item else [0], consistent, each=True)
        elif operation in ("Query", "Scan"):
            index = params.get("IndexName")
            gsi = index if index and index in self._describe(params["TableName"], region)["global"] else None
            sizes = [ddb.item_size(item) for item in answer.get("Items", [])]
            yield params["TableName"], gsi, read, ddb.read_units(sizes, consistent, each=False)
        elif operation == "BatchGetItem":
            for table, items in answer.get("Responses", {}).items():
                asked = params["RequestItems"].get(table, {})
                yield table, None, read, ddb.read_units([ddb.item_size(item) for item in items] or [0], bool(asked.get("ConsistentRead")), each=True)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            key = self._key_of(table, params.get("Key") or params.get("Item", {}), region)
            old = before.get((table, _key_text(key)), 0)
            new = ddb.item_size(params["Item"]) if operation == "PutItem" else 0
            if operation == "UpdateItem":
                after = self._sizes({table: [key]}, region)
                new = after.get((table, _key_text(key)), 0)
            yield table, None, write, ddb.write_units(max(old, new))
        elif operation == "BatchWriteItem":
            unprocessed = answer.get("UnprocessedItems", {})
            for table, entries in params.get("RequestItems", {}).items():
                units = 0.0
                for entry in entries:
                    if entry in unprocessed.get(table, []):
                        continue
                    put = (entry.get("PutRequest") or {}).get("Item")
                    key = self._key_of(table, put or entry.get("DeleteRequest", {}).get("Key", {}), region)
                    units += ddb.write_units(max(before.get((table, _key_text(key)), 0), ddb.item_size(put) if put else 0))
                if units:
                    yield table, None, write, units
        elif operation == "TransactWriteItems":
            totals: dict[str, float] = {}
            for entry in params.get("TransactItems", []):
                action = next(iter(entry.values()))
                table = action["TableName"]
                key = self._key_of(table, action.get("Key") or action.get("Item", {}), region)
                size = max(before.get((table, _key_text(key)), 0), ddb.item_size(action["Item"]) if "Item" in action else 0)
                totals[table] = totals.get(table, 0.0) + ddb.write_units(size, transactional=True)
            yield from ((table, None, write, units) for table, units in totals.items())

    def reset(self) -> None:
        self.sqs.reset()
        with self._lock:
            self._indexes.clear()

    def close(self) -> None:
        self.sqs.close()


def _key_text(key: dict) -> str:
    return json.dumps(key, sort_keys=True)


def _plain(key: dict) -> dict:
    """A key in the wire's JSON shape, as boto3's low-level client takes it (binary values as bytes)."""
    return {name: ({"B": base64.b64decode(value["B"])} if "B" in value else value) for name, value in key.items()}


def _typed(item: dict) -> dict:
    """An item as boto3 returns it, back in the wire's JSON shape (bytes as base64)."""
    def wire(value):
        kind, content = next(iter(value.items()))
        if kind == "B":
            return {"B": base64.b64encode(bytes(content)).decode()}
        if kind == "BS":
            return {"BS": [base64.b64encode(bytes(element)).decode() for element in content]}
        if kind == "N":
            return {"N": str(content)}
        if kind == "L":
            return {"L": [wire(element) for element in content]}
        if kind == "M":
            return {"M": {name: wire(element) for name, element in content.items()}}
        return value
    return {name: wire(value) for name, value in item.items()}
