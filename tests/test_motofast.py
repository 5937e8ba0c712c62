"""The patches of dealab/stack/motofast.py change how fast embedded moto answers, never what it answers.

Each scenario runs twice in-process (moto's mock_aws, the same moments and random seed), once with moto's
own functions and once with the patches, and every answer (status, headers, body bytes) must be the same.
"""

from __future__ import annotations

import datetime
import gc
import itertools
import json
import re
from contextlib import contextmanager

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize as moto_serialize
from moto.core.utils import get_service_model

from dealab.stack import motofast, motohooks
from dealab.wire import labtime

START = datetime.datetime(2026, 3, 1, 8, 30, 15)
# headers that differ from call to call whatever the patches do
VOLATILE_HEADERS = {"date", "x-amz-id-2", "x-amz-request-id", "x-amzn-requestid", "last-modified"}
# and shard iterators, drawn from the operating system's randomness
VOLATILE_BODY = re.compile(rb'"(Next)?ShardIterator": "[^"]*"')


@contextmanager
def moto_functions(patched: bool):
    """moto with the patches (as the stack runs it) or with its own functions, for the duration."""
    motohooks.install()
    if not patched:
        for patch in motofast.PATCHES:
            setattr(patch.owner, patch.name, patch.original)
    try:
        yield
    finally:
        motofast.install()


def answers(scenario, patched: bool, monkeypatch=None, written_by_patches: bool = True) -> list[tuple]:
    """Every answer the scenario's calls got: (operation, status, headers, body). `written_by_patches`: the
    scenario has calls whose answers the patched serializers write (and they must, none left to moto)."""
    seen = []
    left_to_moto = []
    if patched:  # the answers written by the patches must not have been left to moto's serializers
        for name in ("_original_s3_serialize", "_original_json_serialize"):
            original = getattr(motofast, name)

            def counted(serializer, result, original=original):
                left_to_moto.append(serializer.operation_model.name)
                return original(serializer, result)

            monkeypatch.setattr(motofast, name, counted)

    def record(http_response, event_name, **_):
        headers = {k.lower(): v for k, v in http_response.headers.items() if k.lower() not in VOLATILE_HEADERS}
        body = VOLATILE_BODY.sub(rb'"\1ShardIterator": "-"', http_response.content)
        seen.append((event_name.rsplit(".", 1)[-1], http_response.status_code, headers, body))

    clock = itertools.count()

    def at(step: int | None = None):
        """A fixed moment for the next call: the scenario's n-th second, or the next one."""
        return labtime.frozen_at(START + datetime.timedelta(seconds=next(clock) if step is None else step))

    with moto_functions(patched), mock_aws(), motohooks.seeded(6):
        clients = {}

        def client(service, **options):
            if service not in clients:
                clients[service] = boto3.client(service, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t", **options)
                clients[service].meta.events.register("after-call", record)
            return clients[service]

        scenario(client, at)
    if patched and written_by_patches:
        written = {name for name, *_ in seen if name in motofast.S3_WRITTEN | motofast.JSON_BUILT}
        assert written and not written & set(left_to_moto)
    return seen


def assert_same_answers(scenario, monkeypatch, written_by_patches: bool = True):
    original = answers(scenario, patched=False)
    patched = answers(scenario, patched=True, monkeypatch=monkeypatch, written_by_patches=written_by_patches)
    assert len(patched) == len(original)
    for before, after in zip(original, patched):
        assert after[:3] == before[:3]
        assert after[3] == before[3], f"{before[0]} answered differently"
    return patched


KEYS = ["plain.txt", "a&b<c>.txt", 'quote"and\'apos', "dir/sub/x.csv", "dir/y.csv", "dir/sub2/z", "space name",
        "ünïcødé/ß", "tab\tkey", "dir/", "z" * 200]


def put_objects(s3, at, bucket, keys=KEYS, copies=1):
    for copy in range(copies):
        for index, key in enumerate(keys):
            extra = {"StorageClass": "STANDARD_IA"} if index % 4 == 1 else {}
            if index % 3 == 2:
                extra["ChecksumAlgorithm"] = "SHA256"
            with at():
                s3.put_object(Bucket=bucket, Key=key, Body=b"x" * (index + copy), **extra)


def test_list_objects_v2_answers_match(monkeypatch):
    def scenario(client, at):
        s3 = client("s3")
        with at():
            s3.create_bucket(Bucket="fast-v2")
        s3.list_objects_v2(Bucket="fast-v2")  # empty
        put_objects(s3, at, "fast-v2")
        s3.list_objects_v2(Bucket="fast-v2")
        s3.list_objects_v2(Bucket="fast-v2", FetchOwner=True, EncodingType="url")
        s3.list_objects_v2(Bucket="fast-v2", Prefix="dir/", Delimiter="/")
        s3.list_objects_v2(Bucket="fast-v2", Delimiter="/", StartAfter="b")
        s3.list_objects_v2(Bucket="fast-v2", Prefix="nothing-here")
        s3.list_objects_v2(Bucket="fast-v2", MaxKeys=0)
        token = None
        while True:
            page = s3.list_objects_v2(Bucket="fast-v2", MaxKeys=3, **({"ContinuationToken": token} if token else {}))
            if not page["IsTruncated"]:
                break
            token = page["NextContinuationToken"]

    patched = assert_same_answers(scenario, monkeypatch)
    assert any(b"a%26b%3Cc%3E.txt" in body for _, _, _, body in patched)


def test_list_objects_answers_match(monkeypatch):
    def scenario(client, at):
        s3 = client("s3")
        with at():
            s3.create_bucket(Bucket="fast-v1")
        put_objects(s3, at, "fast-v1")
        s3.list_objects(Bucket="fast-v1")
        s3.list_objects(Bucket="fast-v1", Prefix="dir/", Delimiter="/")
        s3.list_objects(Bucket="fast-v1", Delimiter="/", EncodingType="url")
        marker = ""
        while True:
            page = s3.list_objects(Bucket="fast-v1", MaxKeys=4, Marker=marker)
            if not page["IsTruncated"]:
                break
            marker = page.get("NextMarker") or page["Contents"][-1]["Key"]

    assert_same_answers(scenario, monkeypatch)


def versioned_bucket(s3, at, bucket, suspend=True):
    with at():
        s3.create_bucket(Bucket=bucket)
    with at():
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put_objects(s3, at, bucket, copies=2)
    for key in KEYS[::3]:
        with at():
            s3.delete_object(Bucket=bucket, Key=key)  # a delete marker on top
    with at(0):  # two versions in the same second
        s3.put_object(Bucket=bucket, Key="same-second", Body=b"1")
        s3.put_object(Bucket=bucket, Key="same-second", Body=b"2")
    if suspend:  # a null version among the others (moto cannot delete objects in a suspended bucket)
        with at():
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
        with at():
            s3.put_object(Bucket=bucket, Key="dir/y.csv", Body=b"null version")


def test_list_object_versions_answers_match(monkeypatch):
    def scenario(client, at):
        s3 = client("s3")
        versioned_bucket(s3, at, "fast-versions")
        s3.list_object_versions(Bucket="fast-versions")
        s3.list_object_versions(Bucket="fast-versions", Prefix="dir/")
        s3.list_object_versions(Bucket="fast-versions", Prefix="dir/", Delimiter="/")
        s3.list_object_versions(Bucket="fast-versions", Delimiter="/", MaxKeys=2)
        s3.list_object_versions(Bucket="fast-versions", KeyMarker="dir/")
        markers = {}
        while True:
            page = s3.list_object_versions(Bucket="fast-versions", MaxKeys=3, **markers)
            if not page["IsTruncated"]:
                break
            markers = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page.get("NextVersionIdMarker", "")}

    patched = assert_same_answers(scenario, monkeypatch)
    assert any(b"<DeleteMarker>" in body for _, _, _, body in patched)


def test_delete_objects_answers_match(monkeypatch):
    def scenario(client, at):
        s3 = client("s3")
        with at():
            s3.create_bucket(Bucket="fast-delete")
        put_objects(s3, at, "fast-delete")
        for quiet in (False, True):
            with at():
                s3.delete_objects(Bucket="fast-delete", Delete={"Objects": [{"Key": k} for k in KEYS[quiet::2]] + [{"Key": "missing"}],
                                                                "Quiet": quiet})
        s3.list_objects_v2(Bucket="fast-delete")
        versioned_bucket(s3, at, "fast-delete-versions", suspend=False)
        listing = s3.list_object_versions(Bucket="fast-delete-versions")
        with at():  # delete markers for current versions
            s3.delete_objects(Bucket="fast-delete-versions", Delete={"Objects": [{"Key": k} for k in KEYS[1::2]]})
        chosen = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listing["Versions"][::2] + listing["DeleteMarkers"]]
        with at():  # noncurrent versions and delete markers, by version id
            s3.delete_objects(Bucket="fast-delete-versions", Delete={"Objects": chosen + [{"Key": "gone", "VersionId": "nope"}], "Quiet": True})
        s3.list_object_versions(Bucket="fast-delete-versions")

    assert_same_answers(scenario, monkeypatch)


def test_batch_write_deletes_and_their_stream_records_match(monkeypatch):
    def scenario(client, at):
        ddb = client("dynamodb")
        with at():
            ddb.create_table(
                TableName="fast-ttl", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
                BillingMode="PAY_PER_REQUEST", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
        for index in range(60):
            item = {"pk": {"S": f"user-{index % 7}"}, "sk": {"N": str(index)}, "expires_at": {"N": str(1800000000 + index)},
                    "blob": {"B": bytes([index])}, "tags": {"SS": ["a", f"t{index}"]}, "nested": {"M": {"l": {"L": [{"N": "1.50"}, {"NULL": True}]}}},
                    "flag": {"BOOL": index % 2 == 0}}
            with at():
                ddb.put_item(TableName="fast-ttl", Item=item)
        ddb.scan(TableName="fast-ttl")
        ddb.query(TableName="fast-ttl", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "user-3"}})
        ddb.scan(TableName="fast-ttl", ProjectionExpression="#k0, #k1, #ttl",
                 ExpressionAttributeNames={"#k0": "pk", "#k1": "sk", "#ttl": "expires_at"}, Limit=25)
        for start in range(0, 60, 25):
            with at():
                ddb.batch_write_item(RequestItems={"fast-ttl": [
                    {"DeleteRequest": {"Key": {"pk": {"S": f"user-{i % 7}"}, "sk": {"N": str(i)}}}} for i in range(start, min(start + 25, 60))
                ]})
        # (named: botocore would otherwise aim at an endpoint of the stream's account, which mock_aws does not serve)
        streams = client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
        arn = ddb.describe_table(TableName="fast-ttl")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        streams.get_records(ShardIterator=iterator, Limit=1000)

    patched = assert_same_answers(scenario, monkeypatch)
    assert any(b'"REMOVE"' in body for _, _, _, body in patched)


def test_expired_messages_are_deleted_and_hide_nothing(monkeypatch):
    """A message older than the queue's MessageRetentionPeriod (lab time) is gone, as SQS deletes it, and the
    messages sent after it are received: moto's receive stopped at the first expired message it met, marking it
    received, so one stale message hid every later one from every receive."""

    def scenario(client, at):
        sqs = client("sqs")
        with at(0):
            url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody="stale")
        with at(90):
            sqs.send_message(QueueUrl=url, MessageBody="fresh")
        with at(100):
            assert [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]] == ["fresh"]
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
            assert counts["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}

    answers(scenario, patched=True, monkeypatch=monkeypatch, written_by_patches=False)


def test_sqs_receives_answer_as_moto_does(monkeypatch):
    """Receives that hand out messages, redrive to a dead-letter queue, wait for visibility timeouts, and keep a
    FIFO group back while it is in flight. (Expired messages are where the patches differ from moto on purpose:
    test_expired_messages_are_deleted_and_hide_nothing.)"""

    def scenario(client, at):
        sqs = client("sqs")

        def send(url, step, label, **extra):
            with at(step):
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(n), "MessageBody": f"{label} {n}", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": str(n)}}, **extra}
                    for n in range(10)])

        def receive(url, step, **options):
            with at(step):
                return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"],
                                           **options).get("Messages", [])

        with at(0):
            dead = sqs.create_queue(QueueName="fast-dead")["QueueUrl"]
            dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            url = sqs.create_queue(QueueName="fast", Attributes={
                "MessageRetentionPeriod": "60", "VisibilityTimeout": "5",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"})})["QueueUrl"]
            fifo = sqs.create_queue(QueueName="fast.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        send(url, 3, "early")
        send(url, 40, "late")
        receive(url, 42)  # the early ten, visible again at 47
        receive(url, 48, VisibilityTimeout=1)  # the early ten again: received twice now
        late = receive(url, 50)  # the early ten go to the dead-letter queue; the late ten come
        with at(51):
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(late)])
        receive(dead, 52)
        for group in ("a", "b"):
            send(fifo, 54, group, MessageGroupId=group)
        first = receive(fifo, 55)  # group a
        receive(fifo, 56)  # group b: a is in flight
        receive(fifo, 57)  # nothing: both are
        with at(58):
            sqs.delete_message_batch(QueueUrl=fifo, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(first)])
        send(fifo, 59, "a again", MessageGroupId="a")
        receive(fifo, 60)
        with at(121):
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        send(dead, 122, "delayed", DelaySeconds=30)
        held = receive(dead, 123, VisibilityTimeout=2)  # the ten redriven ones; the delayed ten wait
        with at(124):
            sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
                                                                    "ApproximateNumberOfMessagesNotVisible", "Policy", "VisibilityTimeout",
                                                                    "ApproximateNumberOfMessages"])
            sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["FifoQueue", "ContentBasedDeduplication", "KmsMasterKeyId"])
            with pytest.raises(sqs.exceptions.ClientError):
                sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["Nonsense"])
        again = receive(dead, 126)  # the ten again, with new handles
        with at(127):  # an old handle deletes too; then deleting it again passes; a handle never given fails
            sqs.delete_message_batch(QueueUrl=dead, Entries=[{"Id": "old", "ReceiptHandle": held[0]["ReceiptHandle"]},
                                                             {"Id": "new", "ReceiptHandle": again[1]["ReceiptHandle"]},
                                                             {"Id": "never", "ReceiptHandle": "x" * 185}])
            sqs.delete_message_batch(QueueUrl=dead, Entries=[{"Id": "twice", "ReceiptHandle": again[0]["ReceiptHandle"]}])
            sqs.delete_message(QueueUrl=dead, ReceiptHandle=again[2]["ReceiptHandle"])
        for step in (128, 160):  # before and after the delay
            with at(step):
                sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["All"])

    patched = assert_same_answers(scenario, monkeypatch, written_by_patches=False)
    received = [json.loads(body).get("Messages", []) for operation, _, _, body in patched if operation == "ReceiveMessage"]
    assert [len(messages) for messages in received] == [10, 10, 10, 10, 10, 10, 0, 10, 10, 10]


def _structures(shape, seen):
    if shape is None or shape.name in seen:  # by name: recursive shapes resolve to new objects at each level
        return
    seen.add(shape.name)
    if shape.type_name == "structure":
        yield shape
        for member in shape.members.values():
            yield from _structures(member, seen)
    elif shape.type_name == "list":
        yield from _structures(shape.member, seen)
    elif shape.type_name == "map":
        yield from _structures(shape.value, seen)


@pytest.mark.parametrize("service", ["s3", "dynamodb", "dynamodbstreams", "sqs", "kinesis"])
def test_a_plain_dicts_members_are_picked_as_moto_picks_them(service):
    """For every member of every answer shape: a dict holding the member under any of the names moto might
    look for (or none, or a None) gives the patched get_value the value moto's own picker gives."""
    model = get_service_model(service)
    checked = 0
    for operation in model.operation_names:
        operation_model = model.operation_model(operation)
        serializer = moto_serialize.get_serializer_class(service, model.protocol)(
            operation_model, value_picker=moto_serialize.XFormedAttributePicker())
        for structure in _structures(operation_model.output_shape, set()):
            for key, member in structure.members.items():
                member.parent = structure
                names = motofast._candidate_keys(serializer._value_picker, key, member) or [key]
                values = [{}, {key: None}, {"unrelated": 1}] + [{name: f"via {name}"} for name in names]
                values.append({name: f"via {name}" for name in reversed(names)})
                for value in values:
                    assert motofast.get_value(serializer, value, key, member) == motofast._original_get_value(serializer, value, key, member)
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("value", [
    "2026-11-29T15:51:14.000Z", "2026-11-29T15:51:14Z", "2026-11-29T15:51:14.5Z", "2026-11-29T15:51:14.123456Z",
    "1999-01-01T00:00:00.000Z", "1000-01-01T00:00:00.000001Z", "2026-11-29T15:51:14.000+00:00", "2026-11-29 15:51:14", "1700000000", "0099-01-01T00:00:00Z",
    datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    1700000000.25,
])
@pytest.mark.parametrize("timestamp_format", ["iso8601", "iso8601_zeroed", "rfc822", "unixtimestamp"])
def test_timestamps_are_written_as_moto_writes_them(value, timestamp_format):
    stamps = moto_serialize.TimestampSerializer("iso8601")
    assert motofast.convert_timestamp_to_str(stamps, value, timestamp_format) == \
        motofast._original_convert_timestamp(stamps, value, timestamp_format)


def test_an_impossible_date_fails_as_moto_fails():
    stamps = moto_serialize.TimestampSerializer("iso8601")
    with pytest.raises(ValueError) as fast:
        motofast.convert_timestamp_to_str(stamps, "2026-02-30T00:00:00.000Z", "iso8601")
    with pytest.raises(ValueError) as original:
        motofast._original_convert_timestamp(stamps, "2026-02-30T00:00:00.000Z", "iso8601")
    assert str(fast.value) == str(original.value)


def test_answers_the_writer_does_not_know_go_moto_s_way():
    """Values that are not plain dicts and lists (here an object and a generator) are moto's to serialize."""
    model = get_service_model("s3")

    class Listed:
        Key = "k"
        Size = 3

    for contents in ([Listed()], (item for item in [{"Key": "k", "Size": 3}])):
        serializer = moto_serialize.S3Serializer(model.operation_model("ListObjectsV2"), value_picker=moto_serialize.XFormedAttributePicker())
        fast = motofast.s3_serialize(serializer, {"Name": "b", "Contents": contents, "KeyCount": 1})
        serializer = moto_serialize.S3Serializer(model.operation_model("ListObjectsV2"), value_picker=moto_serialize.XFormedAttributePicker())
        contents = [Listed()] if isinstance(contents, list) else [{"Key": "k", "Size": 3}]
        original = motofast._original_s3_serialize(serializer, {"Name": "b", "Contents": contents, "KeyCount": 1})
        assert fast == original
        assert "<Key>k</Key>" in fast["body"]


def test_dynamodb_answers_the_builder_does_not_know_go_moto_s_way():
    model = get_service_model("dynamodb")

    class Attribute:
        S = "x"

    for items in ([{"pk": Attribute()}], (item for item in [{"pk": {"S": "x"}}])):
        serializer = moto_serialize.JSONSerializer(model.operation_model("Scan"), value_picker=moto_serialize.XFormedAttributePicker())
        fast = motofast.json_serialize(serializer, {"Items": items, "Count": 1})
        items = [{"pk": Attribute()}] if isinstance(items, list) else [{"pk": {"S": "x"}}]
        original = motofast._original_json_serialize(serializer, {"Items": items, "Count": 1})
        assert fast == original
        assert '"S": "x"' in fast["body"]


def test_the_clock_engines_parser_reads_s3_answers_as_botocore_does():
    from botocore.exceptions import ClientError
    from botocore.parsers import RestXMLParser

    from dealab.engines.clock.engine import _fast_timestamp, _ListingParser

    captured = []
    with moto_functions(patched=True), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        s3.meta.events.register("after-call", lambda http_response, model, **_: captured.append((http_response, model)))
        versioned_bucket(s3, lambda step=None: labtime.frozen_at(START), "fast-parse", suspend=False)
        s3.create_multipart_upload(Bucket="fast-parse", Key="upload")
        s3.put_object_tagging(Bucket="fast-parse", Key=KEYS[1], Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
        s3.list_object_versions(Bucket="fast-parse")
        s3.list_object_versions(Bucket="fast-parse", Delimiter="/", MaxKeys=2)
        s3.list_objects_v2(Bucket="fast-parse", FetchOwner=True)
        s3.list_objects(Bucket="fast-parse", Delimiter="/")
        s3.list_multipart_uploads(Bucket="fast-parse")
        s3.get_object_tagging(Bucket="fast-parse", Key=KEYS[1])
        s3.head_object(Bucket="fast-parse", Key=KEYS[1])
        s3.get_bucket_versioning(Bucket="fast-parse")
        s3.delete_objects(Bucket="fast-parse", Delete={"Objects": [{"Key": k} for k in KEYS[:4]] + [{"Key": "x", "VersionId": "nope"}]})
        with pytest.raises(ClientError):
            s3.get_object_tagging(Bucket="fast-parse", Key="missing")
    assert len(captured) > 20
    for http, model in captured:
        response = {"body": http.content, "headers": http.headers, "status_code": http.status_code,
                    "context": {"operation_name": model.name}}
        expected = RestXMLParser(timestamp_parser=_fast_timestamp).parse(response, model.output_shape)
        assert _ListingParser(timestamp_parser=_fast_timestamp).parse(response, model.output_shape) == expected


def test_reads_keep_no_copies_of_the_items_they_answer_with():
    from moto.dynamodb.models.dynamo_type import Item

    with moto_functions(patched=True), mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        ddb.create_table(TableName="fast-copies", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        for index in range(30):
            ddb.put_item(TableName="fast-copies", Item={"pk": {"S": f"k{index}"}, "n": {"N": str(index)}})
        tracked = len(Item.instances_tracked)
        assert ddb.scan(TableName="fast-copies", ProjectionExpression="pk")["Count"] == 30
        assert ddb.query(TableName="fast-copies", KeyConditionExpression="pk = :k",
                         ExpressionAttributeValues={":k": {"S": "k3"}})["Items"] == [{"pk": {"S": "k3"}, "n": {"N": "3"}}]
        assert len(Item.instances_tracked) == tracked


def test_listing_versions_leaves_the_stored_objects_whole():
    """The listing no longer copies versions; the stored ones must survive it (and garbage collection after)."""
    with moto_functions(patched=True), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        s3.create_bucket(Bucket="fast-whole")
        s3.put_bucket_versioning(Bucket="fast-whole", VersioningConfiguration={"Status": "Enabled"})
        for body in (b"one", b"two"):
            s3.put_object(Bucket="fast-whole", Key="k", Body=body)
        versions = s3.list_object_versions(Bucket="fast-whole")["Versions"]
        gc.collect()
        assert [s3.get_object(Bucket="fast-whole", Key="k", VersionId=v["VersionId"])["Body"].read() for v in versions] == [b"two", b"one"]


def test_the_clock_engine_learns_tags_set_on_the_current_version_of_a_versioned_object(clean_stack):
    """The backend's PutObjectTagging answer names no version (S3's does), so the engine asks which version is
    current instead of looking every version's tags up when the clock moves; a retagged object follows its
    new tags."""
    from tests.conftest import client
    from tests.test_lifecycle_engine import advance

    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="fast-retag")
    s3.put_bucket_versioning(Bucket="fast-retag", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="fast-retag", Key="a", Body=b"1", Tagging="stage=keep")
    s3.put_object(Bucket="fast-retag", Key="b", Body=b"2", Tagging="stage=done")
    s3.put_object_tagging(Bucket="fast-retag", Key="a", Tagging={"TagSet": [{"Key": "stage", "Value": "done"}]})
    s3.put_object_tagging(Bucket="fast-retag", Key="b", Tagging={"TagSet": [{"Key": "stage", "Value": "keep"}]})
    s3.put_bucket_lifecycle_configuration(Bucket="fast-retag", LifecycleConfiguration={"Rules": [{
        "ID": "done", "Status": "Enabled", "Filter": {"Tag": {"Key": "stage", "Value": "done"}}, "Expiration": {"Days": 1},
    }]})
    advance(clean_stack, "3d")
    markers = s3.list_object_versions(Bucket="fast-retag").get("DeleteMarkers", [])
    assert [marker["Key"] for marker in markers] == ["a"]
