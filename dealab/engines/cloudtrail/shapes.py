"""One request and its answer as a CloudTrail record, in the shape AWS writes (eventVersion 1.09).

Everything that differs by service or operation is a table here: which calls are data events and of which
resource type, which request members carry data and never appear, which members name the resources that
LookupEvents finds by ResourceType/ResourceName, and how S3's parameters are spelled.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import lru_cache
from urllib.parse import unquote

from botocore import parsers

from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.operations import service_model

ACCOUNT_ID = "123456789012"  # the one account of the stack (moto's default)
EVENT_VERSION = "1.09"

# (service, operation) → the resource type of a data event. Calls not listed are management events.
_S3_OBJECT_CALLS = (
    "GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart",
    "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "GetObjectAcl", "PutObjectAcl",
    "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging", "RestoreObject", "SelectObjectContent", "GetObjectAttributes",
    "GetObjectRetention", "PutObjectRetention", "GetObjectLegalHold", "PutObjectLegalHold", "ListObjects", "ListObjectsV2",
    "ListObjectVersions", "ListMultipartUploads",
)
_DYNAMODB_ITEM_CALLS = (
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem", "TransactGetItems",
    "TransactWriteItems", "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction",
)
DATA_EVENTS: dict[tuple[str, str], str] = {
    **{("s3", name): "AWS::S3::Object" for name in _S3_OBJECT_CALLS},
    **{("dynamodb", name): "AWS::DynamoDB::Table" for name in _DYNAMODB_ITEM_CALLS},
    **{("dynamodbstreams", name): "AWS::DynamoDB::Stream" for name in ("GetRecords", "GetShardIterator", "DescribeStream")},
    ("lambda", "Invoke"): "AWS::Lambda::Function",
    ("lambda", "InvokeWithResponseStream"): "AWS::Lambda::Function",
    **{("kinesis", name): "AWS::Kinesis::Stream" for name in ("PutRecord", "PutRecords", "GetRecords", "GetShardIterator", "SubscribeToShard")},
    **{("sns", name): "AWS::SNS::Topic" for name in ("Publish", "PublishBatch")},
    **{("sqs", name): "AWS::SQS::Queue" for name in ("SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage",
                                                      "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch")},
}
# An operation is read-only when its name starts so (AWS's own convention), unless listed otherwise.
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Query", "Scan", "Search", "Select", "Test")
READ_ONLY_EXCEPTIONS = {("sqs", "ReceiveMessage"): True, ("kinesis", "GetShardIterator"): True, ("athena", "GetQueryResults"): True,
                        ("sts", "GetCallerIdentity"): True, ("s3", "SelectObjectContent"): True, ("sqs", "GetQueueUrl"): True}
# Request members that carry the caller's data (items, records, payloads, secrets): never recorded.
DATA_MEMBERS = frozenset({
    "Item", "Items", "Data", "Records", "Record", "Payload", "Body", "Entries", "ZipFile", "SecretString", "SecretBinary",
    "Message", "MessageBody", "RequestItems", "TransactItems", "ExpressionAttributeValues", "Statement", "Statements",
    "Input", "Detail", "Password", "NewPassword", "OldPassword", "PolicyDocument", "AssumeRolePolicyDocument", "Code",
})
# Where a call names its resources: (service, request member) → resource type, for LookupEvents' ResourceType
# and ResourceName (the members are searched at the top level and one level down, e.g. TableInput.Name).
RESOURCE_MEMBERS: dict[tuple[str, str], str] = {
    ("dynamodb", "TableName"): "AWS::DynamoDB::Table",
    ("glue", "DatabaseName"): "AWS::Glue::Database",
    ("glue", "TableName"): "AWS::Glue::Table",
    ("glue", "JobName"): "AWS::Glue::Job",
    ("glue", "CrawlerName"): "AWS::Glue::Crawler",
    ("lambda", "FunctionName"): "AWS::Lambda::Function",
    ("iam", "UserName"): "AWS::IAM::User",
    ("iam", "RoleName"): "AWS::IAM::Role",
    ("iam", "PolicyArn"): "AWS::IAM::Policy",
    ("iam", "AccessKeyId"): "AWS::IAM::AccessKey",
    ("kinesis", "StreamName"): "AWS::Kinesis::Stream",
    ("firehose", "DeliveryStreamName"): "AWS::KinesisFirehose::DeliveryStream",
    ("athena", "WorkGroup"): "AWS::Athena::WorkGroup",
    ("athena", "QueryExecutionId"): "AWS::Athena::QueryExecution",
    ("cloudtrail", "Name"): "AWS::CloudTrail::Trail",
    ("cloudtrail", "TrailName"): "AWS::CloudTrail::Trail",
    ("events", "Rule"): "AWS::Events::Rule",
    ("stepfunctions", "stateMachineArn"): "AWS::StepFunctions::StateMachine",
    ("sqs", "QueueUrl"): "AWS::SQS::Queue",
    ("sns", "TopicArn"): "AWS::SNS::Topic",
    ("logs", "logGroupName"): "AWS::Logs::LogGroup",
    ("kms", "KeyId"): "AWS::KMS::Key",
    ("secretsmanager", "SecretId"): "AWS::SecretsManager::Secret",
}
# The member a Create/Delete/Update of a service names its main resource by, when it is just "Name".
NAME_MEMBER_TYPES = {"glue": "AWS::Glue::Job", "events": "AWS::Events::Rule", "athena": "AWS::Athena::WorkGroup",
                     "stepfunctions": "AWS::StepFunctions::StateMachine", "sqs": "AWS::SQS::Queue", "sns": "AWS::SNS::Topic",
                     "cloudtrail": "AWS::CloudTrail::Trail", "secretsmanager": "AWS::SecretsManager::Secret"}
GLUE_NAME_TYPES = {"Database": "AWS::Glue::Database", "Table": "AWS::Glue::Table", "Crawler": "AWS::Glue::Crawler",
                   "Job": "AWS::Glue::Job", "Trigger": "AWS::Glue::Trigger", "Workflow": "AWS::Glue::Workflow"}
# The event source a service's events carry when its endpoint prefix is not it (eventSource and aws.<x>).
EVENT_SOURCE_OVERRIDES = {"cloudwatch": "monitoring", "stepfunctions": "states", "dynamodbstreams": "dynamodb"}
# Query parameters that are the signature, not the caller's parameters.
_SIGNATURE_QUERY = re.compile(r"^(X-Amz-|AWSAccessKeyId$|Signature$|Expires$|x-id$)", re.I)
_ERROR_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_ERROR_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")
_ACCESS_KEY_HEADER = re.compile(r"Credential=([^/,\s]+)/|^AWS ([^:]+):")


def event_source_prefix(service: str) -> str:
    return EVENT_SOURCE_OVERRIDES.get(service) or _endpoint_prefix(service)


@lru_cache(maxsize=None)
def _endpoint_prefix(service: str) -> str:
    model = service_model(service)
    return (model.metadata.get("endpointPrefix") if model is not None else None) or service


def category(service: str, operation: str) -> str:
    return "Data" if (service, operation) in DATA_EVENTS else "Management"


def read_only(service: str, operation: str) -> bool:
    known = READ_ONLY_EXCEPTIONS.get((service, operation))
    return known if known is not None else operation.startswith(READ_ONLY_PREFIXES)


def access_key_of(request: AwsRequest) -> str | None:
    match = _ACCESS_KEY_HEADER.search(request.headers.get("Authorization", ""))
    if match:
        return match.group(1) or match.group(2)
    credential = (request.query.get("X-Amz-Credential") or request.query.get("AWSAccessKeyId") or [""])[0]
    return credential.split("/", 1)[0] or None


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _shaped(value, drop: frozenset[str] = DATA_MEMBERS):
    """Parameters as CloudTrail spells them: member names in lowerCamelCase, data members left out."""
    if isinstance(value, dict):
        return {lower_camel(key): _shaped(item, drop) for key, item in value.items() if key not in drop}
    if isinstance(value, list):
        return [_shaped(item, drop) for item in value]
    return value


def s3_bucket_and_key(path: str, host: str) -> tuple[str, str]:
    """(bucket, key) of an S3 request, path-style or virtual-hosted (<bucket>.localhost / .s3...)."""
    name = host.split(":", 1)[0]
    for suffix in (".localhost", ".s3.amazonaws.com"):
        if name.endswith(suffix) and name != suffix.lstrip("."):
            return name[: -len(suffix)], unquote(path.lstrip("/"))
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def request_parameters(request: AwsRequest) -> dict | None:
    if request.service == "s3":
        bucket, key = s3_bucket_and_key(request.path, request.headers.get("Host", ""))
        parameters = {name: values[0] for name, values in request.query.items() if not _SIGNATURE_QUERY.match(name)}
        if bucket:
            parameters["bucketName"] = bucket
        parameters["Host"] = request.headers.get("Host", "")
        if key:
            parameters["key"] = key
        return parameters
    body = request.json if request.body[:1] == b"{" else {}
    form = {name: values[0] for name, values in request.form.items() if name not in ("Action", "Version")}
    labels = _rest_labels(request)
    parameters = {**labels, **{name: values[0] for name, values in request.query.items() if not _SIGNATURE_QUERY.match(name)}, **form, **body}
    return _shaped(parameters) or None


def _rest_labels(request: AwsRequest) -> dict:
    """The values of a REST call's URI labels ({FunctionName}, {name}), named by their input members."""
    model = service_model(request.service)
    if model is None or model.metadata.get("protocol") not in ("rest-json", "rest-xml"):
        return {}
    try:
        operation = model.operation_model(request.operation)
    except Exception:
        return {}
    template = operation.http.get("requestUri", "/").partition("?")[0]
    names = re.findall(r"\{([^}+]+)\+?\}", template)
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template).replace(r"\+\}", r"\}")).rstrip("/") + "/?$"
    match = re.match(pattern, request.path)
    if not match:
        return {}
    by_location = {}
    shape = operation.input_shape
    for member, member_shape in (shape.members.items() if shape is not None else ()):
        if member_shape.serialization.get("location") == "uri":
            by_location[member_shape.serialization.get("name", member)] = member
    return {by_location.get(name, name): unquote(value) for name, value in zip(names, match.groups())}


def response_elements(request: AwsRequest, response: AwsResponse, is_read_only: bool) -> dict | None:
    """What a successful mutating call answered (AWS leaves reads' and S3's answers out: null)."""
    if is_read_only or response.status >= 300 or request.service == "s3":
        return None
    body = response.read()
    if not body:
        return None
    if body[:1] == b"{":
        try:
            return _shaped(json.loads(body)) or None
        except ValueError:
            return None
    return _parsed_xml(request, response, body)


def _parsed_xml(request: AwsRequest, response: AwsResponse, body: bytes) -> dict | None:
    model = service_model(request.service)
    if model is None:
        return None
    try:
        operation = model.operation_model(request.operation)
        parser = parsers.create_parser(model.metadata["protocol"])
        parsed = parser.parse({"body": body, "headers": dict(response.headers), "status_code": response.status}, operation.output_shape)
    except Exception:  # an answer botocore cannot read is recorded as AWS records an empty one
        return None
    parsed.pop("ResponseMetadata", None)
    return json.loads(json.dumps(_shaped(parsed), default=str)) or None


def error_of(response: AwsResponse) -> tuple[str, str] | None:
    """(errorCode, errorMessage) of a failed call, in any protocol's error shape."""
    if response.status < 300:
        return None
    body = response.read()
    code = response.header("x-amzn-ErrorType") or ""
    message = ""
    if body[:1] == b"{":
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        code = code or parsed.get("__type") or parsed.get("code") or ""
        message = parsed.get("message") or parsed.get("Message") or ""
    else:
        found = _ERROR_CODE.search(body)
        code = code or (found.group(1).decode("utf-8", "replace") if found else "")
        found = _ERROR_MESSAGE.search(body)
        message = found.group(1).decode("utf-8", "replace") if found else ""
    code = code.split(":", 1)[0].rpartition("#")[2] or f"HTTP{response.status}"
    return code, message


def resources(request: AwsRequest, parameters: dict | None, kind: str | None) -> list[dict]:
    """The resources a call names, as (type, ARN or name): a data event's resources as AWS lists them in the
    record, a management event's for LookupEvents."""
    if request.service == "s3":
        bucket = (parameters or {}).get("bucketName")
        if not bucket:
            return []
        found = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": ACCOUNT_ID}]
        key = (parameters or {}).get("key")
        if kind == "AWS::S3::Object" and key:
            found.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
        return found
    source = {**request.json, **{name: values[0] for name, values in request.form.items()}, **_rest_labels(request)}
    found = []
    for member, value in _members(source):
        resource_type = RESOURCE_MEMBERS.get((request.service, member))
        if resource_type is None and member == "Name":
            resource_type = _name_type(request)
        if resource_type and isinstance(value, str) and value:
            found.append({"type": resource_type, "ARN": value if value.startswith("arn:") else _arn(resource_type, value, request.region)})
    if kind and not any(item["type"] == kind for item in found) and found:
        found[0]["type"] = kind
    return found


def _members(source: dict):
    for key, value in source.items():
        yield key, value
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                yield inner, inner_value


def _name_type(request: AwsRequest) -> str | None:
    if request.service == "glue":
        for word, resource_type in GLUE_NAME_TYPES.items():
            if word in request.operation:
                return resource_type
    return NAME_MEMBER_TYPES.get(request.service)


# resource type → ARN template (name, region); types not listed keep their bare name, as LookupEvents shows it
ARN_TEMPLATES = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Kinesis::Stream": "arn:aws:kinesis:{region}:{account}:stream/{name}",
}


def _arn(resource_type: str, name: str, region: str) -> str:
    template = ARN_TEMPLATES.get(resource_type)
    return template.format(region=region, account=ACCOUNT_ID, name=name) if template else name


def resource_name(resource: dict) -> str:
    """The name LookupEvents shows and matches: the bucket or table name, not its whole ARN."""
    arn = resource["ARN"]
    if arn.startswith("arn:aws:s3:::"):
        return arn[len("arn:aws:s3:::"):]
    if arn.startswith("arn:") and resource["type"] in ARN_TEMPLATES:
        return re.split(r"[/:]", arn.split(":", 5)[5], maxsplit=1)[-1]
    return arn


def build(request: AwsRequest, response: AwsResponse, identity: dict, event_time: str) -> tuple[dict, list[dict]]:
    """The record, and the resources LookupEvents lists for it ({ResourceType, ResourceName})."""
    service, operation = request.service, request.operation
    kind = DATA_EVENTS.get((service, operation))
    is_read_only = read_only(service, operation)
    parameters = request_parameters(request)
    record = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": identity,
        "eventTime": event_time,
        "eventSource": f"{event_source_prefix(service)}.amazonaws.com",
        "eventName": operation,
        "awsRegion": request.region,
        # a call a service made itself (userIdentity.invokedBy) shows the service's name as its address and agent
        "sourceIPAddress": identity.get("invokedBy") or request.source_ip,
        "userAgent": identity.get("invokedBy") or request.headers.get("User-Agent", ""),
    }
    failure = error_of(response)
    if failure is not None:
        record["errorCode"], record["errorMessage"] = failure
    record["requestParameters"] = parameters
    record["responseElements"] = None if failure else response_elements(request, response, is_read_only)
    record["requestID"] = response.header("x-amzn-RequestId") or response.header("x-amz-request-id") or str(uuid.uuid4())
    record["eventID"] = str(uuid.uuid4())
    record["readOnly"] = is_read_only
    found = resources(request, parameters, kind)
    if kind is not None and found:
        record["resources"] = found
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = kind is None
    record["recipientAccountId"] = ACCOUNT_ID
    record["eventCategory"] = "Data" if kind else "Management"
    if request.secure_transport:
        record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                "clientProvidedHostHeader": request.headers.get("Host", "")}
    return record, [{"ResourceType": item["type"], "ResourceName": resource_name(item)} for item in found]
