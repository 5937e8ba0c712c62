"""The Glue Data Quality engine: rulesets, evaluation runs over catalog tables, results and rule
recommendations, answered here (the backend has no Data Quality at all).

A room of its own rather than part of the Glue engine: it shares nothing with jobs, crawlers or workflows but
the catalog, which it reads through the Athena engine's table reader (athena/tableread.py) as any query would.
State (rulesets, runs, results) is kept in JSON documents under state_dir/dataquality/ through the store, so it
survives a restart; a run that was RUNNING when the stack stopped is FAILED at the next start.

Runs are asynchronous as on AWS: Start* answers at once with a RunId, a worker thread takes the run RUNNING →
SUCCEEDED / FAILED. A run reads the catalog and S3 as its Role (a session Glue assumes: dealab.wire.rolesessions),
so a role that may not read the table's data fails the run with S3's refusal, and a role Glue cannot assume fails
it in Glue's words. A finished evaluation publishes, through the gateway like any client, the CloudWatch
metrics and the EventBridge event AWS publishes (publish.py)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from dealab.engines.dataquality import publish
from dealab.engines.dataquality.dqdl import DqdlError, parse
from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.wire import labtime, paging, rolesessions
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.dataquality")

STACK_STOPPED = "The run was interrupted: the stack stopped while it ran"
CANCELLED = "Run cancelled by user"
FINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT")
# CompletedOn, StartedOn and the other times are stored as lab-clock epoch seconds (botocore reads numbers)
RUN_MEMBERS = ("DataSource", "Role", "NumberOfWorkers", "Timeout", "AdditionalRunOptions", "RulesetNames", "AdditionalDataSources")
GLUE_PRINCIPAL = "glue.amazonaws.com"
SESSION_NAME = "GlueDataQualitySession"  # dealab's name for the session a Data Quality run reads with
RECOMMENDATION_MEMBERS = ("DataSource", "Role", "NumberOfWorkers", "Timeout", "CreatedRulesetName",
                          "DataQualitySecurityConfiguration", "AdditionalRunOptions", "RecommendationMode")


class DataQualityError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _required(params: dict, member: str) -> str:
    value = params.get(member)
    if not value:
        raise DataQualityError("InvalidInputException", f"{member} is required")
    return value


def _page(member: str, items: list[dict], params: dict) -> dict:
    return paging.page(member, items, params, default=100,
                       invalid_token=lambda token: DataQualityError("InvalidInputException", f"Invalid NextToken: {token}"))


def _glue_table(source: dict | None) -> dict:
    table = (source or {}).get("GlueTable") or (source or {}).get("DataQualityGlueTable")
    if not table or not table.get("DatabaseName") or not table.get("TableName"):
        raise DataQualityError("InvalidInputException", "DataSource.GlueTable with DatabaseName and TableName is required")
    return table


def _check_dqdl(ruleset: str) -> None:
    try:
        parse(ruleset)
    except DqdlError as error:
        raise DataQualityError("InvalidInputException", str(error)) from None


class DataQualityEngine(Engine):
    name = "dataquality"
    operations = {("glue", operation): f"_{operation}" for operation in (
        "CreateDataQualityRuleset", "GetDataQualityRuleset", "UpdateDataQualityRuleset", "ListDataQualityRulesets",
        "DeleteDataQualityRuleset",
        "StartDataQualityRulesetEvaluationRun", "GetDataQualityRulesetEvaluationRun",
        "ListDataQualityRulesetEvaluationRuns", "CancelDataQualityRulesetEvaluationRun",
        "GetDataQualityResult", "BatchGetDataQualityResult", "ListDataQualityResults", "PublishDataQuality",
        "StartDataQualityRuleRecommendationRun", "GetDataQualityRuleRecommendationRun",
        "ListDataQualityRuleRecommendationRuns", "CancelDataQualityRuleRecommendationRun",
    )}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self.scratch = folder / "scratch"
        self.rulesets = JsonFile(folder / "rulesets.json")
        self.runs = JsonFile(folder / "evaluation_runs.json")
        self.results = JsonFile(folder / "results.json")
        self.recommendations = JsonFile(folder / "recommendation_runs.json")
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataquality-run")
        self._cancelled: set[str] = set()
        self.roles = rolesessions.RoleSessions(context, GLUE_PRINCIPAL)
        self._fail_interrupted()

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return AwsResponse.json(handler(request.json))
        except DataQualityError as error:
            return AwsResponse.json_error(error.code, error.message)

    def reset(self) -> None:
        with self._lock:
            for document in (self.rulesets, self.runs, self.results, self.recommendations):
                document.remove()
        self.roles.forget()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fail_interrupted(self) -> None:
        for document in (self.runs, self.recommendations):
            runs = document.load({})
            stale = [run for run in runs.values() if run["Status"] not in FINAL_STATES]
            for run in stale:
                run.update(Status="FAILED", ErrorString=STACK_STOPPED, LastModifiedOn=labtime.unix_time())
            if stale:
                document.save(runs)

    def _update(self, document: JsonFile, key: str, **fields) -> dict:
        with self._lock:
            items = document.load({})
            items[key].update(fields, LastModifiedOn=labtime.unix_time())
            document.save(items)
            return items[key]

    # ------------------------------------------------------------ rulesets

    def _CreateDataQualityRuleset(self, params: dict) -> dict:
        name = _required(params, "Name")
        ruleset = _required(params, "Ruleset")
        _check_dqdl(ruleset)
        with self._lock:
            rulesets = self.rulesets.load({})
            if name in rulesets:
                raise DataQualityError("AlreadyExistsException", f"Ruleset with name {name} already exists")
            now = labtime.unix_time()
            rulesets[name] = {"Name": name, "Description": params.get("Description", ""), "Ruleset": ruleset,
                              "CreatedOn": now, "LastModifiedOn": now, "Tags": params.get("Tags") or {}}
            if params.get("TargetTable"):
                rulesets[name]["TargetTable"] = params["TargetTable"]
            if params.get("DataQualitySecurityConfiguration"):
                rulesets[name]["DataQualitySecurityConfiguration"] = params["DataQualitySecurityConfiguration"]
            self.rulesets.save(rulesets)
        return {"Name": name}

    def _ruleset(self, name: str) -> dict:
        found = self.rulesets.load({}).get(name)
        if found is None:
            raise DataQualityError("EntityNotFoundException", f"Cannot find Data Quality Ruleset in account with name {name}")
        return found

    def _GetDataQualityRuleset(self, params: dict) -> dict:
        ruleset = self._ruleset(_required(params, "Name"))
        return {k: v for k, v in ruleset.items() if k != "Tags"}

    def _UpdateDataQualityRuleset(self, params: dict) -> dict:
        name = _required(params, "Name")
        self._ruleset(name)
        if params.get("Ruleset"):
            _check_dqdl(params["Ruleset"])
        changes = {k: params[k] for k in ("Description", "Ruleset") if k in params}
        updated = self._update(self.rulesets, name, **changes)
        return {"Name": name, "Description": updated.get("Description", ""), "Ruleset": updated["Ruleset"]}

    def _ListDataQualityRulesets(self, params: dict) -> dict:
        wanted = params.get("Filter") or {}
        target = wanted.get("TargetTable")
        found = []
        for ruleset in sorted(self.rulesets.load({}).values(), key=lambda r: r["CreatedOn"]):
            if wanted.get("Name") and wanted["Name"] != ruleset["Name"]:
                continue
            if target and {k: v for k, v in (ruleset.get("TargetTable") or {}).items() if k in target} != target:
                continue
            if any(ruleset.get("Tags", {}).get(k) != v for k, v in (params.get("Tags") or {}).items()):
                continue
            summary = {k: ruleset[k] for k in ("Name", "Description", "CreatedOn", "LastModifiedOn", "TargetTable", "RecommendationRunId") if k in ruleset}
            try:
                summary["RuleCount"] = len(parse(ruleset["Ruleset"]).rules)
            except DqdlError:
                summary["RuleCount"] = 0
            found.append(summary)
        return _page("Rulesets", found, params)

    def _DeleteDataQualityRuleset(self, params: dict) -> dict:
        name = _required(params, "Name")
        with self._lock:
            rulesets = self.rulesets.load({})
            if rulesets.pop(name, None) is None:
                raise DataQualityError("EntityNotFoundException", f"Cannot find Data Quality Ruleset in account with name {name}")
            self.rulesets.save(rulesets)
        return {}

    # ------------------------------------------------------------ evaluation runs

    def _StartDataQualityRulesetEvaluationRun(self, params: dict) -> dict:
        _glue_table(params.get("DataSource"))
        _required(params, "Role")
        names = params.get("RulesetNames") or []
        if not names:
            raise DataQualityError("InvalidInputException", "RulesetNames is required")
        for name in names:
            self._ruleset(name)
        for alias, source in (params.get("AdditionalDataSources") or {}).items():
            _glue_table(source)
        run_id = "dqrun-" + secrets.token_hex(20)
        now = labtime.unix_time()
        run = {"RunId": run_id, **{k: params[k] for k in RUN_MEMBERS if k in params}, "Status": "RUNNING",
               "StartedOn": now, "LastModifiedOn": now, "ResultIds": []}
        with self._lock:
            runs = self.runs.load({})
            runs[run_id] = run
            self.runs.save(runs)
        self._pool.submit(self._evaluate_run, run_id)
        return {"RunId": run_id}

    def _evaluate_run(self, run_id: str) -> None:
        started = time.monotonic()
        run = self.runs.load({})[run_id]
        if run_id in self._cancelled:
            return
        try:
            result_ids = []
            for name in run["RulesetNames"]:
                ruleset = self._ruleset(name)
                evaluation = self._evaluate_tables(parse(ruleset["Ruleset"]), run["DataSource"], run.get("AdditionalDataSources") or {}, run["Role"])
                if run_id in self._cancelled:
                    return
                result_ids.append(self._record_result(run, name, evaluation))
            self._update(self.runs, run_id, Status="SUCCEEDED", ResultIds=result_ids, CompletedOn=labtime.unix_time(),
                         ExecutionTime=int(time.monotonic() - started))
        except Exception as error:  # the run ends FAILED with one line, as Glue reports a run's error
            if not isinstance(error, (DataQualityError, DqdlError, LookupError)):
                log.exception("data quality run %s failed", run_id)
            message = error.message if isinstance(error, DataQualityError) else str(error).splitlines()[0]
            self._update(self.runs, run_id, Status="FAILED", ErrorString=message, CompletedOn=labtime.unix_time(),
                         ExecutionTime=int(time.monotonic() - started))

    def _reader(self, role: str):
        """The catalog and S3 as the run's role (a refused role fails the run in Glue's words)."""
        from dealab.engines.athena.catalog import GlueCatalog
        from dealab.engines.athena.s3reads import CallerS3
        from dealab.engines.athena.tableread import CatalogTableReader

        def refused(refusal: rolesessions.Refused) -> Exception:
            return DataQualityError("AccessDeniedException", f"Role {refusal.role_arn} should be given assume role permissions for Glue Service.")

        def keys() -> tuple[str, str, str | None]:
            try:
                found = self.roles.credentials(role, SESSION_NAME)
            except rolesessions.Refused as refusal:
                raise refused(refusal) from None
            return (found.access_key, found.secret_key, found.token) if found else (TEST_ACCESS_KEY, TEST_SECRET_KEY, None)

        keys()  # a role Glue cannot assume fails the run before it reads anything
        # a fresh catalog per run: what a crawler or CREATE TABLE just wrote is what the run reads
        catalog = GlueCatalog(*(self.roles.client(service, role, SESSION_NAME, on_refusal=refused, engine=self.name) for service in ("glue", "s3")))
        caller = CallerS3(self.context.loopback, self.context.endpoint_url, self.context.region, keys)
        return CatalogTableReader(catalog, caller, self.scratch)

    def _evaluate_tables(self, ruleset, source: dict, additional: dict, role: str):
        from dealab.engines.dataquality.rules import PRIMARY, Datasets, evaluate  # DuckDB: loaded by the first run

        reader = self._reader(role)
        try:
            relations = {}
            for alias, data_source in {PRIMARY: source, **additional}.items():
                table = _glue_table(data_source)
                relations[alias] = reader.relation(table["DatabaseName"], table["TableName"])
            return evaluate(ruleset, Datasets(reader.connection, relations, labtime.now()))
        finally:
            reader.close()

    def _record_result(self, run: dict, ruleset_name: str, evaluation) -> str:
        result_id = "dqresult-" + secrets.token_hex(20)
        now = labtime.unix_time()
        table = _glue_table(run["DataSource"])
        result = {"ResultId": result_id, "Score": evaluation.score, "DataSource": run["DataSource"],
                  "RulesetName": ruleset_name, "EvaluationContext": "", "StartedOn": run["StartedOn"], "CompletedOn": now,
                  "RulesetEvaluationRunId": run["RunId"], "EvaluationRunMode": "ON_DEMAND",
                  "RuleResults": publish.rule_results(evaluation), "AnalyzerResults": publish.analyzer_results(evaluation),
                  "Observations": [], "AggregatedMetrics": publish.aggregated_metrics(evaluation)}
        with self._lock:
            results = self.results.load({})
            results[result_id] = result
            self.results.save(results)
        moment = labtime.now()
        options = run.get("AdditionalRunOptions") or {}
        if options.get("CloudWatchMetricsEnabled", True):
            dimensions = {"CatalogId": table.get("CatalogId", "123456789012"), "Database": table["DatabaseName"],
                          "Table": table["TableName"], "Ruleset": ruleset_name}
            self.own_client("cloudwatch").put_metric_data(
                Namespace=publish.NAMESPACE, MetricData=publish.metric_data(evaluation, dimensions, moment))
        context = {"contextType": "GLUE_DATA_CATALOG", "runId": run["RunId"], "databaseName": table["DatabaseName"],
                   "tableName": table["TableName"], "catalogId": table.get("CatalogId", "123456789012")}
        self.own_client("events").put_events(
            Entries=[publish.event_entry(evaluation, context, result_id, [ruleset_name], moment)])
        return result_id

    def _run(self, document: JsonFile, run_id: str, what: str) -> dict:
        found = document.load({}).get(run_id)
        if found is None:
            raise DataQualityError("EntityNotFoundException", f"Cannot find {what} with id {run_id}")
        return found

    def _GetDataQualityRulesetEvaluationRun(self, params: dict) -> dict:
        return self._run(self.runs, _required(params, "RunId"), "Data Quality Ruleset Evaluation Run")

    def _ListDataQualityRulesetEvaluationRuns(self, params: dict) -> dict:
        wanted = params.get("Filter") or {}
        runs = sorted(self.runs.load({}).values(), key=lambda r: r["StartedOn"], reverse=True)
        if wanted.get("DataSource"):
            runs = [r for r in runs if _glue_table(r["DataSource"]) == _glue_table(wanted["DataSource"])]
        if wanted.get("RulesetName"):
            runs = [r for r in runs if wanted["RulesetName"] in r.get("RulesetNames", [])]
        summaries = [{k: r[k] for k in ("RunId", "Status", "StartedOn", "DataSource") if k in r} for r in runs]
        return _page("Runs", summaries, params)

    def _CancelDataQualityRulesetEvaluationRun(self, params: dict) -> dict:
        run_id = _required(params, "RunId")
        run = self._run(self.runs, run_id, "Data Quality Ruleset Evaluation Run")
        if run["Status"] in FINAL_STATES:
            raise DataQualityError("IllegalStateException", f"Run {run_id} is already in state {run['Status']}")
        self._cancelled.add(run_id)
        self._update(self.runs, run_id, Status="STOPPED", ErrorString=CANCELLED, CompletedOn=labtime.unix_time())
        return {}

    # ------------------------------------------------------------ results

    def _GetDataQualityResult(self, params: dict) -> dict:
        result_id = _required(params, "ResultId")
        found = self.results.load({}).get(result_id)
        if found is None:
            raise DataQualityError("EntityNotFoundException", f"Cannot find Data Quality Result with id {result_id}")
        return found

    def _BatchGetDataQualityResult(self, params: dict) -> dict:
        results = self.results.load({})
        wanted = params.get("ResultIds") or []
        return {"Results": [results[i] for i in wanted if i in results], "ResultsNotFound": [i for i in wanted if i not in results]}

    def _PublishDataQuality(self, params: dict) -> dict:
        """How a Glue job's EvaluateDataQuality hands its result to Glue Data Quality (glue:PublishDataQuality, in no
        SDK; publish.send_result sends it): kept with the catalog runs' results, so ListDataQualityResults lists it
        by JobName and a later evaluation of the same context reads it as history."""
        _required(params, "JobName")
        _required(params, "EvaluationContext")
        result_id = "dqresult-" + secrets.token_hex(20)
        now = labtime.unix_time()
        result = {"ResultId": result_id, "StartedOn": now, "CompletedOn": now,
                  **{k: params[k] for k in publish.JOB_RESULT_MEMBERS if k in params}, "Observations": []}
        with self._lock:
            results = self.results.load({})
            results[result_id] = result
            self.results.save(results)
        return {"ResultId": result_id}

    def _ListDataQualityResults(self, params: dict) -> dict:
        wanted = params.get("Filter") or {}
        results = sorted(self.results.load({}).values(), key=lambda r: r["StartedOn"], reverse=True)
        if wanted.get("DataSource"):
            results = [r for r in results if r.get("DataSource") and _glue_table(r["DataSource"]) == _glue_table(wanted["DataSource"])]
        for member in ("JobName", "JobRunId"):
            if wanted.get(member):
                results = [r for r in results if r.get(member) == wanted[member]]
        summaries = [{k: r[k] for k in ("ResultId", "EvaluationRunMode", "DataSource", "JobName", "JobRunId", "StartedOn") if k in r}
                     for r in results]
        return _page("Results", summaries, params)

    # ------------------------------------------------------------ recommendations

    def _StartDataQualityRuleRecommendationRun(self, params: dict) -> dict:
        _glue_table(params.get("DataSource"))
        _required(params, "Role")
        if params.get("CreatedRulesetName") and params["CreatedRulesetName"] in self.rulesets.load({}):
            raise DataQualityError("AlreadyExistsException", f"Ruleset with name {params['CreatedRulesetName']} already exists")
        run_id = "dqrun-" + secrets.token_hex(20)
        now = labtime.unix_time()
        run = {"RunId": run_id, **{k: params[k] for k in RECOMMENDATION_MEMBERS if k in params}, "Status": "RUNNING",
               "StartedOn": now, "LastModifiedOn": now}
        with self._lock:
            runs = self.recommendations.load({})
            runs[run_id] = run
            self.recommendations.save(runs)
        self._pool.submit(self._recommend, run_id)
        return {"RunId": run_id}

    def _recommend(self, run_id: str) -> None:
        started = time.monotonic()
        run = self.recommendations.load({})[run_id]
        if run_id in self._cancelled:
            return
        from dealab.engines.dataquality import recommend  # DuckDB: loaded by the first run
        from dealab.engines.dataquality.rules import PRIMARY, Datasets

        reader = None
        try:
            table = _glue_table(run["DataSource"])
            reader = self._reader(run["Role"])
            datasets = Datasets(reader.connection, {PRIMARY: reader.relation(table["DatabaseName"], table["TableName"])}, labtime.now())
            text = recommend.recommend(datasets)
            if run.get("CreatedRulesetName"):
                self._CreateDataQualityRuleset({"Name": run["CreatedRulesetName"], "Ruleset": text,
                                                "TargetTable": {"DatabaseName": table["DatabaseName"], "TableName": table["TableName"]}})
                self._update(self.rulesets, run["CreatedRulesetName"], RecommendationRunId=run_id)
            self._update(self.recommendations, run_id, Status="SUCCEEDED", RecommendedRuleset=text,
                         CompletedOn=labtime.unix_time(), ExecutionTime=int(time.monotonic() - started))
        except Exception as error:
            if not isinstance(error, (DataQualityError, LookupError)):
                log.exception("recommendation run %s failed", run_id)
            message = error.message if isinstance(error, DataQualityError) else str(error).splitlines()[0]
            self._update(self.recommendations, run_id, Status="FAILED", ErrorString=message, CompletedOn=labtime.unix_time(),
                         ExecutionTime=int(time.monotonic() - started))
        finally:
            if reader is not None:
                reader.close()

    def _GetDataQualityRuleRecommendationRun(self, params: dict) -> dict:
        return self._run(self.recommendations, _required(params, "RunId"), "Data Quality Rule Recommendation Run")

    def _ListDataQualityRuleRecommendationRuns(self, params: dict) -> dict:
        runs = sorted(self.recommendations.load({}).values(), key=lambda r: r["StartedOn"], reverse=True)
        summaries = [{k: r[k] for k in ("RunId", "Status", "StartedOn", "DataSource", "CreatedRulesetName", "RecommendationMode") if k in r}
                     for r in runs]
        return _page("Runs", summaries, params)

    def _CancelDataQualityRuleRecommendationRun(self, params: dict) -> dict:
        run_id = _required(params, "RunId")
        run = self._run(self.recommendations, run_id, "Data Quality Rule Recommendation Run")
        if run["Status"] in FINAL_STATES:
            raise DataQualityError("IllegalStateException", f"Run {run_id} is already in state {run['Status']}")
        self._cancelled.add(run_id)
        self._update(self.recommendations, run_id, Status="STOPPED", ErrorString=CANCELLED, CompletedOn=labtime.unix_time())
        return {}

