"""The Step Functions engine: executions run for real, on moto's ASL interpreter, with every task call going
back through the gateway, every Wait on the lab clock, and every execution's record in the store.

State machines themselves (Create/Describe/Update/Delete/List, versions, aliases, tags) stay the backend's:
this engine checks a definition before the backend stores it. Executions are this engine's: moto's backend
would run them inside itself (its task calls bypassing the gateway) and, being journaled, would run them all
again on every replay; here an execution starts once, its record (status, dates, output, history, the
top-level state it is in and that state's input) is saved as it goes, and a restart picks it up
(docs/stepfunctions.md, "Restarts").
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import logging
import threading
import uuid

from botocore.exceptions import ClientError

from dealab.engines.stepfunctions import definition as asl
from dealab.engines.stepfunctions import interpreter
from dealab.wire import labtime, metrics, paging, rolesessions, serviceevents
from dealab.wire.engine import Engine, EngineContext, Handler
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.stepfunctions")

SERVICE = "stepfunctions"
ENDED = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
STACK_STOPPED_ERROR = "States.Runtime"
STATES_PRINCIPAL = "states.amazonaws.com"
ROLE_REFUSAL = "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role."


def _session_name(role_arn: str) -> str:
    """The name of a state machine role's session: an opaque id, as Step Functions names them (one per role)."""
    return hashlib.md5(role_arn.encode()).hexdigest()


def _task_refusal(refusal: rolesessions.Refused) -> Exception:
    """A task whose role Step Functions cannot assume fails as the call would: the refusal as a service error."""
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": ROLE_REFUSAL}}, "AssumeRole")


class SfnError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _epoch(iso_or_seconds) -> float:
    if isinstance(iso_or_seconds, (int, float)):
        return float(iso_or_seconds)
    moment = datetime.datetime.fromisoformat(str(iso_or_seconds).replace("Z", "+00:00"))
    return moment.timestamp() if moment.tzinfo else (moment - labtime.EPOCH).total_seconds()


class Run:
    """One execution: its saved record, and while it runs, the interpreter's worker and its lab sleeps."""

    def __init__(self, record: dict):
        self.record = record
        self.worker = None
        self.lock = threading.RLock()
        self.sleeping: dict[str, threading.Event] = {}
        self.ended = threading.Event()
        if record["status"] in ENDED:
            self.ended.set()
        self.prior_events: list[dict] = []  # history kept from before a resume or a redrive
        self.resume_wait: tuple[str, float] | None = None  # (Wait state, due epoch) picked up after a restart

    @property
    def arn(self) -> str:
        return self.record["executionArn"]

    def history(self) -> list[dict]:
        env = self.worker.env if self.worker is not None else None
        if env is None:
            return list(self.record.get("events", []))
        events = env.event_manager.get_event_history()
        if not self.prior_events:
            return events
        return self.prior_events + _continued(events, len(self.prior_events))


def _continued(events: list[dict], prior: int) -> list[dict]:
    """A resumed run's events after the `prior` ones kept: its own ExecutionStarted dropped, ids following on."""
    shifted = []
    for event in events[1:]:
        event = dict(event, id=event["id"] + prior - 1)
        previous = event.get("previousEventId", 0)
        event["previousEventId"] = prior if previous <= 1 else previous + prior - 1
        shifted.append(event)
    return shifted


class StepFunctionsEngine(Engine):
    name = "stepfunctions"
    operations = {
        (SERVICE, "CreateStateMachine"): "_checked_definition",
        (SERVICE, "UpdateStateMachine"): "_checked_definition",
        (SERVICE, "StartExecution"): "_start_execution",
        (SERVICE, "StartSyncExecution"): "_start_sync_execution",
        (SERVICE, "DescribeExecution"): "_describe_execution",
        (SERVICE, "GetExecutionHistory"): "_get_execution_history",
        (SERVICE, "ListExecutions"): "_list_executions",
        (SERVICE, "StopExecution"): "_stop_execution",
        (SERVICE, "RedriveExecution"): "_redrive_execution",
        (SERVICE, "DescribeStateMachineForExecution"): "_describe_state_machine_for_execution",
        (SERVICE, "SendTaskSuccess"): "_send_task_success",
        (SERVICE, "SendTaskFailure"): "_send_task_failure",
        (SERVICE, "SendTaskHeartbeat"): "_send_task_heartbeat",
        (SERVICE, "ListMapRuns"): "_list_map_runs",
        (SERVICE, "DescribeMapRun"): "_describe_map_run",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.folder = context.state_dir / self.name / "executions"
        self.runs: dict[str, Run] = {}
        self.lock = threading.RLock()
        self.clients: dict[tuple[str, str, str], object] = {}
        self.roles = rolesessions.RoleSessions(context, STATES_PRINCIPAL)
        self.sleep_numbers = itertools.count()
        self.closing = False
        # state entries are saved by a thread of their own, so an execution never waits for the disk between
        # states; starts, Waits and ends are saved before anything else happens
        self.unsaved: dict[str, Run] = {}
        self.saving = threading.Condition()
        self.saver: threading.Thread | None = None
        self._pick_up_saved_executions()

    # ---- what moto's interpreter asks (interpreter.Host) ---------------------------------------------
    def task_client(self, service: str, region: str, role_arn: str | None = None):
        """A client for a task's calls, made as the execution's role (the state machine's roleArn, or a Task's
        Credentials.RoleArn): a session of it that Step Functions assumed, so its policies bind the calls."""
        with self.lock:
            key = (service, region, role_arn or "")
            if key not in self.clients:
                config = {"parameter_validation": False, "read_timeout": 900, "connect_timeout": 60,
                          # a service's error reaches the state's Retry and Catch as on AWS, not retried away by botocore
                          "retries": {"total_max_attempts": 1}}
                if role_arn:
                    self.clients[key] = self.roles.client(service, role_arn, _session_name(role_arn), region=region,
                                                          on_refusal=_task_refusal, **config)
                else:
                    self.clients[key] = self.context.caller_client(service, region=region, **config)
            return self.clients[key]

    def entering(self, env, state_name: str, state_input) -> None:
        run = self._run_of(env)
        if run is None:
            return
        with run.lock:
            run.record["state"] = {"name": state_name, "input": json.loads(json.dumps(state_input, default=str))}
        self._save_soon(run)

    def sleep(self, env, seconds: float, wait_state: str | None) -> None:
        """Sleeps `seconds` of lab time (a Wait state's or a retry's): a lab timer releases it, whether real time
        passes or the clock is moved; StopExecution releases it at once."""
        run = self._run_of(env) if env is not None else None
        if run is None or seconds <= 0:
            return
        due = labtime.live_now() + datetime.timedelta(seconds=seconds)
        top_level_wait = wait_state is not None and not env.is_frame()
        key = f"{run.arn}#{next(self.sleep_numbers)}"
        released = threading.Event()
        with run.lock:
            if top_level_wait and run.resume_wait and run.resume_wait[0] == wait_state:
                due = labtime.EPOCH + datetime.timedelta(seconds=run.resume_wait[1])
                run.resume_wait = None
            if top_level_wait:
                run.record["wait"] = {"state": wait_state, "due": _epoch(due.isoformat())}
                self._save(run)
        timers.schedule(self.name, key, due, lambda at: self._wake(run, key, released))
        # asleep only once its timer is set: a clock move that sees the execution asleep must find that timer
        with run.lock:
            run.sleeping[key] = released
        try:
            while not released.wait(1.0):
                if not env.is_running():
                    break
        finally:
            timers.cancel(self.name, key)
            with run.lock:
                run.sleeping.pop(key, None)
                if top_level_wait:
                    run.record.pop("wait", None)

    def _wake(self, run: Run, key: str, released: threading.Event):
        released.set()
        # a clock move goes on once the execution has ended or sleeps again (on its next Wait or retry)
        return lambda: run.ended.is_set() or any(other != key for other in list(run.sleeping))

    # ---- operations ---------------------------------------------------------------------------------
    def answer(self, handler: Handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except SfnError as error:
            return AwsResponse.json_error(error.code, error.message, error.status)
        except ClientError as error:  # the backend's refusal of this engine's own call, passed on as it came
            return AwsResponse.json_error(error.response["Error"]["Code"], error.response["Error"].get("Message", ""),
                                          error.response["ResponseMetadata"].get("HTTPStatusCode", 400))

    def _checked_definition(self, request: AwsRequest) -> AwsResponse:
        role = request.json.get("roleArn")
        if isinstance(role, str) and role:
            try:
                self.roles.check(role)
            except rolesessions.Refused:
                return AwsResponse.json_error("AccessDeniedException", ROLE_REFUSAL)
        text = request.json.get("definition")
        if text is not None:
            # the seams go in before the first parse: a program parsed and kept without them has moto's own
            # integrations (its Athena .sync is unsupported), whatever runs it later
            interpreter.install(self)
            found = asl.problems(text)
            if found:
                return AwsResponse.json_error("InvalidDefinition", asl.invalid_definition_message(found))
        return request.send_on()

    def _state_machine(self, arn: str) -> dict:
        machine = self.own_client(SERVICE).describe_state_machine(stateMachineArn=arn)
        machine.pop("ResponseMetadata", None)
        return machine

    def _new_record(self, body: dict, machine: dict) -> dict:
        name = body.get("name") or str(uuid.uuid4())
        text = body.get("input") or "{}"
        try:
            json.loads(text)
        except ValueError as error:
            raise SfnError("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{error}'")
        if not 1 <= len(name) <= 80:
            raise SfnError("InvalidName", f"Invalid Name: '{name}'")
        prefix, _, machine_name = machine["stateMachineArn"].rpartition(":stateMachine:")
        return {
            "executionArn": f"{prefix}:execution:{machine_name}:{name}",
            "stateMachineArn": machine["stateMachineArn"],
            "name": name,
            "type": machine.get("type", "STANDARD"),
            "roleArn": machine["roleArn"],
            "definition": machine["definition"],
            "updateDate": machine["creationDate"].timestamp(),
            "input": text,
            "status": "RUNNING",
            "startDate": labtime.unix_time(),
            "redriveCount": 0,
            "events": [],
        }

    def _start_execution(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        record = self._new_record(body, self._state_machine(body.get("stateMachineArn", "")))
        with self.lock:
            existing = self.runs.get(record["executionArn"])
            if existing is not None:
                if existing.record["status"] == "RUNNING" and existing.record["input"] == record["input"]:
                    return AwsResponse.json({"executionArn": existing.arn, "startDate": existing.record["startDate"]})
                raise SfnError("ExecutionAlreadyExists", f"Execution Already Exists: '{existing.arn}'")
            run = Run(record)
            self.runs[run.arn] = run
        self._save(run)
        _announce(record)
        self._launch(run, start_at=None, state_input=None)
        # started by a schedule firing on a clock move: the move goes on once this ends or sleeps on a lab timer
        timers.note_started(lambda: run.ended.is_set() or bool(run.sleeping))
        return AwsResponse.json({"executionArn": run.arn, "startDate": record["startDate"]})

    def _start_sync_execution(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        machine = self._state_machine(body.get("stateMachineArn", ""))
        if machine.get("type") != "EXPRESS":
            raise SfnError("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
        run = Run(self._new_record(body, machine))  # EXPRESS: answered, never listed or kept, as on AWS
        self._launch(run, start_at=None, state_input=None, in_this_thread=True)
        record = run.record
        answer = {key: record[key] for key in ("executionArn", "stateMachineArn", "name", "startDate", "stopDate", "input") if key in record}
        answer.update(status="SUCCEEDED" if record["status"] == "SUCCEEDED" else ("TIMED_OUT" if record["status"] == "TIMED_OUT" else "FAILED"),
                      inputDetails={"included": True}, billingDetails={"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100})
        for key in ("output", "error", "cause"):
            if record.get(key) is not None:
                answer[key] = record[key]
        if "output" in answer:
            answer["outputDetails"] = {"included": True}
        return AwsResponse.json(answer)

    def _describe_execution(self, request: AwsRequest) -> AwsResponse:
        run = self._run(request.json.get("executionArn", ""))
        record = run.record
        answer = {key: record[key] for key in ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input", "output", "error", "cause", "redriveCount", "redriveDate") if record.get(key) is not None}
        answer["inputDetails"] = {"included": True}
        if "output" in answer:
            answer["outputDetails"] = {"included": True}
        answer["redriveStatus"] = "REDRIVABLE" if record["status"] in REDRIVABLE else "NOT_REDRIVABLE"
        if record["status"] not in REDRIVABLE:
            answer["redriveStatusReason"] = "Execution is RUNNING and cannot be redriven" if record["status"] == "RUNNING" else "Execution is SUCCEEDED and cannot be redriven"
        return AwsResponse.json(answer)

    def _get_execution_history(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        run = self._run(body.get("executionArn", ""))
        events = [dict(event, timestamp=_epoch(event["timestamp"])) for event in run.history()]
        if body.get("reverseOrder"):
            events.reverse()
        return AwsResponse.json(_page(events, "events", body))

    def _list_executions(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        machine_arn = body.get("stateMachineArn")
        if not machine_arn:
            raise SfnError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN")
        self._state_machine(machine_arn)  # StateMachineDoesNotExist as AWS says it
        with self.lock:
            records = [run.record for run in self.runs.values() if run.record["stateMachineArn"] == machine_arn]
        if body.get("statusFilter"):
            records = [record for record in records if record["status"] == body["statusFilter"]]
        records.sort(key=lambda record: record["startDate"], reverse=True)
        items = [{key: record[key] for key in ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "redriveCount", "redriveDate") if record.get(key) is not None}
                 for record in records]
        return AwsResponse.json(_page(items, "executions", body))

    def _stop_execution(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        run = self._run(body.get("executionArn", ""))
        stopped_at = labtime.unix_time()
        with run.lock:
            if run.record["status"] == "RUNNING":
                run.record.update(status="ABORTED", stopDate=stopped_at, error=body.get("error"), cause=body.get("cause"))
                if run.worker is not None and run.worker.env is not None:
                    run.worker.stop(stop_date=datetime.datetime.fromtimestamp(stopped_at, datetime.timezone.utc), error=body.get("error"), cause=body.get("cause"))
                for released in run.sleeping.values():
                    released.set()
                run.ended.set()
                self._save(run)
        return AwsResponse.json({"stopDate": run.record.get("stopDate", stopped_at)})

    def _redrive_execution(self, request: AwsRequest) -> AwsResponse:
        run = self._run(request.json.get("executionArn", ""))
        with run.lock:
            record = run.record
            if record["status"] not in REDRIVABLE or record["type"] == "EXPRESS" or "state" not in record:
                raise SfnError("ExecutionNotRedrivable", f"Execution {run.arn} is {record['status']} and cannot be redriven")
            redriven_at = labtime.unix_time()
            events = run.history()
            events.append({"timestamp": redriven_at, "type": "ExecutionRedriven", "id": len(events) + 1, "previousEventId": len(events),
                           "executionRedrivenEventDetails": {"redriveCount": record["redriveCount"] + 1}})
            run.prior_events = events
            record.update(status="RUNNING", redriveCount=record["redriveCount"] + 1, redriveDate=redriven_at, events=events)
            for key in ("stopDate", "output", "error", "cause"):
                record.pop(key, None)
            run.ended.clear()
            self._save(run)
        self._launch(run, start_at=record["state"]["name"], state_input=record["state"]["input"], keep_prior=True)
        return AwsResponse.json({"redriveDate": redriven_at})

    def _describe_state_machine_for_execution(self, request: AwsRequest) -> AwsResponse:
        record = self._run(request.json.get("executionArn", "")).record
        machine_name = record["stateMachineArn"].rpartition(":")[2]
        return AwsResponse.json({"stateMachineArn": record["stateMachineArn"], "name": machine_name, "definition": record["definition"],
                                 "roleArn": record["roleArn"], "updateDate": record["updateDate"]})

    def _send_task_success(self, request: AwsRequest) -> AwsResponse:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

        body = request.json
        token = body.get("taskToken", "")
        try:
            json.loads(body.get("output", ""))
        except ValueError as error:
            raise SfnError("InvalidOutput", f"Invalid Output: '{error}'")
        self._notify(token, lambda pool: pool.notify(callback_id=token, outcome=CallbackOutcomeSuccess(callback_id=token, output=body["output"])))
        return AwsResponse.json({})

    def _send_task_failure(self, request: AwsRequest) -> AwsResponse:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

        body = request.json
        token = body.get("taskToken", "")
        outcome = CallbackOutcomeFailure(callback_id=token, error=body.get("error"), cause=body.get("cause"))
        self._notify(token, lambda pool: pool.notify(callback_id=token, outcome=outcome))
        return AwsResponse.json({})

    def _send_task_heartbeat(self, request: AwsRequest) -> AwsResponse:
        token = request.json.get("taskToken", "")
        self._notify(token, lambda pool: pool.heartbeat(callback_id=token))
        return AwsResponse.json({})

    def _notify(self, token: str, deliver) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout, CallbackNotifyConsumerError

        with self.lock:
            live = [run for run in self.runs.values() if run.worker is not None and run.worker.env is not None and not run.ended.is_set()]
        for run in live:
            try:
                if deliver(run.worker.env.callback_pool_manager):
                    return
            except CallbackNotifyConsumerError as error:
                if isinstance(error.callback_consumer_error, CallbackConsumerTimeout):
                    raise SfnError("TaskTimedOut", "Task Timed Out: the task's timeout or heartbeat ran out")
                raise SfnError("TaskDoesNotExist", "Task Does Not Exist: the task has ended")
        raise SfnError("InvalidToken", f"Invalid Token: '{token[:64]}'")

    def _list_map_runs(self, request: AwsRequest) -> AwsResponse:
        run = self._run(request.json.get("executionArn", ""))
        env = run.worker.env if run.worker is not None else None
        records = env.map_run_record_pool_manager.get_all() if env is not None else []
        return AwsResponse.json({"mapRuns": [record.list_item() for record in records]})

    def _describe_map_run(self, request: AwsRequest) -> AwsResponse:
        arn = request.json.get("mapRunArn", "")
        with self.lock:
            envs = [run.worker.env for run in self.runs.values() if run.worker is not None and run.worker.env is not None]
        for env in envs:
            record = env.map_run_record_pool_manager.get(arn)
            if record is not None:
                return AwsResponse.json(record.describe())
        raise SfnError("ResourceNotFound", f"Resource not found: '{arn}'")

    # ---- running ------------------------------------------------------------------------------------
    def _run(self, arn: str) -> Run:
        with self.lock:
            run = self.runs.get(arn)
        if run is None:
            if not arn.startswith("arn:") or ":execution:" not in arn:
                raise SfnError("InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
            raise SfnError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        return run

    def _run_of(self, env) -> Run | None:
        arn = env.states.context_object.context_object_data["Execution"]["Id"]
        with self.lock:
            return self.runs.get(arn)

    def _launch(self, run: Run, start_at: str | None, state_input, keep_prior: bool = False, in_this_thread: bool = False) -> None:
        """Runs the execution on moto's interpreter, from its StartAt or (resumed, redriven) from `start_at` with
        that state's input."""
        interpreter.install(self)
        from dealab.engines.stepfunctions.worker import FROM_THE_START, build_worker

        record = run.record
        if not keep_prior:
            run.prior_events = []
        text = record["definition"]
        if start_at is not None:
            document = json.loads(text)
            document["StartAt"] = start_at
            text = json.dumps(document)
        if in_this_thread:
            with self.lock:
                self.runs[run.arn] = run  # the interpreter finds its execution by ARN while it runs
        run.worker = build_worker(run, text, FROM_THE_START if start_at is None else state_input, on_end=lambda env: self._ended(run, env))
        try:
            if in_this_thread:
                run.worker._execution_logic()
            else:
                run.worker.start()
        finally:
            if in_this_thread:
                with self.lock:
                    self.runs.pop(run.arn, None)

    def _ended(self, run: Run, env) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError, ProgramStopped, ProgramTimedOut

        state = env.program_state()
        with run.lock:
            record = run.record
            if record["status"] == "RUNNING":
                if isinstance(state, ProgramEnded):
                    record.update(status="SUCCEEDED", output=json.dumps(env.states.get_input(), separators=(",", ":"), default=str))
                elif isinstance(state, ProgramError):
                    error = state.error or {}
                    record.update(status="FAILED", error=error.get("error"), cause=error.get("cause"))
                elif isinstance(state, ProgramTimedOut):
                    record.update(status="TIMED_OUT", error="States.Timeout")
                elif isinstance(state, ProgramStopped):
                    record.update(status="ABORTED")
                record["stopDate"] = labtime.unix_time()
                _announce(record)
            record.pop("wait", None)
            run.ended.set()
            self._save(run)

    def _save(self, run: Run) -> None:
        # EXPRESS executions are answered, never kept; a run forgotten by a reset keeps nothing either
        if self.closing or run.record["type"] == "EXPRESS" or self.runs.get(run.arn) is not run:
            return
        with run.lock:
            run.record["events"] = run.history()
            JsonFile(self._path(run.arn)).save(run.record)

    def _save_soon(self, run: Run) -> None:
        with self.saving:
            self.unsaved[run.arn] = run
            self.saving.notify()
            if self.saver is None:
                self.saver = threading.Thread(target=self._save_unsaved, name="stepfunctions-saver", daemon=True)
                self.saver.start()

    def _save_unsaved(self) -> None:
        while True:
            with self.saving:
                while not self.unsaved:
                    self.saving.wait()
                batch, self.unsaved = list(self.unsaved.values()), {}
            for run in batch:
                self._save(run)

    def _flush(self) -> None:
        with self.saving:
            batch, self.unsaved = list(self.unsaved.values()), {}
        for run in batch:
            self._save(run)

    def _path(self, arn: str):
        return self.folder / f"{hashlib.sha256(arn.encode()).hexdigest()[:32]}.json"

    # ---- restarts -----------------------------------------------------------------------------------
    def _pick_up_saved_executions(self) -> None:
        """Executions saved by a stack that stopped: one that was in a top-level Wait waits on, to the same due
        moment; one that was doing anything else has FAILED with a cause saying so (redrivable from that state)."""
        if not self.folder.exists():
            return
        resumed = []
        for path in sorted(self.folder.glob("*.json")):
            record = JsonFile(path).load({})
            if "executionArn" not in record:
                continue
            run = Run(record)
            run.prior_events = record.get("events", [])
            self.runs[run.arn] = run
            if record["status"] != "RUNNING":
                continue
            wait, state = record.get("wait"), record.get("state", {})
            if wait and wait["state"] == state.get("name"):
                resumed.append(run)
                continue
            where = f"in state '{state['name']}'" if state else "before its first state"
            record.update(status="FAILED", stopDate=labtime.unix_time(), error=STACK_STOPPED_ERROR,
                          cause=f"the dealab stack stopped while this execution was running {where}; redrive it to run that state again")
            events = record.get("events", [])
            events.append({"timestamp": record["stopDate"], "type": "ExecutionFailed", "id": len(events) + 1, "previousEventId": len(events),
                           "executionFailedEventDetails": {"error": record["error"], "cause": record["cause"]}})
            run.ended.set()
            self._save(run)
        for run in resumed:
            self._resume_wait(run)

    def _resume_wait(self, run: Run) -> None:
        record = run.record
        state_name = record["wait"]["state"]
        events = record.get("events", [])
        entered = max((event["id"] for event in events if event.get("type") == "WaitStateEntered"
                       and event.get("stateEnteredEventDetails", {}).get("name") == state_name), default=len(events) + 1)
        run.prior_events = [event for event in events if event["id"] < entered]
        run.resume_wait = (state_name, record["wait"]["due"])
        self._launch(run, start_at=state_name, state_input=record["state"]["input"], keep_prior=True)

    # ---- engine life --------------------------------------------------------------------------------
    def reset(self) -> None:
        self.roles.forget()
        with self.lock:
            runs, self.runs = list(self.runs.values()), {}
        self._stop_all(runs)
        for path in self.folder.glob("*.json") if self.folder.exists() else []:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        # Records stay as they were last saved: a restart picks them up (a Wait resumes, a task fails).
        self._flush()
        self.closing = True
        timers.cancel_owner(self.name)

    def _stop_all(self, runs: list[Run]) -> None:
        timers.cancel_owner(self.name)
        for run in runs:
            with run.lock:
                if run.worker is not None and run.worker.env is not None and not run.ended.is_set():
                    run.worker.stop(stop_date=labtime.live_now(), error="States.Aborted", cause="dealab reset")
                for released in run.sleeping.values():
                    released.set()
                run.ended.set()


def _page(items: list, field: str, body: dict) -> dict:
    return paging.page(field, items, body, default=1000, token_member="nextToken", limit_member="maxResults",
                       invalid_token=lambda token: SfnError("InvalidToken", f"Invalid Token: '{token[:64]}'"))


# AWS/States metric of each status an execution reaches
STATUS_METRICS = {"RUNNING": "ExecutionsStarted", "SUCCEEDED": "ExecutionsSucceeded", "FAILED": "ExecutionsFailed",
                  "TIMED_OUT": "ExecutionsTimedOut", "ABORTED": "ExecutionsAborted"}


def _announce(record: dict) -> None:
    """A STANDARD execution's "Step Functions Execution Status Change" event and AWS/States metrics."""
    if record["type"] == "EXPRESS":
        return  # AWS sends no status events for Express workflows
    status, machine = record["status"], record["stateMachineArn"]
    stop = record.get("stopDate")
    serviceevents.publish("aws.states", "Step Functions Execution Status Change", {
        "executionArn": record["executionArn"], "stateMachineArn": machine, "name": record["name"], "status": status,
        "startDate": int(record["startDate"] * 1000), "stopDate": int(stop * 1000) if stop else None, "input": record["input"],
        "output": record.get("output"), "inputDetails": {"included": True}, "outputDetails": {"included": True} if stop else None,
        "error": record.get("error"), "cause": record.get("cause")}, resources=[record["executionArn"]])
    metrics.put("AWS/States", STATUS_METRICS[status], {"StateMachineArn": machine}, 1)
    if stop:
        metrics.put("AWS/States", "ExecutionTime", {"StateMachineArn": machine}, (stop - record["startDate"]) * 1000, "Milliseconds")
