"""What an alarm's transition sends, in AWS's shapes: the SNS notification message, the Lambda alarm event, and
the "CloudWatch Alarm State Change" EventBridge event (sent on every transition, actions enabled or not, as AWS
does). Actions of other kinds (Auto Scaling, EC2, Systems Manager) are recorded as failed Action history items.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

from dealab.wire import labtime

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-south-1": "Asia Pacific (Mumbai)",
    "ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)",
}
PUT_EVENTS_BATCH = 10  # entries PutEvents takes at once
ACTIONS_FOR_STATE = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}


def iso(epoch: float, zone: str = "+0000") -> str:
    moment = labtime.EPOCH + datetime.timedelta(seconds=epoch)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + zone


def _dimensions_list(dimensions: list[dict]) -> list[dict]:
    return [{"value": d["Value"], "name": d["Name"]} for d in dimensions or []]


def _trigger(params: dict) -> dict:
    trigger = {}
    if params.get("Metrics"):
        trigger["Metrics"] = [
            {k: v for k, v in {"Id": item["Id"], "Expression": item.get("Expression"), "Label": item.get("Label"), "ReturnData": item.get("ReturnData", True),
                               "MetricStat": item.get("MetricStat") and {
                                   "Metric": {"Dimensions": _dimensions_list(item["MetricStat"]["Metric"].get("Dimensions")),
                                              "MetricName": item["MetricStat"]["Metric"]["MetricName"], "Namespace": item["MetricStat"]["Metric"]["Namespace"]},
                                   "Period": item["MetricStat"]["Period"], "Stat": item["MetricStat"]["Stat"]}}.items() if v is not None}
            for item in params["Metrics"]]
    else:
        extended = params.get("ExtendedStatistic")
        trigger.update({"MetricName": params["MetricName"], "Namespace": params["Namespace"],
                        "StatisticType": "ExtendedStatistic" if extended else "Statistic"})
        trigger.update({"ExtendedStatistic": extended} if extended else {"Statistic": params.get("Statistic", "").upper()})
        trigger.update({"Unit": params.get("Unit"), "Dimensions": _dimensions_list(params.get("Dimensions")), "Period": params["Period"]})
    trigger.update({"EvaluationPeriods": params["EvaluationPeriods"], "DatapointsToAlarm": params.get("DatapointsToAlarm", params["EvaluationPeriods"]),
                    "ComparisonOperator": params["ComparisonOperator"], "Threshold": float(params.get("Threshold", 0.0)),
                    "TreatMissingData": params.get("TreatMissingData", "missing"),
                    "EvaluateLowSampleCountPercentile": params.get("EvaluateLowSampleCountPercentile", "")})
    return trigger


def sns_message(record: dict, previous: dict, account: str) -> tuple[str, str]:
    """(Subject, Message) of the notification AWS publishes to an alarm's topic."""
    params, region = record["params"], record["region"]
    region_name = REGION_NAMES.get(region, region)
    message = {
        "AlarmName": record["name"], "AlarmDescription": params.get("AlarmDescription"), "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": iso(record["configured"]), "NewStateValue": record["StateValue"],
        "NewStateReason": record["StateReason"], "StateChangeTime": iso(record["StateUpdatedTimestamp"]), "Region": region_name,
        "AlarmArn": record["arn"], "OldStateValue": previous["StateValue"], "OKActions": params.get("OKActions", []),
        "AlarmActions": params.get("AlarmActions", []), "InsufficientDataActions": params.get("InsufficientDataActions", []),
    }
    if record["kind"] == "CompositeAlarm":
        message["AlarmRule"] = params["AlarmRule"]
    else:
        message["Trigger"] = _trigger(params)
    subject = f'{record["StateValue"]}: "{record["name"]}" in {region_name}'
    return subject[:100], json.dumps(message)


def _configuration(record: dict) -> dict:
    params = record["params"]
    configuration = {"description": params.get("AlarmDescription", "")}
    if record["kind"] == "CompositeAlarm":
        configuration["alarmRule"] = params["AlarmRule"]
        return configuration
    if params.get("Metrics"):
        queries = params["Metrics"]
    else:
        queries = [{"Id": params["AlarmName"].lower().replace(" ", "_")[:255], "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": params["Namespace"], "MetricName": params["MetricName"], "Dimensions": params.get("Dimensions", [])},
            "Period": params["Period"], "Stat": params.get("ExtendedStatistic") or params.get("Statistic")}}]
    metrics = []
    for query in queries:
        entry = {"id": query["Id"], "returnData": query.get("ReturnData", True)}
        if "Expression" in query:
            entry.update({"expression": query["Expression"], "label": query.get("Label", query["Id"])})
        else:
            stat = query["MetricStat"]
            entry["metricStat"] = {"metric": {"namespace": stat["Metric"]["Namespace"], "name": stat["Metric"]["MetricName"],
                                              "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])}},
                                   "period": stat["Period"], "stat": stat["Stat"]}
        metrics.append(entry)
    configuration["metrics"] = metrics
    return configuration


def _state(fields: dict) -> dict:
    state = {"value": fields["StateValue"], "reason": fields["StateReason"], "timestamp": iso(fields["StateUpdatedTimestamp"])}
    if fields.get("StateReasonData"):
        state["reasonData"] = fields["StateReasonData"]
    return state


def alarm_data(record: dict, previous: dict) -> dict:
    """The `alarmData` of a Lambda alarm event; also the `detail` of the EventBridge event."""
    return {"alarmName": record["name"], "state": _state(record), "previousState": _state(previous), "configuration": _configuration(record)}


def lambda_event(record: dict, previous: dict, account: str) -> dict:
    return {"source": "aws.cloudwatch", "alarmArn": record["arn"], "accountId": account,
            "time": iso(record["StateUpdatedTimestamp"]), "region": record["region"], "alarmData": alarm_data(record, previous)}


def state_change_entry(record: dict, previous: dict) -> dict:
    """The PutEvents entry of "CloudWatch Alarm State Change", sent for every transition."""
    return {"Source": "aws.cloudwatch", "DetailType": "CloudWatch Alarm State Change", "Resources": [record["arn"]],
            "Detail": json.dumps(alarm_data(record, previous)), "Time": labtime.EPOCH + datetime.timedelta(seconds=record["StateUpdatedTimestamp"])}


def send(record: dict, previous: dict, account: str, client_for: Callable[[str], object]) -> list[tuple[str, dict]]:
    """Sends the alarm's own actions for the transition of `record`; returns the Action history items (summary, data)."""
    outcomes = []
    if not record["actions_enabled"]:
        return outcomes
    for arn in record["params"].get(ACTIONS_FOR_STATE[record["StateValue"]], []):
        try:
            if arn.startswith("arn:aws:sns:"):
                subject, message = sns_message(record, previous, account)
                client_for("sns").publish(TopicArn=arn, Subject=subject, Message=message)
            elif arn.startswith("arn:aws:lambda:"):
                client_for("lambda").invoke(FunctionName=arn, InvocationType="Event", Payload=json.dumps(lambda_event(record, previous, account)).encode())
            else:
                raise ValueError("dealab runs SNS and Lambda alarm actions only")
            outcomes.append((f"Successfully executed action {arn}", {"actionState": "Succeeded", "notificationResource": arn}))
        except Exception as error:  # a failed action is history, never a failed evaluation
            outcomes.append((f"Failed to execute action {arn}. Received error: \"{error}\"", {"actionState": "Failed", "notificationResource": arn, "error": str(error)}))
    return outcomes
