"""What Glue Data Quality publishes after an evaluation, in AWS's shapes: the CloudWatch metrics
glue.data.quality.rules.passed / .failed in the "Glue Data Quality" namespace, and the EventBridge event
"Data Quality Evaluation Results Available" from aws.glue-dataquality. Shared by the engine (catalog runs) and
awsgluedq (job runs); both send them through the gateway with PutMetricData / PutEvents."""

from __future__ import annotations

import datetime
import json

from dealab.engines.dataquality.rules import Evaluation

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
