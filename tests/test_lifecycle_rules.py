"""The lifecycle planner on its own: due times, precedence and the constraints S3 puts on rules."""

from __future__ import annotations

import datetime

import pytest

from dealab.engines.clock.lifecycle import Action, BucketState, KeyHistory, ObjectLock, ObjectVersion, candidates, resolve
from dealab.engines.clock.rules import LifecycleConfiguration, LifecycleError, parse

UTC = datetime.timezone.utc
T0 = datetime.datetime(2027, 1, 10, 15, 30, tzinfo=UTC)
FAR = datetime.datetime(2100, 1, 1, tzinfo=UTC)
KIB128 = 128 * 1024


def _config(rules_xml: str, since=datetime.datetime(2000, 1, 1, tzinfo=UTC), behaviour="all_storage_classes_128K"):
    rules = parse(f'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{rules_xml}</LifecycleConfiguration>'.encode(), behaviour)
    return LifecycleConfiguration(rules, behaviour, {rule.signature(): since.isoformat() for rule in rules})


def _bucket(config, versioning=""):
    return BucketState("b", config, versioning)


def _version(vid, created, size=KIB128, storage="STANDARD", marker=False):
    return ObjectVersion(vid, created, size, "etag", storage, delete_marker=marker)


def _no_tags(key, version):
    raise AssertionError("tags should not be needed")


def test_due_is_age_in_days_rounded_up_to_midnight():
    bucket = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter>"
                             "<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition></Rule>"))
    found = candidates(bucket, KeyHistory("k", [_version("v1", T0)]), _no_tags, FAR)
    assert found == [(datetime.datetime(2027, 2, 10, tzinfo=UTC), Action("transition", "v1", "STANDARD_IA"))]


def test_a_rule_put_late_applies_from_the_next_midnight():
    put = datetime.datetime(2027, 6, 1, 9, tzinfo=UTC)
    bucket = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>", since=put))
    (due, _), = candidates(bucket, KeyHistory("k", [_version("v1", T0)]), _no_tags, FAR)
    assert due == datetime.datetime(2027, 6, 2, tzinfo=UTC)


def test_small_objects_stay_unless_the_configuration_or_a_size_filter_lets_them_go():
    xml = ("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Transition><Days>0</Days><StorageClass>{cls}</StorageClass></Transition></Rule>")
    small = KeyHistory("k", [_version("v1", T0, size=1000)])
    assert candidates(_bucket(_config(xml.format(cls="GLACIER"))), small, _no_tags, FAR) == []
    assert candidates(_bucket(_config(xml.format(cls="GLACIER"), behaviour="varies_by_storage_class")), small, _no_tags, FAR)
    assert candidates(_bucket(_config(xml.format(cls="GLACIER_IR"), behaviour="varies_by_storage_class")), small, _no_tags, FAR) == []
    sized = xml.replace("<Filter/>", "<Filter><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></Filter>").format(cls="GLACIER_IR")
    assert candidates(_bucket(_config(sized)), small, _no_tags, FAR)


def test_newer_noncurrent_versions_keeps_the_newest():
    bucket = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><NoncurrentVersionExpiration>"
                             "<NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>2</NewerNoncurrentVersions>"
                             "</NoncurrentVersionExpiration></Rule>"), "Enabled")
    versions = [_version(f"v{n}", T0 - datetime.timedelta(days=n)) for n in range(5)]  # v0 current
    found = candidates(bucket, KeyHistory("k", versions), _no_tags, FAR)
    assert sorted(a.version_id for _, a in found) == ["v3", "v4"]


def test_tags_are_read_only_for_actions_due_by_the_horizon():
    bucket = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter><Tag><Key>t</Key><Value>x</Value></Tag></Filter>"
                             "<Expiration><Days>10</Days></Expiration></Rule>"))
    history = KeyHistory("k", [_version("v1", T0)])
    assert candidates(bucket, history, _no_tags, T0 + datetime.timedelta(days=5))  # listed, not checked
    assert candidates(bucket, history, lambda key, version: {"t": "y"}, FAR) == []
    assert candidates(bucket, history, lambda key, version: {"t": "x"}, FAR)


def test_precedence_deletion_then_cheapest_transition():
    due = [Action("transition", "v1", "STANDARD_IA"), Action("transition", "v1", "GLACIER"), Action("expire", "v1")]
    assert resolve(due, "v1", versioned=False) == [Action("expire", "v1")]  # a permanent deletion: no transition first
    assert resolve(due, "v1", versioned=True) == [Action("transition", "v1", "GLACIER"), Action("expire", "v1")]


@pytest.mark.parametrize("rule", [
    "<Rule><Status>Enabled</Status><Filter/><Transition><Days>10</Days><StorageClass>ONEZONE_IA</StorageClass></Transition></Rule>",
    "<Rule><Status>Enabled</Status><Filter/><Transition><Date>2027-01-01T12:00:00Z</Date><StorageClass>GLACIER</StorageClass></Transition></Rule>",
    "<Rule><Status>Enabled</Status><Filter/><Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>"
    "<Transition><Days>40</Days><StorageClass>ONEZONE_IA</StorageClass></Transition></Rule>",
    "<Rule><Status>Enabled</Status><Filter/><NoncurrentVersionTransition><NoncurrentDays>5</NoncurrentDays><StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition></Rule>",
    "<Rule><Status>Maybe</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>",
    "<Rule><Status>Enabled</Status><Prefix>a</Prefix><Filter/><Expiration><Days>1</Days></Expiration></Rule>",
    "<Rule><Status>Enabled</Status><Filter/><Transition><Days>1</Days><StorageClass>FROZEN</StorageClass></Transition></Rule>",
    "<Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>"
    "<Rule><ID>x</ID><Status>Enabled</Status><Filter/><Expiration><Days>2</Days></Expiration></Rule>",
])
def test_rules_s3_refuses(rule):
    with pytest.raises(LifecycleError):
        _config(rule)


def test_a_lone_delete_marker_goes_with_expired_object_delete_marker_or_once_as_old_as_expiration_days():
    marker = KeyHistory("k", [_version("m", T0, marker=True)], last_removal=T0 + datetime.timedelta(days=2))
    eodm = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration>"
                           "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"), "Enabled")
    assert candidates(eodm, marker, _no_tags, FAR) == [(datetime.datetime(2027, 1, 13, tzinfo=UTC), Action("remove_marker", "m"))]
    by_days = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration><Days>10</Days></Expiration></Rule>"), "Enabled")
    assert candidates(by_days, marker, _no_tags, FAR) == [(datetime.datetime(2027, 1, 21, tzinfo=UTC), Action("remove_marker", "m"))]


def test_date_rules_act_on_the_date_or_on_the_first_run_after_a_later_creation():
    bucket = _bucket(_config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration>"
                             "<Date>2027-03-01T00:00:00Z</Date></Expiration></Rule>"))
    (before, _), = candidates(bucket, KeyHistory("k", [_version("v1", T0)]), _no_tags, FAR)
    assert before == datetime.datetime(2027, 3, 1, tzinfo=UTC)
    (after, _), = candidates(bucket, KeyHistory("k", [_version("v1", datetime.datetime(2027, 4, 2, 8, tzinfo=UTC))]), _no_tags, FAR)
    assert after == datetime.datetime(2027, 4, 3, tzinfo=UTC)


def test_object_lock_holds_back_permanent_deletion_but_not_delete_markers_or_transitions():
    config = _config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><Expiration><Days>5</Days></Expiration>"
                     "<NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>"
                     "<NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays></NoncurrentVersionExpiration></Rule>")
    bucket = BucketState("b", config, "Enabled", object_lock=True)
    retained_until = datetime.datetime(2027, 3, 1, 9, tzinfo=UTC)
    locks = {"held": ObjectLock(legal_hold=True), "retained": ObjectLock(retain_until=retained_until), "free": ObjectLock()}
    history = KeyHistory("k", [_version("current", T0), _version("held", T0 - datetime.timedelta(days=1)),
                               _version("retained", T0 - datetime.timedelta(days=2)), _version("free", T0 - datetime.timedelta(days=3))])
    asked = []

    def locks_of(key, version_id):
        asked.append(version_id)
        return locks[version_id] if version_id in locks else ObjectLock(legal_hold=True)

    found = {(a.kind, a.version_id): due for due, a in candidates(bucket, history, _no_tags, FAR, locks_of)}
    assert ("expire", "current") in found  # a delete marker deletes nothing: locks do not stop it
    assert {version for kind, version in found if kind == "transition"} == {"held", "retained", "free"}
    assert ("delete_version", "held") not in found
    assert found[("delete_version", "retained")] == datetime.datetime(2027, 3, 2, tzinfo=UTC)  # the first run once retention ends
    assert found[("delete_version", "free")] == datetime.datetime(2027, 1, 11, tzinfo=UTC)  # 2 days after "retained" was written
    assert sorted(asked) == ["free", "held", "retained"]  # only versions a deletion is planned for

    asked.clear()
    soon = T0 + datetime.timedelta(hours=1)  # no deletion is due by then: nothing is looked up
    assert ("delete_version", "held") in {(a.kind, a.version_id) for _, a in candidates(bucket, history, _no_tags, soon, locks_of)}
    assert asked == []


def test_locks_are_not_looked_up_in_buckets_without_object_lock():
    config = _config("<Rule><ID>r</ID><Status>Enabled</Status><Filter/><NoncurrentVersionExpiration>"
                     "<NoncurrentDays>2</NoncurrentDays></NoncurrentVersionExpiration></Rule>")
    history = KeyHistory("k", [_version("v1", T0), _version("v0", T0 - datetime.timedelta(days=1))])

    def no_locks(key, version_id):
        raise AssertionError("a bucket without Object Lock has no locked versions")

    assert [a for _, a in candidates(BucketState("b", config, "Enabled"), history, _no_tags, FAR, no_locks)] == [Action("delete_version", "v0")]
