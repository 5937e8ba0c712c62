"""What Glue Data Quality publishes after an evaluation, in AWS's shapes: the CloudWatch metrics
glue.data.quality.rules.passed / .failed in the "Glue Data Quality" namespace, and the EventBridge event
"Data Quality Evaluation Results Available" from aws.glue-dataquality. Shared by the engine (catalog runs) and
awsgluedq (job runs); both send them through the gateway with PutMetricData / PutEvents."""

from __future__ import annotations

import datetime
import json

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rules loads DuckDB and sqlglot, which a stack that runs no evaluation should not pay for
    from dealab.engines.dataquality.rules import Evaluation

# what a job's PublishDataQuality result carries (the engine adds ResultId and the times)
JOB_RESULT_MEMBERS = ("JobName", "JobRunId", "EvaluationContext", "RulesetName", "Score", "StartedOn", "CompletedOn",
                      "RuleResults", "AnalyzerResults", "AggregatedMetrics")
NAMESPACE = "Glue Data Quality"
RULES_PASSED = "glue.data.quality.rules.passed"
RULES_FAILED = "glue.data.quality.rules.failed"
EVENT_SOURCE = "aws.glue-dataquality"
EVENT_DETAIL_TYPE = "Data Quality Evaluation Results Available"


def counts(evaluation: Evaluation) -> tuple[int, int, int]:
    """(passed, failed, skipped): a rule that could not be evaluated (Error) is counted as skipped."""
    outcomes = [r.outcome for r in evaluation.rules]
    return outcomes.count("Passed"), outcomes.count("Failed"), outcomes.count("Error")


def metric_data(evaluation: Evaluation, dimensions: dict[str, str], moment: datetime.datetime) -> list[dict]:
    passed, failed, _ = counts(evaluation)
    shared = {"Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()], "Timestamp": moment, "Unit": "Count"}
    return [{"MetricName": RULES_PASSED, "Value": float(passed), **shared},
            {"MetricName": RULES_FAILED, "Value": float(failed), **shared}]


def event_entry(evaluation: Evaluation, context: dict, result_id: str, ruleset_names: list[str], moment: datetime.datetime) -> dict:
    """One PutEvents entry. `state` is FAILED when any rule failed, as the event patterns in AWS's alerting
    guide match it ("state": ["FAILED"])."""
    passed, failed, skipped = counts(evaluation)
    detail = {
        "context": context,
        "resultID": result_id,
        "rulesetNames": ruleset_names,
        "state": "FAILED" if failed else "SUCCEEDED",
        "score": evaluation.score,
        "rulesSucceeded": passed,
        "rulesFailed": failed,
        "rulesSkipped": skipped,
    }
    return {"Source": EVENT_SOURCE, "DetailType": EVENT_DETAIL_TYPE, "Detail": json.dumps(detail), "Time": moment}


def rule_results(evaluation: Evaluation) -> list[dict]:
    """RuleResults as GetDataQualityResult gives them."""
    results = []
    for rule in evaluation.rules:
        entry = {"Name": rule.name, "Description": rule.rule, "EvaluatedRule": rule.evaluated_rule or rule.rule,
                 "Result": {"Passed": "PASS", "Failed": "FAIL"}.get(rule.outcome, "ERROR"),
                 "EvaluatedMetrics": rule.metrics}
        if rule.failure_reason:
            entry["EvaluationMessage"] = rule.failure_reason
        if rule.labels:
            entry["Labels"] = rule.labels
        results.append(entry)
    return results


def analyzer_results(evaluation: Evaluation) -> list[dict]:
    results = []
    for analyzer in evaluation.analyzers:
        entry = {"Name": analyzer.name, "Description": analyzer.rule, "EvaluatedMetrics": analyzer.metrics}
        if analyzer.failure_reason:
            entry["EvaluationMessage"] = analyzer.failure_reason
        results.append(entry)
    return results


def aggregated_metrics(evaluation: Evaluation) -> dict:
    passed, failed, _ = counts(evaluation)
    return {"TotalRulesProcessed": float(len(evaluation.rules)), "TotalRulesPassed": float(passed),
            "TotalRulesFailed": float(failed), "TotalRowsProcessed": float(evaluation.row_count)}


def job_result(evaluation: Evaluation, job_name: str, job_run_id: str, context: str, started: datetime.datetime) -> dict:
    """What a job's evaluation publishes to Glue Data Quality (PublishDataQuality)."""
    return {"JobName": job_name, "JobRunId": job_run_id, "EvaluationContext": context, "Score": evaluation.score,
            "StartedOn": started.timestamp(), "RuleResults": rule_results(evaluation), "AnalyzerResults": analyzer_results(evaluation),
            "AggregatedMetrics": aggregated_metrics(evaluation)}


def send_result(glue, result: dict) -> str:
    """PublishDataQuality through `glue`'s endpoint, signed with the default session's credentials (a job's); the
    stored result's id. No SDK has the call, so it is sent as the request botocore would make."""
    request = AWSRequest("POST", glue.meta.endpoint_url + "/", data=json.dumps(result, default=str).encode(),
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSGlue.PublishDataQuality"})
    SigV4Auth(boto3.session.Session().get_credentials().get_frozen_credentials(), "glue", glue.meta.region_name).add_auth(request)
    response = URLLib3Session().send(request.prepare())
    answer = json.loads(response.content or b"{}")
    if response.status_code >= 300:
        raise RuntimeError(f"PublishDataQuality: {answer.get('__type', response.status_code)}: {answer.get('message', '')}")
    return answer["ResultId"]


def history_of(glue, job_name: str, context: str):
    """metric → its values in the job's earlier published results of `context`, newest first (one per result)."""
    ids, token = [], None
    while True:
        page = glue.list_data_quality_results(Filter={"JobName": job_name}, **({"NextToken": token} if token else {}))
        ids += [summary["ResultId"] for summary in page["Results"]]
        token = page.get("NextToken")
        if not token:
            break
    results = [result for start in range(0, len(ids), 100)
               for result in glue.batch_get_data_quality_result(ResultIds=ids[start:start + 100])["Results"]
               if result.get("EvaluationContext") == context]
    results.sort(key=lambda result: (result["CompletedOn"], result["StartedOn"]), reverse=True)

    def values(metric: str) -> list[float]:
        found = []
        for result in results:
            measured = [entry["EvaluatedMetrics"][metric] for entry in result.get("RuleResults", []) + result.get("AnalyzerResults", [])
                        if metric in entry.get("EvaluatedMetrics", {})]
            found += measured[:1]
        return found

    return values
