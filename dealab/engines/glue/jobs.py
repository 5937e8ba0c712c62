"""Job runs: their records (kept under state_dir/glue/), the queue in front of the Spark worker, timeouts,
retries, stops, and the job bookmarks runs leave behind.

One warm worker runs one Spark script at a time; a run waiting for it stays STARTING. pythonshell runs do
not queue: each starts at once in a Python process of its own (pyshell.py). MaxConcurrentRuns counts the
runs of a job that have not finished, as on AWS.

A run acts with the job's Role, as on AWS: Glue assumes it (session GlueJobRunnerSession, held and renewed on the
lab clock for the run's life: dealab.wire.rolesessions) and the script, its S3 reads and writes through Spark,
its catalog lookups and its own boto3 calls, and the fetch of the script and --extra-* files, use that session.
A role Glue cannot assume fails the run in Glue's words. The run's logs are still written by the engine.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from dealab.engines.glue import job_arguments, pyshell
from dealab.engines.glue.worker_process import SparkWorker, WorkerGone
from dealab.wire import labtime, metrics, rolesessions, serviceevents
from dealab.wire.store import JsonFile

# runs are dated on the lab clock, as everything the backend records is
lab_time = labtime.unix_time

log = logging.getLogger("dealab.glue.jobs")

DEFAULT_TIMEOUT_MINUTES = 2880
ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
BOOKMARK_OPTION = "--job-bookmark-option"
FINE_GRAINED_ARGUMENT = "--enable-lakeformation-fine-grained-access"  # = awsglue.lakeformation.FINE_GRAINED_ARGUMENT
FINE_GRAINED_FROM_VERSION = 5.0
# The worker is recycled when its process tree grows past this, or after this many runs, or when idle.
WORKER_MAX_RSS_BYTES = int(os.environ.get("DEALAB_GLUE_WORKER_MAX_RSS_MB", "1200")) * 1024 * 1024
WORKER_MAX_RUNS = int(os.environ.get("DEALAB_GLUE_WORKER_MAX_RUNS", "50"))
WORKER_IDLE_SECONDS = float(os.environ.get("DEALAB_GLUE_WORKER_IDLE_SECONDS", "600"))
POLL_SECONDS = 0.1
# How long a stopped or timed-out script has to end after its interrupt before the worker is killed.
STOP_GRACE_SECONDS = 15
# A run's Timeout is minutes of real run time, for Spark and pythonshell runs alike: a script runs in real time,
# whatever the lab clock says. Tests shorten the minute here.
SECONDS_PER_TIMEOUT_MINUTE = 60.0
# The role session a job run's calls are made with (CloudTrail names it so for Glue job runs on AWS).
RUN_SESSION_NAME = "GlueJobRunnerSession"
ACCOUNT_ID = rolesessions.ACCOUNT_ID


class GlueError(Exception):
    """An AWS error to send back: code and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _new_run_id() -> str:
    return "jr_" + secrets.token_hex(32)


def is_python_shell(job: dict) -> bool:
    return (job.get("Command") or {}).get("Name") == "pythonshell"


class JobRuns:
    def __init__(self, state_dir: Path, endpoint_url: str, region: str, client: Callable[[str], object], spark_master: str | None = None,
                 roles: rolesessions.RoleSessions | None = None):
        self._endpoint_url, self._region, self._client = endpoint_url, region, client
        self._roles = roles
        self._role_clients: dict[tuple[str, str], object] = {}  # (Role, job ARN) → S3 as the role (scripts, --extra-* files)
        self._folder = state_dir / "glue"
        self._runs_file = JsonFile(self._folder / "job-runs.json")
        self._bookmarks_file = JsonFile(self._folder / "job-bookmarks.json")
        self._worker = SparkWorker(endpoint_url, region, self._folder / "spark-worker.log", spark_master)
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._runs: dict[str, dict] = {}
        self._bookmarks: dict[str, dict] = {}
        # Per run id, what the engine needs besides the AWS record: the job definition, stop requested.
        self._pending: deque[str] = deque()
        self._jobs_of_runs: dict[str, dict] = {}
        self._stop_requested: set[str] = set()
        self._python_shell_threads: set[threading.Thread] = set()
        self._closed = False
        self._warm_up_requested = False
        # Told of every run that ends (a copy of its record): how workflows and conditional triggers learn of it.
        self.on_finish: Callable[[dict], None] = lambda run: None
        self._load()
        job_arguments.remove_leftovers(self._folder)
        # Whatever an earlier life of this stack left running (after a kill -9: a detached child of a script).
        if leftovers := pyshell.kill_marked({pyshell.MARK_OWNER: str(self._folder)}):
            log.warning("killed %d Glue processes left running by the stack's previous run: %s", len(leftovers), sorted(leftovers))
        self._thread = threading.Thread(target=self._serve, name="glue-job-runs", daemon=True)
        self._thread.start()

    # ---- state on disk -------------------------------------------------------------------------------
    def _load(self) -> None:
        self._runs = {run["Id"]: run for run in self._runs_file.load([])}
        self._bookmarks = self._bookmarks_file.load({})
        for run in self._runs.values():
            if run["JobRunState"] in ACTIVE_STATES:  # the stack stopped while it ran; a run does not resume
                self._finish(run, "FAILED", stack_stopped_message(run["JobRunState"]), persist=False)
        self._save()

    def _save(self) -> None:
        self._runs_file.save(list(self._runs.values()))
        self._bookmarks_file.save(self._bookmarks)

    # ---- API -----------------------------------------------------------------------------------------
    def start(self, job: dict, arguments: dict[str, str], overrides: dict) -> str:
        with self._lock:
            limit = int(job.get("ExecutionProperty", {}).get("MaxConcurrentRuns", 1) or 1)
            active = [r for r in self._runs.values() if r["JobName"] == job["Name"] and r["JobRunState"] in ACTIVE_STATES]
            if len(active) >= limit:
                raise GlueError("ConcurrentRunsExceededException", f"Concurrent runs exceeded for {job['Name']}")
            run = self._new_run(job, _new_run_id(), arguments, overrides, attempt=0, previous_run_id=None)
            return run["Id"]

    def _new_run(self, job: dict, run_id: str, arguments: dict, overrides: dict, attempt: int, previous_run_id: str | None) -> dict:
        now = lab_time()
        run = {
            "Id": run_id,
            "Attempt": attempt,
            "JobName": job["Name"],
            "StartedOn": now,
            "LastModifiedOn": now,
            "JobRunState": "STARTING",
            "Arguments": arguments,
            "PredecessorRuns": [],
            "ExecutionTime": 0,
            "Timeout": int(overrides.get("Timeout") or job.get("Timeout") or DEFAULT_TIMEOUT_MINUTES),
            "GlueVersion": job.get("GlueVersion", "5.0"),
            "LogGroupName": "/aws-glue/jobs",
            "ExecutionClass": overrides.get("ExecutionClass") or job.get("ExecutionClass", "STANDARD"),
        }
        for key in ("WorkerType", "NumberOfWorkers", "MaxCapacity", "AllocatedCapacity", "NotificationProperty", "SecurityConfiguration"):
            value = overrides.get(key, job.get(key))
            if value is not None:
                run[key] = value
        if previous_run_id:
            run["PreviousRunId"] = previous_run_id
        if overrides.get("TriggerName"):  # started by a trigger's action
            run["TriggerName"] = overrides["TriggerName"]
        self._runs[run_id] = run
        if is_python_shell(job):
            thread = threading.Thread(target=self._execute_python_shell, args=(run, job), name=f"pythonshell-{run_id}", daemon=True)
            self._python_shell_threads.add(thread)
            thread.start()
        else:
            self._jobs_of_runs[run_id] = job
            self._pending.append(run_id)
        self._save()
        self._wakeup.notify_all()
        return run

    def warm_up_worker(self) -> None:
        """Asks the serving thread to start the Spark worker now if it is not running."""
        with self._lock:
            self._warm_up_requested = True
            self._wakeup.notify_all()

    def get(self, job_name: str, run_id: str) -> dict:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run["JobName"] != job_name:
                raise GlueError("EntityNotFoundException", f"Job run {run_id} of job {job_name} not found")
            return dict(run)

    def of_job(self, job_name: str) -> list[dict]:
        with self._lock:
            runs = [dict(run) for run in self._runs.values() if run["JobName"] == job_name]
        return sorted(runs, key=lambda run: run["StartedOn"], reverse=True)

    def stop(self, job_name: str, run_ids: list[str]) -> tuple[list[dict], list[dict]]:
        stopped, errors = [], []
        with self._lock:
            for run_id in run_ids:
                run = self._runs.get(run_id)
                if run is None or run["JobName"] != job_name:
                    errors.append(_stop_error(job_name, run_id, "EntityNotFoundException", f"Job run {run_id} not found"))
                elif run["JobRunState"] not in ACTIVE_STATES:
                    errors.append(_stop_error(job_name, run_id, "InvalidInputException", f"Job run {run_id} is already {run['JobRunState']}"))
                else:
                    if run_id in self._pending:
                        self._pending.remove(run_id)
                        self._jobs_of_runs.pop(run_id, None)
                        self._finish(run, "STOPPED", "")
                    else:
                        self._update(run, "STOPPING")
                        self._stop_requested.add(run_id)
                    stopped.append({"JobName": job_name, "JobRunId": run_id})
            self._wakeup.notify_all()
        return stopped, errors

    def forget_job(self, job_name: str) -> None:
        """A deleted job takes its runs and bookmark with it; a run in progress is stopped."""
        with self._lock:
            active = [run_id for run_id, run in self._runs.items() if run["JobName"] == job_name and run["JobRunState"] in ACTIVE_STATES]
        self.stop(job_name, active)
        with self._lock:
            self._runs = {run_id: run for run_id, run in self._runs.items() if run["JobName"] != job_name}
            self._bookmarks.pop(job_name, None)
            self._save()

    def bookmark(self, job_name: str) -> dict:
        with self._lock:
            entry = self._bookmarks.get(job_name)
            if entry is None:
                raise GlueError("EntityNotFoundException", f"Continuation for job {job_name} not found")
            return _bookmark_entry(job_name, entry)

    def reset_bookmark(self, job_name: str) -> dict:
        with self._lock:
            entry = self._bookmarks.get(job_name) or {"Version": 0, "Run": 0, "Attempt": 0, "RunId": "", "PreviousRunId": ""}
            entry = {**entry, "Version": entry["Version"] + 1, "Objects": {}}
            self._bookmarks[job_name] = entry
            self._save()
            return _bookmark_entry(job_name, entry)

    def reset(self) -> None:
        with self._lock:
            for run_id in list(self._pending):
                self._finish(self._runs[run_id], "STOPPED", "", persist=False)
            self._pending.clear()
            self._jobs_of_runs.clear()
            self._stop_requested.update(run_id for run_id, run in self._runs.items() if run["JobRunState"] in ACTIVE_STATES)
            self._runs.clear()
            self._bookmarks.clear()
            self._save()
            self._wakeup.notify_all()

    def close(self) -> None:
        """Stops the worker first (ending any script), so the stack stops within its grace period."""
        with self._lock:
            self._closed = True
            self._wakeup.notify_all()
            python_shells = list(self._python_shell_threads)
        self._worker.stop()
        self._thread.join(timeout=5)
        self._worker.stop()  # in case the serving thread was starting one meanwhile
        for thread in python_shells:  # each ends its process as soon as it sees the stack closing
            thread.join(timeout=5)

    def worker_status(self) -> dict:
        """What the admin endpoint shows about the Spark worker and the queue in front of it."""
        with self._lock:
            queued = len(self._pending)
        alive = self._worker.alive()
        return {
            "worker_pid": self._worker.process.pid if alive else None,
            "runs_served": self._worker.runs_served if alive else 0,
            "rss_mb": round(self._worker.rss_bytes() / 2**20) if alive else 0,
            "peak_rss_mb": round(self._worker.peak_rss_bytes / 2**20),
            "queued_runs": queued,
            "spark_master": self._worker.spark_master or "local",
        }

    # ---- running -------------------------------------------------------------------------------------
    def _serve(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._lock:
                while not (self._pending or self._closed or self._warm_up_requested):
                    self._wakeup.wait(timeout=5)
                    if self._worker.alive() and time.monotonic() - idle_since > WORKER_IDLE_SECONDS:
                        log.info("stopping the idle Spark worker")
                        self._worker.stop()
                if self._closed:
                    return
                self._warm_up_requested = False
                run_id = self._pending.popleft() if self._pending else None
                next_run = (self._runs[run_id], self._jobs_of_runs.pop(run_id)) if run_id else None
            if next_run is None:
                if not self._worker.alive():
                    self._start_worker_quietly()
            else:
                try:
                    self._execute(*next_run)
                except Exception as error:  # a bug here must not end the loop that serves every later run
                    log.exception("job run %s", run_id)
                    with self._lock:
                        self._finish(next_run[0], "ERROR", f"dealab could not run the job: {error}")
            idle_since = time.monotonic()

    def _start_worker_quietly(self) -> None:
        try:
            self._worker.start()
        except WorkerGone as error:  # the next run reports it; nothing waits on a warm-up
            log.warning("%s", error)

    def _begin(self, run: dict) -> bool:
        """Marks a run RUNNING, or STOPPED if a stop came while it waited; call with the lock held."""
        if run["Id"] in self._stop_requested or run["JobRunState"] != "STARTING":
            self._stop_requested.discard(run["Id"])
            self._finish(run, "STOPPED", "")
            return False
        self._update(run, "RUNNING")
        return True

    def _execute(self, run: dict, job: dict) -> None:
        if not self._worker.alive():
            try:
                self._worker.start()
            except WorkerGone as error:
                with self._lock:
                    self._finish(run, "ERROR", str(error))
                return
        with self._lock:
            if not self._begin(run):
                return
            bookmark = self._bookmarks.get(job["Name"], {}).get("Objects", {})
        lease = self._role_session(run, job)
        if lease is None:
            return
        arguments = {**run["Arguments"], "--JOB_NAME": job["Name"], "--JOB_RUN_ID": run["Id"]}
        try:
            setup = job_arguments.prepare(arguments, self._role_s3(job), self._folder, run["Id"], spark=True)
        except job_arguments.JobArgumentError as error:
            lease.release()
            self._fail_on_arguments(run, job, error)
            return
        try:
            self._run_on_worker(run, job, arguments, bookmark, setup, lease.environment())
        finally:
            lease.release()
            job_arguments.remove_run(self._folder, run["Id"])

    def _role_session(self, run: dict, job: dict) -> rolesessions.Lease | None:
        """The job's role assumed for this run, held until it ends; None when Glue cannot assume it (the run has
        then failed, in Glue's words, and is retried if the job allows)."""
        if self._roles is None:
            return rolesessions.Lease(None, None)
        role = job.get("Role") or ""
        try:
            return self._roles.lease(role, RUN_SESSION_NAME, source_arn=self._job_arn(job))
        except rolesessions.Refused:
            with self._lock:
                self._finish(run, "FAILED", f"JobName:{job['Name']} and JobRunId:{run['Id']} failed to execute with exception "
                                            f"Role {rolesessions.role_arn_of(role)} should be given assume role permissions for Glue Service.")
            self._retry_if_allowed(run, job)
            return None

    def _role_s3(self, job: dict):
        """S3 as the job's role: Glue fetches a run's script and --extra-* files with it."""
        if self._roles is None:
            return self._s3
        key = (job.get("Role") or "", self._job_arn(job))
        with self._lock:
            found = self._role_clients.get(key)
        if found is None:  # a client costs ~0.1 s to build; its session is minted anew when it nears its end
            found = self._roles.client("s3", key[0], RUN_SESSION_NAME, self._region, source_arn=key[1], engine="glue")
            with self._lock:
                self._role_clients[key] = found
        return found

    def _job_arn(self, job: dict) -> str:
        return f"arn:aws:glue:{self._region}:{ACCOUNT_ID}:job/{job['Name']}"

    def _fail_on_arguments(self, run: dict, job: dict, error: job_arguments.JobArgumentError) -> None:
        with self._lock:
            self._finish(run, "FAILED", f"{type(error).__name__}: {error}")
        self._retry_if_allowed(run, job)

    def _run_on_worker(self, run: dict, job: dict, arguments: dict[str, str], bookmark: dict, setup: job_arguments.RunSetup,
                       credentials: dict[str, str]) -> None:
        fine_grained, fine_grained_notes = _lakeformation_fine_grained(run["GlueVersion"], arguments)
        self._worker.submit({
            "credentials": credentials,
            "run_id": run["Id"],
            "job_name": job["Name"],
            "script_location": job["Command"]["ScriptLocation"],
            "arguments": [token for pair in arguments.items() for token in pair],
            "bookmark_option": arguments.get(BOOKMARK_OPTION, "job-bookmark-disable"),
            "bookmark": bookmark,
            "lab_time_offset_seconds": labtime.offset().total_seconds(),
            "python_paths": setup.python_paths,
            "work_dir": str(setup.work_dir),
            "spark_conf": setup.spark_conf,
            "notes": setup.notes + fine_grained_notes,
            "lakeformation_fine_grained": fine_grained,
        })
        deadline = time.monotonic() + run["Timeout"] * SECONDS_PER_TIMEOUT_MINUTE
        ending: tuple[str, str] | None = None  # (state, message) once a stop or the timeout ended the run
        kill_at = 0.0
        while True:
            try:
                result = self._worker.result(POLL_SECONDS)
            except WorkerGone as error:
                result = {"state": "FAILED", "error_message": str(error), "bookmark": None}
                break
            if result is not None:
                break
            if ending is None and (run["Id"] in self._stop_requested or time.monotonic() > deadline):
                stopped = run["Id"] in self._stop_requested
                ending = ("STOPPED", "") if stopped else ("TIMEOUT", f"Job run timed out after {run['Timeout']} minutes")
                self._worker.interrupt(run["Id"])
                kill_at = time.monotonic() + STOP_GRACE_SECONDS
            elif ending is not None and time.monotonic() > kill_at:
                self._worker.stop()  # the script ignored the interrupt; the next run starts a fresh worker
                break
        with self._lock:
            self._stop_requested.discard(run["Id"])
        if ending is not None:
            with self._lock:
                self._finish(run, *ending)
            return
        with self._lock:
            if result["bookmark"] is not None:
                previous = self._bookmarks.get(job["Name"], {"Version": 0, "Run": 0, "RunId": ""})
                self._bookmarks[job["Name"]] = {
                    "Version": previous["Version"] + 1,
                    "Run": previous["Run"] + 1,
                    "Attempt": run["Attempt"],
                    "RunId": run["Id"],
                    "PreviousRunId": previous.get("RunId", ""),
                    "Objects": result["bookmark"],
                }
            self._finish(run, result["state"], result["error_message"])
        if result["state"] == "FAILED":
            self._retry_if_allowed(run, job)
        if self._worker.rss_bytes() > WORKER_MAX_RSS_BYTES or self._worker.runs_served >= WORKER_MAX_RUNS:
            log.info("recycling the Spark worker (%d runs, %d MB)", self._worker.runs_served, self._worker.rss_bytes() // 2**20)
            self._worker.stop()

    @cached_property
    def _s3(self):
        return self._client("s3")

    @cached_property
    def _logs(self):
        return self._client("logs")

    def _execute_python_shell(self, run: dict, job: dict) -> None:
        try:
            self._run_python_shell(run, job)
        except Exception as error:  # a bug here must still end the run
            log.exception("pythonshell run %s", run["Id"])
            with self._lock:
                self._finish(run, "ERROR", f"dealab could not run the job: {error}")
        finally:
            job_arguments.remove_run(self._folder, run["Id"])
            with self._lock:
                self._python_shell_threads.discard(threading.current_thread())

    def _run_python_shell(self, run: dict, job: dict) -> None:
        with self._lock:
            if not self._begin(run):
                return
        lease = self._role_session(run, job)
        if lease is None:
            return
        try:
            self._run_python_shell_as(run, job, lease)
        finally:
            lease.release()

    def _run_python_shell_as(self, run: dict, job: dict, lease: rolesessions.Lease) -> None:
        arguments = {**run["Arguments"], "--JOB_NAME": job["Name"], "--JOB_RUN_ID": run["Id"]}
        role_s3 = self._role_s3(job)
        try:
            setup = job_arguments.prepare(arguments, role_s3, self._folder, run["Id"], spark=False)
        except job_arguments.JobArgumentError as error:
            self._fail_on_arguments(run, job, error)
            return
        environment = {**pyshell.environment(self._endpoint_url, self._region, lease.environment(), setup.python_paths),
                       **pyshell.marks(self._folder, "pythonshell", run["Id"])}
        process = pyshell.PythonShellProcess(run["Id"], role_s3, self._logs, environment)
        for note in setup.notes:
            process.error.write(note + "\n")
        try:
            process.start(job["Command"]["ScriptLocation"], [token for pair in arguments.items() for token in pair], setup.work_dir)
        except Exception as error:  # the script could not be fetched, as a Spark run reports it
            with self._lock:
                self._finish(run, "FAILED", f"{type(error).__name__}: {error}")
            self._retry_if_allowed(run, job)
            return
        deadline = time.monotonic() + run["Timeout"] * SECONDS_PER_TIMEOUT_MINUTE
        ending: tuple[str, str] | None = None  # (state, message) once a stop, the timeout or the stack's end ended the run
        kill_at = 0.0
        while (result := process.result(POLL_SECONDS)) is None:
            if ending is None and (run["Id"] in self._stop_requested or self._closed or time.monotonic() > deadline):
                if self._closed:
                    ending = ("FAILED", stack_stopped_message("RUNNING"))
                elif run["Id"] in self._stop_requested:
                    ending = ("STOPPED", "")
                else:
                    ending = ("TIMEOUT", f"Job run timed out after {run['Timeout']} minutes")
                process.send_signal(signal.SIGTERM)
                kill_at = time.monotonic() + (0 if self._closed else STOP_GRACE_SECONDS)
            elif ending is not None and time.monotonic() > kill_at:
                process.send_signal(signal.SIGKILL)  # the script ignored SIGTERM
        with self._lock:
            self._stop_requested.discard(run["Id"])
            self._finish(run, *(ending or (result["state"], result["error_message"])))
        if ending is None and result["state"] == "FAILED":
            self._retry_if_allowed(run, job)

    def _retry_if_allowed(self, run: dict, job: dict) -> None:
        if run["Attempt"] >= int(job.get("MaxRetries", 0) or 0):
            return
        root = run["Id"].split("_attempt_")[0]
        attempt = run["Attempt"] + 1
        overrides = {key: run[key] for key in ("Timeout", "WorkerType", "NumberOfWorkers", "MaxCapacity", "ExecutionClass", "TriggerName") if key in run}
        with self._lock:
            self._new_run(job, f"{root}_attempt_{attempt}", run["Arguments"], overrides, attempt, run["Id"])

    def _update(self, run: dict, state: str) -> None:
        run["JobRunState"] = state
        run["LastModifiedOn"] = lab_time()
        self._save()

    def _finish(self, run: dict, state: str, error_message: str, persist: bool = True) -> None:
        now = lab_time()
        run.update(JobRunState=state, LastModifiedOn=now, CompletedOn=now, ExecutionTime=int(round(now - run["StartedOn"])))
        if error_message:
            run["ErrorMessage"] = error_message
        if persist:
            self._save()
            _announce(run)
            self.on_finish(dict(run))


def stack_stopped_message(state: str) -> str:
    return f"the dealab stack stopped while this run was {state}"


def _stop_error(job_name: str, run_id: str, code: str, message: str) -> dict:
    return {"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}


def _bookmark_entry(job_name: str, entry: dict) -> dict:
    return {
        "JobName": job_name,
        "Version": entry["Version"],
        "Run": entry["Run"],
        "Attempt": entry.get("Attempt", 0),
        "PreviousRunId": entry.get("PreviousRunId", ""),
        "RunId": entry.get("RunId", ""),
        "JobBookmark": json.dumps(entry["Objects"]),
    }


# How AWS's "Glue Job State Change" event words each final state: (severity, message when the run has none)
STATE_EVENTS = {"SUCCEEDED": ("INFO", "Job run succeeded"), "FAILED": ("ERROR", "Job run failed"),
                "TIMEOUT": ("WARN", "Job run timed out"), "STOPPED": ("INFO", "Job run stopped")}


def _announce(run: dict) -> None:
    """The finished run's "Glue Job State Change" event, and its job metrics in the Glue namespace. A dealab run
    is one task: numCompletedTasks / numFailedTasks are 1 or 0 (AWS counts Spark tasks), elapsedTime its ms."""
    state = run["JobRunState"]
    severity, message = STATE_EVENTS.get(state, ("INFO", f"Job run {state.lower()}"))
    serviceevents.publish("aws.glue", "Glue Job State Change", {"jobName": run["JobName"], "severity": severity, "state": state,
                                                                "jobRunId": run["Id"], "message": run.get("ErrorMessage") or message})
    dimensions = {"JobName": run["JobName"], "JobRunId": "ALL", "Type": "count"}
    metrics.put("Glue", "glue.driver.aggregate.numCompletedTasks", dimensions, int(state == "SUCCEEDED"))
    metrics.put("Glue", "glue.driver.aggregate.numFailedTasks", dimensions, int(state in ("FAILED", "TIMEOUT")))
    metrics.put("Glue", "glue.driver.aggregate.elapsedTime", {**dimensions, "Type": "gauge"}, run.get("ExecutionTime", 0) * 1000, "Milliseconds")


def _lakeformation_fine_grained(glue_version: str, arguments: dict[str, str]) -> tuple[bool, list[str]]:
    """Whether the run reads Lake Formation tables with fine-grained access control (AWS Glue 5.0 and later, asked
    for by the job argument), and a note for the run's error log when the argument is given to an older version."""
    if arguments.get(FINE_GRAINED_ARGUMENT, "").strip().lower() != "true":
        return False, []
    try:
        supported = float(glue_version) >= FINE_GRAINED_FROM_VERSION
    except ValueError:
        supported = False
    if supported:
        return True, []
    return False, [f"{FINE_GRAINED_ARGUMENT}: no effect with GlueVersion {glue_version} (Lake Formation fine-grained access "
                   f"control takes AWS Glue {FINE_GRAINED_FROM_VERSION} or later)"]
