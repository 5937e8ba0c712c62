"""DynamoDB requests AWS's front end refuses before any table is touched."""

from __future__ import annotations

import json
import zlib

from dealab.wire.messages import AwsRequest, AwsResponse

MAX_BATCH_WRITES = 25
JAVA_WRITE_REQUEST = "com.amazonaws.dynamodb.v20120810.WriteRequest"


def batch_write_within_limits(request: AwsRequest) -> AwsResponse | None:
    """At most 25 put or delete requests per table and in all, and at least one per table named."""
    tables = request.json.get("RequestItems")
    if not isinstance(tables, dict):
        return None  # the backend answers a malformed body with its own error
    counts = {name: len(writes) if isinstance(writes, list) else 0 for name, writes in tables.items()}
    if any(not 1 <= count <= MAX_BATCH_WRITES for count in counts.values()):
        return AwsResponse.json_error(
            "com.amazonaws.dynamodb.v20120810#ValidationException",
            f"1 validation error detected: Value '{_java_rendering(tables)}' at 'requestItems' failed to satisfy "
            f"constraint: Map value must satisfy constraint: [Member must have length less than or equal to "
            f"{MAX_BATCH_WRITES}, Member must have length greater than or equal to 1]",
        )
    if sum(counts.values()) > MAX_BATCH_WRITES:
        return AwsResponse.json_error(
            "com.amazonaws.dynamodb.v20120810#ValidationException", "Too many items requested for the BatchWriteItem call"
        )
    return None


def _java_rendering(tables: dict) -> str:
    """The request map as DynamoDB's message prints it: Java's toString of each WriteRequest."""

    def write(entry) -> str:
        return f"{JAVA_WRITE_REQUEST}@{zlib.crc32(json.dumps(entry, sort_keys=True).encode()):08x}"

    rendered = (f"{name}=[{', '.join(write(entry) for entry in writes)}]" for name, writes in tables.items() if isinstance(writes, list))
    return "{" + ", ".join(rendered) + "}"
