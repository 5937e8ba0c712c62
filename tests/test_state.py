"""State is sacred: whatever a learner does — any request, any failure, a wait, `kill -9` — the next start
succeeds with every acknowledged write intact, from a snapshot, from the journal alone, or from both."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from dealab.stack import control
from tests.conftest import client, kill_hard
from tests.state_fingerprint import fingerprint


def signed_raw(settings, service: str, target: str, body: bytes, content_type: str = "application/x-amz-json-1.1") -> requests.Response:
    """A signed JSON-protocol request with any body at all (what a broken client might send)."""
    request = AWSRequest("POST", settings.endpoint_url + "/", data=body, headers={"X-Amz-Target": target, "Content-Type": content_type})
    SigV4Auth(Credentials("test", "test"), service, settings.region).add_auth(request)
    return requests.post(settings.endpoint_url + "/", data=body, headers=dict(request.headers), timeout=30)


def restore_report(settings) -> dict:
    return control.health(settings)["restore"]


# A random session of learner requests: valid ones, and the mistakes a learner makes ---------------------------


def fuzz(settings, seed: int, steps: int) -> list[str]:
    rng = random.Random(seed)
    s3, ddb, kinesis, sqs, kms, glue = (client(settings, name) for name in ("s3", "dynamodb", "kinesis", "sqs", "kms", "glue"))
    buckets, tables, streams, queues, keys, uploads = [], [], [], [], [], []
    happened = []

    def create_bucket():
        name = f"fuzz-{len(buckets)}-{rng.randrange(10**6)}"
        s3.create_bucket(Bucket=name)
        if rng.random() < 0.5:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        buckets.append(name)

    def put_object():
        size = rng.choice([0, 10, 5_000, 70_000, 200_000])
        s3.put_object(Bucket=rng.choice(buckets), Key=f"k/{rng.randrange(8)}.bin", Body=rng.randbytes(size), Metadata={"n": str(size)})

    def delete_object():
        s3.delete_object(Bucket=rng.choice(buckets), Key=f"k/{rng.randrange(8)}.bin")

    def copy_object():
        bucket = rng.choice(buckets)
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        if listed:
            s3.copy_object(Bucket=rng.choice(buckets), Key=f"copy/{rng.randrange(4)}", CopySource={"Bucket": bucket, "Key": listed[0]["Key"]})

    def start_upload():
        bucket = rng.choice(buckets)
        upload = s3.create_multipart_upload(Bucket=bucket, Key=f"mp/{rng.randrange(100)}")
        s3.upload_part(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1, Body=rng.randbytes(5 * 1024 * 1024))
        uploads.append((bucket, upload["Key"], upload["UploadId"]))

    def finish_upload():
        bucket, key, upload_id = uploads.pop(rng.randrange(len(uploads)))
        parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
        if rng.random() < 0.5:
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": [{"ETag": p["ETag"], "PartNumber": p["PartNumber"]} for p in parts]})
        else:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

    def create_table():
        name = f"t{len(tables)}"
        ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        tables.append(name)

    def write_items():
        table = rng.choice(tables)
        if rng.random() < 0.5:
            ddb.put_item(TableName=table, Item={"pk": {"S": str(rng.randrange(20))}, "n": {"N": str(rng.randrange(1000))}})
        else:
            ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": f"b{i}"}, "v": {"S": rng.choice("abc")}}}} for i in range(rng.randrange(1, 25))]})

    def conditional_write():
        ddb.put_item(TableName=rng.choice(tables), Item={"pk": {"S": "1"}}, ConditionExpression="attribute_not_exists(pk)")

    def create_stream():
        name = f"s{len(streams)}"
        kinesis.create_stream(StreamName=name, ShardCount=rng.choice([1, 2]))
        streams.append(name)

    def put_records():
        kinesis.put_records(StreamName=rng.choice(streams), Records=[{"Data": rng.randbytes(50), "PartitionKey": str(rng.randrange(100))} for _ in range(rng.randrange(1, 50))])

    def create_queue():
        queues.append(sqs.create_queue(QueueName=f"q{len(queues)}", Attributes={"VisibilityTimeout": "3600"})["QueueUrl"])

    def queue_traffic():
        url = rng.choice(queues)
        if rng.random() < 0.6:
            sqs.send_message(QueueUrl=url, MessageBody=str(rng.random()))
        else:
            for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=rng.choice([0, 1]), MaxNumberOfMessages=2).get("Messages", []):
                if rng.random() < 0.5:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def create_key():
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=key, Plaintext=b"secret")
        keys.append(key)

    def catalog():
        database = f"db{rng.randrange(3)}"
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except ClientError:
            pass
        glue.create_table(DatabaseName=database, TableInput={"Name": f"t{rng.randrange(10**6)}", "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}], "Location": "s3://x/"}})

    # mistakes: each must be refused and leave nothing behind that a restart would trip over
    def missing_bucket():
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"x")

    def bad_table():
        ddb.put_item(TableName="no-such-table", Item={"pk": {"S": "1"}})

    def malformed_body():
        signed_raw(settings, "dynamodb", "DynamoDB_20120810.PutItem", b"{not json")

    def unknown_operation():
        signed_raw(settings, "glue", "AWSGlue.NoSuchOperationAtAll", b"{}")

    def duplicate_stream():
        kinesis.create_stream(StreamName=streams[0] if streams else "s-missing", ShardCount=1)

    actions = [
        (create_bucket, lambda: len(buckets) < 4), (put_object, lambda: buckets), (delete_object, lambda: buckets),
        (copy_object, lambda: buckets), (start_upload, lambda: buckets and len(uploads) < 3), (finish_upload, lambda: uploads),
        (create_table, lambda: len(tables) < 3), (write_items, lambda: tables), (conditional_write, lambda: tables),
        (create_stream, lambda: len(streams) < 2), (put_records, lambda: streams),
        (create_queue, lambda: len(queues) < 2), (queue_traffic, lambda: queues),
        (create_key, lambda: len(keys) < 3), (catalog, lambda: True),
        (missing_bucket, lambda: True), (bad_table, lambda: True), (malformed_body, lambda: True),
        (unknown_operation, lambda: True), (duplicate_stream, lambda: True),
    ]
    for _ in range(steps):
        action = rng.choice([action for action, possible in actions if possible()])
        try:
            action()
            happened.append(action.__name__)
        except ClientError as error:
            happened.append(f"{action.__name__}: {error.response['Error']['Code']}")
    return happened


def test_fuzzed_session_restores_identically_from_journal_snapshot_and_full_replay(private_stack):
    happened = fuzz(private_stack, seed=11, steps=160)
    assert any(":" in step for step in happened), "the fuzz must include refused requests"
    before = fingerprint(private_stack)
    assert before["s3"] and before["dynamodb"] and before["kinesis"]

    kill_hard(private_stack)  # nothing snapshotted: the journal alone brings it back
    control.up(private_stack)
    report = restore_report(private_stack)
    assert report["snapshot_seq"] == 0 and report["replayed"] > 0 and report["skipped"] == []
    assert fingerprint(private_stack) == before

    control.down(private_stack)  # a stop snapshots: the next start loads it and replays nothing
    control.up(private_stack)
    report = restore_report(private_stack)
    assert report["snapshot_seq"] > 0 and report["replayed"] == 0
    assert fingerprint(private_stack) == before

    more = fuzz(private_stack, seed=12, steps=40)  # snapshot plus a journal tail
    assert more
    after_more = fingerprint(private_stack)
    kill_hard(private_stack)
    control.up(private_stack)
    report = restore_report(private_stack)
    assert report["snapshot_seq"] > 0 and report["replayed"] > 0 and report["skipped"] == []
    assert fingerprint(private_stack) == after_more

    control.down(private_stack)  # a snapshot another version wrote is refused, and the whole journal replays
    snapshot_path = private_stack.state_dir / "journal" / "snapshot.bin"
    header, _, payload = snapshot_path.read_bytes().partition(b"\n")
    snapshot_path.write_bytes(json.dumps(dict(json.loads(header), moto="0.0.1")).encode() + b"\n" + payload)
    control.up(private_stack)
    report = restore_report(private_stack)
    assert "another version" in report["snapshot_refused"] and report["snapshot_seq"] == 0 and report["skipped"] == []
    assert fingerprint(private_stack) == after_more


def test_refused_requests_are_not_journaled(private_stack):
    s3 = client(private_stack, "s3")
    s3.create_bucket(Bucket="only-this")
    journal = private_stack.state_dir / "journal" / "journal.jsonl"
    lines = journal.read_bytes().count(b"\n")
    with pytest.raises(ClientError):
        s3.put_object(Bucket="not-there", Key="k", Body=b"x")
    signed_raw(private_stack, "dynamodb", "DynamoDB_20120810.PutItem", b"{not json")
    signed_raw(private_stack, "glue", "AWSGlue.NoSuchOperationAtAll", b"{}")
    assert journal.read_bytes().count(b"\n") == lines


def test_every_acknowledged_write_survives_kill_9_mid_traffic(private_stack):
    s3 = client(private_stack, "s3")
    s3.create_bucket(Bucket="busy")
    acknowledged, stop = [], threading.Event()

    def writer(prefix: str):
        writer_s3 = client(private_stack, "s3")
        number = 0
        while not stop.is_set():
            key = f"{prefix}/{number}"
            try:
                writer_s3.put_object(Bucket="busy", Key=key, Body=key.encode() * 100)
            except Exception:  # the stack died under this request: it was never acknowledged
                return
            acknowledged.append(key)
            number += 1

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 150:
        time.sleep(0.05)
    kill_hard(private_stack)
    stop.set()
    for thread in threads:
        thread.join(30)
    control.up(private_stack)
    stored = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="busy") for item in page.get("Contents", [])}
    assert set(acknowledged) <= stored
    assert s3.get_object(Bucket="busy", Key=acknowledged[-1])["Body"].read() == acknowledged[-1].encode() * 100


def test_damaged_and_torn_journal_lines_never_stop_a_start_and_repair_sets_them_aside(private_stack):
    s3 = client(private_stack, "s3")
    s3.create_bucket(Bucket="kept-bucket")
    for number in range(5):
        s3.put_object(Bucket="kept-bucket", Key=f"k{number}", Body=b"v")
    kill_hard(private_stack)
    journal = private_stack.state_dir / "journal" / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = b'{"seq": 3, "time": "garbage\n'  # the third request (k1) damaged on disk
    journal.write_bytes(b"".join(lines) + b'{"seq": 99, "ti')  # and a write torn by the crash

    control.up(private_stack)
    report = restore_report(private_stack)
    assert report["damaged_lines"] == 2 and report["skipped"] == []
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="kept-bucket")["Contents"]}
    assert keys == {"k0", "k2", "k3", "k4"}  # only the damaged line's request is missing; everything after it is there

    control.down(private_stack)
    control.down(private_stack)
    from typer.testing import CliRunner

    from dealab.cli import app

    env = {"DEALAB_HOME": str(private_stack.state_dir), "DEALAB_PORT": str(private_stack.port)}
    result = CliRunner().invoke(app, ["repair"], env=env)
    assert result.exit_code == 0, result.output
    control.up(private_stack)
    assert {item["Key"] for item in s3.list_objects_v2(Bucket="kept-bucket")["Contents"]} == keys


def test_a_saved_request_that_no_longer_applies_is_skipped_and_reported(private_stack):
    s3 = client(private_stack, "s3")
    s3.create_bucket(Bucket="gone")
    s3.put_object(Bucket="gone", Key="k", Body=b"v")
    s3.delete_object(Bucket="gone", Key="k")
    s3.delete_bucket(Bucket="gone")
    s3.create_bucket(Bucket="kept")
    kill_hard(private_stack)
    journal = private_stack.state_dir / "journal" / "journal.jsonl"
    put = [json.loads(line) for line in journal.read_bytes().splitlines()][1]
    stray = dict(put, seq=put["seq"] + 100)  # a PutObject into the bucket deleted before it: it cannot apply
    journal.write_bytes(journal.read_bytes() + json.dumps(stray).encode() + b"\n")

    control.up(private_stack)
    report = restore_report(private_stack)
    assert [skipped["seq"] for skipped in report["skipped"]] == [stray["seq"]]
    assert "NoSuchBucket" in report["skipped"][0]["reason"]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["kept"]
    s3.create_bucket(Bucket="later")  # sequence numbers go on after the highest one seen
    control.down(private_stack)
    control.up(private_stack)
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["kept", "later"]


def test_reset_works_with_the_stack_down_even_when_its_state_cannot_be_read(private_stack):
    client(private_stack, "s3").create_bucket(Bucket="doomed")
    control.down(private_stack)
    (private_stack.state_dir / "journal" / "snapshot.bin").write_bytes(b"\x00garbage")
    control.reset(private_stack)
    assert not (private_stack.state_dir / "journal").exists()
    control.up(private_stack)
    assert client(private_stack, "s3").list_buckets()["Buckets"] == []


def test_damaged_snapshot_falls_back_to_the_journal(private_stack):
    s3 = client(private_stack, "s3")
    s3.create_bucket(Bucket="from-journal")
    control.down(private_stack)
    snapshot_path = private_stack.state_dir / "journal" / "snapshot.bin"
    header = snapshot_path.read_bytes().partition(b"\n")[0]
    snapshot_path.write_bytes(header + b"\nnot a pickle")
    control.up(private_stack)
    assert "cannot be read" in restore_report(private_stack)["snapshot_refused"]
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["from-journal"]


def test_snapshot_on_demand_rotates_the_journal_and_is_loaded_after_kill_9(private_stack):
    kinesis = client(private_stack, "kinesis")
    kinesis.create_stream(StreamName="volume", ShardCount=1)
    for _ in range(40):
        kinesis.put_records(StreamName="volume", Records=[{"Data": b"x" * 20, "PartitionKey": str(n)} for n in range(500)])
    from dealab.commands import admin

    os.environ["DEALAB_HOME"], os.environ["DEALAB_PORT"] = str(private_stack.state_dir), str(private_stack.port)
    try:
        document = admin.request("snapshot", {})
    finally:
        del os.environ["DEALAB_HOME"], os.environ["DEALAB_PORT"]
    assert document["seq"] >= 41 and document["bytes"] > 0
    assert list((private_stack.state_dir / "journal" / "segments").iterdir())
    kill_hard(private_stack)
    control.up(private_stack)
    report = restore_report(private_stack)
    # the snapshot is loaded; only what the stack wrote after it (an engine's metrics flush) is replayed
    assert report["snapshot_seq"] == document["seq"] and report["replayed"] <= 3 and report["skipped"] == [], report
    shard = kinesis.list_shards(StreamName="volume")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="volume", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert len(kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]) == 10_000


def test_a_stop_snapshots_the_pipeline_services_and_the_next_start_loads_it(private_stack):
    """Every service the pipeline engines keep in the backend (Lambda, Step Functions, EventBridge, SNS, SQS,
    event source mappings, CloudWatch, Logs, Glue workflows) goes into the snapshot a stop takes; a service
    whose models cannot be pickled would send every later start back to a full replay."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def handler(event, context):\n    return {'seen': event}\n")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
    role = client(private_stack, "iam").create_role(RoleName="pipeline", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    lam, sqs, sns, events, sfn = (client(private_stack, name) for name in ("lambda", "sqs", "sns", "events", "stepfunctions"))
    lam.create_function(FunctionName="snap-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": archive.getvalue()})
    lam.publish_version(FunctionName="snap-fn")
    lam.create_alias(FunctionName="snap-fn", Name="live", FunctionVersion="1")
    queue = sqs.create_queue(QueueName="snap-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    reads = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": queue_arn,
                                                     "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}]}
    client(private_stack, "iam").put_role_policy(RoleName="pipeline", PolicyName="reads", PolicyDocument=json.dumps(reads))  # the mapping polls as the role
    lam.create_event_source_mapping(FunctionName="snap-fn", EventSourceArn=queue_arn, BatchSize=5, Enabled=False)
    topic = sns.create_topic(Name="snap-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name="snap-rule", EventPattern='{"source": ["dealab.test"]}')
    events.put_targets(Rule="snap-rule", Targets=[{"Id": "q", "Arn": queue_arn}])
    sfn.create_state_machine(name="snap-machine", roleArn=role,
                             definition='{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}')
    client(private_stack, "cloudwatch").put_metric_alarm(
        AlarmName="snap-alarm", Namespace="Dealab/Test", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    client(private_stack, "logs").create_log_group(logGroupName="/snap/group")
    client(private_stack, "glue").create_workflow(Name="snap-flow")
    answer = lam.invoke(FunctionName="snap-fn", Qualifier="live", Payload=b'{"n": 1}')
    assert json.loads(answer["Payload"].read()) == {"seen": {"n": 1}}

    control.down(private_stack)
    control.up(private_stack)
    report = restore_report(private_stack)
    assert report["snapshot_seq"] > 0 and report["replayed"] == 0, report
    assert json.loads(lam.invoke(FunctionName="snap-fn", Qualifier="live", Payload=b'{"n": 2}')["Payload"].read()) == {"seen": {"n": 2}}
    assert lam.get_alias(FunctionName="snap-fn", Name="live")["FunctionVersion"] == "1"
    assert [rule["Name"] for rule in events.list_rules()["Rules"]] == ["snap-rule"]
    assert sfn.list_state_machines()["stateMachines"][0]["name"] == "snap-machine"
