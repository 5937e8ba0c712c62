"""The CloudWatch Logs engine: what the backend stores but never runs, run.

- Logs Insights (StartQuery, GetQueryResults, StopQuery, DescribeQueries): the query is parsed and
  translated to DuckDB SQL (insights.py) when it starts, so a syntax error is a MalformedQueryException at
  once; it then runs on a worker thread (Scheduled → Running → Complete) over the groups' events, held as
  Arrow batches beside the backend (events.py), in a locked-down DuckDB.
- Metric filters: the backend stores them; here every PutLogEvents the backend accepted is matched against
  the group's filters (patterns.py) and PutMetricData sends the datapoints, stamped with the events' times.
  TestMetricFilter answers with the same matcher.
- Subscription filters are kept here (the backend would deliver every event, unfiltered): matching events
  reach Lambda (asynchronous Invoke), Kinesis or Firehose as AWS's gzipped DATA_MESSAGE.
- Retention runs on the lab clock: a daily lab timer moves each group's horizon; events before it are gone
  from every read (GetLogEvents, FilterLogEvents, Insights, exports). The backend has no API to delete an
  event, so they are hidden rather than freed.
- Export tasks write `<prefix>/<taskId>/<logStream>/000000.gz` to S3, as AWS lays them out.
"""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import gzip
import json
import logging
import threading
import uuid

from functools import cached_property
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from dealab.engines.logs import insights, patterns
from dealab.wire import labtime
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

if TYPE_CHECKING:  # DuckDB and pyarrow load with the first log events or query, not with the stack
    import duckdb
    import pyarrow as pa

    from dealab.engines.logs.events import EventCache

log = logging.getLogger("dealab.logs")

DAY_MS = 86_400_000
MAX_SUBSCRIPTION_FILTERS = 2  # per log group, as AWS allows
MAX_METRIC_DATA = 1000  # datapoints in one PutMetricData
KEPT_QUERIES = 1000  # finished queries remembered (AWS keeps them for 7 days)
RUNNING = ("Scheduled", "Running")
EXPORT_ACTIVE = ("PENDING", "RUNNING")
# A DuckDB that reaches nothing outside itself: Insights SQL is generated, but its string constants are the
# learner's, and the door stays closed whatever they hold.
DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "enable_external_access": False,
    "lock_configuration": True,
}


class LogsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra or {}


def _now_ms() -> int:
    return int(labtime.unix_time() * 1000)


def _group_name(identifier: str) -> str:
    """A log group's name from its name or ARN (arn:aws:logs:region:account:log-group:name[:*])."""
    if identifier.startswith("arn:"):
        name = identifier.split(":log-group:", 1)[-1]
        return name[:-2] if name.endswith(":*") else name
    return identifier


def _account(arn: str) -> str:
    return arn.split(":")[4]


class LogsEngine(Engine):
    name = "logs"
    operations = {
        ("logs", "PutLogEvents"): "_put_log_events",
        ("logs", "StartQuery"): "_start_query",
        ("logs", "GetQueryResults"): "_get_query_results",
        ("logs", "StopQuery"): "_stop_query",
        ("logs", "DescribeQueries"): "_describe_queries",
        ("logs", "PutMetricFilter"): "_put_metric_filter",
        ("logs", "DeleteMetricFilter"): "_metric_filters_changed",
        ("logs", "TestMetricFilter"): "_test_metric_filter",
        ("logs", "PutSubscriptionFilter"): "_put_subscription_filter",
        ("logs", "DescribeSubscriptionFilters"): "_describe_subscription_filters",
        ("logs", "DeleteSubscriptionFilter"): "_delete_subscription_filter",
        ("logs", "PutRetentionPolicy"): "_put_retention_policy",
        ("logs", "DeleteRetentionPolicy"): "_delete_retention_policy",
        ("logs", "GetLogEvents"): "_read_events",
        ("logs", "FilterLogEvents"): "_read_events",
        ("logs", "CreateExportTask"): "_create_export_task",
        ("logs", "DescribeExportTasks"): "_describe_export_tasks",
        ("logs", "CancelExportTask"): "_cancel_export_task",
        ("logs", "DeleteLogGroup"): "_delete_log_group",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self._queries_file = JsonFile(folder / "queries.json")
        self._subscriptions_file = JsonFile(folder / "subscriptions.json")
        self._retention_file = JsonFile(folder / "retention.json")
        self._exports_file = JsonFile(folder / "exports.json")
        self._lock = threading.RLock()
        self._metric_filters: dict[str, list[tuple[dict, object]]] = {}
        self._arns: dict[str, str] = {}  # log group → ARN, for the groups events arrived in
        self._connections: dict[str, duckdb.DuckDBPyConnection] = {}
        self._workers = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="logs")
        self._queries: dict[str, dict] = self._queries_file.load({})
        for query in self._queries.values():  # a query the last life of the stack did not finish runs again
            if query["status"] in RUNNING:
                query["status"] = "Scheduled"
                self._workers.submit(self._run_query, query["queryId"])
        for group in self._retention_file.load({}):
            self._schedule_sweep(group, datetime.datetime.min)
        exports = self._exports_file.load({})
        for task in exports.values():
            if task["status"]["code"] in EXPORT_ACTIVE:
                self._workers.submit(self._run_export, task["taskId"])

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except LogsError as error:
            response = AwsResponse.json({"__type": error.code, "message": error.message, **error.extra}, error.status)
            response.headers.append(("x-amzn-ErrorType", error.code))
            return response

    def reset(self) -> None:
        timers.cancel_owner(self.name)
        with self._lock:
            self._queries = {}
            self._metric_filters = {}
            self._arns = {}
        if "_cache" in self.__dict__:  # nothing cached before the first events arrived
            self._cache.clear()
        for file in (self._queries_file, self._subscriptions_file, self._retention_file, self._exports_file):
            file.remove()

    def close(self) -> None:
        timers.cancel_owner(self.name)
        with self._lock:
            for connection in self._connections.values():
                connection.interrupt()
        self._workers.shutdown(wait=False, cancel_futures=True)

    # ---- log groups --------------------------------------------------------------------------------------
    def _groups(self, identifiers: list[str]) -> dict[str, str]:
        """name → ARN of each log group named (by name or ARN); ResourceNotFoundException for one missing."""
        found = {}
        for identifier in identifiers:
            name = _group_name(identifier)
            pages = self.own_client("logs").get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
            arn = next((group["arn"] for page in pages for group in page["logGroups"] if group["logGroupName"] == name), None)
            if arn is None:
                raise LogsError("ResourceNotFoundException", f"Log group '{name}' does not exist.")
            found[name] = arn[:-2] if arn.endswith(":*") else arn
        return found

    def _delete_log_group(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:
            group = request.json.get("logGroupName", "")
            if "_cache" in self.__dict__:
                self._cache.forget(group)
            with self._lock:
                self._metric_filters.pop(group, None)
                self._arns.pop(group, None)
                subscriptions = self._subscriptions_file.load({})
                subscriptions.pop(group, None)
                self._subscriptions_file.save(subscriptions)
                retention = self._retention_file.load({})
                if retention.pop(group, None) is not None:
                    self._retention_file.save(retention)
                    timers.cancel(self.name, f"retention/{group}")
        return response

    # ---- events arriving ---------------------------------------------------------------------------------
    def _put_log_events(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200:
            return response
        group, stream = request.json.get("logGroupName", ""), request.json.get("logStreamName", "")
        answer = json.loads(response.read() or b"{}")
        accepted = _accepted(request.json.get("logEvents", []), answer.get("rejectedLogEventsInfo") or {})
        ingestion = _now_ms()
        try:
            arn = self._arns.get(group) or self._arns.setdefault(group, self._groups([group])[group])
            self._cache.arrived(group, stream, f"{_account(arn)}:{group}", accepted, ingestion, int(answer.get("nextSequenceToken") or 0))
            if accepted:
                self._apply_metric_filters(group, accepted)
                self._deliver_to_subscriptions(group, stream, _account(arn), accepted, ingestion)
        except (ClientError, LogsError):  # the events are stored; what follows from them is logged, as AWS would
            log.exception("after PutLogEvents to %s/%s", group, stream)
        return response

    # ---- metric filters ----------------------------------------------------------------------------------
    def _put_metric_filter(self, request: AwsRequest) -> AwsResponse:
        _compile(request.json.get("filterPattern", ""))
        transformations = request.json.get("metricTransformations") or []
        for transformation in transformations:
            if transformation.get("defaultValue") is not None and transformation.get("dimensions"):
                raise LogsError("InvalidParameterException", "Dimensions are not supported when defaultValue is specified")
        return self._metric_filters_changed(request)

    def _metric_filters_changed(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        with self._lock:
            self._metric_filters.pop(request.json.get("logGroupName", ""), None)
        return response

    def _filters_of(self, group: str) -> list[tuple[dict, object]]:
        with self._lock:
            if group in self._metric_filters:
                return self._metric_filters[group]
        pages = self.own_client("logs").get_paginator("describe_metric_filters").paginate(logGroupName=group)
        filters = [(found, _compile(found.get("filterPattern", ""))) for page in pages for found in page["metricFilters"]
                   if found.get("logGroupName") == group]
        with self._lock:
            self._metric_filters[group] = filters
        return filters

    def _apply_metric_filters(self, group: str, events: list[dict]) -> None:
        by_namespace: dict[str, list[dict]] = {}
        for metric_filter, matcher in self._filters_of(group):
            matches = [(event, extracted) for event in events if (extracted := matcher.match(event["message"])) is not None]
            for transformation in metric_filter.get("metricTransformations", []):
                data = by_namespace.setdefault(transformation["metricNamespace"], [])
                data.extend(_datapoints(transformation, matches, events[0]["timestamp"]))
        cloudwatch = self.own_client("cloudwatch")
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), MAX_METRIC_DATA):
                if data[start:start + MAX_METRIC_DATA]:
                    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + MAX_METRIC_DATA])

    def _test_metric_filter(self, request: AwsRequest) -> AwsResponse:
        matcher = _compile(request.json.get("filterPattern", ""))
        matches = []
        for number, message in enumerate(request.json.get("logEventMessages") or [], start=1):
            extracted = matcher.match(message)
            if extracted is not None:
                matches.append({"eventNumber": number, "eventMessage": message, "extractedValues": extracted})
        return AwsResponse.json({"matches": matches})

    # ---- subscription filters ----------------------------------------------------------------------------
    def _put_subscription_filter(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        group, name, destination = body.get("logGroupName", ""), body.get("filterName", ""), body.get("destinationArn", "")
        self._groups([group])
        _compile(body.get("filterPattern", ""))
        service = destination.split(":")[2] if destination.count(":") >= 5 else ""
        if service not in DESTINATION_CHECKS:
            raise LogsError("InvalidParameterException", f"destinationArn {destination!r}: dealab delivers to Lambda, Kinesis and Firehose")
        try:
            DESTINATION_CHECKS[service][0](self, destination)
        except ClientError:
            raise LogsError("InvalidParameterException", DESTINATION_CHECKS[service][1]) from None
        with self._lock:
            subscriptions = self._subscriptions_file.load({})
            filters = subscriptions.setdefault(group, {})
            if name not in filters and len(filters) >= MAX_SUBSCRIPTION_FILTERS:
                raise LogsError("LimitExceededException", "Resource limit exceeded.")
            filters[name] = {"filterName": name, "logGroupName": group, "filterPattern": body.get("filterPattern", ""),
                             "destinationArn": destination, "roleArn": body.get("roleArn", ""),
                             "distribution": body.get("distribution", "ByLogStream"), "creationTime": _now_ms()}
            self._subscriptions_file.save(subscriptions)
        if service in ("kinesis", "firehose"):  # AWS checks a stream destination with a control message first
            account = _account(self._groups([group])[group])
            kind = "Kinesis stream" if service == "kinesis" else "Firehose stream"
            self._send(service, destination, group, _payload("CONTROL_MESSAGE", account, "", "", [], [
                {"id": "", "timestamp": _now_ms(), "message": f"CWL CONTROL MESSAGE: Checking health of destination {kind}."}]))
        return AwsResponse.json({})

    def _describe_subscription_filters(self, request: AwsRequest) -> AwsResponse:
        group = request.json.get("logGroupName", "")
        self._groups([group])
        prefix = request.json.get("filterNamePrefix", "")
        filters = [found for name, found in sorted(self._subscriptions_file.load({}).get(group, {}).items()) if name.startswith(prefix)]
        return AwsResponse.json({"subscriptionFilters": filters})

    def _delete_subscription_filter(self, request: AwsRequest) -> AwsResponse:
        group, name = request.json.get("logGroupName", ""), request.json.get("filterName", "")
        self._groups([group])
        with self._lock:
            subscriptions = self._subscriptions_file.load({})
            if name not in subscriptions.get(group, {}):
                raise LogsError("ResourceNotFoundException", "The specified subscription filter does not exist.")
            del subscriptions[group][name]
            self._subscriptions_file.save(subscriptions)
        return AwsResponse.json({})

    def _deliver_to_subscriptions(self, group: str, stream: str, account: str, events: list[dict], ingestion: int) -> None:
        for subscription in self._subscriptions_file.load({}).get(group, {}).values():
            matcher = _compile(subscription["filterPattern"])
            matching = [{"id": _event_id(event["timestamp"], ingestion, number), "timestamp": event["timestamp"], "message": event["message"]}
                        for number, event in enumerate(events) if matcher.match(event["message"]) is not None]
            if not matching:
                continue
            payload = _payload("DATA_MESSAGE", account, group, stream, [subscription["filterName"]], matching)
            destination = subscription["destinationArn"]
            try:
                self._send(destination.split(":")[2], destination, stream, payload)
            except ClientError as error:  # a destination that is gone: the events stay stored, as on AWS
                log.warning("subscription %s of %s could not deliver to %s: %s", subscription["filterName"], group, destination, error)

    def _send(self, service: str, destination: str, partition_key: str, payload: bytes) -> None:
        if service == "lambda":
            event = {"awslogs": {"data": base64.b64encode(payload).decode()}}
            self.own_client("lambda").invoke(FunctionName=destination, InvocationType="Event", Payload=json.dumps(event).encode())
        elif service == "kinesis":
            self.own_client("kinesis").put_record(StreamARN=destination, Data=payload, PartitionKey=partition_key or "control")
        else:
            self.own_client("firehose").put_record(DeliveryStreamName=destination.rsplit("/", 1)[-1], Record={"Data": payload})

    # ---- retention ---------------------------------------------------------------------------------------
    def _put_retention_policy(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:
            group = request.json.get("logGroupName", "")
            with self._lock:
                retention = self._retention_file.load({})
                retention.setdefault(group, {"horizon": 0})["days"] = int(request.json.get("retentionInDays", 0))
                self._retention_file.save(retention)
            self._sweep(group, labtime.now())
        return response

    def _delete_retention_policy(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:
            group = request.json.get("logGroupName", "")
            timers.cancel(self.name, f"retention/{group}")
            with self._lock:
                retention = self._retention_file.load({})
                if group in retention:
                    retention[group].pop("days", None)  # what is gone stays gone: the horizon is kept
                    self._retention_file.save(retention)
        return response

    def _schedule_sweep(self, group: str, after: datetime.datetime) -> None:
        due = max(after + datetime.timedelta(days=1), labtime.now()) if after != datetime.datetime.min else labtime.now()
        timers.schedule(self.name, f"retention/{group}", due, lambda at: self._sweep(group, at))

    def _sweep(self, group: str, at: datetime.datetime) -> None:
        """Events older than the retention period at lab moment `at` are gone from then on."""
        with self._lock:
            retention = self._retention_file.load({})
            policy = retention.get(group)
            if not policy or "days" not in policy:
                return
            moment = int((at - labtime.EPOCH).total_seconds() * 1000)
            policy["horizon"] = max(policy["horizon"], moment - policy["days"] * DAY_MS)
            self._retention_file.save(retention)
        self._schedule_sweep(group, at)

    def horizon(self, group: str) -> int | None:
        """The oldest timestamp a read of `group` still sees, or None when every event is kept."""
        policy = self._retention_file.load({}).get(group)
        if not policy:
            return None
        live = _now_ms() - policy["days"] * DAY_MS if "days" in policy else 0
        return max(policy["horizon"], live) or None

    def _read_events(self, request: AwsRequest) -> AwsResponse:
        """GetLogEvents / FilterLogEvents without the events retention removed; FilterLogEvents' pattern is
        matched here, with the whole syntax (the backend knows terms only)."""
        pattern = request.json.get("filterPattern") if request.operation == "FilterLogEvents" else None
        matcher = _compile(pattern) if pattern else None
        if matcher is not None:
            request.replace_json({key: value for key, value in request.json.items() if key != "filterPattern"})
        response = request.send_on()
        group = _group_name(request.json.get("logGroupName") or request.json.get("logGroupIdentifier") or "")
        horizon = self.horizon(group)
        if response.status != 200 or (horizon is None and matcher is None):
            return response
        answer = json.loads(response.read())
        answer["events"] = [event for event in answer.get("events", []) if event["timestamp"] >= (horizon or 0)
                            and (matcher is None or matcher.match(event["message"]) is not None)]
        return AwsResponse.json(answer)

    @cached_property
    def _cache(self) -> EventCache:
        from dealab.engines.logs.events import EventCache

        return EventCache(lambda: self.own_client("logs"))

    def _events(self, group: str, arn: str, stream_prefix: str = "") -> pa.Table:
        return self._cache.table(group, f"{_account(arn)}:{group}", self.horizon(group), stream_prefix)

    # ---- Logs Insights -----------------------------------------------------------------------------------
    def _start_query(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        names, identifiers = body.get("logGroupNames") or ([body["logGroupName"]] if body.get("logGroupName") else []), body.get("logGroupIdentifiers") or []
        if bool(names) == bool(identifiers):
            raise LogsError("InvalidParameterException", "Specify exactly one of logGroupName, logGroupNames or logGroupIdentifiers.")
        start, end = int(body.get("startTime", 0)), int(body.get("endTime", 0))
        if end < start:
            raise LogsError("InvalidParameterException", "endTime can not be less than startTime")
        query_string = body.get("queryString", "")
        limit = int(body.get("limit") or insights.RESULT_LIMIT)
        try:
            insights.compile_query(query_string, "true", limit)
        except insights.MalformedQuery as error:
            raise LogsError("MalformedQueryException", str(error), extra={"queryCompileError": {
                "location": {"startCharOffset": error.start, "endCharOffset": error.end}, "message": str(error)}}) from None
        groups = self._groups(names or identifiers)
        query_id = str(uuid.uuid4())
        with self._lock:
            self._queries[query_id] = {"queryId": query_id, "queryString": query_string, "logGroupName": next(iter(groups)),
                                       "groups": groups, "startTime": start, "endTime": end, "limit": limit, "status": "Scheduled",
                                       "createTime": _now_ms(), "results": [], "statistics": _statistics(0, 0, 0)}
            self._save_queries()
        self._workers.submit(self._run_query, query_id)
        return AwsResponse.json({"queryId": query_id})

    def _run_query(self, query_id: str) -> None:
        with self._lock:
            query = self._queries.get(query_id)
            if query is None or query["status"] != "Scheduled":
                return
            query["status"] = "Running"
        import duckdb

        try:
            results, statistics = self._execute(query)
            status = "Complete"
        except duckdb.InterruptException:
            results, statistics, status = [], query["statistics"], "Cancelled"
        except Exception as error:  # a query that cannot run ends Failed, as AWS's do; the stack keeps going
            log.warning("Logs Insights query %s failed: %s", query_id, error)
            results, statistics, status = [], query["statistics"], "Failed"
        with self._lock:
            self._connections.pop(query_id, None)
            if query["status"] == "Running":
                query.update(results=results, statistics=statistics, status=status)
            self._save_queries()

    def _execute(self, query: dict) -> tuple[list, dict]:
        import pyarrow as pa

        from dealab.engines.logs.events import SCHEMA

        tables = [self._events(group, arn) for group, arn in query["groups"].items()]
        events = pa.concat_tables(tables) if tables else SCHEMA.empty_table()

        def started(connection: duckdb.DuckDBPyConnection) -> None:
            with self._lock:
                self._connections[query["queryId"]] = connection  # StopQuery interrupts it

        return run_insights(events, query["queryString"], query["startTime"] * 1000, query["endTime"] * 1000 + 999, query["limit"], started)

    def _save_queries(self) -> None:
        finished = [key for key, query in self._queries.items() if query["status"] not in RUNNING]
        for key in finished[:max(0, len(self._queries) - KEPT_QUERIES)]:
            del self._queries[key]
        self._queries_file.save(self._queries)

    def _query(self, query_id: str) -> dict:
        query = self._queries.get(query_id)
        if query is None:
            raise LogsError("ResourceNotFoundException", f"Query {query_id} does not exist.")
        return query

    def _get_query_results(self, request: AwsRequest) -> AwsResponse:
        with self._lock:
            query = self._query(request.json.get("queryId", ""))
            return AwsResponse.json({"results": query["results"], "statistics": query["statistics"], "status": query["status"]})

    def _stop_query(self, request: AwsRequest) -> AwsResponse:
        with self._lock:
            query = self._query(request.json.get("queryId", ""))
            if query["status"] not in RUNNING:
                raise LogsError("InvalidParameterException", f"Query {query['queryId']} is not running (it is {query['status']}).")
            query["status"] = "Cancelled"
            connection = self._connections.get(query["queryId"])
            if connection is not None:
                connection.interrupt()
            self._save_queries()
        return AwsResponse.json({"success": True})

    def _describe_queries(self, request: AwsRequest) -> AwsResponse:
        group, status = request.json.get("logGroupName"), request.json.get("status")
        limit = int(request.json.get("maxResults") or 1000)
        with self._lock:
            chosen = [query for query in sorted(self._queries.values(), key=lambda query: -query["createTime"])
                      if (not group or group in query["groups"]) and (not status or query["status"] == status)]
            shown = [{key: query[key] for key in ("queryId", "queryString", "status", "createTime", "logGroupName")} for query in chosen[:limit]]
        return AwsResponse.json({"queries": shown})

    # ---- export tasks ------------------------------------------------------------------------------------
    def _create_export_task(self, request: AwsRequest) -> AwsResponse:
        body = request.json
        group, bucket = body.get("logGroupName", ""), body.get("destination", "")
        arn = self._groups([group])[group]
        try:
            self.own_client("s3").head_bucket(Bucket=bucket)
        except ClientError:
            raise LogsError("InvalidParameterException", "The given bucket does not exist. Please make sure the bucket is valid.") from None
        if int(body.get("to", 0)) < int(body.get("from", 0)):
            raise LogsError("InvalidParameterException", "The from time must be before the to time.")
        task_id = str(uuid.uuid4())
        with self._lock:
            exports = self._exports_file.load({})
            if any(task["status"]["code"] in EXPORT_ACTIVE for task in exports.values()):
                raise LogsError("LimitExceededException", "Resource limit exceeded.")
            exports[task_id] = {"taskId": task_id, "taskName": body.get("taskName", ""), "logGroupName": group, "arn": arn,
                                "logStreamNamePrefix": body.get("logStreamNamePrefix", ""), "from": int(body["from"]), "to": int(body["to"]),
                                "destination": bucket, "destinationPrefix": body.get("destinationPrefix") or "exportedlogs",
                                "status": {"code": "PENDING", "message": "Pending"}, "executionInfo": {"creationTime": _now_ms()}}
            self._exports_file.save(exports)
        self._workers.submit(self._run_export, task_id)
        return AwsResponse.json({"taskId": task_id})

    def _run_export(self, task_id: str) -> None:
        task = self._update_export(task_id, "RUNNING", "Running")
        if task is None:
            return
        try:
            s3 = self.own_client("s3")
            prefix = task["destinationPrefix"].strip("/")
            s3.put_object(Bucket=task["destination"], Key=f"{prefix}/aws-logs-write-test" if prefix else "aws-logs-write-test",
                          Body=b"Permission Check Successful")
            events = self._events(task["logGroupName"], task["arn"], task["logStreamNamePrefix"])
            rows = [row for row in events.to_pylist() if task["from"] <= row["timestamp"] <= task["to"]]
            for stream in sorted({row["stream"] for row in rows}):
                lines = "".join(f"{_iso(row['timestamp'])} {row['message']}\n" for row in sorted(rows, key=lambda row: row["timestamp"]) if row["stream"] == stream)
                key = f"{prefix}/{task_id}/{stream}/000000.gz" if prefix else f"{task_id}/{stream}/000000.gz"
                s3.put_object(Bucket=task["destination"], Key=key, Body=gzip.compress(lines.encode()), ContentEncoding="gzip")
            self._update_export(task_id, "COMPLETED", "Completed successfully")
        except ClientError as error:
            self._update_export(task_id, "FAILED", str(error))

    def _update_export(self, task_id: str, code: str, message: str) -> dict | None:
        with self._lock:
            exports = self._exports_file.load({})
            task = exports.get(task_id)
            if task is None or task["status"]["code"] not in EXPORT_ACTIVE:
                return None
            task["status"] = {"code": code, "message": message}
            if code not in EXPORT_ACTIVE:
                task["executionInfo"]["completionTime"] = _now_ms()
            self._exports_file.save(exports)
            return task

    def _describe_export_tasks(self, request: AwsRequest) -> AwsResponse:
        task_id, status = request.json.get("taskId"), request.json.get("statusCode")
        tasks = [{key: value for key, value in task.items() if key != "arn"} for task in self._exports_file.load({}).values()
                 if (not task_id or task["taskId"] == task_id) and (not status or task["status"]["code"] == status)]
        return AwsResponse.json({"exportTasks": tasks})

    def _cancel_export_task(self, request: AwsRequest) -> AwsResponse:
        task_id = request.json.get("taskId", "")
        if task_id not in self._exports_file.load({}):
            raise LogsError("ResourceNotFoundException", "The specified export task does not exist.")
        if self._update_export(task_id, "CANCELLED", "Cancelled by user") is None:
            raise LogsError("InvalidOperationException", "The specified export task has already finished.")
        return AwsResponse.json({})


# ---- helpers ------------------------------------------------------------------------------------------------
def run_insights(events: pa.Table, query_string: str, start_ms: int, end_ms: int, limit: int = insights.RESULT_LIMIT,
                 started=lambda connection: None) -> tuple[list, dict]:
    """Runs a Logs Insights query over `events` (SCHEMA) between two epoch-ms moments, inclusive:
    GetQueryResults' results and statistics. Raises insights.MalformedQuery."""
    import duckdb

    base_filter = f'"timestamp" BETWEEN {int(start_ms)} AND {int(end_ms)}'
    plan, translator = insights.compile_query(query_string, base_filter, limit)
    connection = duckdb.connect(config=DUCKDB_CONFIG)
    started(connection)
    try:
        connection.register("events", events)
        rows = connection.execute(plan.sql).fetchall()
        scanned, scanned_bytes = connection.execute(
            f"SELECT count(*), coalesce(sum(strlen(message)), 0) FROM events WHERE {base_filter}").fetchone()
        matched = connection.execute(translator.matched_sql(plan.matched_stage)).fetchone()[0]
    finally:
        connection.close()
    names = plan.display + ([] if plan.aggregated else [insights.PTR_COLUMN])
    results = [[{"field": name, "value": _result_value(value)} for name, value in zip(names, row) if value is not None] for row in rows]
    return results, _statistics(matched, scanned, scanned_bytes)


def _compile(pattern: str):
    try:
        return patterns.compile_pattern(pattern)
    except patterns.PatternError as error:
        raise LogsError("InvalidParameterException", f"Invalid metric filter pattern: {error}") from None


def _accepted(events: list[dict], rejected: dict) -> list[dict]:
    too_new = rejected.get("tooNewLogEventStartIndex", len(events))
    too_old = max(rejected.get("tooOldLogEventEndIndex", -1), rejected.get("expiredLogEventEndIndex", -1))
    return [event for number, event in enumerate(events) if too_old < number < too_new]


def _datapoints(transformation: dict, matches: list[tuple[dict, dict]], first_timestamp: int) -> list[dict]:
    """The datapoints one metric transformation makes of the matching events of one PutLogEvents."""
    def datum(timestamp: int, value: float, dimensions: list[dict]) -> dict:
        point = {"MetricName": transformation["metricName"], "Timestamp": datetime.datetime.fromtimestamp(timestamp / 1000, datetime.timezone.utc),
                 "Value": value}
        if transformation.get("unit"):
            point["Unit"] = transformation["unit"]
        if dimensions:
            point["Dimensions"] = dimensions
        return point

    if not matches:
        default = transformation.get("defaultValue")
        return [] if default is None else [datum(first_timestamp, float(default), [])]
    data = []
    for event, extracted in matches:
        value = patterns._numeric(patterns.selected_value(transformation["metricValue"], event["message"], extracted))
        dimensions = [{"Name": name, "Value": str(patterns.selected_value(selector, event["message"], extracted))}
                      for name, selector in (transformation.get("dimensions") or {}).items()]
        if value is None or any(dimension["Value"] == "None" for dimension in dimensions):
            continue  # AWS publishes nothing for an event whose value or dimension is not there
        data.append(datum(event["timestamp"], value, dimensions))
    return data


def _payload(kind: str, account: str, group: str, stream: str, filters: list[str], events: list[dict]) -> bytes:
    """The gzipped JSON record CloudWatch Logs sends a subscription's destination."""
    document = {"messageType": kind, "owner": account, "logGroup": group, "logStream": stream,
                "subscriptionFilters": filters, "logEvents": events}
    return gzip.compress(json.dumps(document).encode())


def _event_id(timestamp: int, ingestion: int, number: int) -> str:
    """A 56-digit event id, as AWS's are: unique within the stream and ordered like the events."""
    return f"{timestamp:019d}{ingestion:019d}{number:018d}"


def _check_lambda(engine: LogsEngine, arn: str) -> None:
    engine.own_client("lambda").get_function(FunctionName=arn)


def _check_kinesis(engine: LogsEngine, arn: str) -> None:
    engine.own_client("kinesis").describe_stream_summary(StreamARN=arn)


def _check_firehose(engine: LogsEngine, arn: str) -> None:
    engine.own_client("firehose").describe_delivery_stream(DeliveryStreamName=arn.rsplit("/", 1)[-1])


# service of a destination ARN → (how to see it exists, AWS's message when it does not)
DESTINATION_CHECKS = {
    "lambda": (_check_lambda, "Could not execute the lambda function. Make sure you have given CloudWatch Logs permission to execute your function."),
    "kinesis": (_check_kinesis, "Could not deliver test message to specified Kinesis stream. Verify the stream exists and is active."),
    "firehose": (_check_firehose, "Could not deliver test message to specified Firehose stream. Check if the given Firehose stream is in ACTIVE state."),
}


def _statistics(matched: int, scanned: int, scanned_bytes: int) -> dict:
    return {"recordsMatched": float(matched), "recordsScanned": float(scanned), "bytesScanned": float(scanned_bytes)}


def _iso(timestamp: int) -> str:
    return datetime.datetime.fromtimestamp(timestamp / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp % 1000:03d}Z"


def _result_value(value) -> str:
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
