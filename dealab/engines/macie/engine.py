"""The Macie engine: sensitive data discovery jobs over S3, managed and custom data identifiers, and findings,
answered here (moto's macie2 backend keeps only the Macie session and member accounts).

- The session stays the backend's (EnableMacie, GetMacieSession, UpdateMacieSession and DisableMacie pass on), but
  whether Macie is enabled is kept here: moto starts every region with Macie enabled, where a new AWS account has it
  off. Until the learner's EnableMacie, every call is refused as AWS refuses it. DisableMacie deletes the region's
  jobs, custom data identifiers and findings, as AWS does.
- Managed data identifiers are rows of one table (identifiers.py), shared with Glue's Detect PII transform.
- A ONE_TIME job runs on a worker thread (RUNNING → COMPLETE), reading the buckets' objects through the engine's
  own S3 client, scanning each (scan.py) and filing one finding per object with reportable data (findings.py);
  each finding also goes to EventBridge as a "Macie Finding" event from aws.macie. A SCHEDULED job runs on the lab
  clock (schedule.py, dealab.wire.timers): RUNNING during a run, IDLE between runs, each run after the first
  reading only objects created or changed since the previous run began, as Macie's scheduled jobs do.
- State (jobs, custom identifiers, findings) is three JSON documents in state_dir/macie/ through the store. A job
  that was RUNNING when the stack stopped starts again from the beginning at the first Macie call after the
  restart (its partial findings are dropped first), so it ends COMPLETE with each object's finding once.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import random
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from botocore.exceptions import ClientError

from dealab.engines.macie import findings as shapes
from dealab.engines.macie import schedule
from dealab.engines.macie.identifiers import MACIE_MANAGED, custom_detector
from dealab.engines.macie.scan import Unreadable, scan
from dealab.wire import labtime, paging, serviceevents
from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.macie")

ACCOUNT = "123456789012"
SESSION_OPERATIONS = ("EnableMacie", "GetMacieSession", "UpdateMacieSession", "DisableMacie")
STATUS_BY_CODE = {"ValidationException": 400, "ResourceNotFoundException": 404, "AccessDeniedException": 403,
                  "ConflictException": 409, "ServiceQuotaExceededException": 402}
SELECTORS = ("ALL", "INCLUDE", "EXCLUDE", "NONE", "RECOMMENDED")
# scoping: simpleScopeTerm key → what of a listed object it compares
SCOPE_VALUES = {
    "OBJECT_EXTENSION": lambda obj: obj["Key"].rsplit(".", 1)[-1].lower() if "." in obj["Key"].rsplit("/", 1)[-1] else "",
    "OBJECT_KEY": lambda obj: obj["Key"],
    "OBJECT_SIZE": lambda obj: obj["Size"],
    "OBJECT_LAST_MODIFIED_DATE": lambda obj: obj["LastModified"].timestamp() * 1000,
}
SCOPE_COMPARATORS = {
    "EQ": lambda value, wanted: value in wanted, "NE": lambda value, wanted: value not in wanted,
    "STARTS_WITH": lambda value, wanted: any(str(value).startswith(w) for w in wanted),
    "CONTAINS": lambda value, wanted: any(w in str(value) for w in wanted),
    "NOT_CONTAINS": lambda value, wanted: not any(w in str(value) for w in wanted),
    "GT": lambda value, wanted: value > wanted[0], "GTE": lambda value, wanted: value >= wanted[0],
    "LT": lambda value, wanted: value < wanted[0], "LTE": lambda value, wanted: value <= wanted[0],
}
JOB_SUMMARY = ("bucketDefinitions", "createdAt", "jobId", "jobStatus", "jobType", "lastRunErrorStatus", "name")
CUSTOM_SUMMARY = ("arn", "createdAt", "description", "id", "name")


class MacieError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _number_or_text(key: str, value):
    return float(value) if key in ("OBJECT_SIZE", "OBJECT_LAST_MODIFIED_DATE") else (value.lower() if key == "OBJECT_EXTENSION" else value)


def _in_scope(obj: dict, scoping: dict | None) -> bool:
    """A job's scoping: every `and` term of includes must hold, and no term of excludes may."""
    def holds(term: dict) -> bool:
        simple = term.get("simpleScopeTerm")
        if simple is None:
            raise MacieError("ValidationException", "dealab scopes jobs by simpleScopeTerm only; tagScopeTerm is not supported (docs/macie.md)")
        key, comparator = simple.get("key"), simple.get("comparator", "EQ")
        if key not in SCOPE_VALUES or comparator not in SCOPE_COMPARATORS:
            raise MacieError("ValidationException", f"scoping term {key} {comparator} is not one dealab supports (docs/macie.md)")
        wanted = [_number_or_text(key, value) for value in simple.get("values") or []]
        return SCOPE_COMPARATORS[comparator](SCOPE_VALUES[key](obj), wanted)

    includes = ((scoping or {}).get("includes") or {}).get("and") or []
    excludes = ((scoping or {}).get("excludes") or {}).get("and") or []
    return all(holds(term) for term in includes) and not any(holds(term) for term in excludes)


def _no_macie_behind(response: AwsResponse) -> bool:
    """Whether the backend's error says it has no Macie at all (no error type of Macie's in it), not a Macie refusal."""
    if response.status not in (400, 404, 501) or response.header("x-amzn-ErrorType"):
        return False
    try:
        body = json.loads(response.read() or b"{}")
    except ValueError:
        return True
    return not (isinstance(body, dict) and (body.get("__type") or body.get("code") or body.get("Code")))


def _page(member: str, items: list, params: dict) -> dict:
    return paging.page(member, items, params, default=50, token_member="nextToken", limit_member="maxResults",
                       invalid_token=lambda token: MacieError("ValidationException", f"The nextToken is not valid: {token}"))


class MacieEngine(Engine):
    name = "macie"
    operations = {("macie2", operation): f"_{operation}" for operation in (
        "CreateClassificationJob", "DescribeClassificationJob", "ListClassificationJobs", "UpdateClassificationJob",
        "ListFindings", "GetFindings", "GetFindingStatistics", "ListManagedDataIdentifiers",
        "CreateCustomDataIdentifier", "GetCustomDataIdentifier", "ListCustomDataIdentifiers", "BatchGetCustomDataIdentifiers",
        "DeleteCustomDataIdentifier", "TestCustomDataIdentifier", "EnableMacie", "DisableMacie",
    )} | {("macie2", ANY_OPERATION): "_session_or_backend"}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self.jobs = JsonFile(folder / "jobs.json")
        self.customs = JsonFile(folder / "custom_data_identifiers.json")
        self.findings = JsonFile(folder / "findings.json")
        self.enabled = JsonFile(folder / "enabled_regions.json")  # region → True once EnableMacie succeeded there
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="macie-job")
        self._cancelled: set[str] = set()
        self._resumed = False
        for job in self.jobs.load({}).values():
            if job["jobType"] == "SCHEDULED" and job["jobStatus"] == "IDLE":
                self._arm(job["jobId"])

    # ------------------------------------------------------------ plumbing

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            if request.operation != "EnableMacie":
                self._require_session(request.region)
            if request.operation in SESSION_OPERATIONS or handler == self._session_or_backend:
                return handler(request)
            self._resume_interrupted()
            return AwsResponse.json(handler(request.json, request))
        except MacieError as error:
            return AwsResponse.json_error(error.code, error.message, STATUS_BY_CODE.get(error.code, 400))

    def _require_session(self, region: str) -> None:
        if not self.enabled.load({}).get(region):
            raise MacieError("AccessDeniedException", "Macie is not enabled.")

    def _session_or_backend(self, request: AwsRequest) -> AwsResponse:
        return request.send_on()

    def _EnableMacie(self, request: AwsRequest) -> AwsResponse:
        if self.enabled.load({}).get(request.region):
            raise MacieError("ConflictException", "Macie is already enabled.")
        response = request.send_on()
        if response.status != 200 and _no_macie_behind(response):
            response = AwsResponse.json({})  # a backend without Macie (ministack): the engine keeps the session alone
        if response.status == 200:
            with self._lock:
                self.enabled.save({**self.enabled.load({}), request.region: True})
        return response

    def _DisableMacie(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:  # disabling Macie deletes the region's jobs, identifiers and findings
            with self._lock:
                self.enabled.save({k: v for k, v in self.enabled.load({}).items() if k != request.region})
                for job_id, job in self.jobs.load({}).items():
                    if job["region"] == request.region:
                        self._cancelled.add(job_id)
                        timers.cancel(self.name, job_id)
                for document in (self.jobs, self.customs, self.findings):
                    document.save({k: v for k, v in document.load({}).items() if v.get("region") != request.region})
        return response

    def reset(self) -> None:
        timers.cancel_owner(self.name)
        with self._lock:
            self._cancelled.update(self.jobs.load({}))
            for document in (self.jobs, self.customs, self.findings, self.enabled):
                document.remove()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _resume_interrupted(self) -> None:
        with self._lock:
            if self._resumed:
                return
            self._resumed = True
            stale = [job["jobId"] for job in self.jobs.load({}).values() if job["jobStatus"] == "RUNNING"]
            if stale:
                self.findings.save({k: f for k, f in self.findings.load({}).items() if f["classificationDetails"]["jobId"] not in stale})
        for job_id in stale:
            log.info("macie job %s was running when the stack stopped: running it again", job_id)
            self._pool.submit(self._run, job_id)

    @staticmethod
    def _path_id(request: AwsRequest) -> str:
        return unquote(request.path.rstrip("/").rsplit("/", 1)[-1])

    def _update_job(self, job_id: str, **fields) -> dict:
        with self._lock:
            jobs = self.jobs.load({})
            if job_id not in jobs:  # forgotten by a reset or DisableMacie while it ran
                return {}
            jobs[job_id].update(fields)
            self.jobs.save(jobs)
            return jobs[job_id]

    # ------------------------------------------------------------ managed and custom data identifiers

    def _ListManagedDataIdentifiers(self, params: dict, request: AwsRequest) -> dict:
        items = [{"id": row.macie_id, "category": row.category} for row in MACIE_MANAGED.values()]
        return {"items": items}

    @staticmethod
    def _check_custom(params: dict) -> None:
        regex = params.get("regex")
        if not regex:
            raise MacieError("ValidationException", "regex is required")
        if len(regex) > 512:
            raise MacieError("ValidationException", "The regex can contain as many as 512 characters.")
        try:
            re.compile(regex)
        except re.error as error:
            raise MacieError("ValidationException", f"The regex is not valid: {error}") from None
        distance = params.get("maximumMatchDistance")
        if distance is not None and not 1 <= int(distance) <= 300:
            raise MacieError("ValidationException", "maximumMatchDistance must be 1-300 characters.")
        if len(params.get("keywords") or []) > 50 or any(not 3 <= len(k) <= 90 for k in params.get("keywords") or []):
            raise MacieError("ValidationException", "keywords: as many as 50, each 3-90 characters.")
        if len(params.get("ignoreWords") or []) > 10 or any(not 4 <= len(w) <= 90 for w in params.get("ignoreWords") or []):
            raise MacieError("ValidationException", "ignoreWords: as many as 10, each 4-90 characters.")

    def _CreateCustomDataIdentifier(self, params: dict, request: AwsRequest) -> dict:
        if not params.get("name"):
            raise MacieError("ValidationException", "name is required")
        self._check_custom(params)
        identifier_id = secrets.token_hex(16)
        with self._lock:
            customs = self.customs.load({})
            if any(c["name"] == params["name"] and not c["deleted"] and c["region"] == request.region for c in customs.values()):
                raise MacieError("ConflictException", f"A custom data identifier named {params['name']} already exists.")
            customs[identifier_id] = {
                "id": identifier_id, "arn": f"arn:aws:macie2:{request.region}:{ACCOUNT}:custom-data-identifier/{identifier_id}",
                "name": params["name"], "description": params.get("description", ""), "regex": params["regex"],
                "keywords": params.get("keywords") or [], "ignoreWords": params.get("ignoreWords") or [],
                "maximumMatchDistance": int(params.get("maximumMatchDistance") or 50),
                "severityLevels": params.get("severityLevels") or shapes.DEFAULT_CUSTOM_SEVERITY,
                "tags": params.get("tags") or {}, "createdAt": shapes.iso(labtime.now()), "deleted": False, "region": request.region,
            }
            self.customs.save(customs)
        return {"customDataIdentifierId": identifier_id}

    def _custom(self, identifier_id: str, region: str, include_deleted: bool = False) -> dict:
        found = self.customs.load({}).get(identifier_id)
        if found is None or found["region"] != region or (found["deleted"] and not include_deleted):
            raise MacieError("ResourceNotFoundException", f"The custom data identifier {identifier_id} doesn't exist.")
        return found

    def _GetCustomDataIdentifier(self, params: dict, request: AwsRequest) -> dict:
        found = self._custom(self._path_id(request), request.region)
        return {k: v for k, v in found.items() if k != "region"}

    def _ListCustomDataIdentifiers(self, params: dict, request: AwsRequest) -> dict:
        items = [{k: c[k] for k in CUSTOM_SUMMARY} for c in self.customs.load({}).values() if not c["deleted"] and c["region"] == request.region]
        return _page("items", sorted(items, key=lambda c: c["createdAt"]), params)

    def _BatchGetCustomDataIdentifiers(self, params: dict, request: AwsRequest) -> dict:
        customs = self.customs.load({})
        wanted = params.get("ids") or []
        found = [customs[i] for i in wanted if i in customs and customs[i]["region"] == request.region]
        return {"customDataIdentifiers": [{**{k: c[k] for k in CUSTOM_SUMMARY}, "deleted": c["deleted"]} for c in found],
                "notFoundIdentifierIds": [i for i in wanted if i not in {c["id"] for c in found}]}

    def _DeleteCustomDataIdentifier(self, params: dict, request: AwsRequest) -> dict:
        identifier_id = self._path_id(request)
        with self._lock:
            self._custom(identifier_id, request.region)
            customs = self.customs.load({})
            customs[identifier_id]["deleted"] = True  # soft-deleted, as AWS keeps it for findings that name it
            self.customs.save(customs)
        return {}

    def _TestCustomDataIdentifier(self, params: dict, request: AwsRequest) -> dict:
        self._check_custom(params)
        if "sampleText" not in params:
            raise MacieError("ValidationException", "sampleText is required")
        return {"matchCount": len(custom_detector(params).find(params["sampleText"]))}

    # ------------------------------------------------------------ classification jobs

    def _managed_for(self, params: dict) -> list[str]:
        selector = params.get("managedDataIdentifierSelector") or "RECOMMENDED"
        ids = params.get("managedDataIdentifierIds") or []
        if selector not in SELECTORS:
            raise MacieError("ValidationException", f"managedDataIdentifierSelector must be one of {', '.join(SELECTORS)}")
        unknown = sorted(set(ids) - set(MACIE_MANAGED))
        if unknown:
            raise MacieError("ValidationException", f"Unknown managed data identifier IDs: {', '.join(unknown)}")
        if selector in ("INCLUDE", "EXCLUDE") and not ids:
            raise MacieError("ValidationException", f"managedDataIdentifierIds is required when the selector is {selector}")
        chosen = {
            "ALL": list(MACIE_MANAGED), "NONE": [], "INCLUDE": [i for i in MACIE_MANAGED if i in ids],
            "EXCLUDE": [i for i in MACIE_MANAGED if i not in ids],
            "RECOMMENDED": [i for i, row in MACIE_MANAGED.items() if row.recommended],
        }[selector]
        return chosen

    def _CreateClassificationJob(self, params: dict, request: AwsRequest) -> dict:
        for member in ("name", "jobType", "s3JobDefinition"):
            if not params.get(member):
                raise MacieError("ValidationException", f"{member} is required")
        if params["jobType"] not in ("ONE_TIME", "SCHEDULED"):
            raise MacieError("ValidationException", "jobType must be ONE_TIME or SCHEDULED")
        scheduled = params["jobType"] == "SCHEDULED"
        try:
            frequency = schedule.check(params.get("scheduleFrequency")) if scheduled else None
        except schedule.FrequencyError as error:
            raise MacieError("ValidationException", str(error)) from None
        # a SCHEDULED job analyzes existing objects at once only with initialRun; a ONE_TIME job always does
        run_now = not scheduled or bool(params.get("initialRun", False))
        definition = params["s3JobDefinition"]
        if definition.get("bucketCriteria") or not definition.get("bucketDefinitions"):
            raise MacieError("ValidationException", "dealab takes s3JobDefinition.bucketDefinitions (bucketCriteria is not supported, docs/macie.md)")
        managed = self._managed_for(params)
        custom_ids = params.get("customDataIdentifierIds") or []
        for identifier_id in custom_ids:
            self._custom(identifier_id, request.region)
        if not managed and not custom_ids:
            raise MacieError("ValidationException", "The job must use at least one managed or custom data identifier.")
        sampling = int(params.get("samplingPercentage") or 100)
        if not 1 <= sampling <= 100:
            raise MacieError("ValidationException", "samplingPercentage must be 1-100")
        job_id = secrets.token_hex(16)
        now = labtime.now()
        job = {
            "jobId": job_id, "jobArn": f"arn:aws:macie2:{request.region}:{ACCOUNT}:classification-job/{job_id}",
            "name": params["name"], "description": params.get("description", ""), "jobType": params["jobType"],
            "jobStatus": "RUNNING" if run_now else "IDLE", "createdAt": shapes.iso(now), "clientToken": params.get("clientToken"),
            "s3JobDefinition": definition, "samplingPercentage": sampling,
            "managedDataIdentifierSelector": params.get("managedDataIdentifierSelector") or "RECOMMENDED",
            "managedDataIdentifierIds": params.get("managedDataIdentifierIds") or [], "customDataIdentifierIds": custom_ids,
            "managedUsed": managed, "initialRun": bool(params.get("initialRun", False)), "tags": params.get("tags") or {},
            "lastRunErrorStatus": {"code": "NONE"}, "statistics": {"approximateNumberOfObjectsToProcess": 0, "numberOfRuns": 0},
            "region": request.region,
            # lab unix time from which objects are analyzed (None: every object); S3 keeps whole seconds, so an object
            # changed in the second a run began is read again rather than missed
            "since": None if run_now else labtime.unix_time(),
        }
        if scheduled:
            job["scheduleFrequency"] = frequency
        with self._lock:
            jobs = self.jobs.load({})
            jobs[job_id] = job
            self.jobs.save(jobs)
        if run_now:
            self._start_run(job_id)
        else:
            self._arm(job_id)
        return {"jobId": job_id, "jobArn": job["jobArn"]}

    # ------------------------------------------------------------ runs on the lab clock

    def _start_run(self, job_id: str):
        """Starts a run of the job now (lab time); returns a check that is True once the run has ended."""
        with self._lock:
            job = self.jobs.load({}).get(job_id)
            if job is None or job["jobStatus"] == "CANCELLED":
                return None
            statistics = {**job["statistics"], "numberOfRuns": job["statistics"]["numberOfRuns"] + 1}
            self._update_job(job_id, jobStatus="RUNNING", lastRunTime=shapes.iso(labtime.now()), runStartedAt=labtime.unix_time(),
                             statistics=statistics)
        self._pool.submit(self._run, job_id)
        return lambda: self.jobs.load({}).get(job_id, {}).get("jobStatus") != "RUNNING"

    def _arm(self, job_id: str, after: datetime.datetime | None = None) -> None:
        """Arms the timer of a SCHEDULED job's next run. A clock move past many runs runs the job at the last moment
        before the move's target, not at every one on the way (a daily job over a two-year move); the runs skipped are
        noted in the move's summary, and the run still reads every object changed since the previous one."""
        job = self.jobs.load({})[job_id]
        if after is None:
            last = datetime.datetime.fromtimestamp(job.get("runStartedAt") or job["since"] or labtime.unix_time(), datetime.timezone.utc)
            after = last.replace(tzinfo=None)
        due = schedule.next_run(job["scheduleFrequency"], after)
        target = timers.move_target()
        if target is not None and target.tzinfo is not None:  # the clock engine's target is aware; timers' moments naive UTC
            target = target.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        skipped = 0
        while target is not None and (later := schedule.next_run(job["scheduleFrequency"], due)) <= target:
            due, skipped = later, skipped + 1
        if skipped:
            timers.note_skipped(self.name, job_id, skipped)
        self._update_job(job_id, nextRunTime=shapes.iso(due))
        timers.schedule(self.name, job_id, due, lambda at: self._start_run(job_id))

    def _job(self, job_id: str, region: str) -> dict:
        found = self.jobs.load({}).get(job_id)
        if found is None or found["region"] != region:
            raise MacieError("ResourceNotFoundException", f"The classification job {job_id} doesn't exist.")
        return found

    def _DescribeClassificationJob(self, params: dict, request: AwsRequest) -> dict:
        job = self._job(self._path_id(request), request.region)
        return {k: v for k, v in job.items() if k not in ("region", "managedUsed", "since", "runStartedAt")}

    def _ListClassificationJobs(self, params: dict, request: AwsRequest) -> dict:
        jobs = [job for job in self.jobs.load({}).values() if job["region"] == request.region]
        criteria = params.get("filterCriteria") or {}
        for terms, keep in ((criteria.get("includes") or [], True), (criteria.get("excludes") or [], False)):
            for term in terms:
                values = term.get("values") or []
                jobs = [job for job in jobs if (str(job.get(term.get("key"))) in values) == keep]
        sort = params.get("sortCriteria") or {}
        jobs.sort(key=lambda job: str(job.get(sort.get("attributeName") or "createdAt")), reverse=sort.get("orderBy") == "DESC")
        summaries = [{k: job[k] for k in JOB_SUMMARY if k in job} | {"bucketDefinitions": job["s3JobDefinition"].get("bucketDefinitions", [])}
                     for job in jobs]  # the definition is kept whole in s3JobDefinition
        return _page("items", summaries, params)

    def _UpdateClassificationJob(self, params: dict, request: AwsRequest) -> dict:
        job_id = self._path_id(request)
        job = self._job(job_id, request.region)
        wanted = params.get("jobStatus")
        if wanted == "USER_PAUSED":
            if job["jobType"] != "SCHEDULED" or job["jobStatus"] != "IDLE":
                raise MacieError("ValidationException", "dealab pauses a SCHEDULED job between its runs only (not a run in "
                                 f"progress or a ONE_TIME job, docs/macie.md); this one is {job['jobType']} and {job['jobStatus']}.")
            timers.cancel(self.name, job_id)
            paused = labtime.now()
            self._update_job(job_id, jobStatus="USER_PAUSED", userPausedDetails={
                "jobPausedAt": shapes.iso(paused), "jobExpiresAt": shapes.iso(paused + datetime.timedelta(days=30))})
            return {}
        if wanted == "RUNNING":
            if job["jobStatus"] != "USER_PAUSED":
                raise MacieError("ValidationException", f"The job {job_id} isn't paused: its status is {job['jobStatus']}.")
            # resumed, it runs at its next scheduled moment from now, over everything changed since its last run
            self._update_job(job_id, jobStatus="IDLE", userPausedDetails=None)
            self._arm(job_id, after=labtime.now())
            return {}
        if wanted != "CANCELLED":
            raise MacieError("ValidationException", "jobStatus must be CANCELLED, USER_PAUSED or RUNNING")
        if job["jobStatus"] in ("COMPLETE", "CANCELLED"):
            raise MacieError("ValidationException", f"The job {job_id} can't be cancelled: its status is {job['jobStatus']}.")
        self._cancelled.add(job_id)
        timers.cancel(self.name, job_id)
        self._update_job(job_id, jobStatus="CANCELLED")
        return {}

    def _objects(self, s3, bucket: str) -> list[dict]:
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects += page.get("Contents", [])
        return objects

    def _run(self, job_id: str) -> None:
        job = self.jobs.load({})[job_id]
        region = job["region"]
        try:
            s3 = self.own_client("s3", region)
            managed = {key: MACIE_MANAGED[key] for key in job["managedUsed"]}
            customs = {c["id"]: c for c in self.customs.load({}).values() if c["id"] in job["customDataIdentifierIds"]}
            detectors = list(managed.values()) + [custom_detector(c) for c in customs.values()]
            definition = job["s3JobDefinition"]
            chosen = []
            for definition_entry in definition["bucketDefinitions"]:
                for bucket in definition_entry.get("buckets") or []:
                    listed = [obj for obj in self._objects(s3, bucket) if _in_scope(obj, definition.get("scoping"))
                              and (job["since"] is None or obj["LastModified"].timestamp() >= math.floor(job["since"]))]
                    count = math.ceil(len(listed) * job["samplingPercentage"] / 100)
                    chosen += [(bucket, obj) for obj in random.Random(job_id + bucket).sample(listed, count)]
            self._update_job(job_id, statistics={**job["statistics"], "approximateNumberOfObjectsToProcess": len(chosen)})
            for bucket, obj in sorted(chosen, key=lambda pair: (pair[0], pair[1]["Key"])):
                if job_id in self._cancelled:
                    return
                self._classify(job, s3, bucket, obj, managed, customs, detectors)
            self._end_run(job)
        except Exception as error:  # the run ends with its error recorded, as Macie reports a run's errors
            if not isinstance(error, (MacieError, ClientError)):
                log.exception("macie job %s failed", job_id)
            message = error.message if isinstance(error, MacieError) else str(error).splitlines()[0]
            self._end_run(job, lastRunErrorStatus={"code": "ERROR"}, errorMessage=message)

    def _end_run(self, job: dict, **fields) -> None:
        job_id = job["jobId"]
        if job_id in self._cancelled:
            return
        if job["jobType"] == "ONE_TIME":
            self._update_job(job_id, jobStatus="COMPLETE", **fields)
            return
        # the next run reads what was created or changed since this one began
        self._update_job(job_id, jobStatus="IDLE", since=job.get("runStartedAt"), **fields)
        self._arm(job_id)

    def _classify(self, job: dict, s3, bucket: str, obj: dict, managed: dict, customs: dict, detectors: list) -> None:
        body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        try:
            scanned = scan(obj["Key"], body, detectors)
        except Unreadable as error:
            log.info("macie job %s skipped %s: %s", job["jobId"], obj["Key"], error)
            return
        listed = {**obj, "LastModified": shapes.iso(obj["LastModified"].astimezone(datetime.timezone.utc).replace(tzinfo=None))}
        finding = shapes.build(job, {"name": bucket}, listed, scanned, managed, customs, labtime.now(), ACCOUNT, job["region"])
        if finding is None:
            return
        with self._lock:
            if job["jobId"] in self._cancelled:
                return
            stored = self.findings.load({})
            stored[finding["id"]] = finding
            self.findings.save(stored)
        serviceevents.publish("aws.macie", "Macie Finding", finding, region=job["region"])

    # ------------------------------------------------------------ findings

    def _region_findings(self, region: str) -> list[dict]:
        return [f for f in self.findings.load({}).values() if f["region"] == region]

    def _ListFindings(self, params: dict, request: AwsRequest) -> dict:
        found = shapes.ordered(shapes.select(self._region_findings(request.region), params.get("findingCriteria")), params.get("sortCriteria"))
        page = _page("findingIds", found, params)
        page["findingIds"] = [f["id"] for f in page["findingIds"]]
        return page

    def _GetFindings(self, params: dict, request: AwsRequest) -> dict:
        wanted = set(params.get("findingIds") or [])
        found = [f for f in self._region_findings(request.region) if f["id"] in wanted]
        return {"findings": shapes.ordered(found, params.get("sortCriteria"))}

    def _GetFindingStatistics(self, params: dict, request: AwsRequest) -> dict:
        group_by = params.get("groupBy")
        if group_by not in ("resourcesAffected.s3Bucket.name", "type", "classificationDetails.jobId", "severity.description"):
            raise MacieError("ValidationException", "groupBy must be classificationDetails.jobId, resourcesAffected.s3Bucket.name, "
                             "type or severity.description")
        found = shapes.select(self._region_findings(request.region), params.get("findingCriteria"))
        return {"countsByGroup": shapes.statistics(found, group_by)}
