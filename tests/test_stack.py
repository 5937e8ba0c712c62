"""The stack process: up/down/status, learner state surviving restarts, reset, and clear answers to bad input."""

import socket

import pytest

from dealab.stack import control
from tests.conftest import client, make_settings


@pytest.fixture
def unstarted_stack(tmp_path):
    settings = make_settings(tmp_path / "state")
    yield settings
    control.down(settings)


def test_up_is_idempotent_and_down_stops(unstarted_stack):
    first = control.up(unstarted_stack)
    again = control.up(unstarted_stack)
    assert again["pid"] == first["pid"]
    assert control.health(unstarted_stack)["backend"] == "embedded moto"
    assert control.down(unstarted_stack) is True
    assert control.health(unstarted_stack) is None
    assert control.down(unstarted_stack) is False


def test_learner_state_survives_a_restart_with_identical_ids_and_dates(unstarted_stack):
    control.up(unstarted_stack)
    s3, kms, ddb = (client(unstarted_stack, name) for name in ("s3", "kms", "dynamodb"))
    s3.create_bucket(Bucket="survivor")
    s3.put_bucket_versioning(Bucket="survivor", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="survivor", Key="a/b.csv", Body=b"x" * 100_000)["VersionId"]
    s3.put_object(Bucket="survivor", Key="a/b.csv", Body=b"second")
    modified = s3.head_object(Bucket="survivor", Key="a/b.csv", VersionId=version)["LastModified"]
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/survivor", TargetKeyId=key_id)
    ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName="t", Item={"pk": {"S": "1"}, "v": {"N": "7"}})

    control.down(unstarted_stack)
    document = control.up(unstarted_stack)

    assert document["restore"]["snapshot_seq"] >= 7 and not document["restore"]["skipped"]
    old = s3.get_object(Bucket="survivor", Key="a/b.csv", VersionId=version)
    assert old["Body"].read() == b"x" * 100_000 and old["LastModified"] == modified
    assert s3.get_object(Bucket="survivor", Key="a/b.csv")["Body"].read() == b"second"
    assert kms.describe_key(KeyId="alias/survivor")["KeyMetadata"]["KeyId"] == key_id
    assert ddb.get_item(TableName="t", Key={"pk": {"S": "1"}})["Item"]["v"] == {"N": "7"}


def test_reset_empties_everything_and_stays_empty_after_restart(unstarted_stack):
    control.up(unstarted_stack)
    client(unstarted_stack, "s3").create_bucket(Bucket="doomed")
    control.reset(unstarted_stack)
    assert client(unstarted_stack, "s3").list_buckets()["Buckets"] == []
    control.down(unstarted_stack)
    control.up(unstarted_stack)
    assert client(unstarted_stack, "s3").list_buckets()["Buckets"] == []


def test_port_taken_is_one_line_with_the_way_out(unstarted_stack):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", unstarted_stack.port))
        squatter.listen()
        with pytest.raises(control.StackError) as raised:
            control.up(unstarted_stack)
    message = str(raised.value)
    assert f"port {unstarted_stack.port}" in message and "DEALAB_PORT=" in message and "\n" not in message


def test_stale_pid_file_is_cleared(unstarted_stack):
    unstarted_stack.state_dir.mkdir(parents=True, exist_ok=True)
    control.pid_file(unstarted_stack).write_text("999999")
    assert control.up(unstarted_stack)["pid"] != 999999
