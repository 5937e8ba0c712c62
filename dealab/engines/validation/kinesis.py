"""Kinesis records whose `Data` AWS's JSON front end cannot read as a blob (base64) are refused whole."""

from __future__ import annotations

import base64
import binascii

from dealab.wire.messages import AwsRequest, AwsResponse


def _blob_problem(data) -> str | None:
    """Why `data` cannot be read as a base64 blob, in AWS's words, or None."""
    if not isinstance(data, str):
        return f"'{data}' can not be converted to a Blob: a blob is sent as a base64-encoded string"
    if len(data) % 4:
        return f"'{data}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {len(data)}"
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"'{data}' can not be converted to a Blob: it contains characters outside the base64 alphabet"
    return None


def _refusal(problem: str | None) -> AwsResponse | None:
    return None if problem is None else AwsResponse.json_error("SerializationException", problem)


def _is_json(request: AwsRequest) -> bool:
    # CBOR clients (the Java SDK's default) send Data as bytes; there is nothing to decode.
    return "json" in request.headers.get("Content-Type", "")


def record_data_is_base64(request: AwsRequest) -> AwsResponse | None:
    if not _is_json(request) or "Data" not in request.json:
        return None
    return _refusal(_blob_problem(request.json["Data"]))


def records_data_is_base64(request: AwsRequest) -> AwsResponse | None:
    records = request.json.get("Records") if _is_json(request) else None
    if not isinstance(records, list):
        return None
    problems = (_blob_problem(record["Data"]) for record in records if isinstance(record, dict) and "Data" in record)
    return _refusal(next((problem for problem in problems if problem), None))
