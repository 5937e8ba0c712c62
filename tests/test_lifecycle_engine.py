"""S3 lifecycle executed on the lab clock, seen through the ordinary S3 API of a running stack."""

from __future__ import annotations

import datetime
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.conftest import admin_headers, client

BIG = b"x" * (128 * 1024)  # lifecycle leaves objects under 128 KiB where they are by default


def admin(settings, path, payload=None):
    request = urllib.request.Request(
        f"{settings.endpoint_url}/_dealab/{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json", **admin_headers(settings)},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def advance(settings, by):
    return admin(settings, "clock", {"action": "advance", "by": by})


def storage_class(s3, bucket, key, **kwargs):
    return s3.head_object(Bucket=bucket, Key=key, **kwargs).get("StorageClass", "STANDARD")


@pytest.fixture
def s3(clean_stack):
    return client(clean_stack, "s3")


def test_transitions_and_expiry_follow_the_clock(clean_stack, s3):
    s3.create_bucket(Bucket="lc-raw")
    s3.put_object(Bucket="lc-raw", Key="raw/a.csv", Body=BIG)
    s3.put_object(Bucket="lc-raw", Key="raw/small.csv", Body=b"tiny")
    s3.put_object(Bucket="lc-raw", Key="other/b.csv", Body=BIG)
    s3.put_bucket_lifecycle_configuration(Bucket="lc-raw", LifecycleConfiguration={"Rules": [{
        "ID": "raw", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": 365},
    }]})
    advance(clean_stack, "29d")
    assert storage_class(s3, "lc-raw", "raw/a.csv") == "STANDARD"
    advance(clean_stack, "2d")
    assert storage_class(s3, "lc-raw", "raw/a.csv") == "STANDARD_IA"
    assert storage_class(s3, "lc-raw", "raw/small.csv") == "STANDARD"  # under 128 KiB
    assert storage_class(s3, "lc-raw", "other/b.csv") == "STANDARD"
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket="lc-raw")["Contents"]}
    assert listed == {"raw/a.csv": "STANDARD_IA", "raw/small.csv": "STANDARD", "other/b.csv": "STANDARD"}
    attributes = s3.get_object_attributes(Bucket="lc-raw", Key="raw/a.csv", ObjectAttributes=["StorageClass", "ObjectSize"])
    assert (attributes["StorageClass"], attributes["ObjectSize"]) == ("STANDARD_IA", len(BIG))
    s3.get_object(Bucket="lc-raw", Key="raw/a.csv")  # IA still reads

    advance(clean_stack, "60d")
    assert storage_class(s3, "lc-raw", "raw/a.csv") == "GLACIER"
    assert s3.get_object_attributes(Bucket="lc-raw", Key="raw/a.csv", ObjectAttributes=["StorageClass"])["StorageClass"] == "GLACIER"
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket="lc-raw", Key="raw/a.csv")
    assert refused.value.response["Error"]["Code"] == "InvalidObjectState"

    advance(clean_stack, "280d")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lc-raw").get("Contents", [])]
    assert keys == ["other/b.csv"]


def test_restore_takes_the_tier_time_on_the_clock(clean_stack, s3):
    s3.create_bucket(Bucket="lc-restore")
    s3.put_object(Bucket="lc-restore", Key="cold/a", Body=BIG)
    s3.put_bucket_lifecycle_configuration(Bucket="lc-restore", LifecycleConfiguration={"Rules": [{
        "ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "cold/"},
        "Transitions": [{"Days": 1, "StorageClass": "DEEP_ARCHIVE"}],
    }]})
    advance(clean_stack, "3d")
    assert storage_class(s3, "lc-restore", "cold/a") == "DEEP_ARCHIVE"
    with pytest.raises(ClientError) as expedited:
        s3.restore_object(Bucket="lc-restore", Key="cold/a", RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Expedited"}})
    assert expedited.value.response["Error"]["Code"] == "InvalidArgument"
    first = s3.restore_object(Bucket="lc-restore", Key="cold/a", RestoreRequest={"Days": 2})
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert 'ongoing-request="true"' in s3.head_object(Bucket="lc-restore", Key="cold/a")["Restore"]
    with pytest.raises(ClientError) as still_archived:
        s3.get_object(Bucket="lc-restore", Key="cold/a")
    assert still_archived.value.response["Error"]["Code"] == "InvalidObjectState"
    advance(clean_stack, "13h")  # Standard retrieval from Deep Archive: within 12 hours
    assert s3.get_object(Bucket="lc-restore", Key="cold/a")["Body"].read() == BIG
    assert 'ongoing-request="false"' in s3.head_object(Bucket="lc-restore", Key="cold/a")["Restore"]
    advance(clean_stack, "3d")  # the restored copy is gone again
    with pytest.raises(ClientError):
        s3.get_object(Bucket="lc-restore", Key="cold/a")


def error_code(call, **kwargs) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return refused.value.response["Error"]["Code"]


def test_objects_put_in_glacier_wait_for_their_restore_on_the_clock(clean_stack, s3):
    s3.create_bucket(Bucket="lc-put-cold")
    s3.put_object(Bucket="lc-put-cold", Key="cold/a", Body=b"archived", StorageClass="GLACIER")
    cold = {"Bucket": "lc-put-cold", "Key": "cold/a"}
    assert error_code(s3.get_object, **cold) == "InvalidObjectState"
    assert s3.restore_object(**cold, RestoreRequest={"Days": 1})["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert s3.head_object(**cold)["Restore"] == 'ongoing-request="true"'
    assert error_code(s3.get_object, **cold) == "InvalidObjectState"
    assert error_code(s3.copy_object, Bucket="lc-put-cold", Key="copy", CopySource="lc-put-cold/cold/a") == "InvalidObjectState"
    assert error_code(s3.restore_object, **cold, RestoreRequest={"Days": 1}) == "RestoreAlreadyInProgress"
    advance(clean_stack, "4h")  # Standard retrieval from Glacier Flexible Retrieval: within 5 hours
    assert error_code(s3.get_object, **cold) == "InvalidObjectState"
    advance(clean_stack, "2h")
    assert s3.get_object(**cold)["Body"].read() == b"archived"
    assert s3.head_object(**cold)["Restore"].startswith('ongoing-request="false", expiry-date=')
    assert s3.restore_object(**cold, RestoreRequest={"Days": 3})["ResponseMetadata"]["HTTPStatusCode"] == 200  # extended
    advance(clean_stack, "2d")
    s3.copy_object(Bucket="lc-put-cold", Key="copy", CopySource="lc-put-cold/cold/a", StorageClass="STANDARD")
    advance(clean_stack, "2d")  # the restored copy has expired
    assert error_code(s3.get_object, **cold) == "InvalidObjectState"
    assert "Restore" not in s3.head_object(**cold)

    s3.put_object(Bucket="lc-put-cold", Key="deep", Body=b"d", StorageClass="DEEP_ARCHIVE")
    assert error_code(s3.restore_object, Bucket="lc-put-cold", Key="deep",
                      RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Expedited"}}) == "InvalidArgument"
    s3.restore_object(Bucket="lc-put-cold", Key="deep", RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
    advance(clean_stack, "47h")
    assert error_code(s3.get_object, Bucket="lc-put-cold", Key="deep") == "InvalidObjectState"
    advance(clean_stack, "2h")  # Bulk retrieval from Deep Archive: within 48 hours
    assert s3.get_object(Bucket="lc-put-cold", Key="deep")["Body"].read() == b"d"
    s3.put_object(Bucket="lc-put-cold", Key="deep", Body=b"new", StorageClass="DEEP_ARCHIVE")  # a new object: not restored
    assert error_code(s3.get_object, Bucket="lc-put-cold", Key="deep") == "InvalidObjectState"


def test_object_lock_keeps_locked_versions_from_lifecycle_deletion(clean_stack, s3):
    s3.create_bucket(Bucket="lc-locked", ObjectLockEnabledForBucket=True)
    doc = {"Bucket": "lc-locked", "Key": "doc"}
    held = s3.put_object(**doc, Body=b"held")["VersionId"]
    s3.put_object_legal_hold(**doc, VersionId=held, LegalHold={"Status": "ON"})
    now = datetime.datetime.fromisoformat(admin(clean_stack, "clock")["now"])
    retained = s3.put_object(**doc, Body=b"retained")["VersionId"]
    s3.put_object_retention(**doc, VersionId=retained, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + datetime.timedelta(days=20)})
    s3.put_object(**doc, Body=b"free")
    current = s3.put_object(**doc, Body=b"current")["VersionId"]
    s3.put_object_legal_hold(**doc, VersionId=current, LegalHold={"Status": "ON"})
    s3.put_bucket_lifecycle_configuration(Bucket="lc-locked", LifecycleConfiguration={"Rules": [{
        "ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
        "Expiration": {"Days": 5}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }]})

    def bodies():
        versions = s3.list_object_versions(Bucket="lc-locked").get("Versions", [])
        return sorted(s3.get_object(**doc, VersionId=v["VersionId"])["Body"].read() for v in versions)

    advance(clean_stack, "3d")
    assert bodies() == [b"current", b"held", b"retained"]
    advance(clean_stack, "5d")  # the locked current version expires: a delete marker, the version stays
    listed = s3.list_object_versions(Bucket="lc-locked")
    assert [m["IsLatest"] for m in listed["DeleteMarkers"]] == [True]
    assert bodies() == [b"current", b"held", b"retained"]
    advance(clean_stack, "13d")  # retention over: deleted at the next midnight
    assert bodies() == [b"current", b"held"]
    s3.put_object_legal_hold(**doc, VersionId=held, LegalHold={"Status": "OFF"})
    advance(clean_stack, "1d")
    assert bodies() == [b"current"]


def test_versioned_expiry_noncurrent_rules_and_delete_markers(clean_stack, s3):
    s3.create_bucket(Bucket="lc-versions")
    s3.put_bucket_versioning(Bucket="lc-versions", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"1", b"2", b"3", b"4", b"5"):
        s3.put_object(Bucket="lc-versions", Key="logs/app.log", Body=body)
    s3.put_object(Bucket="lc-versions", Key="tmp/scratch", Body=b"t")
    s3.put_bucket_lifecycle_configuration(Bucket="lc-versions", LifecycleConfiguration={"Rules": [
        {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 2}},
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"Days": 7}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]})
    advance(clean_stack, "8d")
    versions = s3.list_object_versions(Bucket="lc-versions", Prefix="tmp/")
    assert [m["IsLatest"] for m in versions.get("DeleteMarkers", [])] == [True]  # expired: a delete marker
    assert len(versions.get("Versions", [])) == 1
    advance(clean_stack, "2d")  # noncurrent for a day: the version goes, then the lone marker
    advance(clean_stack, "1d")
    versions = s3.list_object_versions(Bucket="lc-versions", Prefix="tmp/")
    assert "Versions" not in versions and "DeleteMarkers" not in versions

    advance(clean_stack, "25d")  # logs: 4 noncurrent versions, 2 newest kept
    logs = s3.list_object_versions(Bucket="lc-versions", Prefix="logs/")["Versions"]
    bodies = sorted(s3.get_object(Bucket="lc-versions", Key="logs/app.log", VersionId=v["VersionId"])["Body"].read() for v in logs)
    assert bodies == [b"3", b"4", b"5"]


def test_tag_and_size_filters_and_multipart_abort(clean_stack, s3):
    s3.create_bucket(Bucket="lc-filters")
    s3.put_object(Bucket="lc-filters", Key="raw/keep", Body=BIG, Tagging="retention=legal-hold")
    s3.put_object(Bucket="lc-filters", Key="raw/go", Body=BIG, Tagging="retention=standard")
    s3.put_object(Bucket="lc-filters", Key="raw/tiny", Body=b"x" * 100, Tagging="retention=standard")
    upload = s3.create_multipart_upload(Bucket="lc-filters", Key="raw/partial")["UploadId"]
    s3.put_bucket_lifecycle_configuration(Bucket="lc-filters", LifecycleConfiguration={"Rules": [
        {"ID": "standard", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "raw/", "Tags": [{"Key": "retention", "Value": "standard"}], "ObjectSizeGreaterThan": 10}},
         "Transitions": [{"Days": 0, "StorageClass": "GLACIER_IR"}], "Expiration": {"Days": 10}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    ]})
    got = s3.get_bucket_lifecycle_configuration(Bucket="lc-filters")["Rules"]
    assert got[0]["Filter"]["And"]["ObjectSizeGreaterThan"] == 10  # kept whole
    advance(clean_stack, "1d")
    assert storage_class(s3, "lc-filters", "raw/go") == "GLACIER_IR"
    assert storage_class(s3, "lc-filters", "raw/tiny") == "GLACIER_IR"  # a size filter overrides the 128 KiB default
    assert storage_class(s3, "lc-filters", "raw/keep") == "STANDARD"
    assert s3.list_multipart_uploads(Bucket="lc-filters").get("Uploads")
    advance(clean_stack, "7d")
    assert not s3.list_multipart_uploads(Bucket="lc-filters").get("Uploads")
    with pytest.raises(ClientError):
        s3.list_parts(Bucket="lc-filters", Key="raw/partial", UploadId=upload)
    advance(clean_stack, "3d")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="lc-filters")["Contents"]] == ["raw/keep"]


@pytest.mark.parametrize("rule, code, words", [
    ({"Transitions": [{"Days": 10, "StorageClass": "STANDARD_IA"}]}, "InvalidArgument", "greater than or equal to 30"),
    ({"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}], "Expiration": {"Days": 20}}, "InvalidArgument", "must be greater than 'Days' in the Transition"),
    ({"Transitions": [{"Days": 90, "StorageClass": "STANDARD_IA"}, {"Days": 60, "StorageClass": "GLACIER"}]}, "InvalidArgument", "StorageClass 'GLACIER'"),
    ({"Expiration": {"Days": 0}}, "InvalidArgument", "positive integer"),
    ({"NoncurrentVersionExpiration": {"NoncurrentDays": 5, "NewerNoncurrentVersions": 101}}, "InvalidArgument", "NewerNoncurrentVersions"),
    ({"Filter": {"Tag": {"Key": "a", "Value": "b"}}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}, "InvalidRequest", "Tags"),
    ({"Filter": {"Tag": {"Key": "a", "Value": "b"}}, "Expiration": {"ExpiredObjectDeleteMarker": True}}, "InvalidRequest", "Tag filter"),
    ({"Filter": {"ObjectSizeGreaterThan": 500, "ObjectSizeLessThan": 100}, "Expiration": {"Days": 3}}, "MalformedXML", ""),
    ({}, "InvalidRequest", "At least one action"),
])
def test_invalid_rules_get_s3s_errors(clean_stack, s3, rule, code, words):
    s3.create_bucket(Bucket="lc-invalid")
    full = {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, **rule}
    with pytest.raises(ClientError) as refused:
        s3.put_bucket_lifecycle_configuration(Bucket="lc-invalid", LifecycleConfiguration={"Rules": [full]})
    assert refused.value.response["Error"]["Code"] == code
    assert words in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        s3.get_bucket_lifecycle_configuration(Bucket="lc-invalid")
    assert missing.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"


def test_tag_filters_follow_retagging_and_copies(clean_stack, s3):
    s3.create_bucket(Bucket="lc-retag")
    s3.put_object(Bucket="lc-retag", Key="a", Body=b"1", Tagging="stage=keep")
    s3.put_object(Bucket="lc-retag", Key="b", Body=b"2", Tagging="stage=done")
    s3.put_object_tagging(Bucket="lc-retag", Key="a", Tagging={"TagSet": [{"Key": "stage", "Value": "done"}]})
    s3.copy_object(Bucket="lc-retag", Key="c", CopySource="lc-retag/b", TaggingDirective="REPLACE", Tagging="stage=keep")
    s3.copy_object(Bucket="lc-retag", Key="d", CopySource="lc-retag/b")  # tags copied with the object
    s3.put_bucket_lifecycle_configuration(Bucket="lc-retag", LifecycleConfiguration={"Rules": [{
        "ID": "done", "Status": "Enabled", "Filter": {"Tag": {"Key": "stage", "Value": "done"}}, "Expiration": {"Days": 1},
    }]})
    advance(clean_stack, "3d")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="lc-retag")["Contents"]] == ["c"]
