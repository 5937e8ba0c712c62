"""Deterministic replay and waits in lab time (issue 11): what moto draws at random comes back identical after a
restart, and a long poll waits in real time without blocking other requests or the replay.

Each test restarts a real stack with the same Settings. `restart` stops it and, for the "replay" variant,
removes the snapshot the stop wrote, so the next start rebuilds moto by replaying every journaled request (the
path where upload ids and key material used to come back different).
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from dealab.stack import control
from tests.conftest import client, kill_hard
from tests.test_lifecycle_engine import admin, advance

PART = b"p" * (5 * 1024 * 1024)  # every part but the last must be at least 5 MiB
RESTARTS = ("replay", "snapshot")


def bounded_client(settings, service: str, config: Config):
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id="test", aws_secret_access_key="test", config=config)


def restart(settings, how: str) -> None:
    """`snapshot`: a clean stop (which snapshots) and start; `replay`: the same, replaying the whole journal;
    `crash`: kill -9, so the start loads the last snapshot taken while running and replays the journal after it."""
    if how == "crash":
        kill_hard(settings)
        control.up(settings)
        return
    control.down(settings)
    if how == "replay":
        for snapshot in Path(settings.state_dir).rglob("snapshot.bin"):
            snapshot.unlink()
    control.up(settings)


@pytest.fixture
def settings(private_stack):
    return private_stack


@pytest.mark.parametrize("how", RESTARTS)
def test_multipart_uploads_survive_a_restart(settings, how):
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket="uploads")
    open_upload = s3.create_multipart_upload(Bucket="uploads", Key="open.bin")["UploadId"]
    first = s3.upload_part(Bucket="uploads", Key="open.bin", UploadId=open_upload, PartNumber=1, Body=PART)
    done_upload = s3.create_multipart_upload(Bucket="uploads", Key="done.bin")["UploadId"]
    part = s3.upload_part(Bucket="uploads", Key="done.bin", UploadId=done_upload, PartNumber=1, Body=b"done")
    s3.complete_multipart_upload(Bucket="uploads", Key="done.bin", UploadId=done_upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})

    restart(settings, how)

    s3 = client(settings, "s3")
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="uploads").get("Uploads", [])] == [open_upload]
    second = s3.upload_part(Bucket="uploads", Key="open.bin", UploadId=open_upload, PartNumber=2, Body=b"tail")
    s3.complete_multipart_upload(Bucket="uploads", Key="open.bin", UploadId=open_upload, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
    assert s3.get_object(Bucket="uploads", Key="open.bin")["Body"].read() == PART + b"tail"
    assert s3.get_object(Bucket="uploads", Key="done.bin")["Body"].read() == b"done"


@pytest.mark.parametrize("how", RESTARTS)
def test_kms_ciphertexts_and_signatures_survive_a_restart(settings, how):
    kms = client(settings, "kms")
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=symmetric, Plaintext=b"secret", EncryptionContext={"lab": "11"})["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=symmetric, KeySpec="AES_256")
    rsa_sealed = kms.encrypt(KeyId=rsa, Plaintext=b"for rsa", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    rsa_public = kms.get_public_key(KeyId=rsa)["PublicKey"]
    signature = kms.sign(KeyId=signing, Message=b"signed", SigningAlgorithm="ECDSA_SHA_256")["Signature"]

    restart(settings, how)

    kms = client(settings, "kms")
    assert kms.decrypt(CiphertextBlob=sealed, EncryptionContext={"lab": "11"})["Plaintext"] == b"secret"
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    assert kms.decrypt(KeyId=rsa, CiphertextBlob=rsa_sealed, EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"for rsa"
    assert kms.get_public_key(KeyId=rsa)["PublicKey"] == rsa_public
    assert kms.verify(KeyId=signing, Message=b"signed", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]


def test_long_poll_after_a_clock_move_waits_in_real_time_and_lets_a_sender_in(settings):
    # a poll that never ended (the brick case) fails on the read timeout instead of hanging the suite
    bounded = Config(read_timeout=30, retries={"max_attempts": 1})
    sqs = bounded_client(settings, "sqs", bounded)
    queue = sqs.create_queue(QueueName="polled")["QueueUrl"]
    advance(settings, "1d")

    empty = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
    assert empty.get("Messages", []) == []

    received: dict = {}
    polling_client, sending_client = bounded_client(settings, "sqs", bounded), bounded_client(settings, "sqs", bounded)

    def poll() -> None:
        received.update(polling_client.receive_message(QueueUrl=queue, WaitTimeSeconds=20, VisibilityTimeout=3600))

    poller = threading.Thread(target=poll)
    poller.start()
    threading.Event().wait(2.0)  # lets the poll start waiting (a send before it would be received at once)
    # a snapshot taken while the poll waits covers the requests numbered before it; the poll, which ends after
    # the send, must be journaled after the snapshot and the send, or a restart from the snapshot drops it
    admin(settings, "snapshot", {})
    sending_client.send_message(QueueUrl=queue, MessageBody="arrived while polling")
    poller.join(60)
    # when the poll held the backend lock, the send waited for the poll to end, which ended empty
    assert [m["Body"] for m in received.get("Messages", [])] == ["arrived while polling"]

    for how in ("crash", "snapshot", "replay"):  # replay: every journaled poll replays, without waiting
        restart(settings, how)
        sqs = bounded_client(settings, "sqs", bounded)
        assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []) == []  # still in flight
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        counts = (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"])
        assert counts == ("0", "1"), how


def test_uploads_aborted_by_lifecycle_stay_gone_after_a_restart(settings):
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket="abandoned")
    s3.put_bucket_lifecycle_configuration(Bucket="abandoned", LifecycleConfiguration={"Rules": [
        {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    stale = s3.create_multipart_upload(Bucket="abandoned", Key="stale.bin")["UploadId"]
    s3.upload_part(Bucket="abandoned", Key="stale.bin", UploadId=stale, PartNumber=1, Body=b"x")
    advance(settings, "3d")
    assert s3.list_multipart_uploads(Bucket="abandoned").get("Uploads", []) == []

    restart(settings, "replay")

    assert client(settings, "s3").list_multipart_uploads(Bucket="abandoned").get("Uploads", []) == []
    assert admin(settings, "clock")["offset_days"] > 2


def test_a_base64_tape_value_is_what_was_drawn():
    """The tape's byte encoding round-trips what os.urandom drew (upload ids are made from it)."""
    from dealab.stack import motohooks

    urandom = motohooks.taped_urandom("test.bytes")
    with motohooks.recording() as tape:
        drawn = urandom(32)
    assert tape == [("test.bytes", base64.b64encode(drawn).decode("ascii"))]
    with motohooks.replaying(tape):
        assert urandom(32) == drawn
        assert urandom(32) != drawn  # the tape is used up: a further draw is fresh
