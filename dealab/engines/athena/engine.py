"""The Athena engine: Athena's API answered here (query executions, work groups, named queries, data
catalogs from Glue), queries executed on DuckDB by the QueryRunner. State lives in state_dir/athena/."""

from __future__ import annotations

import copy
import datetime
import itertools
import re
import threading
import time
import uuid
from collections import OrderedDict

from typing import TYPE_CHECKING

from dealab.wire import labtime, metrics, paging, serviceevents
from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.engines.athena.store import STACK_STOPPED_REASON, Store
from dealab.wire.messages import AwsRequest, AwsResponse

# The query machinery (duckdb, sqlglot: ~65 MB and ~0.2 s) loads with the first Athena call that needs it,
# not with the stack, so a learner who never touches Athena does not pay for it.
if TYPE_CHECKING:
    from dealab.engines.athena import results
    from dealab.engines.athena.catalog import GlueCatalog
    from dealab.engines.athena.execution import QueryRunner

ENGINE_VERSION = {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}
PRIMARY = "primary"
CATALOG_NAME = "AwsDataCatalog"
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
MAX_RESULTS_PER_PAGE = 1000
# GetQueryExecution of a query still running waits this long for it to end before answering, so a client
# polling every few ms or every second sees SUCCEEDED as soon as it is, not at its next poll.
STATE_WAIT_SECONDS = 0.02
CACHED_RESULTS = 16
# The latest executions are kept in memory as well as in the store: GetQueryExecution, asked every few ms while a
# query runs, and the runner's state changes read them there instead of from SQLite. Executions not yet final
# are always kept (RUNNING is in memory only: the store has such a query QUEUED, which a restart ends FAILED alike).
KEPT_EXECUTIONS = 256
# Where a statement's result goes, by its first words: queries → <id>.csv; CTAS / INSERT / UNLOAD →
# tables/<id> (with -manifest.csv); everything else (DDL, SHOW, DESCRIBE) → <id>.txt.
RESULT_NAMING = [
    (re.compile(r"^\s*(\(\s*)*(SELECT|WITH|VALUES|TABLE|EXPLAIN)\b", re.I), "DML", "{id}.csv"),
    (re.compile(r"^\s*CREATE\s+TABLE\b.*?\bAS\s*\(?\s*(SELECT|WITH|VALUES)\b", re.I | re.S), "DDL", "tables/{id}"),
    (re.compile(r"^\s*(INSERT|UNLOAD)\b", re.I), "DML", "tables/{id}"),
    (re.compile(r"^\s*(SHOW|DESCRIBE|DESC)\b", re.I), "UTILITY", "{id}.txt"),
    (re.compile(r""), "DDL", "{id}.txt"),
]


def _epoch(value) -> float | None:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return value


class InvalidRequest(Exception):
    def __init__(self, message: str, code: str = "InvalidRequestException"):
        super().__init__(message)
        self.code = code


class AthenaEngine(Engine):
    name = "athena"
    # Every Athena operation dealab answers; the rest (tags, prepared statements, …) go on to the backend.
    operations = {("athena", name): f"op_{name}" for name in (
        "CreateWorkGroup",
        "GetWorkGroup",
        "ListWorkGroups",
        "UpdateWorkGroup",
        "DeleteWorkGroup",
        "CreateNamedQuery",
        "GetNamedQuery",
        "UpdateNamedQuery",
        "DeleteNamedQuery",
        "ListNamedQueries",
        "BatchGetNamedQuery",
        "StartQueryExecution",
        "GetQueryExecution",
        "BatchGetQueryExecution",
        "ListQueryExecutions",
        "StopQueryExecution",
        "GetQueryResults",
        "ListDataCatalogs",
        "GetDataCatalog",
        "ListDatabases",
        "GetDatabase",
        "ListTableMetadata",
        "GetTableMetadata",
    )} | {("glue", ANY_OPERATION): "_glue_call"}  # every other caller's Glue calls (its own DDL: see GlueCatalog)

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.store = Store(context.state_dir / "athena")
        self._lock = threading.RLock()
        self._ended = threading.Condition(self._lock)  # notified when an execution reaches a final state
        self._results: OrderedDict[str, tuple[list, list]] = OrderedDict()
        # what the store holds for the latest executions; a kept document is never changed, only replaced
        self._executions: OrderedDict[str, dict] = OrderedDict()
        self._catalog: GlueCatalog | None = None
        self._runner: QueryRunner | None = None
        self._fail_interrupted()

    # ------------------------------------------------------------ plumbing

    @property
    def catalog(self) -> GlueCatalog:
        if self._catalog is None:
            from dealab.engines.athena.catalog import GlueCatalog, engine_lister

            import botocore.session

            # the catalog's listings never read LastModified, and botocore's parse of it (dateutil) costs ~0.4 ms an object
            listing = botocore.session.get_session()
            listing.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            # in the stack's process a query's listings skip botocore altogether (the loopback's raw seam)
            loopback = self.context.loopback
            lister = engine_lister(loopback, self.context.endpoint_url, self.context.region, self.name) if loopback.attached else None
            # listings are kept between queries only beside the gateway, whose requests tell when one may be stale
            self._catalog = GlueCatalog(self.context.client("glue", engine=self.name), self.context.client("s3", engine=self.name, session=listing),
                                        lister, keep_listings=loopback.attached)
        return self._catalog

    @property
    def runner(self) -> QueryRunner:
        with self._lock:
            if self._runner is None:
                from dealab.engines.athena.execution import QueryRunner
                from dealab.engines.athena.s3reads import CallerS3

                scratch = self.context.state_dir / "athena" / "scratch"
                scratch.mkdir(parents=True, exist_ok=True)
                # S3 without the engine's mark: reads and result writes pass the door and every engine as the
                # learner's own calls would (Athena reads data and writes results with the caller's rights)
                caller = CallerS3(self.context.loopback, self.context.endpoint_url, self.context.region)
                self._runner = QueryRunner(self.context.endpoint_url, self.context.region, self.catalog, scratch, self._record, caller)
                self._runner.warm_up()
            return self._runner

    def _glue_call(self, request: AwsRequest) -> AwsResponse:
        """Passes a Glue call on; one that may write (CreateTable, BatchCreatePartition, DeleteDatabase, a
        crawler's or a job's writes...) drops the catalog cache before and after, so no query plans with what
        the catalog held before the write."""
        catalog = self._catalog
        if catalog is None:
            return request.send_on()
        from dealab.engines.athena.catalog import writes  # loaded with the catalog

        if not writes(request.operation):
            return request.send_on()
        catalog.forget()
        try:
            return request.send_on()
        finally:
            catalog.forget()

    def admin_routes(self) -> dict:
        return {"athena/reads": self._reads}

    def _reads(self, request: AwsRequest) -> AwsResponse:
        """How many queries read S3 by each path since the stack started (tests assert the direct path is used)."""
        runner = self._runner
        return AwsResponse.json({"read_path": runner.read_path if runner else None, "queries": dict(runner.reads) if runner else {}})

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        if request.service == "glue":  # watched on its way to the backend, answered there
            return handler(request)
        # each op_ method takes the request's parameters and returns its result as JSON data
        try:
            if handler == self.op_StartQueryExecution:  # the query reads the catalog as its caller (Lake Formation)
                return AwsResponse.json(handler(request.json, caller=request.caller_arn))
            return AwsResponse.json(handler(request.json))
        except InvalidRequest as error:
            return AwsResponse.json_error(error.code, str(error))
        except self.catalog.glue.exceptions.EntityNotFoundException as error:
            return AwsResponse.json_error("MetadataException", error.response["Error"]["Message"])

    def reset(self) -> None:
        with self._lock:
            runner, self._runner = self._runner, None
            self._results.clear()
            self._executions.clear()
            self.store.clear()
        if runner is not None:
            runner.close()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        self.store.close()

    def _fail_interrupted(self) -> None:
        for execution in self.store.all("execution"):
            if execution["Status"]["State"] not in FINAL_STATES:
                execution["Status"].update(State="FAILED", StateChangeReason=STACK_STOPPED_REASON, CompletionDateTime=labtime.unix_time())
                self.store.put("execution", execution["QueryExecutionId"], execution)

    # ------------------------------------------------------------ work groups

    def _work_group(self, name: str) -> dict:
        group = self.store.get("workgroup", name)
        if group is None and name == PRIMARY:
            group = {"Name": PRIMARY, "State": "ENABLED", "Description": "", "CreationTime": labtime.unix_time(),
                     "Configuration": {"EnforceWorkGroupConfiguration": False, "PublishCloudWatchMetricsEnabled": False,
                                       "RequesterPaysEnabled": False, "EngineVersion": ENGINE_VERSION}}
            self.store.put("workgroup", PRIMARY, group)
        if group is None:
            raise InvalidRequest(f"WorkGroup {name} is not found.")
        return group

    def op_CreateWorkGroup(self, params: dict) -> dict:
        name = params["Name"]
        if self.store.get("workgroup", name) is not None or name == PRIMARY:
            raise InvalidRequest(f"WorkGroup {name} is already created")
        configuration = {"EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
                         "RequesterPaysEnabled": False, "EngineVersion": ENGINE_VERSION, **params.get("Configuration", {})}
        self.store.put("workgroup", name, {"Name": name, "State": "ENABLED", "Description": params.get("Description", ""),
                                           "CreationTime": labtime.unix_time(), "Configuration": configuration, "Tags": params.get("Tags", [])})
        return {}

    def op_GetWorkGroup(self, params: dict) -> dict:
        group = dict(self._work_group(params["WorkGroup"]))
        group.pop("Tags", None)
        return {"WorkGroup": group}

    def op_ListWorkGroups(self, params: dict) -> dict:
        self._work_group(PRIMARY)
        groups = [{"Name": g["Name"], "State": g["State"], "Description": g.get("Description", ""), "CreationTime": g["CreationTime"],
                   "EngineVersion": g["Configuration"].get("EngineVersion", ENGINE_VERSION)} for g in self.store.all("workgroup")]
        return self._page(params, "WorkGroups", sorted(groups, key=lambda g: g["Name"]), 50)

    def op_UpdateWorkGroup(self, params: dict) -> dict:
        with self._lock:
            group = self._work_group(params["WorkGroup"])
            if "Description" in params:
                group["Description"] = params["Description"]
            if "State" in params:
                group["State"] = params["State"]
            updates = params.get("ConfigurationUpdates", {})
            configuration = group["Configuration"]
            for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled",
                        "BytesScannedCutoffPerQuery", "EngineVersion", "AdditionalConfiguration", "ExecutionRole"):
                if key in updates:
                    configuration[key] = updates[key]
            if updates.get("RemoveBytesScannedCutoffPerQuery"):
                configuration.pop("BytesScannedCutoffPerQuery", None)
            result_updates = updates.get("ResultConfigurationUpdates", {})
            result_configuration = configuration.setdefault("ResultConfiguration", {})
            for key, remove in (("OutputLocation", "RemoveOutputLocation"), ("EncryptionConfiguration", "RemoveEncryptionConfiguration"),
                                ("ExpectedBucketOwner", "RemoveExpectedBucketOwner"), ("AclConfiguration", "RemoveAclConfiguration")):
                if key in result_updates:
                    result_configuration[key] = result_updates[key]
                if result_updates.get(remove):
                    result_configuration.pop(key, None)
            self.store.put("workgroup", group["Name"], group)
        return {}

    def op_DeleteWorkGroup(self, params: dict) -> dict:
        name = params["WorkGroup"]
        if name == PRIMARY:
            raise InvalidRequest("Cannot delete the primary workgroup")
        self._work_group(name)
        named = [q for q in self.store.all("namedquery") if q.get("WorkGroup") == name]
        if named and not params.get("RecursiveDeleteOption"):
            raise InvalidRequest(f"WorkGroup {name} is not empty. Set RecursiveDeleteOption to delete it with its named queries.")
        for query in named:
            self.store.delete("namedquery", query["NamedQueryId"])
        self.store.delete("workgroup", name)
        return {}

    # ------------------------------------------------------------ named queries

    def op_CreateNamedQuery(self, params: dict) -> dict:
        work_group = params.get("WorkGroup", PRIMARY)
        self._work_group(work_group)
        query_id = str(uuid.uuid4())
        self.store.put("namedquery", query_id, {"Name": params["Name"], "Description": params.get("Description", ""),
                                                "Database": params["Database"], "QueryString": params["QueryString"],
                                                "NamedQueryId": query_id, "WorkGroup": work_group})
        return {"NamedQueryId": query_id}

    def _named_query(self, query_id: str) -> dict:
        query = self.store.get("namedquery", query_id)
        if query is None:
            raise InvalidRequest(f"NamedQuery {query_id} was not found")
        return query

    def op_GetNamedQuery(self, params: dict) -> dict:
        return {"NamedQuery": self._named_query(params["NamedQueryId"])}

    def op_UpdateNamedQuery(self, params: dict) -> dict:
        query = self._named_query(params["NamedQueryId"])
        query.update({k: params[k] for k in ("Name", "Description", "QueryString") if k in params})
        self.store.put("namedquery", query["NamedQueryId"], query)
        return {}

    def op_DeleteNamedQuery(self, params: dict) -> dict:
        self._named_query(params["NamedQueryId"])
        self.store.delete("namedquery", params["NamedQueryId"])
        return {}

    def op_ListNamedQueries(self, params: dict) -> dict:
        work_group = params.get("WorkGroup", PRIMARY)
        self._work_group(work_group)
        ids = [q["NamedQueryId"] for q in self.store.all("namedquery") if q.get("WorkGroup") == work_group]
        return self._page(params, "NamedQueryIds", ids, 50)

    def op_BatchGetNamedQuery(self, params: dict) -> dict:
        found, missing = [], []
        for query_id in params["NamedQueryIds"]:
            query = self.store.get("namedquery", query_id)
            if query is None:
                missing.append({"NamedQueryId": query_id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "NamedQuery not found"})
            else:
                found.append(query)
        return {"NamedQueries": found, "UnprocessedNamedQueryIds": missing}

    # ------------------------------------------------------------ query executions

    def op_StartQueryExecution(self, params: dict, caller: str | None = None) -> dict:
        token = params.get("ClientRequestToken")
        if token:
            previous = self.store.get("token", token)
            if previous:
                return {"QueryExecutionId": previous["QueryExecutionId"]}
        work_group_name = params.get("WorkGroup", PRIMARY)
        work_group = self._work_group(work_group_name)
        if work_group["State"] != "ENABLED":
            raise InvalidRequest(f"WorkGroup {work_group_name} is disabled.")
        configuration = work_group["Configuration"]
        group_location = configuration.get("ResultConfiguration", {}).get("OutputLocation")
        requested = params.get("ResultConfiguration", {}).get("OutputLocation")
        location = group_location if configuration.get("EnforceWorkGroupConfiguration") and group_location else requested or group_location
        if not location:
            raise InvalidRequest("No output location provided. An output location is required either through the Workgroup "
                                 "result configuration setting or as an API input.")
        from dealab.engines.athena.catalog import folder, split_s3

        try:
            split_s3(location)
        except ValueError:
            raise InvalidRequest(f"outputLocation is not a valid S3 path: {location}") from None
        query = _bind_parameters(params["QueryString"], params.get("ExecutionParameters", []))
        execution_id = str(uuid.uuid4())
        statement_type, pattern = next((kind, name) for regex, kind, name in RESULT_NAMING if regex.match(query))
        output_folder = folder(location)
        execution = {
            "QueryExecutionId": execution_id,
            "Query": query,
            "StatementType": statement_type,
            "ResultConfiguration": {"OutputLocation": output_folder + pattern.format(id=execution_id)},
            "ResultReuseConfiguration": {"ResultReuseByAgeConfiguration": {"Enabled": False}},
            "QueryExecutionContext": params.get("QueryExecutionContext", {}),
            "Status": {"State": "QUEUED", "SubmissionDateTime": labtime.unix_time()},
            "Statistics": {"EngineExecutionTimeInMillis": 0, "DataScannedInBytes": 0, "TotalExecutionTimeInMillis": 0},
            "WorkGroup": work_group_name,
            "EngineVersion": ENGINE_VERSION,
            "_OutputFolder": output_folder,
            "_BytesScannedCutoff": configuration.get("BytesScannedCutoffPerQuery"),
            "_Caller": caller,
        }
        if params.get("ExecutionParameters"):
            execution["ExecutionParameters"] = params["ExecutionParameters"]
        encryption = _result_encryption(configuration, params.get("ResultConfiguration", {}))
        if encryption:
            execution["ResultConfiguration"]["EncryptionConfiguration"] = encryption
        self._save(execution)
        if token:
            self.store.put("token", token, {"QueryExecutionId": execution_id})
        self.runner.submit(execution)
        return {"QueryExecutionId": execution_id}

    def _record(self, execution_id: str, state: str, reason: str | None = None, scanned: int | None = None,
                engine_ms: int | None = None, outcome: results.Outcome | None = None, manifest: str | None = None,
                error: tuple[int, int] | None = None, started: float | None = None, result: bytes | None = None) -> None:
        """The runner's report of a state change, persisted (a query already final stays as it is); `result`,
        the result file just written, is kept for GetQueryResults."""
        with self._lock:
            execution = self._kept(execution_id)
            if execution is None or execution["Status"]["State"] in FINAL_STATES:
                return
            execution = copy.deepcopy(execution)  # what GetQueryExecution answers meanwhile stays as it was
            status, statistics = execution["Status"], execution["Statistics"]
            previous_state, status["State"] = status["State"], state
            now = labtime.unix_time()
            if started is not None:
                statistics["QueryQueueTimeInMillis"] = int((started - status["SubmissionDateTime"]) * 1000)
            if reason:
                status["StateChangeReason"] = reason
            if error:
                status["AthenaError"] = {"ErrorCategory": error[0], "ErrorType": error[1], "Retryable": False, "ErrorMessage": reason}
            if scanned is not None:
                statistics["DataScannedInBytes"] = scanned
            if engine_ms is not None:
                statistics["EngineExecutionTimeInMillis"] = engine_ms
            if state in FINAL_STATES:
                status["CompletionDateTime"] = now
                statistics["TotalExecutionTimeInMillis"] = int((now - status["SubmissionDateTime"]) * 1000)
                statistics["ServiceProcessingTimeInMillis"] = max(0, statistics["TotalExecutionTimeInMillis"] - statistics.get("EngineExecutionTimeInMillis", 0) - statistics.get("QueryQueueTimeInMillis", 0))
            if manifest:
                statistics["DataManifestLocation"] = manifest
            if outcome is not None:
                execution["StatementType"] = outcome.statement_type
                execution["SubstatementType"] = outcome.substatement_type
                execution["_Tabular"] = outcome.tabular
                execution["_ColumnInfo"] = outcome.column_infos
                execution["_UpdateCount"] = outcome.update_count
            self._save(execution, persist=state != "RUNNING")
            _announce(execution, previous_state, self.context.region)
            if result is not None:
                self._keep_rows(execution_id, _result_rows(result, execution.get("_Tabular", True)))
            if state in FINAL_STATES:
                self._ended.notify_all()

    def _save(self, execution: dict, persist: bool = True) -> None:
        with self._lock:
            execution_id = execution["QueryExecutionId"]
            if persist:
                self.store.put("execution", execution_id, execution)
            self._executions.pop(execution_id, None)
            self._executions[execution_id] = execution
            excess = len(self._executions) - KEPT_EXECUTIONS
            if excess > 0:  # the oldest ended ones go (found first: kept in the order they were saved)
                ended = (kept_id for kept_id, kept in self._executions.items() if kept["Status"]["State"] in FINAL_STATES)
                for kept_id in list(itertools.islice(ended, excess)):
                    del self._executions[kept_id]

    def _kept(self, execution_id: str) -> dict | None:
        """The execution's latest document (not to be changed: _save a changed copy)."""
        with self._lock:
            kept = self._executions.get(execution_id)
        return kept if kept is not None else self.store.get("execution", execution_id)

    def _execution(self, execution_id: str) -> dict:
        execution = self._kept(execution_id)
        if execution is None:
            raise InvalidRequest(f"QueryExecution {execution_id} was not found")
        return execution

    @staticmethod
    def _public(execution: dict) -> dict:
        return {k: v for k, v in execution.items() if not k.startswith("_")}

    def op_GetQueryExecution(self, params: dict) -> dict:
        execution = self._execution(params["QueryExecutionId"])
        if execution["Status"]["State"] not in FINAL_STATES:
            with self._ended:
                self._ended.wait_for(lambda: self._execution(params["QueryExecutionId"])["Status"]["State"] in FINAL_STATES,
                                     timeout=STATE_WAIT_SECONDS)
                execution = self._execution(params["QueryExecutionId"])
        return {"QueryExecution": self._public(execution)}

    def op_BatchGetQueryExecution(self, params: dict) -> dict:
        found, missing = [], []
        for execution_id in params["QueryExecutionIds"]:
            execution = self._kept(execution_id)
            if execution is None:
                missing.append({"QueryExecutionId": execution_id, "ErrorCode": "INVALID_INPUT", "ErrorMessage": "QueryExecution not found"})
            else:
                found.append(self._public(execution))
        return {"QueryExecutions": found, "UnprocessedQueryExecutionIds": missing}

    def op_ListQueryExecutions(self, params: dict) -> dict:
        work_group = params.get("WorkGroup", PRIMARY)
        self._work_group(work_group)
        ids = [e["QueryExecutionId"] for e in self.store.all("execution", newest_first=True) if e["WorkGroup"] == work_group]
        return self._page(params, "QueryExecutionIds", ids, 50)

    def op_StopQueryExecution(self, params: dict) -> dict:
        execution = self._execution(params["QueryExecutionId"])
        if execution["Status"]["State"] in FINAL_STATES:
            return {}
        self.runner.stop(execution["QueryExecutionId"])
        if execution["Status"]["State"] == "QUEUED":
            self._record(execution["QueryExecutionId"], "CANCELLED", reason="Query cancelled by user")
        return {}

    def op_GetQueryResults(self, params: dict) -> dict:
        execution = self._execution(params["QueryExecutionId"])
        state = execution["Status"]["State"]
        if state in ("QUEUED", "RUNNING"):
            raise InvalidRequest(f"Query has not yet finished. Current state: {state}")
        if state != "SUCCEEDED":
            raise InvalidRequest(f"Query did not finish successfully. Final query state: {state}\n{execution['Status'].get('StateChangeReason', '')}".rstrip())
        page = self._page(params, "Rows", self._result_rows(execution), MAX_RESULTS_PER_PAGE, most=MAX_RESULTS_PER_PAGE)
        rows = [{"Data": [{} if value is None else {"VarCharValue": value} for value in row]} for row in page.pop("Rows")]
        return {
            "UpdateCount": execution.get("_UpdateCount") or 0,
            "ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": execution.get("_ColumnInfo", [])}},
        } | page

    def _result_rows(self, execution: dict) -> list:
        execution_id = execution["QueryExecutionId"]
        with self._lock:
            if execution_id in self._results:
                self._results.move_to_end(execution_id)
                return self._results[execution_id]
        from dealab.engines.athena.catalog import split_s3

        bucket, key = split_s3(execution["ResultConfiguration"]["OutputLocation"])
        s3 = self.catalog.s3
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise InvalidRequest(f"Unable to read the query result at s3://{bucket}/{key}: it no longer exists") from None
        rows = _result_rows(body, execution.get("_Tabular", True))
        self._keep_rows(execution_id, rows)
        return rows

    def _keep_rows(self, execution_id: str, rows: list) -> None:
        with self._lock:
            self._results[execution_id] = rows
            while len(self._results) > CACHED_RESULTS:
                self._results.popitem(last=False)

    # ------------------------------------------------------------ data catalogs (answered from Glue)

    def _check_catalog(self, params: dict) -> None:
        name = params.get("CatalogName", CATALOG_NAME)
        if name.lower() != CATALOG_NAME.lower():
            raise InvalidRequest(f"Catalog {name} not found", "MetadataException")

    def op_ListDataCatalogs(self, params: dict) -> dict:
        return {"DataCatalogsSummary": [{"CatalogName": CATALOG_NAME, "Type": "GLUE", "Status": "CREATE_COMPLETE"}]}

    def op_GetDataCatalog(self, params: dict) -> dict:
        self._check_catalog({"CatalogName": params["Name"]})
        return {"DataCatalog": {"Name": CATALOG_NAME, "Description": "AWS Glue Data Catalog", "Type": "GLUE",
                                "Parameters": {"catalog-id": "123456789012"}, "Status": "CREATE_COMPLETE"}}

    @staticmethod
    def _database(raw: dict) -> dict:
        return {"Name": raw["Name"], "Description": raw.get("Description", ""), "Parameters": raw.get("Parameters", {})}

    def op_ListDatabases(self, params: dict) -> dict:
        self._check_catalog(params)
        databases = [self._database(d) for d in self.catalog.databases()]
        return self._page(params, "DatabaseList", databases, 50)

    def op_GetDatabase(self, params: dict) -> dict:
        self._check_catalog(params)
        raw = self.catalog.glue.get_database(Name=params["DatabaseName"])["Database"]
        return {"Database": self._database(raw)}

    @staticmethod
    def _table_metadata(raw: dict) -> dict:
        columns = raw.get("StorageDescriptor", {}).get("Columns", [])
        return {
            "Name": raw["Name"],
            "CreateTime": _epoch(raw.get("CreateTime")),
            "LastAccessTime": _epoch(raw.get("LastAccessTime") or raw.get("UpdateTime") or raw.get("CreateTime")),
            "TableType": raw.get("TableType", "EXTERNAL_TABLE"),
            "Columns": [{k: c[k] for k in ("Name", "Type", "Comment") if k in c} for c in columns],
            "PartitionKeys": [{k: c[k] for k in ("Name", "Type", "Comment") if k in c} for c in raw.get("PartitionKeys", [])],
            "Parameters": {**raw.get("Parameters", {}), **({"location": raw["StorageDescriptor"]["Location"]} if raw.get("StorageDescriptor", {}).get("Location") else {})},
        }

    def op_ListTableMetadata(self, params: dict) -> dict:
        self._check_catalog(params)
        pattern = params.get("Expression")
        tables = [self._table_metadata(t) for t in self.catalog.tables(params["DatabaseName"])
                  if not pattern or re.fullmatch(pattern.replace("*", ".*"), t["Name"])]
        return self._page(params, "TableMetadataList", tables, 50)

    def op_GetTableMetadata(self, params: dict) -> dict:
        self._check_catalog(params)
        raw = self.catalog.glue.get_table(DatabaseName=params["DatabaseName"], Name=params["TableName"])["Table"]
        return {"TableMetadata": self._table_metadata(raw)}

    @staticmethod
    def _page(params: dict, key: str, items: list, default_size: int, most: int | None = None) -> dict:
        return paging.page(key, items, params, default=default_size, most=most,
                           invalid_token=lambda token: InvalidRequest(f"Invalid NextToken: {token}"))


# EncryptionOption values Athena accepts, and why dealab refuses the one it cannot do.
UNSUPPORTED_ENCRYPTION = {"CSE_KMS": "client-side encryption (CSE_KMS) of query results is not supported by dealab; use SSE_KMS or SSE_S3"}
ENCRYPTION_OPTIONS = frozenset({"SSE_S3", "SSE_KMS", "CSE_KMS"})


def _result_encryption(group_configuration: dict, requested: dict) -> dict | None:
    """The EncryptionConfiguration a query's results are written with: the work group's when it enforces its
    configuration, else the query's own, else the work group's (its settings are the default)."""
    group = group_configuration.get("ResultConfiguration", {}).get("EncryptionConfiguration")
    if group_configuration.get("EnforceWorkGroupConfiguration") and group:
        chosen = group
    else:
        chosen = requested.get("EncryptionConfiguration") or group
    if not chosen:
        return None
    option = chosen.get("EncryptionOption")
    if option not in ENCRYPTION_OPTIONS:
        raise InvalidRequest(f"EncryptionOption {option!r} is not one of {sorted(ENCRYPTION_OPTIONS)}")
    if option in UNSUPPORTED_ENCRYPTION:
        raise InvalidRequest(UNSUPPORTED_ENCRYPTION[option])
    return chosen


def _result_rows(body: bytes, tabular: bool) -> list:
    """GetQueryResults' rows from a result file: the .csv of a query, the .txt lines of DDL and utilities."""
    from dealab.engines.athena import results

    text = body.decode("utf-8")
    return results.parse_csv(text) if tabular else results.parse_text(text)


def _bind_parameters(query: str, parameters: list[str]) -> str:
    """Replaces each `?` outside quotes with the next ExecutionParameters value, as Athena does."""
    if not parameters:
        return query
    values = iter(parameters)
    parts, quote = [], None
    for char in query:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "?":
            try:
                parts.append(next(values))
                continue
            except StopIteration:
                raise InvalidRequest("Query has more parameter placeholders (?) than ExecutionParameters") from None
        parts.append(char)
    if next(values, None) is not None:
        raise InvalidRequest("ExecutionParameters has more values than the query has placeholders (?)")
    return "".join(parts)


def _announce(execution: dict, previous_state: str, region: str) -> None:
    """AWS's "Athena Query State Change" event, and at the end the query's AWS/Athena metrics (per WorkGroup, and
    per QueryState, QueryType and WorkGroup as AWS publishes them)."""
    state, work_group = execution["Status"]["State"], execution.get("WorkGroup", "primary")
    if state != previous_state:
        serviceevents.publish("aws.athena", "Athena Query State Change", {
            "currentState": state, "previousState": previous_state, "queryExecutionId": execution["QueryExecutionId"],
            "sequenceNumber": str({"QUEUED": 1, "RUNNING": 2}.get(state, 3)),
            "statementType": execution.get("StatementType", "DML"), "versionId": "0", "workgroupName": work_group}, region=region)
    if state not in FINAL_STATES:
        return
    statistics = execution["Statistics"]
    query_type = "DDL" if execution.get("StatementType") == "DDL" else "DML"
    for dimensions in ({"WorkGroup": work_group}, {"QueryState": state, "QueryType": query_type, "WorkGroup": work_group}):
        metrics.put("AWS/Athena", "ProcessedBytes", dimensions, statistics.get("DataScannedInBytes", 0), "Bytes", region=region)
        metrics.put("AWS/Athena", "TotalExecutionTime", dimensions, statistics.get("TotalExecutionTimeInMillis", 0), "Milliseconds", region=region)
        metrics.put("AWS/Athena", "EngineExecutionTime", dimensions, statistics.get("EngineExecutionTimeInMillis", 0), "Milliseconds", region=region)
