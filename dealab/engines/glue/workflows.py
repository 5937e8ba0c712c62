"""Glue workflows and triggers, executed. The backend keeps their definitions (CreateWorkflow, CreateTrigger,
StartTrigger's ACTIVATED state, ...); this module runs them and keeps the runs in state_dir/glue/workflow-runs.json.

- A workflow run snapshots its workflow's triggers when it starts. Its start triggers (ON_DEMAND, SCHEDULED,
  EVENT) fire first; each fired trigger starts its actions (a job run with the action's Arguments merged over
  the job's defaults as StartJobRun merges them, plus `--WORKFLOW_NAME` and `--WORKFLOW_RUN_ID`; or a crawl).
  When an action ends, every ACTIVATED CONDITIONAL trigger of the run not yet fired whose predicate now holds
  fires; the run ends (COMPLETED, STOPPED, or ERROR when an action could not start) when nothing runs.
- All the run machinery works on one thread, fed by a queue: the end of a job run or crawl (hooks of jobs.py
  and crawlers.py) and the start of a run's first actions. So an action is always recorded before the news of
  its end is read, and calls through the gateway are never made with the lock held.
- EVENT triggers start a run when a batch of EventBridge events is complete (eventbatches.py).
- SCHEDULED triggers fire through the lab timers (dealab.wire.timers): as real time passes and at each due
  moment of a clock move, in order; a move fires at most CATCH_UP_LIMIT runs of one trigger and notes the rest.
- Outside a workflow, an ON_DEMAND trigger fires on StartTrigger, a SCHEDULED one on its schedule, and an
  ACTIVATED CONDITIONAL one when a job or crawl it watches ends and the latest runs of what it watches meet it.
- A run in flight when the stack stopped does not resume: it comes back ERROR (its unfinished actions FAILED,
  as the job runs and crawls themselves come back), its finished actions kept; ResumeWorkflowRun restarts it.
"""

from __future__ import annotations

import datetime
import logging
import queue
import secrets
import threading
from collections.abc import Callable

from botocore.exceptions import ClientError

from dealab.engines.glue import triggers as rules
from dealab.engines.glue.crawlers import LOG_GROUP as CRAWLER_LOG_GROUP, Crawls
from dealab.engines.glue.jobs import GlueError, JobRuns
from dealab.wire import labtime
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.glue.workflows")

TIMER_OWNER = "glue"
ACTIVE_RUN_STATES = frozenset({"RUNNING", "STOPPING"})
FINAL_JOB_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"})
# Action members a job run takes over the job's own (StartJobRun's overrides).
ACTION_RUN_OVERRIDES = ("Timeout", "NotificationProperty", "SecurityConfiguration")
STARTUP_RETRY_SECONDS = 0.5
# A clock move fires one schedule at most this many times; the occurrences past them are noted as skipped.
CATCH_UP_LIMIT = 50
STACK_STOPPED = "the dealab stack stopped while this workflow run was {state}; it does not resume (ResumeWorkflowRun restarts its nodes)"


def _new_run_id() -> str:
    return "wr_" + secrets.token_hex(32)


def _error_text(error: Exception) -> str:
    if isinstance(error, GlueError):
        return f"{error.code}: {error.message}"
    if isinstance(error, ClientError):
        return f"{error.response['Error']['Code']}: {error.response['Error'].get('Message', '')}"
    return f"{type(error).__name__}: {error}"


class Workflows:
    def __init__(self, state_dir, glue: Callable[[], object], start_job: Callable[[dict], str], job_runs: JobRuns, crawls: Crawls,
                 crawler: Callable[[str], dict]):
        self._glue, self._start_job, self._job_runs, self._crawls, self._crawler = glue, start_job, job_runs, crawls, crawler
        self._file = JsonFile(state_dir / "glue" / "workflow-runs.json")
        self._lock = threading.RLock()
        self._runs: dict[str, dict] = self._file.load({})
        self._restore()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = threading.Event()
        self._catch_up: dict[str, tuple[datetime.datetime, int]] = {}  # trigger → (the move's target, fires in it)
        job_runs.on_finish = lambda run: self._work.put(lambda: self._job_ended(run))
        crawls.on_finish = lambda name, crawl: self._work.put(lambda: self._crawl_ended(name, crawl))
        self._thread = threading.Thread(target=self._serve, name="glue-workflows", daemon=True)
        self._thread.start()
        threading.Thread(target=self._arm_schedules_at_start, name="glue-trigger-schedules", daemon=True).start()

    # ---- state -----------------------------------------------------------------------------------------
    def _restore(self) -> None:
        now = labtime.unix_time()
        for run in self._runs.values():
            if run["Status"] in ACTIVE_RUN_STATES:
                for action in run["Actions"]:
                    if action["State"] not in rules.FINAL_ACTION_STATES:
                        action["State"] = "FAILED"
                        if "Crawl" in action:
                            action["Crawl"].update(State="FAILED", CompletedOn=now, ErrorMessage="the dealab stack stopped while this crawl was RUNNING")
                run.update(Status="ERROR", CompletedOn=now, ErrorMessage=STACK_STOPPED.format(state=run["Status"]))
        self._save()

    def _save(self) -> None:
        self._file.save(self._runs)

    def _run(self, workflow: str, run_id: str) -> dict:
        run = self._runs.get(run_id)
        if run is None or run["Name"] != workflow:
            raise GlueError("EntityNotFoundException", f"Workflow run {run_id} of workflow {workflow} not found")
        return run

    # ---- workflow runs: API ----------------------------------------------------------------------------
    def start_run(self, workflow_name: str, properties: dict | None = None, fired_by: str | None = None,
                  batch_condition: dict | None = None) -> str:
        """A new run of the workflow: its start triggers fire (only `fired_by` when a schedule, StartTrigger or a
        batch of events started it; `batch_condition` is the batch's StartingEventBatchCondition)."""
        workflow = self.workflow(workflow_name)
        triggers = self.workflow_triggers(workflow["Name"])
        starting = [t["Name"] for t in triggers if t["Type"] in rules.START_TRIGGER_TYPES and (fired_by is None or t["Name"] == fired_by)]
        with self._lock:
            run = self._new_run(workflow, triggers, {**(workflow.get("DefaultRunProperties") or {}), **(properties or {})})
            if batch_condition:
                run["StartingEventBatchCondition"] = batch_condition
                self._save()
        self._work.put(lambda: self._fire_in_run(run["WorkflowRunId"], starting))
        return run["WorkflowRunId"]

    def _new_run(self, workflow: dict, triggers: list[dict], properties: dict, previous: dict | None = None) -> dict:
        limit = workflow.get("MaxConcurrentRuns")
        running = [r for r in self._runs.values() if r["Name"] == workflow["Name"] and r["Status"] in ACTIVE_RUN_STATES]
        if limit and len(running) >= int(limit):
            raise GlueError("ConcurrentRunsExceededException", f"Concurrent runs exceeded for workflow: {workflow['Name']}")
        run = {
            "Name": workflow["Name"], "WorkflowRunId": _new_run_id(), "WorkflowRunProperties": properties,
            "StartedOn": labtime.unix_time(), "Status": "RUNNING", "Triggers": triggers, "Fired": [], "Actions": [],
        }
        if previous:
            run["PreviousRunId"] = previous["WorkflowRunId"]
        self._runs[run["WorkflowRunId"]] = run
        self._save()
        return run

    def get_run(self, workflow: str, run_id: str, include_graph: bool) -> dict:
        with self._lock:
            return self._described(self._run(workflow, run_id), include_graph)

    def runs_of(self, workflow: str, include_graph: bool) -> list[dict]:
        with self._lock:
            runs = [run for run in self._runs.values() if run["Name"] == workflow]
            return [self._described(run, include_graph) for run in sorted(runs, key=lambda run: run["StartedOn"], reverse=True)]

    def last_run(self, workflow: str, include_graph: bool) -> dict | None:
        runs = self.runs_of(workflow, include_graph)
        return runs[0] if runs else None

    def run_ended(self, run_id: str) -> bool:
        with self._lock:
            return self._runs.get(run_id, {}).get("Status") not in ACTIVE_RUN_STATES

    def properties(self, workflow: str, run_id: str) -> dict:
        with self._lock:
            return dict(self._run(workflow, run_id)["WorkflowRunProperties"])

    def put_properties(self, workflow: str, run_id: str, properties: dict) -> None:
        with self._lock:
            self._run(workflow, run_id)["WorkflowRunProperties"].update(properties)
            self._save()

    def stop_run(self, workflow: str, run_id: str) -> None:
        """Running jobs and crawls are stopped and nothing more starts; STOPPING, then STOPPED once all ended."""
        with self._lock:
            run = self._run(workflow, run_id)
            if run["Status"] != "RUNNING":
                raise GlueError("IllegalWorkflowStateException", f"Workflow run {run_id} is {run['Status']}, not RUNNING")
            run["Status"] = "STOPPING"
            self._save()
            running = [action for action in run["Actions"] if action["State"] not in rules.FINAL_ACTION_STATES]
        for action in running:
            try:
                if action["Type"] == rules.JOB:
                    self._job_runs.stop(action["Name"], action["JobRunIds"][-1:])
                else:
                    self._crawls.stop(action["Name"])
            except GlueError:  # ended meanwhile
                pass
        self._work.put(lambda: self._advance(run_id))

    def resume_run(self, workflow_name: str, run_id: str, node_ids: list[str]) -> tuple[str, list[str]]:
        """A new run that keeps the old run's actions outside what the chosen nodes lead to, and runs those
        nodes again (each with the trigger action that started it); downstream triggers fire again."""
        workflow = self.workflow(workflow_name)
        with self._lock:
            old = self._run(workflow["Name"], run_id)
            if old["Status"] in ACTIVE_RUN_STATES:
                raise GlueError("IllegalWorkflowStateException", f"Workflow run {run_id} is {old['Status']}: only a finished run can be resumed")
            attempted = {rules.node_id(action["Type"], action["Name"]): action for action in old["Actions"]}
            unknown = [node for node in node_ids if node not in attempted]
            if not node_ids or unknown:
                raise GlueError("InvalidInputException", f"Nodes to resume must have a run attempt in workflow run {run_id}: {', '.join(unknown) or 'none given'}")
            _, edges = rules.graph(old["Triggers"])
            again = rules.downstream(edges, set(node_ids))
            run = self._new_run(workflow, old["Triggers"], dict(old["WorkflowRunProperties"]), previous=old)
            run["Fired"] = [name for name in old["Fired"] if rules.node_id(rules.TRIGGER, name) not in again]
            run["Actions"] = [{**action, "Carried": True} for action in old["Actions"] if rules.node_id(action["Type"], action["Name"]) not in again]
            self._save()
            triggers = {trigger["Name"]: trigger for trigger in old["Triggers"]}
            restarts = []
            for node in dict.fromkeys(node_ids):
                action = attempted[node]
                trigger = triggers[action["TriggerName"]]
                restarts.append((trigger, next(a for a in trigger["Actions"] if rules.action_node(a) == (action["Type"], action["Name"]))))
        new_id = run["WorkflowRunId"]
        self._work.put(lambda: self._restart(new_id, restarts))
        return new_id, list(dict.fromkeys(node_ids))

    def forget_workflow(self, workflow: str) -> None:
        with self._lock:
            self._runs = {run_id: run for run_id, run in self._runs.items() if run["Name"] != workflow}
            self._save()

    # ---- triggers: API ---------------------------------------------------------------------------------
    def start_on_demand(self, trigger: dict) -> None:
        """StartTrigger of an ON_DEMAND trigger: a new run of its workflow fired by it, or its actions alone."""
        if trigger.get("WorkflowName"):
            self.start_run(trigger["WorkflowName"], fired_by=trigger["Name"])
        else:
            errors = self._start_standalone(trigger)[1]
            if errors:
                raise GlueError("InvalidInputException", f"Trigger {trigger['Name']} could not start its actions: {'; '.join(errors)}")

    def trigger_changed(self, name: str) -> None:
        """After CreateTrigger, StartTrigger, StopTrigger or DeleteTrigger: a SCHEDULED trigger is armed on the
        lab clock while ACTIVATED, and disarmed otherwise."""
        try:
            trigger = self._glue().get_trigger(Name=name)["Trigger"]
        except ClientError:
            trigger = None
        if trigger and trigger["Type"] == "SCHEDULED" and trigger.get("State") == "ACTIVATED":
            self._arm(trigger, labtime.live_now())
        else:
            timers.cancel(TIMER_OWNER, f"trigger/{name}")

    # ---- the run machinery (on the workflows thread) ---------------------------------------------------
    def _serve(self) -> None:
        while True:
            work = self._work.get()
            if work is None:
                return
            try:
                work()
            except Exception:  # one run's trouble never stops the others'
                log.exception("glue workflows")

    def _fire_in_run(self, run_id: str, trigger_names: list[str]) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run["Status"] != "RUNNING":
                return
            firing = [t for t in run["Triggers"] if t["Name"] in trigger_names and t["Name"] not in run["Fired"]]
            run["Fired"] += [trigger["Name"] for trigger in firing]
            self._save()
        for trigger in firing:
            for action in trigger.get("Actions", []):
                self._start_action(run, trigger, action)
        self._advance(run_id)

    def _restart(self, run_id: str, restarts: list[tuple[dict, dict]]) -> None:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run["Status"] != "RUNNING":
            return
        for trigger, action in restarts:
            self._start_action(run, trigger, action)
        self._advance(run_id)

    def _start_action(self, run: dict, trigger: dict, action: dict) -> None:
        kind, name = rules.action_node(action)
        record = {"Type": kind, "Name": name, "TriggerName": trigger["Name"]}
        try:
            if kind == rules.JOB:
                job_run_id = self._start_job({
                    "JobName": name,
                    "Arguments": {**(action.get("Arguments") or {}), "--WORKFLOW_NAME": run["Name"], "--WORKFLOW_RUN_ID": run["WorkflowRunId"]},
                    "TriggerName": trigger["Name"],
                    **{key: action[key] for key in ACTION_RUN_OVERRIDES if action.get(key)},
                })
                record.update(State="STARTING", JobRunIds=[job_run_id])
            else:
                self._crawls.start(self._crawler(name), f"Started by trigger {trigger['Name']} of workflow {run['Name']} (run {run['WorkflowRunId']})")
                record.update(State="RUNNING", Crawl={"State": "RUNNING", "StartedOn": labtime.unix_time(), "LogGroup": CRAWLER_LOG_GROUP, "LogStream": name})
        except (GlueError, ClientError) as error:
            record.update(State="ERROR", ErrorMessage=_error_text(error))
        with self._lock:
            run["Actions"].append(record)
            if record["State"] == "ERROR":
                run.setdefault("ErrorMessage", f"{kind.lower()} {name} (trigger {trigger['Name']}) did not start: {record['ErrorMessage']}")
            self._save()

    def _job_ended(self, job_run: dict) -> None:
        run_id = (job_run.get("Arguments") or {}).get("--WORKFLOW_RUN_ID")
        with self._lock:
            run = self._runs.get(run_id or "")
            action = next((a for a in run["Actions"] if job_run["Id"] in a.get("JobRunIds", [])), None) if run else None
        if action is None:
            self._standalone_ended((rules.JOB, job_run["JobName"]))
            return
        retry_id = self._retry_id(job_run)
        with self._lock:
            if retry_id:  # jobs.py starts the next attempt: the action goes on
                action["JobRunIds"].append(retry_id)
                action["State"] = "RUNNING"
            else:
                action["State"] = job_run["JobRunState"]
            self._save()
        self._advance(run["WorkflowRunId"])

    def _retry_id(self, job_run: dict) -> str | None:
        """The id of the attempt jobs.py starts after this one (a FAILED run of a job with MaxRetries left), or None."""
        if job_run["JobRunState"] != "FAILED":
            return None
        try:
            retries = int(self._glue().get_job(JobName=job_run["JobName"])["Job"].get("MaxRetries", 0) or 0)
        except ClientError:
            return None
        if job_run["Attempt"] >= retries:
            return None
        return f"{job_run['Id'].split('_attempt_')[0]}_attempt_{job_run['Attempt'] + 1}"

    def _crawl_ended(self, name: str, crawl: dict) -> None:
        ended = {"State": crawl["Status"], "StartedOn": crawl.get("StartTime"), "CompletedOn": crawl["CompletedOn"],
                 "LogGroup": crawl.get("LogGroup", CRAWLER_LOG_GROUP), "LogStream": crawl.get("LogStream", name)}
        if crawl.get("ErrorMessage"):
            ended["ErrorMessage"] = crawl["ErrorMessage"]
        with self._lock:
            waiting = [(run, action) for run in self._runs.values() if run["Status"] in ACTIVE_RUN_STATES for action in run["Actions"]
                       if action["Type"] == rules.CRAWLER and action["Name"] == name and action["State"] not in rules.FINAL_ACTION_STATES]
            for _, action in waiting:
                action["State"] = crawl["Status"]
                action["Crawl"] = {**action.get("Crawl", {}), **ended}
            self._save()
        if not waiting:
            self._standalone_ended((rules.CRAWLER, name))
        for run, _ in waiting:
            self._advance(run["WorkflowRunId"])

    def _advance(self, run_id: str) -> None:
        """Fires the run's CONDITIONAL triggers whose predicates now hold; ends the run when nothing runs."""
        while True:
            with self._lock:
                run = self._runs.get(run_id)
                if run is None or run["Status"] not in ACTIVE_RUN_STATES:
                    return
                firing = []
                if run["Status"] == "RUNNING":
                    outcomes = self._outcomes(run)
                    firing = [t for t in run["Triggers"] if t["Type"] == "CONDITIONAL" and t.get("State") == "ACTIVATED"
                              and t["Name"] not in run["Fired"] and rules.predicate_met(t, outcomes)]
                    run["Fired"] += [trigger["Name"] for trigger in firing]
                if not firing:
                    if all(action["State"] in rules.FINAL_ACTION_STATES for action in run["Actions"]):
                        status = "STOPPED" if run["Status"] == "STOPPING" else "ERROR" if run.get("ErrorMessage") else "COMPLETED"
                        run.update(Status=status, CompletedOn=labtime.unix_time())
                    self._save()
                    return
                self._save()
            for trigger in firing:
                for action in trigger.get("Actions", []):
                    self._start_action(run, trigger, action)

    @staticmethod
    def _outcomes(run: dict) -> dict[tuple[str, str], str]:
        """The final state of each job and crawler in the run (its latest action)."""
        return {(action["Type"], action["Name"]): action["State"] for action in run["Actions"] if action["State"] in rules.FINAL_ACTION_STATES}

    # ---- triggers outside workflows --------------------------------------------------------------------
    def _start_standalone(self, trigger: dict) -> tuple[Callable[[], bool], list[str]]:
        """Starts a trigger's actions outside any workflow; returns a check that they have all ended, and errors."""
        started: list[tuple[str, str, str | None]] = []
        errors = []
        for action in trigger.get("Actions", []):
            kind, name = rules.action_node(action)
            try:
                if kind == rules.JOB:
                    params = {"JobName": name, "Arguments": action.get("Arguments") or {}, "TriggerName": trigger["Name"],
                              **{key: action[key] for key in ACTION_RUN_OVERRIDES if action.get(key)}}
                    started.append((kind, name, self._start_job(params)))
                else:
                    self._crawls.start(self._crawler(name), f"Started by trigger {trigger['Name']}")
                    started.append((kind, name, None))
            except (GlueError, ClientError) as error:
                errors.append(f"{kind.lower()} {name}: {_error_text(error)}")

        def ended() -> bool:
            for kind, name, job_run_id in started:
                if kind == rules.JOB and self._job_runs.get(name, job_run_id)["JobRunState"] not in FINAL_JOB_STATES:
                    return False
                if kind == rules.CRAWLER and self._crawls.running(name):
                    return False
            return True

        return ended, errors

    def _standalone_ended(self, node: tuple[str, str]) -> None:
        """A job run or crawl outside workflows ended: ACTIVATED CONDITIONAL triggers outside workflows that
        watch it fire when the latest runs of everything they watch meet their predicate."""
        watching = [t for t in self._all_triggers() if t["Type"] == "CONDITIONAL" and not t.get("WorkflowName")
                    and t.get("State") == "ACTIVATED" and rules.watches(t, node)]
        for trigger in watching:
            if rules.predicate_met(trigger, self._latest_outcomes(trigger)):
                for error in self._start_standalone(trigger)[1]:
                    log.warning("trigger %s: %s", trigger["Name"], error)

    def _latest_outcomes(self, trigger: dict) -> dict[tuple[str, str], str]:
        outcomes = {}
        for condition in (trigger.get("Predicate") or {}).get("Conditions", []):
            kind, name = rules.condition_node(condition)
            if kind == rules.JOB:
                runs = self._job_runs.of_job(name)
                if runs:
                    outcomes[(kind, name)] = runs[0]["JobRunState"]
            else:
                described = {"Name": name}
                self._crawls.describe_into(described)
                if described.get("State") == "READY" and described.get("LastCrawl"):
                    outcomes[(kind, name)] = described["LastCrawl"]["Status"]
        return outcomes

    # ---- SCHEDULED triggers on the lab clock -----------------------------------------------------------
    def _arm(self, trigger: dict, after: datetime.datetime) -> None:
        key = f"trigger/{trigger['Name']}"
        due = rules.next_due(trigger, after)
        if due is None:
            timers.cancel(TIMER_OWNER, key)
        else:
            timers.schedule(TIMER_OWNER, key, due, lambda at: self._scheduled(trigger["Name"], at))

    def _scheduled(self, name: str, at: datetime.datetime):
        """A SCHEDULED trigger's due moment: arms the next one, then fires (a workflow run, or its actions);
        returns the check a clock move waits on before it moves past `at`."""
        try:
            trigger = self._glue().get_trigger(Name=name)["Trigger"]
        except ClientError:
            return None  # deleted meanwhile
        if trigger["Type"] != "SCHEDULED" or trigger.get("State") != "ACTIVATED":
            return None
        target = timers.move_target()
        if target is not None and self._over_catch_up_limit(name, target):
            skipped = rules.occurrences_between(trigger, at, target) + 1
            timers.note_skipped(TIMER_OWNER, f"trigger/{name}", skipped)
            self._arm(trigger, max(target, at))
            return None
        self._arm(trigger, at)
        if not trigger.get("WorkflowName"):
            ended, errors = self._start_standalone(trigger)
            for error in errors:
                log.warning("trigger %s at %s: %s", name, at, error)
            return ended
        try:
            run_id = self.start_run(trigger["WorkflowName"], fired_by=name)
        except (GlueError, ClientError) as error:  # e.g. MaxConcurrentRuns: this occurrence does not run
            log.warning("trigger %s at %s: %s", name, at, _error_text(error))
            return None
        return lambda: self.run_ended(run_id)

    def _over_catch_up_limit(self, name: str, target: datetime.datetime) -> bool:
        with self._lock:
            move, fired = self._catch_up.get(name, (None, 0))
            fired = fired + 1 if move == target else 1
            self._catch_up[name] = (target, fired)
            return fired > CATCH_UP_LIMIT

    def _arm_schedules_at_start(self) -> None:
        """Arms every ACTIVATED SCHEDULED trigger from now on (times missed while the stack was down do not run);
        waits for the gateway first, as the triggers are read through it."""
        while not self._closing.is_set():
            try:
                triggers = self._all_triggers()
                break
            except Exception:
                self._closing.wait(STARTUP_RETRY_SECONDS)
        else:
            return
        now = labtime.live_now()
        for trigger in triggers:
            if trigger["Type"] == "SCHEDULED" and trigger.get("State") == "ACTIVATED":
                self._arm(trigger, now)

    # ---- reading definitions ---------------------------------------------------------------------------
    def workflow(self, name: str) -> dict:
        try:
            return self._glue().get_workflow(Name=name)["Workflow"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "EntityNotFoundException":
                raise GlueError("EntityNotFoundException", f"Workflow with name {name} not found") from None
            raise

    def _all_triggers(self) -> list[dict]:
        return [trigger for page in self._glue().get_paginator("get_triggers").paginate() for trigger in page["Triggers"]]

    def workflow_triggers(self, workflow: str) -> list[dict]:
        return [trigger for trigger in self._all_triggers() if trigger.get("WorkflowName") == workflow]

    def workflow_graph(self, workflow: str) -> dict:
        """GetWorkflow's Graph: the triggers, jobs and crawlers of the workflow as they are defined now."""
        nodes, edges = rules.graph(self.workflow_triggers(workflow))
        return {"Nodes": list(nodes.values()), "Edges": edges}

    # ---- answers -----------------------------------------------------------------------------------------
    def _described(self, run: dict, include_graph: bool) -> dict:
        described = {key: run[key] for key in ("Name", "WorkflowRunId", "PreviousRunId", "WorkflowRunProperties", "StartedOn",
                                               "CompletedOn", "Status", "ErrorMessage", "StartingEventBatchCondition") if key in run}
        described["Statistics"] = rules.statistics([action["State"] for action in run["Actions"] if not action.get("Carried")])
        if include_graph:
            described["Graph"] = self._run_graph(run)
        return described

    def _run_graph(self, run: dict) -> dict:
        nodes, edges = rules.graph(run["Triggers"])
        for action in run["Actions"]:
            node = nodes.get(rules.node_id(action["Type"], action["Name"]))
            if node is None:
                continue
            if action["Type"] == rules.JOB:
                job_runs = node.setdefault("JobDetails", {"JobRuns": []})["JobRuns"]
                for job_run_id in action.get("JobRunIds", []):
                    try:
                        job_runs.append(self._job_runs.get(action["Name"], job_run_id))
                    except GlueError:  # the retry not started yet, or the job deleted since
                        pass
            elif "Crawl" in action:
                node.setdefault("CrawlerDetails", {"Crawls": []})["Crawls"].append(dict(action["Crawl"]))
        return {"Nodes": list(nodes.values()), "Edges": edges}

    # ---- life ----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        timers.cancel_owner(TIMER_OWNER)
        with self._lock:
            self._runs.clear()
            self._save()

    def close(self) -> None:
        self._closing.set()
        timers.cancel_owner(TIMER_OWNER)
        self._work.put(None)
        self._thread.join(timeout=5)
