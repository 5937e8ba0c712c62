"""The SNS engine: a message published to a topic reaches its `lambda` subscriptions.

The backend fans a Publish out to SQS and HTTP subscribers itself, but would run a Lambda subscriber in Docker
(its `lambda` delivery is switched off in stack/motohooks.py). Here, once the backend has accepted a Publish,
each `lambda` subscription of the topic whose filter policy matches gets the message as AWS sends it: an
asynchronous Invoke (InvocationType Event, so Lambda's retries and destinations apply) with the SNS event
`{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}`. The function is reached through the Lambda API like
any client's call, so whichever engine answers Invoke runs it.
"""

from __future__ import annotations

import json
import logging
import re
from xml.sax.saxutils import unescape

from botocore.exceptions import ClientError
from moto.sns.utils import FilterPolicyMatcher

from dealab.wire import labtime
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse

log = logging.getLogger("dealab.sns")

_MESSAGE_ID = re.compile(r"<MessageId>([^<]+)</MessageId>")
_ATTRIBUTE_FIELD = re.compile(r"MessageAttributes\.entry\.(\d+)\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)")


class SnsEngine(Engine):
    name = "sns"
    operations = {("sns", "Publish"): "_publish"}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self._clients: dict[str, object] = {}

    def _publish(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        topic_arn = _field(request, "TopicArn")
        if response.status != 200 or not topic_arn:
            return response
        found = _MESSAGE_ID.search(response.read().decode("utf-8", "replace"))
        message_id = unescape(found.group(1)) if found else ""
        try:
            self._deliver_to_functions(request, topic_arn, message_id)
        except ClientError:  # the Publish is acknowledged; a delivery that fails is logged, as SNS would
            log.exception("SNS → Lambda delivery of %s on %s failed", message_id, topic_arn)
        return response

    def _deliver_to_functions(self, request: AwsRequest, topic_arn: str, message_id: str) -> None:
        sns = self._client("sns")
        subscriptions = [subscription for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                         for subscription in page["Subscriptions"] if subscription["Protocol"] == "lambda"]
        if not subscriptions:
            return
        message, subject = _field(request, "Message") or "", _field(request, "Subject")
        attributes = _message_attributes(request)
        if _field(request, "MessageStructure") == "json":
            per_protocol = json.loads(message)
            message = per_protocol.get("lambda", per_protocol.get("default", ""))
        for subscription in subscriptions:
            settings = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
            policy = json.loads(settings.get("FilterPolicy") or "{}")
            if policy and not FilterPolicyMatcher(policy, settings.get("FilterPolicyScope")).matches(attributes, message):
                continue
            event = sns_event(subscription["SubscriptionArn"], topic_arn, message_id, message, subject, attributes)
            try:
                self._client("lambda").invoke(FunctionName=subscription["Endpoint"], InvocationType="Event", Payload=json.dumps(event).encode())
            except ClientError as error:  # a function that is gone: SNS's delivery fails, the Publish stands
                log.warning("SNS could not deliver %s to %s: %s", message_id, subscription["Endpoint"], error)

    def _client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.context.client(service, engine=self.name)
        return self._clients[service]


def sns_event(subscription_arn: str, topic_arn: str, message_id: str, message: str, subject: str | None, attributes: dict) -> dict:
    """The event a function subscribed to a topic receives (docs: "Using Lambda with Amazon SNS")."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn,
            "Subject": subject,
            "Message": message,
            "Timestamp": labtime.live_now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "EXAMPLE",
            "UnsubscribeUrl": "EXAMPLE",
            "MessageAttributes": attributes,
        },
    }]}


def _field(request: AwsRequest, name: str) -> str | None:
    values = request.form.get(name) or request.query.get(name)
    return values[0] if values else None


def _message_attributes(request: AwsRequest) -> dict:
    """MessageAttributes.entry.N.* of a query-protocol Publish as SNS shows them to subscribers: name → {Type, Value}."""
    entries: dict[str, dict] = {}
    for key, values in {**request.query, **request.form}.items():
        matched = _ATTRIBUTE_FIELD.fullmatch(key)
        if matched:
            entries.setdefault(matched.group(1), {})[matched.group(2)] = values[0]
    return {entry["Name"]: {"Type": entry.get("Value.DataType", "String"), "Value": entry.get("Value.StringValue", entry.get("Value.BinaryValue"))}
            for entry in entries.values() if "Name" in entry}
