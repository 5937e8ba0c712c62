"""Lab 02 proves its grader: the solution gets full marks under faults, the starter does not, and each small
breakage of the solution fails the matching check and only it."""

import dataclasses

import pytest

from dealab import labrun
from dealab.labs import get_lab
from dealab.stack import control
from tests.conftest import admin_headers
from tests.labkit import explain, fresh_lab, prove_breakage, prove_variant, solution_report, starter_report

# The breakages are judged on a smaller clickstream than the lab's 20,000 events, to keep the suite quick;
# the full-size dataset is graded by the solution test.
SMALL_DATASET_EVENTS = 6000

PRODUCER, CONSUMER = "producer.py", "consumer.py"


@pytest.fixture
def lab02(aws_env):
    return fresh_lab(2, aws_env)


@pytest.fixture
def small_lab02(aws_env):
    control.reset(aws_env)
    full = get_lab(2)
    lab = dataclasses.replace(full, dataset={**full.dataset, "params": {**full.dataset["params"], "events": SMALL_DATASET_EVENTS}})
    labrun.start(lab, aws_env)
    return lab


def test_solution_gets_full_marks_under_faults(aws_env, lab02):
    import json
    import urllib.request

    report = solution_report(lab02, aws_env)
    assert report.full_marks, explain(report)
    with urllib.request.urlopen(urllib.request.Request(f"{aws_env.endpoint_url}/_dealab/faults", headers=admin_headers(aws_env))) as response:
        rule = json.loads(response.read())["rules"][0]
    assert rule["target"] == "kinesis:PutRecords" and rule["injected"] > 1000  # the retries really ran


def test_untouched_starter_does_not_get_full_marks(aws_env, lab02):
    report = starter_report(lab02, aws_env)
    assert report.score == 0, explain(report)


# Realistic mistakes, each with the checks it must fail (and only those).
MUTANTS = {
    "producer drops the failed entries": ({"L02-03", "L02-05"}, {PRODUCER: [
        ('        pending = [record for record, result in zip(pending, response["Records"]) if "ErrorCode" in result]\n',
         '        return\n')]}),
    "producer resends the whole batch once, not only the failed entries": ({"L02-03", "L02-05"}, {PRODUCER: [
        ('        pending = [record for record, result in zip(pending, response["Records"]) if "ErrorCode" in result]\n',
         '        kinesis.put_records(StreamName=STREAM, Records=pending)\n        return\n')]}),
    "producer sends the source's repeated events again": ({"L02-03"}, {PRODUCER: [
        ("        if event_id in seen:\n            continue\n", "")]}),
    "partition key is the user": ({"L02-02"}, {PRODUCER: [
        ("    return event_id_of(line)\n", '    return field_of(line, "user_id") or event_id_of(line)\n')]}),
    "day from the processing time": ({"L02-04"}, {CONSUMER: [
        ('by_day[json.loads(line)["ts"][:10]]', 'by_day[datetime.date.today().isoformat()]')]}),
    "quarantine without a reason": ({"L02-05"}, {CONSUMER: [('json.dumps({"reason": problem, ', 'json.dumps({')]}),
    "checkpoint keyed differently": ({"L02-06"}, {CONSUMER: [
        ('AttributeDefinitions=[{"AttributeName": "shard_id"', 'AttributeDefinitions=[{"AttributeName": "shard"'),
        ('KeySchema=[{"AttributeName": "shard_id"', 'KeySchema=[{"AttributeName": "shard"'),
        ('Key={"shard_id": {"S": shard_id}}', 'Key={"shard": {"S": shard_id}}'),
        ('Item={"shard_id": {"S": shard_id}', 'Item={"shard": {"S": shard_id}')]}),
    "checkpoint is the batch's first sequence number": ({"L02-06", "L02-07"}, {CONSUMER: [
        ('save_checkpoint(shard_id, records[-1]["SequenceNumber"])', 'save_checkpoint(shard_id, records[0]["SequenceNumber"])')]}),
    "restart resumes at the checkpoint, not after it": ({"L02-07"}, {CONSUMER: [
        ('"ShardIteratorType": "AFTER_SEQUENCE_NUMBER"', '"ShardIteratorType": "AT_SEQUENCE_NUMBER"')]}),
    "every run starts from the oldest record": ({"L02-07"}, {CONSUMER: [
        ('    if checkpoint:\n        start = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}\n'
         '    else:\n        start = {"ShardIteratorType": "TRIM_HORIZON"}\n',
         '    start = {"ShardIteratorType": "TRIM_HORIZON"}\n')]}),
    "a restart starts at the newest record": ({"L02-07"}, {CONSUMER: [
        ('start = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": checkpoint}',
         'start = {"ShardIteratorType": "LATEST"}')]}),
    # issue 12, found case: loses the batch whose write fails after its checkpoint was saved
    "checkpoint before the write": ({"L02-07"}, {CONSUMER: [
        ('            write_batch(shard_id, records)\n            save_checkpoint(shard_id, records[-1]["SequenceNumber"])',
         '            save_checkpoint(shard_id, records[-1]["SequenceNumber"])\n            write_batch(shard_id, records)')]}),
    # issue 12, found case: a batch read again after a crash lands under a new name next to its first copy
    "raw objects named with uuid4": ({"L02-07"}, {CONSUMER: [
        ("import os\n", "import os\nimport uuid\n"),
        ('Key=f"events/dt={day}/{shard_id}-{first}.jsonl"', 'Key=f"events/dt={day}/{uuid.uuid4()}.jsonl"')]}),
    "quarantine objects named with uuid4": ({"L02-07"}, {CONSUMER: [
        ("import os\n", "import os\nimport uuid\n"),
        ('Key=f"events/{shard_id}-{first}.jsonl"', 'Key=f"events/{uuid.uuid4()}.jsonl"')]}),
    "a failed write is logged and checkpointed anyway": ({"L02-07"}, {CONSUMER: [
        ("            write_batch(shard_id, records)\n",
         "            try:\n                write_batch(shard_id, records)\n"
         "            except Exception as error:\n                print(f\"write failed, skipping: {error}\")\n")]}),
}

# Other correct ways to write it: full marks.
VARIANTS = {
    "checkpoint with update_item": {CONSUMER: [
        ('dynamodb.put_item(TableName=CHECKPOINTS, Item={"shard_id": {"S": shard_id}, "sequence_number": {"S": sequence_number}})',
         'dynamodb.update_item(TableName=CHECKPOINTS, Key={"shard_id": {"S": shard_id}}, '
         'UpdateExpression="SET sequence_number = :s", ExpressionAttributeValues={":s": {"S": sequence_number}})')]},
    "objects named after the batch's last sequence number, smaller batches": {CONSUMER: [
        ('    first = records[0]["SequenceNumber"]\n', '    first = records[-1]["SequenceNumber"]\n'),
        ("BATCH = 500\n", "BATCH = 100\n")]},
    "partition key is a hash of the record": {PRODUCER: [
        ("    return event_id_of(line)\n", "    return hashlib.md5(line.encode()).hexdigest()\n")]},
}


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_its_checks_and_only_them(aws_env, small_lab02, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(small_lab02, aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, small_lab02, tmp_path, name):
    prove_variant(small_lab02, aws_env, tmp_path, VARIANTS[name])
