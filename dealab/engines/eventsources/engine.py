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

Answers show Lambda's transitional states: Creating after Create, Enabling/Disabling/Updating after Update,
Deleting after Delete; Get and List show the settled state (Enabled/Disabled), which the poller reaches at once.
"""

from __future__ import annotations

import json
import logging
import threading

from dealab.engines.eventsources.poller import Poller
from dealab.engines.eventsources.rawcalls import RawCalls
from dealab.engines.eventsources.sqs import SqsPoller
from dealab.engines.eventsources.streams import SOURCES, StreamPoller
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile, UnsafeName, child_path

log = logging.getLogger("dealab.eventsources")

STARTUP_RETRY_SECONDS = 0.2


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
        self._closing = threading.Event()
        threading.Thread(target=self._resume, name="eventsources-resume", daemon=True).start()

    # ---- mappings through the API ----------------------------------------------------------------
    def _create(self, request: AwsRequest) -> AwsResponse:
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
        return mapping if enabled is None else {**mapping, "State": "Enabled" if enabled else "Disabled"}

    # ---- pollers ---------------------------------------------------------------------------------
    def _follow(self, mapping: dict) -> None:
        """Stops the mapping's poller and starts it again with its new settings if it is enabled."""
        self._stop(mapping["UUID"])
        if mapping.get("State") != "Enabled" or self._closing.is_set():
            return
        service = mapping["EventSourceArn"].split(":")[2]
        if service == "sqs":
            poller: Poller = SqsPoller(mapping, self.own_client, self._raw)
        elif service in SOURCES:
            poller = StreamPoller(mapping, self.own_client, self._raw, self._checkpoints(mapping["UUID"]))
        else:
            log.warning("event source mapping %s: %s sources are not polled here", mapping["UUID"], service)
            return
        with self._lock:
            self._pollers[mapping["UUID"]] = poller
        poller.start()

    def _stop(self, mapping_uuid: str) -> None:
        with self._lock:
            poller = self._pollers.pop(mapping_uuid, None)
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
        with self._lock:
            self._enabled.clear()
        for path in self._folder.glob("*.json"):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self._closing.set()
        self._stop_all()
