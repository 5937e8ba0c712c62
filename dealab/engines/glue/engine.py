"""The glue engine: job runs on local Spark and crawlers that read the data, in front of the backend's
Glue, which keeps the definitions (jobs, crawlers, databases, tables, partitions).

Calls that only store or read definitions pass through. What only this engine knows — runs, bookmarks,
crawls, schedule states — is answered here and kept under state_dir/glue/.

Crawler schedules fire on the lab clock: the clock engine has no hook for other engines, so a background
thread of this engine lists the crawlers every SCHEDULE_CHECK_SECONDS and starts those whose cron came due
since its last look (real time passing, or the clock moved forward). It looks only while some crawler has a
schedule: once when the stack has settled, then again after any call that can give a crawler one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from functools import cached_property

from dealab.wire.engine import Engine, EngineContext
from dealab.engines.glue import catalogevents
from dealab.engines.glue.classifiers import Classifiers
from dealab.engines.glue.crawlers import Crawls, crawler_role_refusal
from dealab.engines.glue.eventbatches import EventBatches, batching_problem
from dealab.engines.glue.jobs import GlueError, JobRuns
from dealab.engines.glue.schedules import Cron, CronError, lab_now
from dealab.engines.glue import triggers as trigger_rules
from dealab.engines.glue.workflows import Workflows
from dealab.wire import paging, rolesessions
from dealab.wire.messages import AwsRequest, AwsResponse

log = logging.getLogger("dealab.glue")

# JobUpdate members that CreateJob takes under the same name.
JOB_UPDATE_FIELDS = (
    "Description", "LogUri", "Role", "ExecutionProperty", "Command", "DefaultArguments", "NonOverridableArguments",
    "Connections", "MaxRetries", "AllocatedCapacity", "Timeout", "MaxCapacity", "WorkerType", "NumberOfWorkers",
    "SecurityConfiguration", "NotificationProperty", "GlueVersion", "CodeGenConfigurationNodes", "ExecutionClass",
    "SourceControlDetails",
)
# Crawler members that UpdateCrawler may change; the rest of the definition stays.
CRAWLER_FIELDS = (
    "Role", "DatabaseName", "Description", "Targets", "Schedule", "Classifiers", "TablePrefix", "SchemaChangePolicy",
    "RecrawlPolicy", "LineageConfiguration", "Configuration", "CrawlerSecurityConfiguration",
)
UPDATE_BEHAVIORS = ("LOG", "UPDATE_IN_DATABASE")
DELETE_BEHAVIORS = ("LOG", "DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE")
RECRAWL_BEHAVIORS = ("CRAWL_EVERYTHING", "CRAWL_NEW_FOLDERS_ONLY", "CRAWL_EVENT_MODE")
# How often the schedule watcher looks at the crawlers; Glue's own precision is 5 minutes.
SCHEDULE_CHECK_SECONDS = 1.0
FIRST_SCHEDULE_CHECK_SECONDS = 10.0  # after start-up: the stack answers its first requests without this thread's calls
GLUE_PRINCIPAL = "glue.amazonaws.com"  # jobs and crawlers act with their Role, assumed by this principal


def _check_member(value: str | None, member: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise GlueError("InvalidInputException",
                        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: "
                        f"Member must satisfy enum value set: [{', '.join(allowed)}]")


def check_crawler_definition(definition: dict) -> None:
    """Refuses, as Glue does, a crawler definition with unknown policy values, a bad schedule, or a
    new-folders-only crawl that would update or delete (it cannot see what it did not crawl again)."""
    policy = definition.get("SchemaChangePolicy") or {}
    _check_member(policy.get("UpdateBehavior"), "schemaChangePolicy.updateBehavior", UPDATE_BEHAVIORS)
    _check_member(policy.get("DeleteBehavior"), "schemaChangePolicy.deleteBehavior", DELETE_BEHAVIORS)
    recrawl = (definition.get("RecrawlPolicy") or {}).get("RecrawlBehavior")
    _check_member(recrawl, "recrawlPolicy.recrawlBehavior", RECRAWL_BEHAVIORS)
    behaviors = (policy.get("UpdateBehavior", "UPDATE_IN_DATABASE"), policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE"))
    if recrawl == "CRAWL_NEW_FOLDERS_ONLY" and behaviors != ("LOG", "LOG"):
        raise GlueError("InvalidInputException", 'The SchemaChangePolicy for "Crawl new folders only" Amazon S3 target can have '
                                                 "only LOG DeleteBehavior value and LOG UpdateBehavior value.")
    if definition.get("Schedule"):
        try:
            Cron.parse(definition["Schedule"])
        except CronError as error:
            raise GlueError("InvalidInputException", f"Invalid schedule: {error}") from None


def _page(member: str, items: list[dict], params: dict) -> dict:
    return paging.page(member, items, params, default=100,
                       invalid_token=lambda token: GlueError("InvalidInputException", f"Invalid NextToken: {token}"))


class GlueEngine(Engine):
    name = "glue"
    operations = {
        ("glue", operation): f"_{operation}"
        for operation in (
            "StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun", "GetJobBookmark", "ResetJobBookmark",
            "CreateJob", "UpdateJob", "DeleteJob",
            "CreateCrawler", "StartCrawler", "StopCrawler", "UpdateCrawler", "GetCrawler", "GetCrawlers", "BatchGetCrawlers",
            "GetCrawlerMetrics", "DeleteCrawler", "UpdateCrawlerSchedule", "StartCrawlerSchedule", "StopCrawlerSchedule",
            "CreateClassifier", "GetClassifier", "GetClassifiers", "UpdateClassifier", "DeleteClassifier",
            "CreateTrigger", "StartTrigger", "StopTrigger", "DeleteTrigger", "UpdateTrigger",
            "StartWorkflowRun", "GetWorkflowRun", "GetWorkflowRuns", "StopWorkflowRun", "ResumeWorkflowRun",
            "GetWorkflowRunProperties", "PutWorkflowRunProperties", "GetWorkflow", "DeleteWorkflow", "NotifyEvent",
        )
    } | {("glue", operation): "_catalog_write" for operation in catalogevents.CHANGES}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.roles = rolesessions.RoleSessions(context, GLUE_PRINCIPAL)  # jobs and crawlers act with their Role
        self.runs = JobRuns(context.state_dir, context.endpoint_url, context.region, self.own_client, context.spark_master, self.roles)
        self.classifiers = Classifiers(context.state_dir)
        self.crawls = Crawls(context.state_dir, self.own_client, self.classifiers, self.roles)
        self.workflows = Workflows(context.state_dir, lambda: self._glue, self.start_job_run, self.runs, self.crawls, self._crawler)
        self.event_batches = EventBatches(context.state_dir, self.workflows.workflow_triggers, self._start_batch_run, self.workflows.run_ended)
        self._closing = threading.Event()
        self._schedules_may_exist = threading.Event()
        self._schedule_watcher = threading.Thread(target=self._watch_schedules, name="glue-crawler-schedules", daemon=True)
        self._schedule_watcher.start()

    @property
    def _glue(self):
        return self.own_client("glue")

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        # each method takes the request and its parameters; GlueError and the backend's errors become answers
        try:
            return handler(request, request.json)
        except GlueError as error:
            return AwsResponse.json_error(error.code, error.message)
        except self._glue.exceptions.ClientError as error:
            code = error.response["Error"]["Code"]
            return AwsResponse.json_error(code, error.response["Error"].get("Message", code), error.response["ResponseMetadata"]["HTTPStatusCode"])

    def pass_on(self, request: AwsRequest) -> AwsResponse:
        # this engine's own calls too: a crawler's table and partition changes send their catalog events
        if request.service == "glue" and request.operation in catalogevents.CHANGES:
            return self._catalog_write(request, request.json)
        return request.send_on()

    def _catalog_write(self, request: AwsRequest, params: dict) -> AwsResponse:
        """Stored by the backend; a change that took sends the Data Catalog's state-change events."""
        response = request.send_on()
        if response.status < 300:
            answer = json.loads(response.read() or b"{}")
            catalogevents.publish(request.operation, params, answer, f"arn:aws:glue:{request.region}:{self._account}", request.region)
        return response

    def _job(self, name: str) -> dict:
        if not name:
            raise GlueError("InvalidInputException", "JobName is required")
        try:
            return self._glue.get_job(JobName=name)["Job"]
        except self._glue.exceptions.EntityNotFoundException:
            raise GlueError("EntityNotFoundException", f"Job with name: {name} not found") from None

    # ---- jobs ----------------------------------------------------------------------------------------
    def start_job_run(self, params: dict) -> str:
        """StartJobRun, for learners and for triggers' actions alike: the run's Arguments over the job's defaults."""
        job = self._job(params.get("JobName", ""))
        if "ScriptLocation" not in job.get("Command", {}):
            raise GlueError("InvalidInputException", f"job {job['Name']} has no Command.ScriptLocation")
        arguments = {**job.get("DefaultArguments", {}), **params.get("Arguments", {}), **(job.get("NonOverridableArguments") or {})}
        return self.runs.start(job, arguments, params)

    def _StartJobRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"JobRunId": self.start_job_run({key: value for key, value in params.items() if key != "TriggerName"})})

    def _GetJobRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"JobRun": self.runs.get(params.get("JobName", ""), params.get("RunId", ""))})

    def _GetJobRuns(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json(_page("JobRuns", self.runs.of_job(self._job(params.get("JobName", ""))["Name"]), params))

    def _BatchStopJobRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        stopped, errors = self.runs.stop(params.get("JobName", ""), params.get("JobRunIds", []))
        return AwsResponse.json({"SuccessfulSubmissions": stopped, "Errors": errors})

    def _GetJobBookmark(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"JobBookmarkEntry": self.runs.bookmark(self._job(params.get("JobName", ""))["Name"])})

    def _ResetJobBookmark(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"JobBookmarkEntry": self.runs.reset_bookmark(self._job(params.get("JobName", ""))["Name"])})

    def _CreateJob(self, request: AwsRequest, params: dict) -> AwsResponse:
        """Stored by the backend; a new Spark job also starts the worker warming up, so its first run waits less."""
        response = request.send_on()
        if response.status < 300 and (params.get("Command") or {}).get("Name", "glueetl") == "glueetl":
            self.runs.warm_up_worker()
        return response

    def _UpdateJob(self, request: AwsRequest, params: dict) -> AwsResponse:
        """As on AWS, JobUpdate replaces the whole definition (the backend has no UpdateJob of its own)."""
        name = self._job(params.get("JobName", ""))["Name"]
        update = params.get("JobUpdate") or {}
        if not update.get("Role") or not update.get("Command"):
            raise GlueError("InvalidInputException", "JobUpdate needs Role and Command: it replaces the whole job definition")
        tags = self._glue.get_tags(ResourceArn=self._job_arn(name)).get("Tags", {})
        self._glue.delete_job(JobName=name)
        self._glue.create_job(Name=name, Tags=tags, **{key: update[key] for key in JOB_UPDATE_FIELDS if key in update})
        return AwsResponse.json({"JobName": name})

    @cached_property
    def _account(self) -> str:
        # The account the backend answers for (moto's 123456789012, ministack's 000000000000): an ARN naming
        # another account is refused as invalid by backends that check it.
        return self.own_client("sts").get_caller_identity()["Account"]

    def _job_arn(self, name: str) -> str:
        return f"arn:aws:glue:{self.context.region}:{self._account}:job/{name}"

    def _DeleteJob(self, request: AwsRequest, params: dict) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            self.runs.forget_job(params.get("JobName", ""))
        return response

    # ---- crawlers ------------------------------------------------------------------------------------
    def _crawler(self, name: str) -> dict:
        try:
            return self._glue.get_crawler(Name=name)["Crawler"]
        except self._glue.exceptions.EntityNotFoundException:
            raise GlueError("EntityNotFoundException", f"Crawler with name {name} has not been found") from None

    def _StartCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.crawls.start(self._crawler(params.get("Name", "")))
        return AwsResponse.json({})

    def _StopCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.crawls.stop(self._crawler(params.get("Name", ""))["Name"])
        return AwsResponse.json({})

    def _CreateCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        check_crawler_definition(params)
        self._check_crawler_role(params.get("Role"))
        response = request.send_on()
        if params.get("Schedule"):
            self._schedules_may_exist.set()
        return response

    def _check_crawler_role(self, role) -> None:
        """Glue checks that it can assume a crawler's role when the crawler is created or its role changes."""
        if isinstance(role, str) and role:
            try:
                self.roles.check(role)
            except rolesessions.Refused as refusal:
                raise GlueError("InvalidInputException", crawler_role_refusal(refusal.role_arn)) from None

    def _UpdateCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        self._check_crawler_role(params.get("Role"))
        self._change_crawler(params.get("Name", ""), {key: params[key] for key in CRAWLER_FIELDS if key in params})
        self._schedules_may_exist.set()
        return AwsResponse.json({})

    def _UpdateCrawlerSchedule(self, request: AwsRequest, params: dict) -> AwsResponse:
        self._change_crawler(params.get("CrawlerName", ""), {"Schedule": params.get("Schedule", "")})
        self._schedules_may_exist.set()
        return AwsResponse.json({})

    def _change_crawler(self, name: str, changes: dict) -> None:
        """Changes only the members given (the backend has no UpdateCrawler of its own); not while it runs."""
        current = self._crawler(name)
        name = current["Name"]
        if self.crawls.running(name):
            raise GlueError("CrawlerRunningException", f"Crawler with name {name} is running and cannot be updated")
        definition = {key: current[key] for key in CRAWLER_FIELDS if current.get(key) not in (None, "", [], {})}
        if isinstance(definition.get("Schedule"), dict):
            definition["Schedule"] = definition["Schedule"].get("ScheduleExpression", "")
        definition.update(changes)
        definition = {key: value for key, value in definition.items() if value not in (None, "")}
        check_crawler_definition(definition)
        tags = self._glue.get_tags(ResourceArn=f"arn:aws:glue:{self.context.region}:{self._account}:crawler/{name}").get("Tags", {})
        self._glue.delete_crawler(Name=name)
        self._glue.create_crawler(Name=name, Tags=tags, **definition)

    def _StartCrawlerSchedule(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.crawls.set_schedule_state(self._crawler(params.get("CrawlerName", "")), scheduled=True)
        self._schedules_may_exist.set()
        return AwsResponse.json({})

    def _StopCrawlerSchedule(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.crawls.set_schedule_state(self._crawler(params.get("CrawlerName", "")), scheduled=False)
        return AwsResponse.json({})

    def _watch_schedules(self) -> None:
        self._schedules_may_exist.set()  # crawlers restored from the journal may have schedules
        delay = FIRST_SCHEDULE_CHECK_SECONDS
        while not self._closing.wait(delay):
            delay = SCHEDULE_CHECK_SECONDS
            self._schedules_may_exist.wait()
            if self._closing.is_set():
                return
            self._schedules_may_exist.clear()  # before the look, so a schedule given during it is not missed
            try:
                crawlers = [crawler for page in self._glue.get_paginator("get_crawlers").paginate() for crawler in page["Crawlers"]]
                self.crawls.fire_due_schedules(crawlers, lab_now())
            except Exception as error:  # e.g. the gateway not serving yet; the next look tries again
                log.debug("crawler schedules not checked: %s", error)
                crawlers = [{"Schedule": "unknown"}]
            if any(crawler.get("Schedule") for crawler in crawlers):
                self._schedules_may_exist.set()

    def _GetCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        return self._with_crawl_state(request.send_on(), "Crawler")

    def _GetCrawlers(self, request: AwsRequest, params: dict) -> AwsResponse:
        return self._with_crawl_state(request.send_on(), "Crawlers")

    def _BatchGetCrawlers(self, request: AwsRequest, params: dict) -> AwsResponse:
        return self._with_crawl_state(request.send_on(), "Crawlers")

    def _with_crawl_state(self, response: AwsResponse, member: str) -> AwsResponse:
        if response.status >= 300:
            return response
        document = json.loads(response.read())
        crawlers = document.get(member)
        for crawler in crawlers if isinstance(crawlers, list) else [crawlers]:
            if crawler:
                self.crawls.describe_into(crawler)
        return AwsResponse.json(document)

    def _GetCrawlerMetrics(self, request: AwsRequest, params: dict) -> AwsResponse:
        names = params.get("CrawlerNameList") or [c["Name"] for c in self._glue.get_crawlers().get("Crawlers", [])]
        metrics = [self.crawls.metrics(self._crawler(name)["Name"]) for name in names]
        return AwsResponse.json({"CrawlerMetricsList": metrics})

    def _DeleteCrawler(self, request: AwsRequest, params: dict) -> AwsResponse:
        if self.crawls.running(params.get("Name", "")):
            raise GlueError("CrawlerRunningException", f"Crawler with name {params.get('Name')} is running and cannot be deleted")
        response = request.send_on()
        if response.status < 300:
            self.crawls.forget(params.get("Name", ""))
        return response

    # ---- classifiers ---------------------------------------------------------------------------------
    def _CreateClassifier(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.classifiers.create(params)
        return AwsResponse.json({})

    def _UpdateClassifier(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.classifiers.update(params)
        return AwsResponse.json({})

    def _GetClassifier(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"Classifier": self.classifiers.get(params.get("Name", ""))})

    def _GetClassifiers(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json(_page("Classifiers", self.classifiers.all(), params))

    def _DeleteClassifier(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.classifiers.delete(params.get("Name", ""))
        return AwsResponse.json({})

    # ---- triggers and workflows (workflows.py runs them; the backend keeps their definitions) ------------
    def _trigger(self, name: str) -> dict:
        try:
            return self._glue.get_trigger(Name=name)["Trigger"]
        except self._glue.exceptions.EntityNotFoundException:
            raise GlueError("EntityNotFoundException", f"Trigger with name {name} not found") from None

    def _CreateTrigger(self, request: AwsRequest, params: dict) -> AwsResponse:
        if problem := batching_problem(params.get("EventBatchingCondition")):
            raise GlueError("InvalidInputException", problem)
        if params.get("Type") == "SCHEDULED":
            try:
                Cron.parse(params.get("Schedule") or "")
            except CronError as error:
                raise GlueError("InvalidInputException", f"Invalid schedule: {error}") from None
        predicate = params.get("Predicate")
        if problem := trigger_rules.predicate_problem(predicate):
            raise GlueError("InvalidInputException", problem)
        if predicate and not predicate.get("Logical"):
            # AWS: Logical may be left out when the predicate has one condition (the backend would fail on it)
            request = dataclasses.replace(request, body=json.dumps({**params, "Predicate": {**predicate, "Logical": "AND"}}).encode())
        response = request.send_on()
        if response.status < 300:
            self.workflows.trigger_changed(params.get("Name", ""))
        return response

    def _StartTrigger(self, request: AwsRequest, params: dict) -> AwsResponse:
        """An ON_DEMAND trigger fires its actions (in a new run of its workflow); any other is activated."""
        trigger = self._trigger(params.get("Name", ""))
        if trigger["Type"] == "ON_DEMAND":
            self.workflows.start_on_demand(trigger)
            return AwsResponse.json({"Name": trigger["Name"]})
        return self._trigger_changed(request, params)

    def _trigger_changed(self, request: AwsRequest, params: dict) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            self.workflows.trigger_changed(params.get("Name", ""))
        return response

    _StopTrigger = _DeleteTrigger = _trigger_changed

    def _UpdateTrigger(self, request: AwsRequest, params: dict) -> AwsResponse:
        """Changes only the TriggerUpdate members given (the backend has no UpdateTrigger of its own); the type,
        workflow and state stay."""
        current = self._trigger(params.get("Name", ""))
        update = {key: value for key, value in (params.get("TriggerUpdate") or {}).items() if key in trigger_rules.TRIGGER_UPDATE_FIELDS}
        definition = {key: current[key] for key in ("Name", "WorkflowName", "Type", *trigger_rules.TRIGGER_UPDATE_FIELDS) if current.get(key)}
        definition.update(update)
        if problem := trigger_rules.predicate_problem(definition.get("Predicate")) or batching_problem(definition.get("EventBatchingCondition")):
            raise GlueError("InvalidInputException", problem)
        if definition.get("Predicate") and not definition["Predicate"].get("Logical"):
            definition["Predicate"] = {**definition["Predicate"], "Logical": "AND"}
        if definition["Type"] == "SCHEDULED":
            try:
                Cron.parse(definition.get("Schedule") or "")
            except CronError as error:
                raise GlueError("InvalidInputException", f"Invalid schedule: {error}") from None
        arn = f"arn:aws:glue:{self.context.region}:{self._account}:trigger/{current['Name']}"
        tags = self._glue.get_tags(ResourceArn=arn).get("Tags", {})
        self._glue.delete_trigger(Name=current["Name"])
        self._glue.create_trigger(Tags=tags, StartOnCreation=current.get("State") == "ACTIVATED", **definition)
        if current.get("State") == "DEACTIVATED":
            self._glue.stop_trigger(Name=current["Name"])
        self.workflows.trigger_changed(current["Name"])
        return AwsResponse.json({"Trigger": self._trigger(current["Name"])})

    def _StartWorkflowRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"RunId": self.workflows.start_run(params.get("Name", ""), params.get("RunProperties"))})

    def _GetWorkflowRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        run = self.workflows.get_run(params.get("Name", ""), params.get("RunId", ""), bool(params.get("IncludeGraph")))
        return AwsResponse.json({"Run": run})

    def _GetWorkflowRuns(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json(_page("Runs", self.workflows.runs_of(params.get("Name", ""), bool(params.get("IncludeGraph"))), params))

    def _StopWorkflowRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.workflows.stop_run(params.get("Name", ""), params.get("RunId", ""))
        return AwsResponse.json({})

    def _ResumeWorkflowRun(self, request: AwsRequest, params: dict) -> AwsResponse:
        run_id, node_ids = self.workflows.resume_run(params.get("Name", ""), params.get("RunId", ""), params.get("NodeIds") or [])
        return AwsResponse.json({"RunId": run_id, "NodeIds": node_ids})

    def _GetWorkflowRunProperties(self, request: AwsRequest, params: dict) -> AwsResponse:
        return AwsResponse.json({"RunProperties": self.workflows.properties(params.get("Name", ""), params.get("RunId", ""))})

    def _PutWorkflowRunProperties(self, request: AwsRequest, params: dict) -> AwsResponse:
        self.workflows.put_properties(params.get("Name", ""), params.get("RunId", ""), params.get("RunProperties") or {})
        return AwsResponse.json({})

    def _GetWorkflow(self, request: AwsRequest, params: dict) -> AwsResponse:
        """The backend's definition with this engine's LastRun, and the Graph when asked for."""
        response = request.send_on()
        if response.status >= 300:
            return response
        document = json.loads(response.read())
        workflow = document["Workflow"]
        workflow.pop("LastRun", None)
        include_graph = bool(params.get("IncludeGraph"))
        if last_run := self.workflows.last_run(workflow["Name"], include_graph):
            workflow["LastRun"] = last_run
        if include_graph:
            workflow["Graph"] = self.workflows.workflow_graph(workflow["Name"])
        return AwsResponse.json(document)

    def _DeleteWorkflow(self, request: AwsRequest, params: dict) -> AwsResponse:
        response = request.send_on()
        if response.status < 300:
            self.workflows.forget_workflow(params.get("Name", ""))
            self.event_batches.forget_workflow(params.get("Name", ""))
        return response

    def _NotifyEvent(self, request: AwsRequest, params: dict) -> AwsResponse:
        """What EventBridge calls for a rule whose target is a workflow (in no SDK; the events engine sends it):
        the event joins the batch of the workflow's EVENT trigger, and a full batch starts a run."""
        name, event_id = params.get("Name") or "", params.get("EventId") or ""
        if not name or not event_id:
            raise GlueError("InvalidInputException", "NotifyEvent needs the workflow's Name and the event's EventId")
        self.workflows.workflow(name)  # EntityNotFoundException for no such workflow
        run_id = self.event_batches.notify(name, event_id)
        return AwsResponse.json({"RunId": run_id} if run_id else {})

    def _start_batch_run(self, workflow: str, properties: dict, trigger: str, condition: dict) -> str:
        return self.workflows.start_run(workflow, properties, fired_by=trigger, batch_condition=condition)

    def admin_routes(self):
        return {"glue": lambda request: AwsResponse.json(self.runs.worker_status())}

    def reset(self) -> None:
        self.workflows.reset()
        self.event_batches.reset()
        self.runs.reset()
        self.crawls.reset()
        self.classifiers.reset()
        self.roles.forget()

    def close(self) -> None:
        self._closing.set()
        self._schedules_may_exist.set()  # wakes the watcher so it can see the stack closing
        self._schedule_watcher.join(timeout=5)
        self.workflows.close()
        self.runs.close()
        self.crawls.close()
