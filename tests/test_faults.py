"""Fault injection: rules, determinism under a seed, AWS's failure shapes, persistence and the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from dealab.commands.faults import app as faults_cli
from dealab.engines.faults.rules import Rule, RuleError, parse
from dealab.stack import control
from tests.conftest import admin_headers, client, make_settings

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})


def admin(settings, payload: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{settings.endpoint_url}/_dealab/faults", data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST", headers=admin_headers(settings),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def raw_client(settings, service: str):
    import boto3

    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id="test", aws_secret_access_key="test", config=NO_RETRIES)


# --- rules ---------------------------------------------------------------------------------------------


def test_a_rule_reads_target_rate_error_and_seed():
    rule = parse("kinesis:PutRecords rate=0.1 error=internal seed=7")
    assert (rule.service, rule.operation, rule.rate, rule.error, rule.seed) == ("kinesis", "PutRecords", 0.1, "internal", "7")
    assert parse(rule.spec()) == rule


@pytest.mark.parametrize("spec, complaint", [
    ("kinesis rate=0.1", "service:Operation"),
    ("kinesis:PutRecords", "no rate"),
    ("kinesis:PutRecords rate=1.5", "outside 0..1"),
    ("kinesis:PutRecords rate=x", "not a number"),
    ("kinesis:PutRecords rate=0.1 error=boom", "not one of"),
    ("kinesis:PutRecords rate=0.1 colour=red", "not one of"),
])
def test_a_bad_rule_is_refused_with_the_reason(spec, complaint):
    with pytest.raises(RuleError, match=complaint):
        parse(spec)


def test_draws_repeat_under_a_seed_and_differ_between_seeds():
    def draws(seed: str) -> list[bool]:
        rule = Rule("kinesis", "PutRecords", 0.2, seed=seed)
        return [rule.draw() for _ in range(2000)]

    assert draws("a") == draws("a")
    assert draws("a") != draws("b")
    share = sum(draws("a")) / 2000
    assert 0.17 < share < 0.23


def test_the_most_specific_rule_matches():
    assert Rule("kinesis", "*", 1).matches("kinesis", "GetRecords")
    assert not Rule("kinesis", "PutRecords", 1).matches("kinesis", "GetRecords")
    assert Rule("*", "*", 1).matches("s3", "GetObject")


# --- through the stack ---------------------------------------------------------------------------------


@pytest.fixture
def faults(clean_stack):
    yield clean_stack
    admin(clean_stack, {"action": "clear"})


def put_batch(kinesis, stream: str, count: int, start: int = 0) -> dict:
    return kinesis.put_records(StreamName=stream, Records=[
        {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"key-{n}"} for n in range(start, start + count)
    ])


def stored_numbers(kinesis, stream: str) -> list[int]:
    numbers = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        numbers += [json.loads(r["Data"])["n"] for r in kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]]
    return sorted(numbers)


def test_put_records_fails_entry_by_entry_and_only_the_others_are_stored(faults):
    kinesis = raw_client(faults, "kinesis")
    kinesis.create_stream(StreamName="clicks", ShardCount=2)
    admin(faults, {"action": "set", "rules": ["kinesis:PutRecords rate=0.25 seed=s1"]})
    answer = put_batch(kinesis, "clicks", 400)
    failed = [n for n, result in enumerate(answer["Records"]) if "ErrorCode" in result]
    assert answer["FailedRecordCount"] == len(failed) and 60 < len(failed) < 140
    first = answer["Records"][failed[0]]
    assert first["ErrorCode"] == "ProvisionedThroughputExceededException"
    assert first["ErrorMessage"].startswith("Rate exceeded for shard shardId-00000000000")
    assert "in stream clicks under account" in first["ErrorMessage"]
    assert all("SequenceNumber" in r and "ShardId" in r for n, r in enumerate(answer["Records"]) if n not in failed)
    assert stored_numbers(kinesis, "clicks") == [n for n in range(400) if n not in failed]


def test_the_same_seed_fails_the_same_entries(faults):
    kinesis = raw_client(faults, "kinesis")
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    outcomes = []
    for _ in range(2):
        admin(faults, {"action": "set", "rules": ["kinesis:PutRecords rate=0.3 seed=repeat"]})  # setting restarts the draws
        outcomes.append(["ErrorCode" in r for r in put_batch(kinesis, "clicks", 200)["Records"]])
    assert outcomes[0] == outcomes[1] and any(outcomes[0])


def test_when_every_entry_fails_an_unknown_stream_is_still_an_error(faults):
    kinesis = raw_client(faults, "kinesis")
    admin(faults, {"action": "set", "rules": ["kinesis:PutRecords rate=1"]})
    with pytest.raises(ClientError) as caught:
        put_batch(kinesis, "no-such-stream", 3)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_batch_aws_refuses_gets_aws_error_not_a_fault(faults):
    kinesis = raw_client(faults, "kinesis")
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    admin(faults, {"action": "set", "rules": ["kinesis:PutRecords rate=0.5"]})
    with pytest.raises(ClientError) as caught:
        put_batch(kinesis, "clicks", 501)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert stored_numbers(kinesis, "clicks") == []


@pytest.mark.parametrize("rule, service, call, status, code", [
    ("kinesis:ListStreams rate=1", "kinesis", lambda c: c.list_streams(), 400, "ProvisionedThroughputExceededException"),
    ("dynamodb:ListTables rate=1 error=internal", "dynamodb", lambda c: c.list_tables(), 500, "InternalServerError"),
    ("s3:ListBuckets rate=1", "s3", lambda c: c.list_buckets(), 503, "SlowDown"),
    ("sns:ListTopics rate=1", "sns", lambda c: c.list_topics(), 400, "Throttling"),
    ("glue:GetDatabases rate=1 error=unavailable", "glue", lambda c: c.get_databases(), 503, "ServiceUnavailable"),
])
def test_other_operations_fail_whole_in_their_protocols_error_shape(faults, rule, service, call, status, code):
    admin(faults, {"action": "set", "rules": [rule]})
    with pytest.raises(ClientError) as caught:
        call(raw_client(faults, service))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert caught.value.response["Error"]["Code"] == code


def test_boto3s_own_retries_see_through_a_light_fault_rate(faults):
    kinesis = client(faults, "kinesis")  # default retry policy, as learner code has
    admin(faults, {"action": "set", "rules": ["kinesis:ListStreams rate=0.3"]})
    for _ in range(20):
        kinesis.list_streams()
    seen = admin(faults)["rules"][0]
    assert seen["injected"] > 0 and seen["seen"] == 20 + seen["injected"]


def test_clearing_one_target_keeps_the_others(faults):
    admin(faults, {"action": "set", "rules": ["kinesis:ListStreams rate=1", "sqs:* rate=0.5"]})
    left = admin(faults, {"action": "clear", "targets": ["kinesis:ListStreams"]})["rules"]
    assert [rule["target"] for rule in left] == ["sqs:*"]
    raw_client(faults, "kinesis").list_streams()


def test_a_bad_rule_is_a_400_with_the_reason(faults):
    request = urllib.request.Request(f"{faults.endpoint_url}/_dealab/faults", method="POST", headers=admin_headers(faults),
                                     data=json.dumps({"action": "set", "rules": ["kinesis:PutRecords rate=7"]}).encode())
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400 and "outside 0..1" in json.loads(caught.value.read())["message"]


def test_reset_clears_the_rules(faults):
    admin(faults, {"action": "set", "rules": ["kinesis:ListStreams rate=1"]})
    control.reset(faults)
    assert admin(faults)["rules"] == []


def test_the_cli_sets_lists_and_clears(faults):
    runner = CliRunner()
    result = runner.invoke(faults_cli, ["set", "kinesis:PutRecords", "rate=0.1", "seed=9"])
    assert result.exit_code == 0, result.output
    assert admin(faults)["rules"][0]["spec"] == "kinesis:PutRecords rate=0.1 error=throttling seed=9"
    assert "kinesis:PutRecords" in runner.invoke(faults_cli, ["list"]).output
    refused = runner.invoke(faults_cli, ["set", "kinesis:PutRecords", "rate=2"])
    assert refused.exit_code == 1 and "outside 0..1" in refused.output
    assert runner.invoke(faults_cli, ["clear"]).exit_code == 0
    assert admin(faults)["rules"] == []


def test_rules_survive_a_restart(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        admin(settings, {"action": "set", "rules": ["dynamodb:* rate=0.2 seed=x"]})
        control.down(settings)
        control.up(settings)
        assert [rule["spec"] for rule in admin(settings)["rules"]] == ["dynamodb:* rate=0.2 error=throttling seed=x"]
    finally:
        control.down(settings)


def test_a_catch_all_rule_spares_services_whose_error_shape_dealab_cannot_speak(faults):
    admin(faults, {"action": "set", "rules": ["*:* rate=1"]})
    client(faults, "cloudwatch").list_metrics()  # smithy-rpc-v2-cbor: passed on untouched
    with pytest.raises(ClientError):
        raw_client(faults, "sqs").list_queues()
    refused = urllib.request.Request(f"{faults.endpoint_url}/_dealab/faults", method="POST", headers=admin_headers(faults),
                                     data=json.dumps({"action": "set", "rules": ["cloudwatch:ListMetrics rate=1"]}).encode())
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(refused, timeout=30)
    assert "protocol" in json.loads(caught.value.read())["message"]
