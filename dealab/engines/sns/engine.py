"""The SNS engine: a message published to a topic reaches its `lambda` subscriptions.

Publish and PublishBatch alike: each entry of a batch the backend accepted is delivered as a Publish of it
would be (its own MessageId, Subject, MessageStructure, MessageAttributes and the subscription's filter policy).

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
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

from botocore.exceptions import ClientError
from moto.sns.utils import FilterPolicyMatcher

from dealab.wire import labtime
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse

log = logging.getLogger("dealab.sns")

_MESSAGE_ID = re.compile(r"<MessageId>([^<]+)</MessageId>")
_ATTRIBUTE_FIELD = re.compile(r"MessageAttributes\.entry\.(\d+)\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)")
_BATCH_FIELD = re.compile(r"PublishBatchRequestEntries\.member\.(\d+)\.(.+)")


class SnsEngine(Engine):
    name = "sns"
    operations = {("sns", "Publish"): "_publish", ("sns", "PublishBatch"): "_publish_batch"}

    def _publish(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        topic_arn = _field(request, "TopicArn")
        if response.status != 200 or not topic_arn:
            return response
        found = _MESSAGE_ID.search(response.read().decode("utf-8", "replace"))
        message_id = unescape(found.group(1)) if found else ""
        fields = {**request.query, **request.form}
        self._deliver(topic_arn, [(message_id, {name: values[0] for name, values in fields.items()})])
        return response

    def _publish_batch(self, request: AwsRequest) -> AwsResponse:
        """Each entry the backend accepted (Successful) goes on as a Publish of it would; failed ones go nowhere."""
        response = request.send_on()
        topic_arn = _field(request, "TopicArn")
        if response.status != 200 or not topic_arn:
            return response
        entries: dict[str, dict[str, str]] = {}
        for key, values in {**request.query, **request.form}.items():
            if matched := _BATCH_FIELD.fullmatch(key):
                entries.setdefault(matched.group(1), {})[matched.group(2)] = values[0]
        by_id = {entry.get("Id"): entry for entry in entries.values()}
        answer = ElementTree.fromstring(response.read())
        accepted = [(member.findtext("{*}Id"), member.findtext("{*}MessageId")) for member in answer.iterfind(".//{*}Successful/{*}member")]
        self._deliver(topic_arn, [(message_id, by_id[entry_id]) for entry_id, message_id in accepted if entry_id in by_id])
        return response

    def _deliver(self, topic_arn: str, messages: list[tuple[str, dict[str, str]]]) -> None:
        """Delivers each (message id, its Publish fields) to the topic's lambda subscriptions."""
        try:
            self._deliver_to_functions(topic_arn, messages)
        except ClientError:  # the Publish is acknowledged; a delivery that fails is logged, as SNS would
            log.exception("SNS → Lambda delivery of %s on %s failed", [message_id for message_id, _ in messages], topic_arn)

    def _deliver_to_functions(self, topic_arn: str, messages: list[tuple[str, dict[str, str]]]) -> None:
        sns = self.own_client("sns")
        subscriptions = [subscription for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                         for subscription in page["Subscriptions"] if subscription["Protocol"] == "lambda"]
        if not subscriptions:
            return
        settings = {subscription["SubscriptionArn"]: sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
                    for subscription in subscriptions}
        for message_id, fields in messages:
            self._deliver_message(topic_arn, message_id, fields, subscriptions, settings)

    def _deliver_message(self, topic_arn: str, message_id: str, fields: dict[str, str], subscriptions: list[dict], settings: dict[str, dict]) -> None:
        message, subject = fields.get("Message") or "", fields.get("Subject")
        attributes = _message_attributes(fields)
        if fields.get("MessageStructure") == "json":
            per_protocol = json.loads(message)
            message = per_protocol.get("lambda", per_protocol.get("default", ""))
        for subscription in subscriptions:
            attributes_of_subscription = settings[subscription["SubscriptionArn"]]
            policy = json.loads(attributes_of_subscription.get("FilterPolicy") or "{}")
            if policy and not FilterPolicyMatcher(policy, attributes_of_subscription.get("FilterPolicyScope")).matches(attributes, message):
                continue
            event = sns_event(subscription["SubscriptionArn"], topic_arn, message_id, message, subject, attributes)
            try:
                self.own_client("lambda").invoke(FunctionName=subscription["Endpoint"], InvocationType="Event", Payload=json.dumps(event).encode())
            except ClientError as error:  # a function that is gone: SNS's delivery fails, the Publish stands
                log.warning("SNS could not deliver %s to %s: %s", message_id, subscription["Endpoint"], error)


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


def _message_attributes(fields: dict[str, str]) -> dict:
    """MessageAttributes.entry.N.* of a query-protocol Publish (or of one PublishBatch entry) as SNS shows them
    to subscribers: name → {Type, Value}."""
    entries: dict[str, dict] = {}
    for key, value in fields.items():
        matched = _ATTRIBUTE_FIELD.fullmatch(key)
        if matched:
            entries.setdefault(matched.group(1), {})[matched.group(2)] = value
    return {entry["Name"]: {"Type": entry.get("Value.DataType", "String"), "Value": entry.get("Value.StringValue", entry.get("Value.BinaryValue"))}
            for entry in entries.values() if "Name" in entry}
