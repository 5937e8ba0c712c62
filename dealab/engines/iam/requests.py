"""What IAM evaluation needs from one request: its parameters, the resource ARNs its rule names, the condition
keys it supplies, and a denial in the words and shape of the request's service."""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

from dealab.engines.iam.actions import Rule
from dealab.engines.iam.policy import ACCOUNT_ID
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.operations import service_model

_PLACEHOLDER = re.compile(r"\{([^}]+)\}")
_KEY_IN_DELETE = re.compile(rb"<Key>(.*?)</Key>", re.S)
_DYNAMODB_STREAM_ARN = re.compile(r"arn:aws[\w-]*:dynamodb:[\w-]+:\d{12}:table/[^/|\"\s]+/stream/[^|\"\s]+")


def stream_of_iterator(iterator: str) -> str | None:
    """The DynamoDB stream a shard iterator reads (GetRecords names no stream, yet AWS judges it on the stream's
    ARN). Iterators are opaque, but the backends write the stream's ARN into them: moto as text before a `|`,
    ministack in base64url JSON. None when an iterator does not say (the request is judged on `*` then)."""
    texts = [iterator]
    try:
        texts.append(base64.urlsafe_b64decode(iterator + "=" * (-len(iterator) % 4)).decode("utf-8", "replace"))
    except (binascii.Error, ValueError):
        pass
    found = next((match for text in texts if (match := _DYNAMODB_STREAM_ARN.search(text))), None)
    return found.group(0) if found else None


# Parameters that name a resource by ARN or URL where the table's template wants its name, and the stream a
# DynamoDB Streams shard iterator was issued for.
NAME_FROM_REFERENCE = {
    "QueueName": ("QueueUrl", lambda url: url.rstrip("/").rsplit("/", 1)[-1]),
    "StreamName": ("StreamARN", lambda arn: arn.rsplit("/", 1)[-1]),
    "StreamArn": ("ShardIterator", stream_of_iterator),
}
REST_JSON_SERVICES = frozenset({"lambda", "macie2", "lakeformation", "scheduler"})
S3_CONDITION_HEADERS = ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id", "x-amz-acl",
                        "x-amz-storage-class", "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-content-sha256")
S3_CONDITION_QUERY = ("prefix", "delimiter", "max-keys", "versionid")


def bucket_and_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def operation_of(request: AwsRequest) -> str:
    """The operation as the action tables name it: S3's browser form upload has no botocore operation."""
    if request.service == "s3" and not request.operation and request.method == "POST" and _is_form_upload(request):
        return "PostObject"
    return request.operation


def _is_form_upload(request: AwsRequest) -> bool:
    return request.headers.get("Content-Type", "").startswith("multipart/form-data")


def parameters(request: AwsRequest) -> dict:
    """The request's parameters by their API member names, whatever the protocol."""
    if request.service == "s3":
        bucket, key = bucket_and_key(request.path)
        if not key and request.method == "POST" and _is_form_upload(request):
            key = _form_field(request, "key")
        return {"bucket": bucket, "key": key}
    if request.json:
        params = dict(request.json)
        # a REST-JSON call names its resource in the path, the rest in its body (Scheduler's UpdateSchedule; a Lambda
        # Invoke's body is the payload, so the path decides)
        params.update(_path_parameters(request.service, request.operation, request.path))
    elif request.form:
        params = {name: values[0] for name, values in request.form.items()}
    else:
        params = {name: values[0] for name, values in request.query.items()}
        params.update(_path_parameters(request.service, request.operation, request.path))
    for name, (reference, to_name) in NAME_FROM_REFERENCE.items():
        if name not in params and isinstance(params.get(reference), str):
            params[name] = to_name(params[reference])
    if isinstance(params.get("FunctionName"), str) and params["FunctionName"].startswith("arn:"):
        params["FunctionName"] = params["FunctionName"].split(":")[6]
    if isinstance(params.get("KeyId"), str) and params["KeyId"].startswith("arn:") and ":key/" in params["KeyId"]:
        params["KeyId"] = params["KeyId"].rsplit("/", 1)[-1]
    if isinstance(params.get("SecretId"), str) and params["SecretId"].startswith("arn:") and ":secret:" in params["SecretId"]:
        params["SecretId"] = params["SecretId"].split(":secret:", 1)[1]  # a secret named by its ARN (a rotation function's event)
    return params


def _form_field(request: AwsRequest, name: str) -> str:
    from io import BytesIO

    from werkzeug.formparser import parse_form_data

    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": request.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(request.body)), "wsgi.input": BytesIO(request.body)}
    _, form, files = parse_form_data(environ)
    upload = files.get("file")
    return form.get(name, "").replace("${filename}", upload.filename or "" if upload is not None else "")


@lru_cache(maxsize=512)
def _path_pattern(service: str, operation: str) -> re.Pattern | None:
    model = service_model(service)
    if model is None or operation not in model.operation_names:
        return None
    template = model.operation_model(operation).http.get("requestUri", "/").partition("?")[0]
    members = {}
    input_shape = model.operation_model(operation).input_shape
    if input_shape is not None:
        for member, shape in input_shape.members.items():
            if shape.serialization.get("location") == "uri":
                members[shape.serialization.get("name", member)] = member
    pieces = []
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{"):
            label = piece.strip("{}+")
            group = re.sub(r"\W", "_", members.get(label, label))
            pieces.append(f"(?P<{group}>.+)" if piece.endswith("+}") else f"(?P<{group}>[^/]+)")
        else:
            pieces.append(re.escape(piece))
    return re.compile("".join(pieces).rstrip("/") + "/?$")


def _path_parameters(service: str, operation: str, path: str) -> dict:
    pattern = _path_pattern(service, operation)
    match = pattern.match(path) if pattern is not None else None
    return {name: unquote(value) for name, value in match.groupdict().items()} if match else {}


def resources(rule: Rule, request: AwsRequest, params: dict) -> list[str]:
    """Every ARN the rule's templates name for this request."""
    arns: list[str] = []
    for template in rule.resources:
        if request.service == "s3" and template.endswith("/{key}") and request.operation == "DeleteObjects":
            keys = [unquote(k.decode()) for k in _KEY_IN_DELETE.findall(request.body)]
            arns += [f"arn:aws:s3:::{params['bucket']}/{key}" for key in keys]
            continue
        arns += _expand(template, request, params)
    return arns or ["*"]


def _expand(template: str, request: AwsRequest, params: dict) -> list[str]:
    results = [""]
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        literal = template[position:match.start()]
        choices = _values(match.group(1), request, params)
        results = [done + literal + choice for done in results for choice in choices]
        position = match.end()
    return [done + template[position:] for done in results]


def _values(placeholder: str, request: AwsRequest, params: dict) -> list[str]:
    if placeholder == "region":
        return [request.region]
    if placeholder == "account":
        return [ACCOUNT_ID]
    name, _, default = placeholder.partition("=")
    value = params
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, dict):
        return [str(k) for k in value] or ["*"]
    if isinstance(value, list):
        return [str(v) for v in value] or ["*"]
    if value in (None, ""):
        return [default or "*"]
    return [str(value)]


def request_tags(request: AwsRequest, params: dict) -> dict[str, str]:
    """The tags a request asks to set (aws:RequestTag/…, aws:TagKeys), in any API's spelling."""
    if request.service == "s3":
        return dict(parse_qsl(request.headers.get("x-amz-tagging", ""), keep_blank_values=True))
    tags = params.get("Tags", params.get("tags"))
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list):
        return {str(t.get("Key", t.get("key", ""))): str(t.get("Value", t.get("value", ""))) for t in tags if isinstance(t, dict)}
    found = {}
    for name, value in params.items():  # query protocol: Tags.member.1.Key / Tags.member.1.Value
        match = re.fullmatch(r"Tags\.member\.(\d+)\.Key", name)
        if match:
            found[value] = params.get(f"Tags.member.{match.group(1)}.Value", "")
    return found


def service_keys(request: AwsRequest, params: dict) -> dict[str, list[str]]:
    """The service-specific condition keys the request itself supplies."""
    keys: dict[str, list[str]] = {}
    if request.service == "s3":
        for header in S3_CONDITION_HEADERS:
            value = request.headers.get(header)
            if value is not None:
                keys[f"s3:{header}"] = [value]
        for name in S3_CONDITION_QUERY:
            if name in request.query:
                keys[f"s3:{name}"] = [request.query[name][0]]
        for tag, value in request_tags(request, params).items():
            keys[f"s3:requestobjecttag/{tag.lower()}"] = [value]
    elif request.service == "kms":
        context = params.get("EncryptionContext")
        if isinstance(context, dict):
            for name, value in context.items():
                keys[f"kms:encryptioncontext:{name.lower()}"] = [str(value)]
            keys["kms:encryptioncontextkeys"] = [str(name) for name in context]
        keys["kms:calleraccount"] = [ACCOUNT_ID]
    elif request.service == "sts" and request.operation == "AssumeRole":
        for name, key in (("ExternalId", "sts:externalid"), ("RoleSessionName", "sts:rolesessionname")):
            if params.get(name):
                keys[key] = [params[name]]
        transitive = [value for name, value in params.items() if name.startswith("TransitiveTagKeys.member.")]
        if transitive:
            keys["sts:transitivetagkeys"] = transitive
    return keys


# ---- denials, as each service words and shapes them ----------------------------------------------------------
def denial(request: AwsRequest, caller_arn: str, action: str, resource: str, reason: str) -> AwsResponse:
    quoted = f'"{resource}"' if request.service == "s3" else resource
    message = f"User: {caller_arn} is not authorized to perform: {action} on resource: {quoted} {reason}".rstrip()
    return refusal(request, message, resource)


def refusal(request: AwsRequest, message: str, resource: str = "") -> AwsResponse:
    if request.service == "s3":
        return AwsResponse.xml_error("AccessDenied", message, 403, resource)
    if "X-Amz-Target" in request.headers or request.service in REST_JSON_SERVICES:
        return AwsResponse.json_error("AccessDeniedException", message, 403 if request.service in REST_JSON_SERVICES else 400)
    code = "AuthorizationError" if request.service == "sns" else "AccessDenied"
    return query_error(code, message, 403)


def query_error(code: str, message: str, status: int = 400) -> AwsResponse:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error><RequestId>dealab-iam</RequestId></ErrorResponse>")
    return AwsResponse(status, [("Content-Type", "text/xml")], body.encode())


def query_result(operation: str, namespace: str, result_xml: str) -> AwsResponse:
    body = (f'<{operation}Response xmlns="{namespace}"><{operation}Result>{result_xml}</{operation}Result>'
            f"<ResponseMetadata><RequestId>dealab-iam</RequestId></ResponseMetadata></{operation}Response>")
    return AwsResponse(200, [("Content-Type", "text/xml")], body.encode())


def xml_fields(fields: dict) -> str:
    """A flat or nested dict as query-protocol XML elements (lists as <member> items)."""
    parts = []
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, dict):
            parts.append(f"<{name}>{xml_fields(value)}</{name}>")
        elif isinstance(value, list):
            items = "".join(f"<member>{xml_fields(item) if isinstance(item, dict) else escape(str(item))}</member>" for item in value)
            parts.append(f"<{name}>{items}</{name}>")
        else:
            parts.append(f"<{name}>{escape(str(value))}</{name}>")
    return "".join(parts)
