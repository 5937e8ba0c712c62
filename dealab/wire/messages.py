"""The request and response a gateway passes between clients, engines and the backend."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs

from werkzeug.datastructures import Headers


@dataclass
class AwsRequest:
    method: str
    path: str
    query_string: str
    headers: Headers
    body: bytes
    service: str = ""
    operation: str = ""
    region: str = "us-east-1"
    secure_transport: bool = True
    source_ip: str = "127.0.0.1"
    # The access key that signed a request from the network ("" unsigned: anonymous); None for calls made
    # inside the stack, which act as the account root. Set by the gateway from the door's verdict.
    caller_key: str | None = None
    # The principal behind caller_key as the door verified it (a user's ARN, an STS session's assumed-role ARN, the
    # root's); None where caller_key is None. Engines that act for a caller (Lake Formation, Athena) read it.
    caller_arn: str | None = None
    # Set by the gateway: sends this request on to the backend (or the next engine) and returns its answer.
    forward: Callable[[AwsRequest], AwsResponse] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    @cached_property
    def form(self) -> dict[str, list[str]]:
        content_type = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" not in content_type:
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    @cached_property
    def json(self) -> dict:
        """The parameters of a JSON-protocol call (Glue, Athena, DynamoDB, ...); {} when there are none."""
        if not self.body:
            return {}
        try:
            parsed = json.loads(self.body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def replace_json(self, params: dict) -> None:
        """Sends other parameters on than the caller gave (a JSON-protocol body)."""
        self.body = json.dumps(params).encode()
        self.__dict__.pop("json", None)  # the parsed body is cached

    def send_on(self) -> AwsResponse:
        if self.forward is None:
            raise RuntimeError("this request has no backend to go on to")
        return self.forward(self)


@dataclass
class AwsResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes | Iterable[bytes]

    def read(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        self.body = b"".join(self.body)
        return self.body

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    @classmethod
    def json(cls, payload: dict, status: int = 200) -> AwsResponse:
        return cls(status, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(payload, default=str).encode())

    @classmethod
    def json_error(cls, code: str, message: str, status: int = 400) -> AwsResponse:
        """An error in the shape JSON-protocol clients parse (botocore reads __type and message)."""
        response = cls.json({"__type": code, "message": message, "Message": message}, status)
        response.headers.append(("x-amzn-ErrorType", code))
        response.headers.append(("x-amzn-RequestId", str(uuid.uuid4())))  # botocore's ResponseMetadata.RequestId
        return response

    @classmethod
    def xml_error(cls, code: str, message: str, status: int = 400, resource: str = "") -> AwsResponse:
        """An error in S3's REST-XML shape, with its request id in the body and in x-amz-request-id (where botocore
        reads ResponseMetadata.RequestId from)."""
        from xml.sax.saxutils import escape

        request_id = secrets.token_hex(8).upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
        )
        return cls(status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body.encode())
