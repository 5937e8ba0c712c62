"""The event sources engine: Lambda event source mappings that poll SQS queues, Kinesis streams and DynamoDB
streams and invoke their function, as Lambda's pollers do.

The backend keeps the mappings (so they are journaled), always disabled: whether a mapping is enabled is this
engine's (`eventsources/enabled.json`), so no backend's own poller competes for the queue (ministack runs
Lambda itself; embedded moto's delivery is also switched off in motohooks). This engine runs one poller per
enabled mapping, as threads of its own that reach the queue, stream and function
through the gateway like any client; a poller never holds the backend (an SQS long poll releases it while it
waits). Pollers start for every enabled mapping the backend lists when the stack starts, and follow
Create/Update/DeleteEventSourceMapping; `close` and `reset` stop them. Stream positions are checkpointed in the
store (`eventsources/<uuid>.json`), so a restart resumes after the last batch done.

Pollers read their source as the function's execution role (dealab.wire.rolesessions, service principal
lambda.amazonaws.com), as Lambda's do: CreateEventSourceMapping refuses a role IAM would not let call the source's
reads (InvalidParameterValueException, in Lambda's words), and a mapping whose role loses them keeps polling and
shows LastProcessingResult "PROBLEM: ..." (poller.py) until a read succeeds. Invoking the function is Lambda's own.

Answers show Lambda's transitional states: Creating after Create, Enabling/Disabling/Updating after Update,
Deleting after Delete; Get and List show the settled state (Enabled/Disabled), which the poller reaches at once.
"""

from __future__ import annotations

import json
import logging
import threading

from botocore.exceptions import ClientError
from werkzeug.datastructures import Headers

from dealab.engines.eventsources.poller import Poller
from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.engines.eventsources.sqs import SqsPoller
from dealab.engines.eventsources.streams import SOURCES, StreamPoller
from dealab.wire import access
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.rolesessions import Refused, RoleSessions
from dealab.wire.store import JsonFile, UnsafeName, child_path

log = logging.getLogger("dealab.eventsources")

STARTUP_RETRY_SECONDS = 0.2
# What a poller calls as the execution role, per source (the protocol's target prefix, the parameter naming the
# source, the operations), and how CreateEventSourceMapping words a role without one of them.
NEEDED = {
    "sqs": ("AmazonSQS", "QueueUrl", ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"),
            "The provided execution role does not have permissions to call {operation} on SQS"),
    "kinesis": ("Kinesis_20131202", "StreamARN", ("GetRecords", "GetShardIterator", "DescribeStream", "ListShards"),
                "The provided execution role does not have permissions to call {operation} on Kinesis"),
    "dynamodb": ("DynamoDBStreams_20120810", "StreamArn", ("GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"),
                 "Cannot access stream {source}. Please ensure the role can perform the GetRecords, GetShardIterator, "
                 "DescribeStream, and ListStreams Actions on your stream in IAM."),
}


class EventSourcesEngine(Engine):
    name = "eventsources"
    operations = {
        ("lambda", "CreateEventSourceMapping"): "_create",
        ("lambda", "UpdateEventSourceMapping"): "_update",
        ("lambda", "DeleteEventSourceMapping"): "_delete",
        ("lambda", "GetEventSourceMapping"): "_get",
        ("lambda", "ListEventSourceMappings"): "_list",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self._folder = context.state_dir / self.name
        self._lock = threading.RLock()
        self._pollers: dict[str, Poller] = {}
        self._enabled_file = JsonFile(self._folder / "enabled.json")
        self._enabled: dict[str, bool] = self._enabled_file.load({})  # mapping UUID → enabled, as the learner set it
        self._raw = RawCalls(context.loopback, context.endpoint_url, self.name)
        self._sessions = RoleSessions(context, "lambda.amazonaws.com")
        self._problems: dict[str, str] = {}  # mapping UUID → its poller's "PROBLEM: ..." (a poller finds it again after a restart)
        self._closing = threading.Event()
        threading.Thread(target=self._resume, name="eventsources-resume", daemon=True).start()

    # ---- mappings through the API ----------------------------------------------------------------
    def _create(self, request: AwsRequest) -> AwsResponse:
        refusal = self._role_refusal(request.json.get("FunctionName", ""), request.json.get("EventSourceArn", ""), request.region)
        if refusal is not None:
            return AwsResponse.json_error("InvalidParameterValueException", refusal)
        wanted = request.json.get("Enabled", True)
        return self._answered(request, wanted, lambda enabled: "Creating" if enabled else "Disabled")

    def _update(self, request: AwsRequest) -> AwsResponse:
        asked = request.json.get("Enabled")
        return self._answered(request, asked, lambda _: {True: "Enabling", False: "Disabling"}.get(asked, "Updating"))

    def _delete(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            mapping = json.loads(response.read())
            self._stop(mapping["UUID"])
            self._checkpoints(mapping["UUID"]).remove()
            self._remember(mapping["UUID"], None)
            return AwsResponse.json({**mapping, "State": "Deleting"}, response.status)
        return response

    def _get(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status >= 300:
            return response
        return AwsResponse.json(self._as_learner_set_it(json.loads(response.read())), response.status)

    def _list(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status >= 300:
            return response
        page = json.loads(response.read())
        page["EventSourceMappings"] = [self._as_learner_set_it(mapping) for mapping in page.get("EventSourceMappings", [])]
        return AwsResponse.json(page, response.status)

    def _answered(self, request: AwsRequest, wanted: bool | None, shown_state) -> AwsResponse:
        """Passes the call on with the mapping disabled in the backend, keeps whether the learner wants it
        enabled, (re)starts its poller accordingly, and shows the state Lambda shows right after such a call."""
        if wanted is not None:
            request.replace_json({**request.json, "Enabled": False})
        response = request.send_on()
        if response.status >= 300:
            return response
        mapping = json.loads(response.read())
        if wanted is not None:
            self._remember(mapping["UUID"], bool(wanted))
        mapping = self._as_learner_set_it(mapping)
        self._follow(mapping)
        return AwsResponse.json({**mapping, "State": shown_state(mapping["State"] == "Enabled")}, response.status)

    def _role_refusal(self, function: str, source_arn: str, region: str) -> str | None:
        """Lambda's words when the function's execution role may not read the source (IAM decides, in this process);
        None when it may, or when the backend is left to answer (no such function, a source not polled here)."""
        service = source_arn.split(":")[2] if source_arn.count(":") >= 5 else ""
        judge = access.judge(self.context.loopback)
        if service not in NEEDED or judge is None:
            return None
        try:
            configuration = self.own_client("lambda", region).get_function_configuration(FunctionName=function)
        except ClientError:
            return None
        target, parameter, operations, words = NEEDED[service]
        try:
            found = self._sessions.credentials(configuration["Role"], configuration["FunctionName"], source_arn=configuration["FunctionArn"])
        except Refused:
            return "The role defined for the function cannot be assumed by Lambda."
        if found is None:
            return None
        if service == "sqs":  # the queue's URL, as SQS's JSON protocol names it (IAM reads the queue's name from it)
            account, name = source_arn.split(":")[4:6]
            source = f"{self.context.endpoint_url.rstrip('/')}/{account}/{name}"
        else:
            source = source_arn
        for operation in operations:
            probe = AwsRequest("POST", "/", "", Headers({"X-Amz-Target": f"{target}.{operation}", "Content-Type": "application/x-amz-json-1.0"}),
                               json.dumps({parameter: source}).encode(), service=service if service != "dynamodb" else "dynamodbstreams",
                               operation=operation, region=source_arn.split(":")[3], caller_key=found.access_key)
            if judge(probe) is not None:
                return words.format(operation=operation, source=source_arn)
        return None

    def _report(self, mapping_uuid: str, problem: str | None) -> None:
        with self._lock:
            if problem is None:
                self._problems.pop(mapping_uuid, None)
            else:
                self._problems[mapping_uuid] = problem

    def _remember(self, mapping_uuid: str, enabled: bool | None) -> None:
        with self._lock:
            if enabled is None:
                self._enabled.pop(mapping_uuid, None)
            else:
                self._enabled[mapping_uuid] = enabled
            self._enabled_file.save(self._enabled)

    def _as_learner_set_it(self, mapping: dict) -> dict:
        """The mapping with the state its learner gave it (a mapping this engine never saw keeps the backend's)."""
        enabled = self._enabled.get(mapping.get("UUID", ""))
        if enabled is not None:
            mapping = {**mapping, "State": "Enabled" if enabled else "Disabled"}
        problem = self._problems.get(mapping.get("UUID", ""))
        return mapping if problem is None else {**mapping, "LastProcessingResult": problem}

    # ---- pollers ---------------------------------------------------------------------------------
    def _follow(self, mapping: dict) -> None:
        """Stops the mapping's poller and starts it again with its new settings if it is enabled."""
        self._stop(mapping["UUID"])
        if mapping.get("State") != "Enabled" or self._closing.is_set():
            return
        service = mapping["EventSourceArn"].split(":")[2]
        if service == "sqs":
            poller: Poller = SqsPoller(mapping, self.own_client, self._raw, self._sessions, self._report)
        elif service in SOURCES:
            poller = StreamPoller(mapping, self.own_client, self._raw, self._sessions, self._report, self._checkpoints(mapping["UUID"]))
        else:
            log.warning("event source mapping %s: %s sources are not polled here", mapping["UUID"], service)
            return
        with self._lock:
            self._pollers[mapping["UUID"]] = poller
        poller.start()

    def _stop(self, mapping_uuid: str) -> None:
        with self._lock:
            poller = self._pollers.pop(mapping_uuid, None)
            self._problems.pop(mapping_uuid, None)
        if poller is not None:
            poller.stop()

    def _checkpoints(self, mapping_uuid: str) -> JsonFile:
        try:
            return JsonFile(child_path(self._folder, mapping_uuid, ".json"))
        except UnsafeName:  # not a UUID the backend made; nothing of ours can be kept under it
            return JsonFile(self._folder / "unnamed.json")

    def _resume(self) -> None:
        """Starts a poller for every enabled mapping the backend has; waits for the gateway to answer first."""
        lam = self.own_client("lambda")
        while not self._closing.is_set():
            try:
                kwargs: dict = {}
                while True:
                    page = lam.list_event_source_mappings(**kwargs)
                    for mapping in page.get("EventSourceMappings", []):
                        self._follow(self._as_learner_set_it(mapping))
                    if not page.get("NextMarker"):
                        return
                    kwargs["Marker"] = page["NextMarker"]
            except Exception:  # the gateway is not attached yet
                self._closing.wait(STARTUP_RETRY_SECONDS)

    def _stop_all(self) -> None:
        with self._lock:
            pollers = list(self._pollers.values())
            self._pollers.clear()
        for poller in pollers:
            poller.stopped.set()
        for poller in pollers:
            poller.stop()

    def reset(self) -> None:
        self._stop_all()
        self._sessions.forget()
        with self._lock:
            self._enabled.clear()
            self._problems.clear()
        for path in self._folder.glob("*.json"):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self._closing.set()
        self._stop_all()
