"""Glue Data Quality through the stack: rulesets, evaluation runs over a catalog table (made by CREATE TABLE
in Glue, data as CSV in S3), results, the CloudWatch metrics and the EventBridge event, recommendation runs."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import duckdb

from dealab.engines.dataquality import publish
from dealab.engines.dataquality.dqdl import parse
from dealab.engines.dataquality.rules import Datasets, evaluate
from dealab.stack import control
from tests.conftest import client, kill_hard, service_role

ROLE = "arn:aws:iam::123456789012:role/dq"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def table(aws_env):
    return make_tables(aws_env)


def make_tables(aws_env):
    """A Glue database with an orders table (a NULL name among 4 rows) and a customers table, as CSV in S3."""
    s3, glue = client(aws_env, "s3"), client(aws_env, "glue")
    bucket, database = unique("dq-"), unique("dqdb_")
    service_role(aws_env, "dq", "glue")  # ROLE, which every run here names
    s3.create_bucket(Bucket=bucket)
    lines = ["1,alice,a,10.5", "2,bob,b,20.0", "3,\\N,a,30.0", "4,dave,c,40.0"]  # \N: LazySimpleSerDe NULL
    s3.put_object(Bucket=bucket, Key="orders/part-0.csv", Body=("\n".join(lines) + "\n").encode())
    s3.put_object(Bucket=bucket, Key="customers/part-0.csv", Body=b"1\n2\n3\n")
    glue.create_database(DatabaseInput={"Name": database})
    for name, columns in (("orders", [("id", "bigint"), ("name", "string"), ("cat", "string"), ("amount", "double")]),
                          ("customers", [("id", "bigint")])):
        glue.create_table(DatabaseName=database, TableInput={"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t in columns], "Location": f"s3://{bucket}/{name}/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}}})
    return type("Table", (), {"glue": glue, "database": database, "settings": aws_env})


def wait(fetch, run_id):
    for _ in range(300):
        run = fetch(RunId=run_id)
        if run["Status"] not in ("STARTING", "RUNNING"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not end")


def test_ruleset_crud_and_dqdl_errors(table):
    glue, name = table.glue, unique("rs-")
    target = {"DatabaseName": table.database, "TableName": "orders"}
    glue.create_data_quality_ruleset(Name=name, Ruleset='Rules = [ RowCount > 0, IsComplete "id" ]', TargetTable=target)
    got = glue.get_data_quality_ruleset(Name=name)
    assert got["TargetTable"] == target and got["Ruleset"].startswith("Rules")
    listed = glue.list_data_quality_rulesets(Filter={"TargetTable": target})["Rulesets"]
    assert [(r["Name"], r["RuleCount"]) for r in listed] == [(name, 2)]
    glue.update_data_quality_ruleset(Name=name, Ruleset='Rules = [ RowCount > 0 ]')
    assert glue.get_data_quality_ruleset(Name=name)["Ruleset"] == "Rules = [ RowCount > 0 ]"
    with pytest.raises(ClientError) as bad:
        glue.create_data_quality_ruleset(Name=unique("bad-"), Ruleset='Rules = [\n  IsComplete "id" > ]')
    assert bad.value.response["Error"]["Code"] == "InvalidInputException"
    assert "line 2:20" in bad.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exists:
        glue.create_data_quality_ruleset(Name=name, Ruleset="Rules = [ RowCount > 0 ]")
    assert exists.value.response["Error"]["Code"] == "AlreadyExistsException"
    glue.delete_data_quality_ruleset(Name=name)
    with pytest.raises(ClientError) as gone:
        glue.get_data_quality_ruleset(Name=name)
    assert gone.value.response["Error"]["Code"] == "EntityNotFoundException"


def test_evaluation_run_results_metrics_and_event(table):
    glue = table.glue
    sqs, events, cloudwatch = (client(table.settings, s) for s in ("sqs", "events", "cloudwatch"))
    queue = sqs.create_queue(QueueName=unique("dq-events-"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = unique("dq-rule-")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.glue-dataquality"],
                                                        "detail-type": ["Data Quality Evaluation Results Available"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    name = unique("rs-")
    glue.create_data_quality_ruleset(Name=name, Ruleset=(
        'Rules = [ RowCount = 4, IsComplete "name", ColumnValues "cat" in ["a", "b", "c"], Mean "amount" between 20 and 30, '
        'ReferentialIntegrity "id" "customers.id" = 1.0 ]'))
    source = {"GlueTable": {"DatabaseName": table.database, "TableName": "orders"}}
    run_id = glue.start_data_quality_ruleset_evaluation_run(
        DataSource=source, Role=ROLE, RulesetNames=[name],
        AdditionalDataSources={"customers": {"GlueTable": {"DatabaseName": table.database, "TableName": "customers"}}})["RunId"]
    run = wait(glue.get_data_quality_ruleset_evaluation_run, run_id)
    assert run["Status"] == "SUCCEEDED", run.get("ErrorString")
    result = glue.get_data_quality_result(ResultId=run["ResultIds"][0])
    outcomes = {r["Description"]: (r["Result"], r.get("EvaluationMessage")) for r in result["RuleResults"]}
    assert outcomes == {
        "RowCount = 4": ("PASS", None),
        'IsComplete "name"': ("FAIL", "Value: 0.75 does not meet the constraint requirement!"),
        'ColumnValues "cat" in ["a", "b", "c"]': ("PASS", None),
        'Mean "amount" between 20 and 30': ("PASS", None),
        'ReferentialIntegrity "id" "customers.id" = 1.0': ("FAIL", "Value: 0.75 does not meet the constraint requirement!"),
    }
    assert result["Score"] == pytest.approx(0.6) and result["RulesetEvaluationRunId"] == run_id
    assert result["RuleResults"][3]["EvaluatedMetrics"] == {"Column.amount.Mean": pytest.approx(25.125)}
    assert [r["ResultId"] for r in glue.list_data_quality_results(Filter={"DataSource": source})["Results"]] == run["ResultIds"]
    batch = glue.batch_get_data_quality_result(ResultIds=[run["ResultIds"][0], "dqresult-missing"])
    assert len(batch["Results"]) == 1 and batch["ResultsNotFound"] == ["dqresult-missing"]
    assert run_id in [r["RunId"] for r in glue.list_data_quality_ruleset_evaluation_runs(Filter={"DataSource": source})["Runs"]]

    dimensions = [{"Name": "CatalogId", "Value": "123456789012"}, {"Name": "Database", "Value": table.database},
                  {"Name": "Table", "Value": "orders"}, {"Name": "Ruleset", "Value": name}]
    metrics = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Glue Data Quality", Dimensions=dimensions)["Metrics"]}
    assert metrics == {"glue.data.quality.rules.passed", "glue.data.quality.rules.failed"}
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5, MaxNumberOfMessages=10).get("Messages", [])
    detail = next(json.loads(m["Body"])["detail"] for m in messages
                  if json.loads(m["Body"])["detail"]["resultID"] == run["ResultIds"][0])
    assert detail["state"] == "FAILED" and detail["score"] == pytest.approx(0.6)
    assert (detail["rulesSucceeded"], detail["rulesFailed"], detail["rulesSkipped"]) == (3, 2, 0)
    assert detail["context"]["tableName"] == "orders" and detail["rulesetNames"] == [name]


def test_run_over_a_missing_table_fails_and_recommendation_proposes_a_passing_ruleset(table):
    glue = table.glue
    name = unique("rs-")
    glue.create_data_quality_ruleset(Name=name, Ruleset="Rules = [ RowCount > 0 ]")
    run_id = glue.start_data_quality_ruleset_evaluation_run(
        DataSource={"GlueTable": {"DatabaseName": table.database, "TableName": "nope"}}, Role=ROLE, RulesetNames=[name])["RunId"]
    failed = wait(glue.get_data_quality_ruleset_evaluation_run, run_id)
    assert failed["Status"] == "FAILED" and "nope" in failed["ErrorString"]

    created = unique("recommended-")
    source = {"GlueTable": {"DatabaseName": table.database, "TableName": "orders"}}
    run_id = glue.start_data_quality_rule_recommendation_run(DataSource=source, Role=ROLE, CreatedRulesetName=created)["RunId"]
    run = wait(glue.get_data_quality_rule_recommendation_run, run_id)
    assert run["Status"] == "SUCCEEDED", run.get("ErrorString")
    text = run["RecommendedRuleset"]
    assert 'IsUnique "id"' in text and 'ColumnValues "cat" in ["a", "b", "c"]' in text and "RowCount between" in text
    assert glue.get_data_quality_ruleset(Name=created)["RecommendationRunId"] == run_id
    evaluation = glue.start_data_quality_ruleset_evaluation_run(DataSource=source, Role=ROLE, RulesetNames=[created])["RunId"]
    done = wait(glue.get_data_quality_ruleset_evaluation_run, evaluation)
    rules = glue.get_data_quality_result(ResultId=done["ResultIds"][0])["RuleResults"]
    assert [(r["Description"], r.get("EvaluationMessage")) for r in rules if r["Result"] != "PASS"] == []


def _body(response: dict) -> dict:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def test_runs_results_and_recommendations_survive_a_restart_and_a_kill(private_stack):
    table = make_tables(private_stack)
    glue, name = table.glue, unique("rs-")
    glue.create_data_quality_ruleset(Name=name, Ruleset='Rules = [ RowCount = 4, IsComplete "name" ]')
    source = {"GlueTable": {"DatabaseName": table.database, "TableName": "orders"}}
    run = wait(glue.get_data_quality_ruleset_evaluation_run,
               glue.start_data_quality_ruleset_evaluation_run(DataSource=source, Role=ROLE, RulesetNames=[name])["RunId"])
    assert run["Status"] == "SUCCEEDED", run.get("ErrorString")
    result = glue.get_data_quality_result(ResultId=run["ResultIds"][0])
    recommendation = wait(glue.get_data_quality_rule_recommendation_run, glue.start_data_quality_rule_recommendation_run(
        DataSource=source, Role=ROLE, CreatedRulesetName=f"{name}-recommended")["RunId"])
    assert recommendation["Status"] == "SUCCEEDED", recommendation.get("ErrorString")

    def unchanged(glue):
        assert _body(glue.get_data_quality_ruleset_evaluation_run(RunId=run["RunId"])) == run
        assert _body(glue.get_data_quality_result(ResultId=result["ResultId"])) == result
        assert _body(glue.get_data_quality_rule_recommendation_run(RunId=recommendation["RunId"])) == recommendation
        assert glue.get_data_quality_ruleset(Name=f"{name}-recommended")["Ruleset"] == recommendation["RecommendedRuleset"]
        assert result["ResultId"] in [r["ResultId"] for r in glue.list_data_quality_results(Filter={"DataSource": source})["Results"]]

    run, result, recommendation = _body(run), _body(result), _body(recommendation)
    control.down(private_stack)
    control.up(private_stack)
    unchanged(client(private_stack, "glue"))

    # acknowledged, then kill -9: the run is still there, and ends either as it ran or FAILED for the stopped stack
    glue = client(private_stack, "glue")
    glue.create_data_quality_ruleset(Name=f"{name}-late", Ruleset="Rules = [ RowCount > 0 ]")
    started = glue.start_data_quality_ruleset_evaluation_run(DataSource=source, Role=ROLE, RulesetNames=[f"{name}-late"])["RunId"]
    kill_hard(private_stack)
    control.up(private_stack)
    glue = client(private_stack, "glue")
    unchanged(glue)
    assert glue.get_data_quality_ruleset(Name=f"{name}-late")["Ruleset"] == "Rules = [ RowCount > 0 ]"
    late = glue.get_data_quality_ruleset_evaluation_run(RunId=started)
    if late["Status"] == "SUCCEEDED":  # it finished before the kill: its result was kept with it
        assert glue.get_data_quality_result(ResultId=late["ResultIds"][0])["Score"] == 1.0
    else:
        assert (late["Status"], late["ErrorString"]) == ("FAILED", "The run was interrupted: the stack stopped while it ran")


def test_a_job_result_is_published_listed_and_read_back_as_history(aws_env):
    glue, job = client(aws_env, "glue"), unique("dq-job-")

    def published(context, started, row_count):
        rule = {"Name": "Rule_1", "Description": "RowCount > 0", "EvaluatedRule": "RowCount > 0", "Result": "PASS",
                "EvaluatedMetrics": {"Dataset.*.RowCount": row_count}}
        return publish.send_result(glue, {"JobName": job, "JobRunId": f"jr_{started}", "EvaluationContext": context,
                                          "StartedOn": started, "Score": 1.0, "RuleResults": [rule, {**rule, "Name": "Rule_2"}]})

    ids = [published("orders", 1000, 10.0), published("orders", 2000, 30.0), published("refunds", 3000, 99.0)]
    listed = glue.list_data_quality_results(Filter={"JobName": job})["Results"]
    assert sorted(r["ResultId"] for r in listed) == sorted(ids) and {r["JobName"] for r in listed} == {job}
    kept = glue.get_data_quality_result(ResultId=ids[0])
    assert (kept["JobRunId"], kept["EvaluationContext"], kept["Observations"]) == ("jr_1000", "orders", [])
    with pytest.raises(RuntimeError, match="InvalidInputException: JobName is required"):
        publish.send_result(glue, {"EvaluationContext": "orders"})

    history = publish.history_of(glue, job, "orders")
    assert history("Dataset.*.RowCount") == [30.0, 10.0]  # newest first, one value per result, this context only
    assert history("Column.id.Completeness") == []
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT range AS id FROM range(25)")
    rules = evaluate(parse("Rules = [ RowCount > avg(last(2)), RowCount > last() ]"),
                     Datasets(connection, {"primary": "SELECT * FROM t"}, datetime.datetime(2026, 1, 1)), history).rules
    assert [(r.outcome, r.evaluated_rule) for r in rules] == [("Passed", "RowCount > 20.0"), ("Failed", "RowCount > 30.0")]
