"""Engines that cache what the backend holds (an event bus's rules, a bucket's notification configuration) read
it outside their lock. A change that lands while such a read is under way must win: the read began before
the change, so caching its answer would hide the change for good (a rule whose new target never receives an
event). These tests hold a read open, make the change, and look at what the engine uses next."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from dealab.engines.events.engine import EventsEngine
from dealab.engines.iam.engine import IamEngine
from dealab.engines.s3notify.engine import S3NotifyEngine
from dealab.wire.engine import EngineContext
from dealab.wire.readcache import ReadCache

READ_STARTED_TIMEOUT = 10


class HeldRead:
    """A backend read that, once begun, waits until the test has made its change."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.started.set()
        assert self.release.wait(READ_STARTED_TIMEOUT)

    def race(self, read, change) -> None:
        """Runs `read` on a thread, `change` while the read is held, then lets the read finish."""
        reader = threading.Thread(target=read)
        reader.start()
        assert self.started.wait(READ_STARTED_TIMEOUT)
        change()
        self.release.set()
        reader.join(READ_STARTED_TIMEOUT)


class FakeEvents:
    """An events backend with one rule whose targets the test changes."""

    def __init__(self, held: HeldRead):
        self.targets: list[dict] = []
        self.held = held

    def list_event_buses(self, **_):
        raise ConnectionError("no gateway in this test")  # keeps the engine's start-up thread waiting

    def get_paginator(self, operation: str):
        fake = self

        class Pages:
            def paginate(self, **_):
                if operation == "list_rules":
                    yield {"Rules": [{"Name": "landing", "Arn": "arn:aws:events:us-east-1:123456789012:rule/landing"}]}
                    return
                targets = list(fake.targets)
                if not fake.held.release.is_set():
                    fake.held.hold()
                yield {"Targets": targets}
        return Pages()


def test_a_rule_listing_that_raced_put_targets_is_not_kept(tmp_path, monkeypatch):
    held = HeldRead()
    backend = FakeEvents(held)
    monkeypatch.setattr(EventsEngine, "own_client", lambda self, service, region=None: backend)
    engine = EventsEngine(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))
    try:
        def put_targets():  # what the engine does once the backend took a PutTargets
            backend.targets = [{"Id": "validator", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:validate"}]
            engine._rules.forget_all()

        held.race(lambda: engine._rules_of("us-east-1", "default"), put_targets)
        [rule] = engine._rules_of("us-east-1", "default")
        assert [target["Id"] for target in rule["Targets"]] == ["validator"]
    finally:
        engine.close()


class FakeS3:
    def __init__(self, held: HeldRead):
        self.configuration: dict = {}
        self.held = held

    def get_bucket_notification_configuration(self, Bucket):
        answer = dict(self.configuration)
        if not self.held.release.is_set():
            self.held.hold()
        return answer


def test_a_notification_read_that_raced_a_put_is_not_kept(tmp_path, monkeypatch):
    held = HeldRead()
    backend = FakeS3(held)
    monkeypatch.setattr(S3NotifyEngine, "own_client", lambda self, service, region=None: backend)
    engine = S3NotifyEngine(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))

    def put_configuration():  # what the engine does once the backend took a PutBucketNotificationConfiguration
        backend.configuration = {"QueueConfigurations": [{"Id": "landing", "Events": ["s3:ObjectCreated:*"],
                                                          "QueueArn": "arn:aws:sqs:us-east-1:123456789012:landing"}]}
        engine._configurations.forget("raw")

    held.race(lambda: engine._configurations_of("raw"), put_configuration)
    assert [configuration.arn for configuration in engine._configurations_of("raw")] == ["arn:aws:sqs:us-east-1:123456789012:landing"]


class FakeS3Policies:
    def __init__(self, held: HeldRead):
        self.policy = '{"Version": "2012-10-17", "Statement": []}'
        self.held = held

    def get_bucket_policy(self, Bucket):
        answer = self.policy
        if not self.held.release.is_set():
            self.held.hold()
        return {"Policy": answer}


def test_a_bucket_policy_read_that_raced_put_bucket_policy_is_not_kept(tmp_path, monkeypatch):
    held = HeldRead()
    backend = FakeS3Policies(held)
    monkeypatch.setattr(IamEngine, "own_client", lambda self, service, region=None: backend)
    engine = IamEngine(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))
    read = lambda: engine._resource_policy("s3", "arn:aws:s3:::raw/data.csv", {})  # noqa: E731
    try:
        def put_bucket_policy():  # the backend took a PutBucketPolicy, and the engine saw it answered
            backend.policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}'
            engine._observe(SimpleNamespace(service="s3", operation="PutBucketPolicy"), SimpleNamespace(status=200))

        held.race(read, put_bucket_policy)
        assert read() == backend.policy
    finally:
        engine.close()


def test_a_failed_read_is_not_kept_and_a_forgotten_key_is_read_again():
    cache, reads = ReadCache(), []

    def refused():
        raise ConnectionError("backend busy")

    with pytest.raises(ConnectionError):
        cache.get("raw", refused)
    assert cache.get("raw", lambda: reads.append(1) or "first") == "first"
    assert cache.get("raw", lambda: "never read") == "first"
    cache.forget("raw")
    assert cache.get("raw", lambda: "second") == "second"


def test_a_value_keep_refuses_is_read_again_and_a_bounded_cache_drops_its_oldest():
    cache = ReadCache(limit=2)
    assert cache.get("moment", lambda: "now", keep=lambda value: False) == "now"
    assert cache.get("moment", lambda: "later", keep=lambda value: False) == "later"
    for key in ("a", "b", "c"):
        cache.get(key, lambda key=key: key.upper())
    assert cache.get("a", lambda: "read again") == "read again"  # the oldest went when c came
    assert cache.get("c", lambda: "never read") == "C"
