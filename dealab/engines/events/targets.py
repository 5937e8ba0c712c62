"""Invoking a target: one AWS call per kind of target, made through the gateway like any client's.

`TARGETS` maps the service of a target's ARN to the call that hands it the input; each raises
`DeliveryFailure` with the error code EventBridge writes on a dead-lettered event (RESOURCE_NOT_FOUND,
NO_PERMISSIONS, THROTTLING, SDK_CLIENT_ERROR). An event bus target is not here: the engine puts the event on
that bus itself, nor a Glue workflow (the engine sends Glue's NotifyEvent, which no SDK has). Scheduler's universal targets (`arn:aws:scheduler:::aws-sdk:<service>:<apiAction>`) call
the named API with the input as its parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore import xform_name

ClientFor = Callable[[str, str], object]  # (service, region) → boto3 client through the gateway

NOT_FOUND_CODES = ("NotFound", "NonExistent", "DoesNotExist", "NoSuch")
PERMISSION_CODES = ("AccessDenied", "Unauthorized", "Forbidden", "AuthorizationError")
THROTTLING_CODES = ("Throttl", "TooManyRequests", "LimitExceeded", "ProvisionedThroughputExceeded")
# Scheduler's universal targets name services as AWS's API references do; these differ from boto3's names.
UNIVERSAL_SERVICE_NAMES = {"sfn": "stepfunctions", "cloudwatchlogs": "logs", "eventbridge": "events"}


class DeliveryFailure(Exception):
    """`code`: EventBridge's kind of failure; `target_code`/`target_message`: the error the target's API answered, which
    Scheduler records as it is (None when no API answered)."""

    def __init__(self, code: str, message: str, target_code: str | None = None, target_message: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.target_code, self.target_message = target_code, target_message


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn:
        parts = text.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn":
            raise DeliveryFailure("SDK_CLIENT_ERROR", f"{text} is not an ARN")
        return cls(parts[2], parts[3], parts[4], parts[5])


@dataclass
class Options:
    """What a target takes besides its input: the event's id (deduplication, default partition key)."""

    event_id: str
    message_group_id: str | None = None
    partition_key: str | None = None
    extra: dict = field(default_factory=dict)
    # looks a queue's URL up: the engine's own clients, as that is no call AWS makes as the target's role
    lookup: ClientFor | None = None


def failure_of(code: str, message: str, arn: str) -> DeliveryFailure:
    """The failure EventBridge records for a target's error `code`."""
    kind = ("RESOURCE_NOT_FOUND" if any(part in code for part in NOT_FOUND_CODES)
            else "NO_PERMISSIONS" if any(part in code for part in PERMISSION_CODES)
            else "THROTTLING" if any(part in code for part in THROTTLING_CODES)
            else "SDK_CLIENT_ERROR")
    return DeliveryFailure(kind, f"{arn}: {code}: {message}", code, message)


def _failure(error: Exception, arn: str) -> DeliveryFailure:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        return failure_of(code, error.response.get("Error", {}).get("Message", code), arn)
    return DeliveryFailure("SDK_CLIENT_ERROR", f"{arn}: {error}")


def _lambda(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    client_for("lambda", arn.region).invoke(FunctionName=text, InvocationType="Event", Payload=payload.encode())


def _sqs(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    sqs = client_for("sqs", arn.region)
    url = (options.lookup or client_for)("sqs", arn.region).get_queue_url(QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account)["QueueUrl"]
    extra = {}
    if arn.resource.endswith(".fifo"):
        if not options.message_group_id:
            raise DeliveryFailure("SDK_CLIENT_ERROR", f"{text}: a FIFO queue target needs SqsParameters.MessageGroupId")
        extra = {"MessageGroupId": options.message_group_id, "MessageDeduplicationId": options.event_id}
    sqs.send_message(QueueUrl=url, MessageBody=payload, **extra)


def _sns(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    client_for("sns", arn.region).publish(TopicArn=text, Message=payload)


def _states(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    client_for("stepfunctions", arn.region).start_execution(stateMachineArn=text, input=payload)


def _kinesis(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    stream = arn.resource.partition("/")[2]
    client_for("kinesis", arn.region).put_record(StreamName=stream, Data=payload.encode(), PartitionKey=options.partition_key or options.event_id)


def _firehose(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    stream = arn.resource.partition("/")[2]
    client_for("firehose", arn.region).put_record(DeliveryStreamName=stream, Record={"Data": payload.encode()})


def _logs(client_for: ClientFor, arn: Arn, text: str, payload: str, options: Options) -> None:
    group = arn.resource.partition(":")[2].removesuffix(":*")
    logs = client_for("logs", arn.region)
    stream = options.event_id  # one stream per event, named by its id
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass  # a retry of the same event
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": options.extra["timestamp_ms"], "message": payload}])


# The service of a target's ARN → the call that hands it the input.
TARGETS: dict[str, Callable[[ClientFor, Arn, str, str, Options], None]] = {
    "lambda": _lambda,
    "sqs": _sqs,
    "sns": _sns,
    "states": _states,
    "kinesis": _kinesis,
    "firehose": _firehose,
    "logs": _logs,
}


def is_glue_workflow(arn: Arn) -> bool:
    """A Glue workflow target: the engine hands the event to Glue's NotifyEvent itself (no SDK has that call)."""
    return arn.service == "glue" and arn.resource.startswith("workflow/")


def supported(arn_text: str) -> bool:
    try:
        arn = Arn.parse(arn_text)
    except DeliveryFailure:
        return False
    return arn.service in TARGETS or (arn.service == "events" and arn.resource.startswith("event-bus/"))


def invoke(client_for: ClientFor, arn_text: str, payload: str, options: Options) -> None:
    arn = Arn.parse(arn_text)
    call = TARGETS.get(arn.service)
    if call is None:
        raise DeliveryFailure("SDK_CLIENT_ERROR", f"{arn_text}: dealab does not deliver to {arn.service} targets")
    try:
        call(client_for, arn, arn_text, payload, options)
    except DeliveryFailure:
        raise
    except (ClientError, BotoCoreError) as error:
        raise _failure(error, arn_text) from None


def universal_action(arn_text: str) -> tuple[str, str] | None:
    """`arn:aws:scheduler:::aws-sdk:sqs:sendMessage` → ("sqs", "send_message"); None for other ARNs."""
    parts = arn_text.split(":")
    if len(parts) != 8 or parts[2] != "scheduler" or parts[5] != "aws-sdk":
        return None
    service, action = parts[6], parts[7]
    return UNIVERSAL_SERVICE_NAMES.get(service, service), xform_name(action[:1].upper() + action[1:])


def invoke_universal(client_for: ClientFor, arn_text: str, payload: str, region: str) -> None:
    service, method = universal_action(arn_text)
    try:
        parameters = json.loads(payload or "{}")
        client = client_for(service, region)
        call = getattr(client, method, None)
        if call is None:
            raise DeliveryFailure("SDK_CLIENT_ERROR", f"{arn_text}: {service} has no API action {arn_text.rsplit(':', 1)[1]}")
        call(**parameters)
    except DeliveryFailure:
        raise
    except ValueError:
        raise DeliveryFailure("SDK_CLIENT_ERROR", f"{arn_text}: the Input is not the JSON parameters of the API call") from None
    except ParamValidationError as error:
        raise DeliveryFailure("SDK_CLIENT_ERROR", f"{arn_text}: {error}") from None
    except (ClientError, BotoCoreError) as error:
        raise _failure(error, arn_text) from None
    except Exception as error:  # boto3 knows no such service: the learner's ARN names one AWS lacks
        raise DeliveryFailure("SDK_CLIENT_ERROR", f"{arn_text}: {error}") from None
