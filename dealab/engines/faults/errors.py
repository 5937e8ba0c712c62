"""What an injected failure looks like: AWS's own error codes per service, in each protocol's error shape."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dealab.wire.messages import AwsResponse
from dealab.wire.operations import service_model


@dataclass(frozen=True)
class Failure:
    status: int
    code: str
    message: str


# error kind → service → how that service says it ("*" for services not listed).
FAILURES: dict[str, dict[str, Failure]] = {
    "throttling": {
        "kinesis": Failure(400, "ProvisionedThroughputExceededException", "Rate exceeded."),
        "dynamodb": Failure(400, "ProvisionedThroughputExceededException",
                            "The level of configured provisioned throughput for the table was exceeded. "
                            "Consider increasing your provisioning level with the UpdateTable API."),
        "firehose": Failure(503, "ServiceUnavailableException", "Slow down."),
        "s3": Failure(503, "SlowDown", "Please reduce your request rate."),
        "*": Failure(400, "ThrottlingException", "Rate exceeded"),
    },
    "internal": {
        "dynamodb": Failure(500, "InternalServerError", "Internal server error"),
        "s3": Failure(500, "InternalError", "We encountered an internal error. Please try again."),
        "*": Failure(500, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
    },
    "unavailable": {
        "s3": Failure(503, "ServiceUnavailable", "Service is unable to handle request."),
        "*": Failure(503, "ServiceUnavailable", "The service is unavailable. Please try again shortly."),
    },
}
# Query-protocol services name throttling differently from JSON ones.
QUERY_THROTTLING = Failure(400, "Throttling", "Rate exceeded")


def failure_for(kind: str, service: str) -> Failure:
    by_service = FAILURES[kind]
    failure = by_service.get(service, by_service["*"])
    if kind == "throttling" and service not in by_service and protocol_of(service) in ("query", "ec2"):
        return QUERY_THROTTLING
    return failure


def protocol_of(service: str) -> str:
    model = service_model(service)
    return model.metadata["protocol"] if model is not None else ""


def _query_error(failure: Failure) -> AwsResponse:
    fault = "Receiver" if failure.status >= 500 else "Sender"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error>'
        f"<Type>{fault}</Type><Code>{escape(failure.code)}</Code><Message>{escape(failure.message)}</Message>"
        "</Error><RequestId>dealab-fault</RequestId></ErrorResponse>"
    )
    return AwsResponse(failure.status, [("Content-Type", "text/xml")], body.encode())


def _ec2_error(failure: Failure) -> AwsResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{escape(failure.code)}</Code><Message>{escape(failure.message)}</Message>"
        "</Error></Errors><RequestID>dealab-fault</RequestID></Response>"
    )
    return AwsResponse(failure.status, [("Content-Type", "text/xml")], body.encode())


# protocol (botocore's service metadata) → the error response its clients parse
ERROR_SHAPES: dict[str, Callable[[Failure], AwsResponse]] = {
    "json": lambda f: AwsResponse.json_error(f.code, f.message, f.status),
    "rest-json": lambda f: AwsResponse.json_error(f.code, f.message, f.status),
    "rest-xml": lambda f: AwsResponse.xml_error(f.code, f.message, f.status),
    "query": _query_error,
    "ec2": _ec2_error,
}


def supports(service: str) -> bool:
    return service == "*" or protocol_of(service) in ERROR_SHAPES


def error_response(kind: str, service: str) -> AwsResponse:
    return ERROR_SHAPES[protocol_of(service)](failure_for(kind, service))


@dataclass(frozen=True)
class PartialBatch:
    """An operation that fails entry by entry inside a 200 response, and the limits of a valid request."""

    entries: str          # request member holding the entries
    results: str          # response member holding one result per entry, in order
    failed_count: str     # response member counting the failed entries
    entry_errors: dict[str, tuple[str, str]]   # error kind → (ErrorCode, ErrorMessage template)
    max_entries: int
    max_entry_bytes: int
    max_request_bytes: int
    key_counts_toward_size: str = ""            # entry member whose length counts toward the request size
    exists_check: tuple[str, str, dict[str, str]] = ("", "", {})   # (service, operation, {param: request member})

    def entry_size(self, entry: dict) -> int:
        data = entry.get("Data", "")
        try:
            return len(base64.b64decode(data, validate=False))
        except (ValueError, TypeError):
            return len(data)

    def request_is_valid(self, entries: list) -> bool:
        """Whether the service would take the whole request; a request it refuses gets its own error, no fault."""
        if not isinstance(entries, list) or not 0 < len(entries) <= self.max_entries:
            return False
        sizes = [self.entry_size(entry) for entry in entries if isinstance(entry, dict)]
        if len(sizes) != len(entries) or any(size > self.max_entry_bytes for size in sizes):
            return False
        keys = sum(len(entry.get(self.key_counts_toward_size, "")) for entry in entries) if self.key_counts_toward_size else 0
        return sum(sizes) + keys <= self.max_request_bytes


MIB = 1024 * 1024
# (service, operation) → how its partial failures look. AWS answers these with HTTP 200 and per-entry errors.
PARTIAL_BATCHES: dict[tuple[str, str], PartialBatch] = {
    ("kinesis", "PutRecords"): PartialBatch(
        entries="Records", results="Records", failed_count="FailedRecordCount",
        entry_errors={
            "throttling": ("ProvisionedThroughputExceededException",
                           "Rate exceeded for shard {shard} in stream {stream} under account 123456789012."),
            "internal": ("InternalFailure", "Internal service failure."),
            "unavailable": ("InternalFailure", "Internal service failure."),
        },
        max_entries=500, max_entry_bytes=MIB, max_request_bytes=5 * MIB, key_counts_toward_size="PartitionKey",
        exists_check=("kinesis", "DescribeStreamSummary", {"StreamName": "StreamName", "StreamARN": "StreamARN"}),
    ),
    ("firehose", "PutRecordBatch"): PartialBatch(
        entries="Records", results="RequestResponses", failed_count="FailedPutCount",
        entry_errors={
            "throttling": ("ServiceUnavailableException", "Slow down."),
            "internal": ("InternalFailure", "Internal service failure."),
            "unavailable": ("ServiceUnavailableException", "Slow down."),
        },
        max_entries=500, max_entry_bytes=1000 * 1024, max_request_bytes=4 * MIB,
        exists_check=("firehose", "DescribeDeliveryStream", {"DeliveryStreamName": "DeliveryStreamName"}),
    ),
}

