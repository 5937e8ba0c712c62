"""Events no S3 request carries: a lifecycle transition raises s3:LifecycleTransition and EventBridge's "Object
Storage Class Changed"; RestoreObject raises s3:ObjectRestore:Post, and the restore's end on the lab clock
s3:ObjectRestore:Completed and "Object Restore Completed", each in AWS's shape and at its lab moment."""

from __future__ import annotations

import datetime
import json

from dealab.engines.clock.overlay import Overlay
from tests.conftest import client
from tests.test_lifecycle_engine import advance
from tests.test_s3_notifications import _bucket, _drain, _queue, _records


def _parse(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_pending_restore_completion_is_kept_until_announced(tmp_path):
    now = datetime.datetime(2027, 1, 1, 12, tzinfo=datetime.timezone.utc)
    overlay = Overlay(tmp_path)
    record = overlay.start_restore("b", "k", "null", '"e1"', 100, "GLACIER", "Expedited", 2, now, size=7)
    overlay.save()
    (entry, pending), = Overlay(tmp_path).pending_completions()  # what a restarted engine arms again
    assert entry == ("b", "k", "null") and pending["size"] == 7 and pending["class"] == "GLACIER"
    assert _parse(pending["ready"]) == now + datetime.timedelta(minutes=5)
    assert overlay.complete_restore("b", "k", "null", "another restore's moment") is None
    assert overlay.complete_restore("b", "k", "null", record["ready"])["etag"] == "e1"
    assert overlay.complete_restore("b", "k", "null", record["ready"]) is None  # announced once
    overlay.save()
    assert Overlay(tmp_path).pending_completions() == []


def test_transition_and_restore_raise_notifications_and_eventbridge_events(aws_env):
    s3, events = client(aws_env, "s3"), client(aws_env, "events")
    url, arn = _queue(aws_env)
    bus_url, bus_arn = _queue(aws_env)
    bucket = _bucket(aws_env)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "moved", "QueueArn": arn, "Events": ["s3:LifecycleTransition"]},
                                {"Id": "restores", "QueueArn": arn, "Events": ["s3:ObjectRestore:*"]}],
        "EventBridgeConfiguration": {}})
    _drain(aws_env, url, 1)  # the test event
    rule = f"archive-{bucket}"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}},
                                                        "detail-type": ["Object Storage Class Changed", "Object Restore Completed"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": bus_arn}])
    # objects under 128 KiB move to GLACIER only with this setting (AWS's default since 2024 keeps them)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, TransitionDefaultMinimumObjectSize="varies_by_storage_class", LifecycleConfiguration={"Rules": [
        {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "cold/"}, "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]})
    etag = s3.put_object(Bucket=bucket, Key="cold/2026 report.csv", Body=b"a,b\n1,2\n")["ETag"].strip('"')
    s3.put_object(Bucket=bucket, Key="hot/keep.csv", Body=b"1")

    advance(aws_env, "32d")
    moved, = _records(_drain(aws_env, url, 1))
    assert moved["eventName"] == "LifecycleTransition" and moved["eventVersion"] == "2.3" and moved["s3"]["configurationId"] == "moved"
    assert moved["lifecycleEventData"] == {"transitionEventData": {"destinationStorageClass": "GLACIER"}}
    assert moved["userIdentity"] == {"principalId": "s3.amazonaws.com"}
    assert moved["s3"]["object"]["key"] == "cold/2026+report.csv" and moved["s3"]["object"]["size"] == 8 and moved["s3"]["object"]["eTag"] == etag
    changed, = _drain(aws_env, bus_url, 1)
    assert changed["detail-type"] == "Object Storage Class Changed" and changed["source"] == "aws.s3"
    assert changed["detail"]["destination-storage-class"] == "GLACIER" and changed["detail"]["object"]["key"] == "cold/2026 report.csv"
    assert changed["time"] == moved["eventTime"][:19] + "Z"  # both at the transition's lab moment (a midnight)
    assert moved["eventTime"].endswith("T00:00:00.000Z")

    s3.restore_object(Bucket=bucket, Key="cold/2026 report.csv", RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Expedited"}})
    posted, = _records(_drain(aws_env, url, 1))
    assert posted["eventName"] == "ObjectRestore:Post" and posted["s3"]["configurationId"] == "restores"
    assert _drain(aws_env, bus_url, 0, timeout=1) == []  # not completed yet: Expedited takes 5 minutes of lab time
    advance(aws_env, "10m")
    completed, = _records(_drain(aws_env, url, 1))
    assert completed["eventName"] == "ObjectRestore:Completed" and completed["s3"]["object"]["size"] == 8
    restore_data = completed["glacierEventData"]["restoreEventData"]
    assert restore_data["lifecycleRestoreStorageClass"] == "GLACIER"
    ready = _parse(completed["eventTime"])
    assert abs(ready - _parse(posted["eventTime"]) - datetime.timedelta(minutes=5)) < datetime.timedelta(seconds=2)
    assert _parse(restore_data["lifecycleRestorationExpiryTime"]) > ready + datetime.timedelta(days=2)
    finished, = _drain(aws_env, bus_url, 1)
    assert finished["detail-type"] == "Object Restore Completed" and finished["detail"]["source-storage-class"] == "GLACIER"
    assert finished["detail"]["restore-expiry-time"][:10] == restore_data["lifecycleRestorationExpiryTime"][:10]
    advance(aws_env, "1h")
    assert _drain(aws_env, url, 0, timeout=1) == []  # announced once
