"""EVENT triggers: EventBridge events batched into workflow runs, on the lab clock.

An EventBridge rule whose target is a workflow (`arn:aws:glue:REGION:ACCOUNT:workflow/NAME`) hands each event
to Glue's NotifyEvent (the events engine calls it through the gateway, as EventBridge calls Glue). The
workflow's ACTIVATED EVENT trigger collects the events; its EventBatchingCondition starts a run when
BatchSize events have arrived, or when BatchWindow seconds (default 900) have passed on the lab clock since
the first event of the batch, whichever comes first. The run is fired by that trigger alone; its run
properties carry `aws:eventIds` (the batch's event ids) and it shows the condition that started it in
StartingEventBatchCondition (BatchSize non-zero when the count was reached, BatchWindow when the window ran out).

An open batch is kept in state_dir/glue/event-batches.json, so it survives a restart; its window is armed
again on the lab timers when the engine starts (a window that ended while the stack was down fires at once).
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from dealab.engines.glue.jobs import GlueError
from dealab.wire import labtime
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.glue.events")

TIMER_OWNER = "glue"
DEFAULT_BATCH_SIZE = 1
DEFAULT_BATCH_WINDOW_SECONDS = 900
BATCH_SIZE_RANGE = (1, 100)
BATCH_WINDOW_RANGE = (1, 900)
EVENT_IDS_PROPERTY = "aws:eventIds"
RETRY_AFTER = datetime.timedelta(seconds=1)  # a window's run that could not reach the gateway tries again

StartRun = Callable[[str, dict, str, dict], str]  # (workflow, run properties, trigger, batch condition) → run id
Triggers = Callable[[str], list[dict]]  # workflow → its triggers as the backend keeps them
RunEnded = Callable[[str], bool]  # run id → whether the run has ended


def batching_problem(condition: dict | None) -> str | None:
    """Why Glue would refuse this EventBatchingCondition, or None."""
    if condition is None:
        return None
    size, window = condition.get("BatchSize"), condition.get("BatchWindow")
    if size is None:
        return "EventBatchingCondition.BatchSize is required"
    for member, value, (low, high) in (("BatchSize", size, BATCH_SIZE_RANGE), ("BatchWindow", window, BATCH_WINDOW_RANGE)):
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            return f"EventBatchingCondition.{member} must be an integer from {low} to {high}, not {value!r}"
    return None


def event_ids_text(event_ids: list[str]) -> str:
    """The `aws:eventIds` run property: run properties are strings, so the list is written as Glue writes it."""
    return "[" + ", ".join(event_ids) + "]"


class EventBatches:
    def __init__(self, state_dir, triggers: Triggers, start_run: StartRun, run_ended: RunEnded):
        self._triggers, self._start_run, self._run_ended = triggers, start_run, run_ended
        self._file = JsonFile(state_dir / "glue" / "event-batches.json")
        self._lock = threading.Lock()
        # workflow → {"Trigger": name, "EventIds": [...], "FirstAt": ISO lab time, "Size": n, "Window": seconds}
        self._batches: dict[str, dict] = self._file.load({})
        for workflow, batch in self._batches.items():
            self._arm(workflow, batch)

    def notify(self, workflow: str, event_id: str) -> str | None:
        """One event for the workflow: the id of the run it started (its batch is full), or None (it waits)."""
        trigger = self._event_trigger(workflow)
        condition = trigger.get("EventBatchingCondition") or {}
        size = condition.get("BatchSize") or DEFAULT_BATCH_SIZE
        with self._lock:
            batch = self._batches.get(workflow)
            if batch is None or batch["Trigger"] != trigger["Name"]:
                batch = {"Trigger": trigger["Name"], "EventIds": [], "FirstAt": labtime.live_now().isoformat(),
                         "Size": size, "Window": condition.get("BatchWindow") or DEFAULT_BATCH_WINDOW_SECONDS}
                self._batches[workflow] = batch
            batch["EventIds"].append(event_id)
            full = len(batch["EventIds"]) >= batch["Size"]
            if full:
                del self._batches[workflow]
            self._file.save(self._batches)
        if full:
            timers.cancel(TIMER_OWNER, self._key(workflow))
            return self._start(workflow, batch, {"BatchSize": len(batch["EventIds"])})
        if len(batch["EventIds"]) == 1:
            self._arm(workflow, batch)
        return None

    def _event_trigger(self, workflow: str) -> dict:
        for trigger in self._triggers(workflow):
            if trigger["Type"] == "EVENT" and trigger.get("State") == "ACTIVATED":
                return trigger
        raise GlueError("InvalidInputException", f"Workflow {workflow} has no ACTIVATED EVENT trigger to take the event "
                                                 "(create one with Type EVENT and StartOnCreation, or StartTrigger it)")

    @staticmethod
    def _key(workflow: str) -> str:
        return f"event-batch/{workflow}"

    def _arm(self, workflow: str, batch: dict) -> None:
        due = datetime.datetime.fromisoformat(batch["FirstAt"]) + datetime.timedelta(seconds=batch["Window"])
        timers.schedule(TIMER_OWNER, self._key(workflow), due, lambda at: self._window_ended(workflow))

    def _window_ended(self, workflow: str):
        """The batch's window ran out: its run starts, and a clock move waits for it to end before moving on."""
        with self._lock:
            batch = self._batches.pop(workflow, None)
            self._file.save(self._batches)
        if batch is None:
            return None
        try:
            run_id = self._start(workflow, batch, {"BatchWindow": batch["Window"]})
        except (GlueError, ClientError) as error:  # the workflow deleted, or MaxConcurrentRuns: this batch does not run
            log.warning("EVENT trigger %s of workflow %s: batch of %d events not run: %s", batch["Trigger"], workflow,
                        len(batch["EventIds"]), error)
            return None
        except BotoCoreError:  # the gateway does not answer yet (a window that ended while the stack was down)
            with self._lock:
                self._batches.setdefault(workflow, batch)
                self._file.save(self._batches)
            timers.schedule(TIMER_OWNER, self._key(workflow), labtime.live_now() + RETRY_AFTER, lambda at: self._window_ended(workflow))
            return None
        return lambda: self._run_ended(run_id)

    def _start(self, workflow: str, batch: dict, condition: dict) -> str:
        return self._start_run(workflow, {EVENT_IDS_PROPERTY: event_ids_text(batch["EventIds"])}, batch["Trigger"], condition)

    def pending(self, workflow: str) -> list[str]:
        with self._lock:
            return list((self._batches.get(workflow) or {}).get("EventIds", []))

    def forget_workflow(self, workflow: str) -> None:
        with self._lock:
            if self._batches.pop(workflow, None) is not None:
                self._file.save(self._batches)
        timers.cancel(TIMER_OWNER, self._key(workflow))

    def reset(self) -> None:
        with self._lock:
            for workflow in self._batches:
                timers.cancel(TIMER_OWNER, self._key(workflow))
            self._batches = {}
            self._file.save(self._batches)
