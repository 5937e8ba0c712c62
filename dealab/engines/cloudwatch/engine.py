"""The CloudWatch engine: alarms that change state and act, on every datapoint and as the lab clock moves.

The backend (moto) keeps metrics and alarm configurations (journaled; GetMetricData, ListMetrics and the like
are its answers). It never moves an alarm out of OK and fires no action. Here each alarm's state, reason and
history live in the store, alarms are evaluated when a datapoint of theirs arrives and at the period
boundaries where missing data could change them (`evaluation.py`), and a transition sends the alarm's actions:
SNS Publish with AWS's alarm message, Lambda Invoke (Event) with AWS's alarm event, and always a "CloudWatch
Alarm State Change" event to the default EventBridge bus.

It also attaches the floor's senders: the metrics buffer (`dealab.wire.metrics`), so the other engines' metrics
reach the backend (flushed before any read of metrics and any evaluation on the lab clock), and the service
events queue (`dealab.wire.serviceevents`), so their state-change events reach EventBridge.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import logging
import threading

from dealab.engines.cloudwatch import actions
from dealab.engines.cloudwatch.evaluation import ANOMALY_COMPARISONS, COMPARISONS, MetricAlarm, alarm_from_params, evaluate, next_evaluation
from dealab.engines.cloudwatch.expressions import AlarmRule, ExpressionError, MetricMath
from dealab.engines.cloudwatch.series import Series, is_supported_statistic, metric_key, points_of_datum
from dealab.wire import labtime, metrics, paging, serviceevents
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile, JsonLines
from dealab.wire.timers import timers

log = logging.getLogger("dealab.cloudwatch")

ACCOUNT = "123456789012"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
# What the engine keeps from the request beside the backend's configuration.
STATE_FIELDS = ("StateValue", "StateReason", "StateReasonData", "StateUpdatedTimestamp", "StateTransitionedTimestamp")


class AlarmError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _epoch(moment: datetime.datetime) -> float:
    return (moment - labtime.EPOCH).total_seconds()


def _moment(epoch: float) -> datetime.datetime:
    return labtime.EPOCH + datetime.timedelta(seconds=epoch)


class CloudWatchEngine(Engine):
    name = "cloudwatch"
    operations = {
        ("cloudwatch", "PutMetricData"): "_put_metric_data",
        ("cloudwatch", "PutMetricAlarm"): "_put_metric_alarm",
        ("cloudwatch", "PutCompositeAlarm"): "_put_composite_alarm",
        ("cloudwatch", "DescribeAlarms"): "_describe_alarms",
        ("cloudwatch", "DescribeAlarmsForMetric"): "_describe_alarms",
        ("cloudwatch", "SetAlarmState"): "_set_alarm_state",
        ("cloudwatch", "DescribeAlarmHistory"): "_describe_alarm_history",
        ("cloudwatch", "DeleteAlarms"): "_delete_alarms",
        ("cloudwatch", "EnableAlarmActions"): "_alarm_actions",
        ("cloudwatch", "DisableAlarmActions"): "_alarm_actions",
        ("cloudwatch", "GetMetricData"): "_read_metrics",
        ("cloudwatch", "GetMetricStatistics"): "_read_metrics",
        ("cloudwatch", "ListMetrics"): "_read_metrics",
        ("cloudwatch", "PutAnomalyDetector"): "_anomaly_detection",
        ("cloudwatch", "DescribeAnomalyDetectors"): "_anomaly_detection",
        ("cloudwatch", "DeleteAnomalyDetector"): "_anomaly_detection",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        folder = context.state_dir / self.name
        self._alarms_file = JsonFile(folder / "alarms.json")
        self._history_file = JsonLines(folder / "history.jsonl")
        self._points_file = JsonLines(folder / "datapoints.jsonl")
        self._lock = threading.RLock()
        self._floor_clients: dict[tuple[str, str, str], object] = {}  # (service, region, mark) → its client
        self.series = Series()
        # "region/name" → record: kind, params, state fields, actions_enabled
        self._records: dict[str, dict] = self._alarms_file.load({})
        self._metric: dict[str, MetricAlarm] = {}
        self._rules: dict[str, AlarmRule] = {}
        self._watchers: dict[tuple, set[str]] = {}  # metric key → alarm keys
        # alarms are evaluated again at period boundaries; one lab timer per boundary moment evaluates all due there
        self._due: dict[float, set[str]] = {}  # boundary (epoch) → alarm keys
        self._next: dict[str, float] = {}  # alarm key → its boundary
        self._history: list[dict] = list(self._history_file.read())
        for key, record in self._records.items():
            self._compile(key, record)
        for line in self._points_file.read():
            self._remember_points(line["region"], line["namespace"], line["data"], line["at"])
        for key in self._metric:  # evaluated once the stack is up: what changed while it was down
            self._schedule(key, labtime.unix_time())
        metrics.attach(self._send_metrics, context.region)
        serviceevents.attach(lambda region, entry: self._floor_client("events", region, "service-events").put_events(Entries=[entry]), context.region)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _floor_client(self, service: str, region: str, mark: str):
        """A client whose calls carry the floor's `mark`, not this engine's name as own_client's do: the metrics
        and service events it sends for the whole stack are the floor's work, and this engine must see the
        metrics arrive as anyone's."""
        if (service, region, mark) not in self._floor_clients:
            self._floor_clients[(service, region, mark)] = self.context.client(service, engine=mark, region=region)
        return self._floor_clients[(service, region, mark)]

    def _send_metrics(self, region: str, namespace: str, data: list[dict]) -> None:
        # marked as the floor's, not this engine's, so this engine still sees the datapoints arrive
        self._floor_client("cloudwatch", region, "metrics").put_metric_data(Namespace=namespace, MetricData=data)

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except AlarmError as error:
            return AwsResponse.json_error(error.code, error.message, error.status)
        except ExpressionError as error:
            return AwsResponse.json_error("ValidationError", str(error))

    @staticmethod
    def _params(request: AwsRequest) -> dict:
        if "json" not in request.headers.get("Content-Type", ""):
            raise AlarmError("InvalidParameterValue", "dealab's CloudWatch alarms speak the JSON protocol of current AWS SDKs and the AWS CLI")
        if request.headers.get("Content-Encoding") == "gzip":  # SDKs compress large PutMetricData bodies
            return json.loads(gzip.decompress(request.body) or b"{}")
        return request.json

    def _key(self, region: str, name: str) -> str:
        return f"{region}/{name}"

    def _arn(self, region: str, name: str) -> str:
        return f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{name}"

    def _save(self) -> None:
        self._alarms_file.save(self._records)

    # ---- datapoints ----------------------------------------------------------------------------------------
    def _put_metric_data(self, request: AwsRequest) -> AwsResponse:
        params = self._params(request)
        response = request.send_on()
        if response.status != 200 or not params:
            return response
        now = labtime.unix_time()
        data = [dict(datum, Timestamp=datum.get("Timestamp", now)) for datum in params.get("MetricData", [])]
        with self._lock:
            self._points_file.append([{"region": request.region, "namespace": params["Namespace"], "data": data, "at": now}])
            touched = self._remember_points(request.region, params["Namespace"], data, now)
            changes = self._evaluate_keys(touched, now)
        self._act(changes)
        return response

    def _remember_points(self, region: str, namespace: str, data: list[dict], now: float) -> set[str]:
        touched: set[str] = set()
        for datum in data:
            key = metric_key(region, namespace, datum["MetricName"], datum.get("Dimensions", []))
            for point in points_of_datum(datum, now):
                self.series.add(key, point)
            touched |= self._watchers.get(key, set())
        return touched

    def _read_metrics(self, request: AwsRequest) -> AwsResponse:
        if "json" in request.headers.get("Content-Type", ""):  # the JSON protocol names its metrics; a query-protocol read is passed on as it is
            metrics.sample(labtime.now(), _metrics_read(request.region, self._params(request)))
        metrics.flush()
        return request.send_on()

    # ---- alarm configuration -------------------------------------------------------------------------------
    def _put_metric_alarm(self, request: AwsRequest) -> AwsResponse:
        params = self._params(request)
        self._refuse_unsupported(params)
        response = request.send_on()
        if response.status == 200:
            self._configure(request.region, params, "MetricAlarm")
        return response

    def _put_composite_alarm(self, request: AwsRequest) -> AwsResponse:
        params = self._params(request)
        AlarmRule(params.get("AlarmRule", ""))  # refuses a rule it cannot read before the backend keeps it
        # moto 5.2.5 keeps composite alarms through its PutMetricAlarm (which reads AlarmRule) and has no PutCompositeAlarm
        headers = request.headers.copy()
        headers["X-Amz-Target"] = headers.get("X-Amz-Target", "").replace("PutCompositeAlarm", "PutMetricAlarm")
        response = dataclasses.replace(request, headers=headers).send_on()
        if response.status == 200:
            self._configure(request.region, params, "CompositeAlarm")
        return response

    @staticmethod
    def _refuse_unsupported(params: dict) -> None:
        if params.get("ThresholdMetricId") or params.get("ComparisonOperator") in ANOMALY_COMPARISONS or any(
                "ANOMALY_DETECTION_BAND" in item.get("Expression", "") for item in params.get("Metrics") or []):
            raise AlarmError("InvalidParameterValue", "Anomaly detection is not supported by dealab: alarm on a static threshold instead")
        if params.get("ComparisonOperator") not in COMPARISONS:
            raise AlarmError("InvalidParameterValue", f"ComparisonOperator {params.get('ComparisonOperator')} is not supported")
        stats = [params.get("ExtendedStatistic") or params.get("Statistic")] if not params.get("Metrics") else \
            [item["MetricStat"]["Stat"] for item in params["Metrics"] if "MetricStat" in item]
        for stat in stats:
            if not stat or not is_supported_statistic(stat):
                raise AlarmError("InvalidParameterValue", f"The statistic {stat} is not supported by dealab's alarms: use SampleCount, Sum, Average, Minimum, Maximum or pNN")
        for item in params.get("Metrics") or []:
            if "Expression" in item:
                MetricMath(item["Expression"])

    def _configure(self, region: str, params: dict, kind: str) -> None:
        name = params["AlarmName"]
        key = self._key(region, name)
        now = labtime.unix_time()
        with self._lock:
            old = self._records.get(key)
            record = {"kind": kind, "region": region, "name": name, "arn": self._arn(region, name), "params": params,
                      "actions_enabled": params.get("ActionsEnabled", True), "configured": now}
            if old:  # AWS: an update leaves the state unchanged
                record.update({field: old[field] for field in STATE_FIELDS})
            else:
                record.update({"StateValue": "INSUFFICIENT_DATA", "StateReason": "Unchecked: Initial alarm creation",
                               "StateReasonData": None, "StateUpdatedTimestamp": now, "StateTransitionedTimestamp": now})
            self._records[key] = record
            self._compile(key, record)
            self._note_history(record, "ConfigurationUpdate", f'Alarm "{name}" {"updated" if old else "created"}', now,
                               {"type": "Update" if old else "Create", "version": "1.0"})
            changes = self._evaluate_keys({key}, now)
            self._save()
        self._act(changes)

    def _compile(self, key: str, record: dict) -> None:
        self._forget_compiled(key)
        if record["kind"] == "MetricAlarm":
            alarm = alarm_from_params(record["params"], record["region"], record["arn"])
            self._metric[key] = alarm
            for metric in alarm.keys:
                self._watchers.setdefault(metric, set()).add(key)
                metrics.watch(metric)  # a sampled metric (SQS queue depth) is sampled while an alarm watches it
        else:
            self._rules[key] = AlarmRule(record["params"]["AlarmRule"])

    def _forget_compiled(self, key: str) -> None:
        alarm = self._metric.pop(key, None)
        self._rules.pop(key, None)
        if alarm:
            for metric in alarm.keys:
                self._watchers.get(metric, set()).discard(key)
                metrics.unwatch(metric)

    def _delete_alarms(self, request: AwsRequest) -> AwsResponse:
        names = self._params(request).get("AlarmNames", [])
        response = request.send_on()
        if response.status == 200:
            with self._lock:
                for name in names:
                    key = self._key(request.region, name)
                    if self._records.pop(key, None):
                        self._forget_compiled(key)
                        self._due.get(self._next.pop(key, None), set()).discard(key)
                self._save()
        return response

    def _alarm_actions(self, request: AwsRequest) -> AwsResponse:
        names = self._params(request).get("AlarmNames", [])
        response = request.send_on()
        if response.status == 200:
            with self._lock:
                for name in names:
                    record = self._records.get(self._key(request.region, name))
                    if record:
                        record["actions_enabled"] = request.operation == "EnableAlarmActions"
                self._save()
        return response

    def _anomaly_detection(self, request: AwsRequest) -> AwsResponse:
        raise AlarmError("InvalidParameterValue", f"{request.operation}: anomaly detection is not supported by dealab: alarm on a static threshold instead")

    # ---- reading alarms ------------------------------------------------------------------------------------
    def _describe_alarms(self, request: AwsRequest) -> AwsResponse:
        params = dict(self._params(request))
        wanted_state = params.pop("StateValue", None)
        types = params.pop("AlarmTypes", None) or ["MetricAlarm"]
        body = json.dumps(params).encode()
        headers = request.headers.copy()
        headers["Content-Length"] = str(len(body))
        forwarded = dataclasses.replace(request, body=body, headers=headers)
        response = forwarded.send_on()
        if response.status != 200:
            return response
        answer = json.loads(response.read() or b"{}")
        sorted_out: dict[str, list] = {"MetricAlarms": [], "CompositeAlarms": []}
        with self._lock:
            # moto returns composite alarms among the metric alarms: the engine's record says which is which
            for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
                record = self._records.get(self._key(request.region, alarm["AlarmName"]))
                kind = record["kind"] if record else ("CompositeAlarm" if alarm.get("AlarmRule") else "MetricAlarm")
                if record:
                    alarm.update({k: record[k] for k in STATE_FIELDS if record[k] is not None})
                    alarm["ActionsEnabled"] = record["actions_enabled"]
                if kind == "CompositeAlarm":
                    alarm = {k: v for k, v in alarm.items() if k not in ("Dimensions", "Metrics")}
                    alarm["AlarmRule"] = record["params"]["AlarmRule"] if record else alarm.get("AlarmRule")
                if (wanted_state is None or alarm.get("StateValue") == wanted_state) and (kind in types or request.operation == "DescribeAlarmsForMetric"):
                    sorted_out["CompositeAlarms" if kind == "CompositeAlarm" else "MetricAlarms"].append(alarm)
        answer.update(sorted_out) if request.operation == "DescribeAlarms" else answer.update(MetricAlarms=sorted_out["MetricAlarms"])
        return AwsResponse(200, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(answer).encode())

    def _describe_alarm_history(self, request: AwsRequest) -> AwsResponse:
        params = self._params(request)
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        start, end = params.get("StartDate"), params.get("EndDate")
        with self._lock:
            items = [item for item in self._history
                     if item["region"] == request.region
                     and (not params.get("AlarmName") or item["AlarmName"] == params["AlarmName"])
                     and (params.get("AlarmName") or item["AlarmType"] in types)
                     and (not params.get("HistoryItemType") or item["HistoryItemType"] == params["HistoryItemType"])
                     and (start is None or item["Timestamp"] >= float(start)) and (end is None or item["Timestamp"] <= float(end))]
        items.sort(key=lambda item: item["Timestamp"], reverse=params.get("ScanBy", "TimestampDescending") == "TimestampDescending")
        answer = paging.page("AlarmHistoryItems", items, params, default=100, limit_member="MaxRecords",
                             invalid_token=lambda token: AlarmError("InvalidNextToken", f"Invalid NextToken: {token}"))
        answer["AlarmHistoryItems"] = [{k: v for k, v in item.items() if k != "region"} for item in answer["AlarmHistoryItems"]]
        return AwsResponse(200, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(answer).encode())

    # ---- state ---------------------------------------------------------------------------------------------
    def _set_alarm_state(self, request: AwsRequest) -> AwsResponse:
        params = self._params(request)
        response = request.send_on()  # the backend checks the name, the state and that reason data is JSON
        if response.status != 200:
            return response
        now = labtime.unix_time()
        with self._lock:
            record = self._records.get(self._key(request.region, params["AlarmName"]))
            changes = []
            if record:
                reason_data = params.get("StateReasonData")
                change = self._transition(record, params["StateValue"], params["StateReason"], json.loads(reason_data) if reason_data else None, now)
                changes = [change] if change else []
                changes += self._evaluate_composites(changes, now)
                self._save()
        self._act(changes)
        return response

    def _schedule(self, key: str, boundary: float) -> None:
        if self._next.get(key) == boundary:
            return
        self._due.get(self._next.get(key), set()).discard(key)
        self._next[key] = boundary
        if boundary not in self._due:
            self._due[boundary] = set()
            timers.schedule(self.name, f"boundary/{boundary}", _moment(boundary), self._boundary_reached)
        self._due[boundary].add(key)

    def _boundary_reached(self, at: datetime.datetime) -> None:
        boundary = _epoch(at)
        with self._lock:
            due_metrics = {metric for key in self._due.get(boundary, set()) if key in self._metric for metric in self._metric[key].keys}
        metrics.sample(at, due_metrics)  # sampled metrics (SQS queue depth) are read at the moments their alarms evaluate
        metrics.flush()  # what engines put before this moment is part of it
        with self._lock:
            keys = self._due.pop(boundary, set())
            for key in keys:
                self._next.pop(key, None)
            changes = self._evaluate_keys(keys, boundary)
            if changes:
                self._save()
        self._act(changes)

    def _evaluate_keys(self, keys: set[str], now: float) -> list[dict]:
        """Evaluates the alarms named by `keys` at `now`; returns their transitions (and their composites')."""
        changes = []
        for key in sorted(keys):
            record = self._records.get(key)
            if record is None:
                continue
            if record["kind"] == "CompositeAlarm":
                change = self._evaluate_composite(key, record, now)
            else:
                alarm = self._metric[key]
                verdict = evaluate(alarm, self.series, now, record["StateValue"])
                change = self._transition(record, verdict.state, verdict.reason, verdict.reason_data, now)
                if verdict.data_in_range:
                    self._schedule(key, next_evaluation(alarm, now))
            if change:
                changes.append(change)
        return changes + self._evaluate_composites(changes, now)

    def _evaluate_composites(self, changes: list[dict], now: float) -> list[dict]:
        """Composite alarms whose rule names an alarm that just changed, evaluated again (and theirs, in turn)."""
        changed = {(c["record"]["region"], c["record"]["name"]) for c in changes} | {(c["record"]["region"], c["record"]["arn"]) for c in changes}
        if not changed:
            return []
        affected = {key for key, rule in self._rules.items()
                    if any((self._records[key]["region"], alarm) in changed for alarm in rule.alarms)}
        return self._evaluate_keys(affected, now) if affected else []

    def _evaluate_composite(self, key: str, record: dict, now: float) -> dict | None:
        rule = self._rules[key]
        region = record["region"]

        def state_of(alarm: str) -> str:
            name = alarm.rsplit(":alarm:", 1)[-1]
            child = self._records.get(self._key(region, name))
            return child["StateValue"] if child else "INSUFFICIENT_DATA"

        state = "ALARM" if rule.holds(state_of) else "OK"
        if state == record["StateValue"]:
            return None
        triggering = [self._records[self._key(region, a.rsplit(":alarm:", 1)[-1])] for a in rule.alarms
                      if self._key(region, a.rsplit(":alarm:", 1)[-1]) in self._records]
        moment = _moment(now).strftime("%A %d %B, %Y %H:%M:%S")
        reason = "; ".join(f"{child['arn']} transitioned to {child['StateValue']} at {moment}" for child in triggering) or f"The rule {rule.text} is {'true' if state == 'ALARM' else 'false'}"
        data = {"triggeringAlarms": [{"arn": child["arn"], "state": {"value": child["StateValue"],
                                      "timestamp": _iso_stamp(child["StateUpdatedTimestamp"])}} for child in triggering]}
        return self._transition(record, state, reason, data, now)

    def _transition(self, record: dict, state: str, reason: str, reason_data: dict | None, now: float) -> dict | None:
        old = record["StateValue"]
        if state == old:
            return None
        previous = {field: record[field] for field in STATE_FIELDS}
        record.update({"StateValue": state, "StateReason": reason, "StateReasonData": json.dumps(reason_data) if reason_data is not None else None,
                       "StateUpdatedTimestamp": now, "StateTransitionedTimestamp": now})
        new_state = {"stateValue": state, "stateReason": reason}
        if reason_data is not None:
            new_state["stateReasonData"] = reason_data
        self._note_history(record, "StateUpdate", f"Alarm updated from {old} to {state}", now,
                           {"version": "1.0", "oldState": {"stateValue": old, "stateReason": previous["StateReason"]}, "newState": new_state})
        return {"record": record, "previous": previous}

    def _note_history(self, record: dict, item_type: str, summary: str, now: float, data: dict) -> None:
        item = {"region": record["region"], "AlarmName": record["name"], "AlarmType": record["kind"], "Timestamp": now,
                "HistoryItemType": item_type, "HistorySummary": summary, "HistoryData": json.dumps(data)}
        self._history.append(item)
        self._history_file.append([item])

    # ---- actions -------------------------------------------------------------------------------------------
    def _act(self, changes: list[dict]) -> None:
        state_changes: dict[str, list[dict]] = {}
        for change in changes:
            record = change["record"]
            state_changes.setdefault(record["region"], []).append(actions.state_change_entry(record, change["previous"]))
            outcomes = actions.send(record, change["previous"], ACCOUNT, lambda service: self.own_client(service, record["region"]))
            if outcomes:
                with self._lock:
                    for summary, data in outcomes:
                        self._note_history(record, "Action", summary, labtime.unix_time(), data)
        for region, entries in state_changes.items():
            for start in range(0, len(entries), actions.PUT_EVENTS_BATCH):
                try:
                    self.own_client("events", region).put_events(Entries=entries[start:start + actions.PUT_EVENTS_BATCH])
                except Exception:
                    log.exception("alarm state change events could not be put")

    # ---- life ----------------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            timers.cancel_owner(self.name)
            self._due, self._next = {}, {}
            for alarm in self._metric.values():
                for metric in alarm.keys:
                    metrics.unwatch(metric)
            self._records, self._metric, self._rules, self._watchers, self._history = {}, {}, {}, {}, []
            self.series.clear()
            self._alarms_file.remove()
            self._history_file.remove()
            self._points_file.remove()

    def close(self) -> None:
        timers.cancel_owner(self.name)
        metrics.detach()
        serviceevents.detach()
        self._history_file.close()
        self._points_file.close()


def _metrics_read(region: str, params: dict) -> set:
    """The metrics a GetMetricStatistics or GetMetricData names (ListMetrics names none)."""
    named = [params] if "MetricName" in params else [
        query["MetricStat"]["Metric"] for query in params.get("MetricDataQueries", []) if "MetricStat" in query]
    return {metric_key(region, metric.get("Namespace", ""), metric.get("MetricName", ""), metric.get("Dimensions", [])) for metric in named}


def _iso_stamp(epoch: float) -> str:
    return _moment(epoch).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
