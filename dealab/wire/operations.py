"""Names the AWS service and operation of a raw HTTP request, the way AWS's front door does.

The service comes from the SigV4 credential scope (header or presigned query); the operation from the
protocol: X-Amz-Target for JSON services, Action for query services, and for REST services the method, path
template and required query/header members of botocore's own service model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import ServiceModel

from dealab.wire.messages import AwsRequest

# Requests that only read state (the journal keeps none of them); everything else may change it (ReceiveMessage included).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "Search", "Select", "Lookup", "BatchGet", "Test")
# Operations that read despite their names, or create nothing worth replaying.
READ_ONLY_OPERATIONS = frozenset({"GetShardIterator", "GetRecords", "Decrypt", "GenerateDataKey", "Encrypt", "AssumeRole", "GetCallerIdentity"})

# Signing names that differ from botocore's service name. JSON services sharing a signing name
# (dynamodb / dynamodbstreams) are told apart by their X-Amz-Target prefix instead.
SERVICE_BY_SIGNING_NAME = {
    "monitoring": "cloudwatch",
    "states": "stepfunctions",
    "email": "ses",
    "execute-api": "apigateway",
    "elasticmapreduce": "emr",
    "es": "opensearch",
    "kinesisanalytics": "kinesisanalyticsv2",
    "iam": "iam",
    "sso": "sso-admin",
    "aws-marketplace": "marketplace-catalog",
}

SERVICE_BY_TARGET_PREFIX = {
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "DynamoDB_20120810": "dynamodb",
    "AWSGlue": "glue",
    "AmazonAthena": "athena",
    "Kinesis_20131202": "kinesis",
    "Firehose_20150804": "firehose",
    "TrentService": "kms",
    "Logs_20140328": "logs",
    "AWSStepFunctions": "stepfunctions",
    "AWSEvents": "events",
    "secretsmanager": "secretsmanager",
    "AmazonSQS": "sqs",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
    "GraniteServiceVersion20100801": "cloudwatch",
    "AWSLakeFormation": "lakeformation",
}

S3CONTROL_PATH = "/v20180820/"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_QUERY_CREDENTIAL = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    region: str


def identify(method: str, path: str, query: dict[str, list[str]], headers, form: dict[str, list[str]]) -> Operation:
    region, signing_name = _credential_scope(headers, query)
    target = headers.get("X-Amz-Target", "")
    if target:
        prefix, _, name = target.rpartition(".")
        service = SERVICE_BY_TARGET_PREFIX.get(prefix) or _service_for(signing_name)
        return Operation(service, name, region)
    service = _service_for(signing_name) if signing_name else _service_from_path(path)
    if service == "s3" and path.startswith(S3CONTROL_PATH) and "x-amz-account-id" in headers:
        service = "s3control"  # S3 Control signs as s3; its paths and AccountId header tell it apart
    action = (query.get("Action") or form.get("Action") or [""])[0]
    if action:
        return Operation(service, action, region)
    return Operation(service, _rest_operation(service, method, path, query, headers), region)


def _credential_scope(headers, query: dict[str, list[str]]) -> tuple[str, str]:
    match = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    if match:
        return match.group(1), match.group(2)
    match = _QUERY_CREDENTIAL.match((query.get("X-Amz-Credential") or [""])[0])
    if match:
        return match.group(1), match.group(2)
    return "us-east-1", ""


def _service_for(signing_name: str) -> str:
    return SERVICE_BY_SIGNING_NAME.get(signing_name, signing_name)


def _service_from_path(path: str) -> str:
    # Unsigned requests (a browser, curl) are S3's: every other AWS API demands a signature.
    return "s3" if not path.startswith("/moto-api") else "moto-api"


@dataclass(frozen=True)
class _RestRoute:
    name: str
    method: str
    pattern: re.Pattern
    literal_segments: int
    query_literals: dict[str, str | None]
    required_query: frozenset[str]
    required_headers: frozenset[str]
    current: bool  # not deprecated: newer SDKs send the current twin of a deprecated operation's URI


@lru_cache(maxsize=None)
def service_model(service: str) -> ServiceModel | None:
    """botocore's model of a service, or None for a name botocore does not know."""
    try:
        return botocore.session.get_session().get_service_model(service)
    except UnknownServiceError:
        return None


@lru_cache(maxsize=None)
def _rest_routes(service: str) -> tuple[_RestRoute, ...]:
    model = service_model(service)
    if model is None:
        return ()
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri = operation.http.get("requestUri", "/")
        path_template, _, query_template = uri.partition("?")
        query_literals: dict[str, str | None] = {}
        for part in filter(None, query_template.split("&")):
            key, eq, value = part.partition("=")
            if key != "x-id":  # botocore adds it, other SDKs do not send it
                query_literals[key] = value if eq else None
        required_query: set[str] = set()
        required_headers: set[str] = set()
        shape = operation.input_shape
        if shape is not None:
            for member in shape.required_members:
                serialization = shape.members[member].serialization
                location = serialization.get("location")
                if location == "querystring":
                    required_query.add(serialization.get("name", member))
                elif location == "header":
                    required_headers.add(serialization.get("name", member).lower())
        regex = "".join(
            "(?P<g%d>.+)" % i if piece.endswith("+}") else "(?P<g%d>[^/]+)" % i if piece.startswith("{") else re.escape(piece)
            for i, piece in enumerate(re.split(r"(\{[^}]+\})", path_template))
        )
        literal_segments = len([s for s in path_template.split("/") if s and not s.startswith("{")])
        routes.append(
            _RestRoute(
                name,
                operation.http.get("method", "GET"),
                re.compile(regex.rstrip("/") + "/?$"),
                literal_segments,
                query_literals,
                frozenset(required_query),
                frozenset(required_headers),
                not operation.deprecated,
            )
        )
    return tuple(routes)


def _rest_operation(service: str, method: str, path: str, query: dict[str, list[str]], headers) -> str:
    header_names = {name.lower() for name in headers.keys()}
    best_name, best_score = "", None
    for route in _rest_routes(service):
        if route.method != method or not route.pattern.match(path):
            continue
        if not route.required_query <= query.keys() or not route.required_headers <= header_names:
            continue
        if any(key not in query or (value is not None and query[key][0] != value) for key, value in route.query_literals.items()):
            continue
        score = (len(route.query_literals), route.literal_segments, len(route.required_headers), len(route.required_query), route.current)
        if best_score is None or score > best_score:
            best_name, best_score = route.name, score
    return best_name


def is_mutating(request: AwsRequest) -> bool:
    """Whether a request may change state: anything but a read (an S3 request no operation was named for, by its method)."""
    if request.service == "s3" and not request.operation:
        return request.method not in ("GET", "HEAD", "OPTIONS")
    return not (request.operation.startswith(READ_ONLY_PREFIXES) or request.operation in READ_ONLY_OPERATIONS)
