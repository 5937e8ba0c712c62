"""A poller's hot calls — ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch and the synchronous
Invoke — handed to the gateway by the loopback's raw seam (dealab.wire.loopback), without botocore.

A busy SQS mapping makes three calls per batch of ten messages. Through a boto3 client each one builds and
validates a request from the model, runs the client's event hooks, signs, and parses the answer into Python
types (datetimes, bytes) that the SQS event then turns back into text; all on the stack's one interpreter,
competing for its lock with the function's own calls. Here the request is the protocol's JSON (SQS's
x-amz-json-1.0, Lambda's REST path) and the answer is read as JSON: the same gateway, engines, journal and
backend, the same answers, fewer steps. A refusal comes back as botocore's ClientError, as from a client.

The queue calls are signed with the function's execution role's session keys (`keys`), so the gateway judges them
as the role's, as AWS does; without keys (a gateway built without the IAM engine) they are the engine's own. The Invoke is always the engine's: Lambda's poller invokes the function as the service.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from botocore.exceptions import ClientError

from dealab.wire.engine import ENGINE_HEADER
from dealab.wire.loopback import Loopback, RawAnswer, sign

SQS_CONTENT_TYPE = "application/x-amz-json-1.0"


class RawCalls:
    def __init__(self, loopback: Loopback, endpoint_url: str, engine: str):
        self._loopback, self._endpoint, self._engine = loopback, endpoint_url.rstrip("/"), engine

    def _send(self, path: str, headers: dict[str, str], body: bytes, service: str, region: str, operation: str,
              keys: tuple[str, str, str | None] | None = None) -> RawAnswer:
        url = self._endpoint + path
        if keys is None:
            headers = {**headers, ENGINE_HEADER: self._engine}
        answer = self._loopback.dispatch("POST", url, sign("POST", url, headers, body, service, region, keys), body)
        if answer.status >= 300:
            raise _client_error(answer, operation)
        return answer

    def _sqs(self, operation: str, region: str, parameters: dict, keys) -> dict:
        answer = self._send("/", {"Content-Type": SQS_CONTENT_TYPE, "X-Amz-Target": f"AmazonSQS.{operation}"},
                            json.dumps(parameters).encode(), "sqs", region, operation, keys)
        return json.loads(answer.body) if answer.body else {}

    def receive(self, region: str, queue_url: str, count: int, wait_seconds: int, keys=None) -> list[dict]:
        """Messages as SQS's JSON protocol gives them: attributes as text, a binary attribute's value in base64."""
        return self._sqs("ReceiveMessage", region, {"QueueUrl": queue_url, "MaxNumberOfMessages": count, "WaitTimeSeconds": wait_seconds,
                                                    "MessageSystemAttributeNames": ["All"], "MessageAttributeNames": ["All"]}, keys).get("Messages", [])

    def delete_batch(self, region: str, queue_url: str, entries: list[dict], keys=None) -> dict:
        return self._sqs("DeleteMessageBatch", region, {"QueueUrl": queue_url, "Entries": entries}, keys)

    def change_visibility_batch(self, region: str, queue_url: str, entries: list[dict], keys=None) -> dict:
        return self._sqs("ChangeMessageVisibilityBatch", region, {"QueueUrl": queue_url, "Entries": entries}, keys)

    def invoke(self, region: str, function: str, payload: bytes) -> RawAnswer:
        """A RequestResponse Invoke: the answer's status, headers (X-Amz-Function-Error, X-Amz-Executed-Version)
        and payload."""
        path = f"/2015-03-31/functions/{quote(function, safe='')}/invocations"
        return self._send(path, {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"},
                          payload, "lambda", region, "Invoke")


def _client_error(answer: RawAnswer, operation: str) -> ClientError:
    """The error of a refused call, as a boto3 client raises it (JSON services' `__type` or Lambda's header)."""
    try:
        document = json.loads(answer.body) if answer.body else {}
    except ValueError:
        document = {}
    code = (answer.headers.get("x-amzn-errortype") or str(document.get("__type") or document.get("code") or f"HTTP{answer.status}"))
    code = code.split(":")[0].rpartition("#")[2]
    message = document.get("message") or document.get("Message") or code
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": answer.status}}, operation)
