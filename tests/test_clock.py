"""The lab clock: moving it, refusing to move it back, surviving restarts, the CLI and the storage report."""

from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.error

import pytest
from typer.testing import CliRunner

from dealab.commands.clock import app as clock_cli
from dealab.commands.storage import app as storage_cli
from dealab.engines.clock.clock import ClockError, midnight_on_or_after, parse_duration, parse_moment
from dealab.stack import control
from tests.conftest import client, make_settings
from tests.test_lifecycle_engine import BIG, admin, advance
from tests.test_ttl_engine import stream_records, ttl_table

UTC = datetime.timezone.utc


def test_durations_and_dates_read_as_written():
    assert parse_duration("30d") == datetime.timedelta(days=30)
    assert parse_duration("12h") == datetime.timedelta(hours=12)
    assert parse_duration("2w") == datetime.timedelta(days=14)
    assert parse_moment("2027-01-01") == datetime.datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ClockError):
        parse_duration("thirty days")
    with pytest.raises(ClockError):
        parse_moment("next tuesday")
    noon = datetime.datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert midnight_on_or_after(noon) == datetime.datetime(2027, 1, 2, tzinfo=UTC)
    assert midnight_on_or_after(noon.replace(hour=0)) == noon.replace(hour=0)


def test_advance_set_and_reset(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="clock-dates")
    moved = advance(clean_stack, "30d")
    assert 29.99 < moved["offset_days"] < 30.01
    s3.put_object(Bucket="clock-dates", Key="later", Body=b"x")  # the backend dates it on the lab clock
    modified = s3.head_object(Bucket="clock-dates", Key="later")["LastModified"]
    assert abs((modified - datetime.datetime.now(UTC)).total_seconds() - 30 * 86400) < 60

    target = (datetime.datetime.now(UTC) + datetime.timedelta(days=400)).date().isoformat()
    assert admin(clean_stack, "clock", {"action": "set", "to": target})["now"].startswith(target)
    with pytest.raises(urllib.error.HTTPError) as refused:
        admin(clean_stack, "clock", {"action": "set", "to": "2020-01-01"})
    assert "only moves forward" in json.loads(refused.value.read())["message"]
    with pytest.raises(urllib.error.HTTPError) as reset_refused:  # a reset never moves it back either
        admin(clean_stack, "clock", {"action": "reset"})
    assert "`make reset`" in json.loads(reset_refused.value.read())["message"]
    assert admin(clean_stack, "clock")["now"].startswith(target)


def test_a_reset_at_real_time_changes_nothing_and_the_cli_says_why_it_refuses(clean_stack):
    assert abs(admin(clean_stack, "clock", {"action": "reset"})["offset_seconds"]) < 1
    advance(clean_stack, "1d")
    refused = CliRunner().invoke(clock_cli, ["reset"])
    assert refused.exit_code == 1 and "only moves forward" in refused.output
    assert 0.99 < admin(clean_stack, "clock")["offset_days"] < 1.01


def test_each_started_lab_measures_from_its_own_start(clean_stack):
    admin(clean_stack, "clock", {"action": "lab-start", "lab": "4"})
    advance(clean_stack, "30d")
    admin(clean_stack, "clock", {"action": "lab-start", "lab": "7"})
    advance(clean_stack, "2d")
    labs = admin(clean_stack, "clock")["labs"]
    assert list(labs) == ["4", "7"]
    assert 31.99 < labs["4"]["moved_days"] < 32.01 and 1.99 < labs["7"]["moved_days"] < 2.01
    started_4, started_7 = (datetime.datetime.fromisoformat(labs[lab]["started"]) for lab in ("4", "7"))
    assert 29.9 < (started_7 - started_4).total_seconds() / 86400 < 30.1
    shown = CliRunner().invoke(clock_cli, ["show"])
    assert "lab 04 started at lab time" in shown.output and "moved +32.00 days since" in shown.output
    admin(clean_stack, "clock", {"action": "lab-reset", "lab": "4"})
    assert list(admin(clean_stack, "clock")["labs"]) == ["7"]
    with pytest.raises(urllib.error.HTTPError):
        admin(clean_stack, "clock", {"action": "lab-start", "lab": "four"})


def test_the_storage_history_forgets_deleted_buckets_and_reads_in_plain_dollars(clean_stack, tmp_path):
    s3 = client(clean_stack, "s3")
    for bucket in ("kept-bucket", "probe-bucket"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="raw/0", Body=BIG)
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "raw/"}, "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]}]})
    advance(clean_stack, "40d")
    assert any("probe-bucket" in point["buckets"] for point in admin(clean_stack, "storage")["history"])
    s3.delete_object(Bucket="probe-bucket", Key="raw/0")
    s3.delete_bucket(Bucket="probe-bucket")
    history = admin(clean_stack, "storage")["history"]
    assert history and all(set(point["buckets"]) == {"kept-bucket"} for point in history)
    printed = CliRunner().invoke(storage_cli, ["report", "--png", str(tmp_path / "s.png")])
    assert printed.exit_code == 0, printed.output
    assert "e-0" not in printed.output and "USD / month" in printed.output


def test_costs_read_in_plain_dollars_with_three_significant_digits():
    from dealab.commands.storage import usd

    assert [usd(x) for x in (5e-05, 0.000123456, 1.23456, 1234.5, 0)] == ["0.0000500", "0.000123", "1.23", "1,234", "0"]


def test_clock_lifecycle_and_ttl_state_survive_a_restart(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        s3 = client(settings, "s3")
        s3.create_bucket(Bucket="survives")
        s3.put_object(Bucket="survives", Key="raw/a", Body=BIG)
        rules = {"Rules": [{"ID": "ia", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 1},
                            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}]}]}
        s3.put_bucket_lifecycle_configuration(Bucket="survives", LifecycleConfiguration=rules)
        ddb = client(settings, "dynamodb")
        ttl_table(ddb, "survives")
        ddb.put_item(TableName="survives", Item={"pk": {"S": "gone"}, "expires_at": {"N": str(int(time.time()) + 60)}})
        advance(settings, "31d")
        before = admin(settings, "clock")
    finally:
        control.down(settings)
    control.up(settings)
    try:
        s3 = client(settings, "s3")
        after = admin(settings, "clock")
        assert abs(after["offset_seconds"] - before["offset_seconds"]) < 1
        assert s3.head_object(Bucket="survives", Key="raw/a")["StorageClass"] == "STANDARD_IA"
        got = s3.get_bucket_lifecycle_configuration(Bucket="survives")["Rules"][0]
        assert got["Filter"] == {"ObjectSizeGreaterThan": 1}
        removes = [r for r in stream_records(settings, client(settings, "dynamodb"), "survives") if r["eventName"] == "REMOVE"]
        assert [r.get("userIdentity", {}).get("PrincipalId") for r in removes] == ["dynamodb.amazonaws.com"]
    finally:
        control.down(settings)


def test_cli_and_storage_report(clean_stack, tmp_path):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="report-bucket")
    for index in range(3):
        s3.put_object(Bucket="report-bucket", Key=f"raw/{index}", Body=BIG)
    s3.put_bucket_lifecycle_configuration(Bucket="report-bucket", LifecycleConfiguration={"Rules": [{
        "ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "raw/"},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 120, "StorageClass": "DEEP_ARCHIVE"}],
    }]})
    runner = CliRunner()
    shown = runner.invoke(clock_cli, ["advance", "200d"])
    assert shown.exit_code == 0, shown.output
    assert "6 transitions" in shown.output  # 3 objects, twice
    report = admin(clean_stack, "storage")
    assert report["buckets"]["report-bucket"]["DEEP_ARCHIVE"]["objects"] == 3
    history = report["history"]
    classes_over_time = [set(point["buckets"]["report-bucket"]) for point in history]
    assert classes_over_time[0] == {"STANDARD"} and {"STANDARD_IA"} in classes_over_time and classes_over_time[-1] == {"DEEP_ARCHIVE"}
    assert history[-1]["usd_month"] < history[0]["usd_month"] / 5

    png = tmp_path / "storage.png"
    printed = runner.invoke(storage_cli, ["report", "--png", str(png)])
    assert printed.exit_code == 0, printed.output
    reduction = f"{history[-1]['usd_month'] / history[0]['usd_month'] - 1:+.1%}"
    assert "DEEP_ARCHIVE" in printed.output and "2025-06-01" in printed.output and reduction in printed.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(clock_cli, ["advance", "soon"])
    assert bad.exit_code == 1 and "cannot read the duration" in bad.output


MIB = 1024 * 1024


def test_storage_report_bills_each_small_object_at_the_class_minimum(clean_stack):
    """A 1 KiB object next to a large one in STANDARD_IA: their average clears 128 KiB, the small one is still
    billed 128 KiB, as on AWS."""
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket="billing-bucket")
    s3.put_object(Bucket="billing-bucket", Key="raw/small", Body=b"x" * 1024)
    s3.put_object(Bucket="billing-bucket", Key="raw/large", Body=b"x" * MIB)
    s3.put_bucket_lifecycle_configuration(Bucket="billing-bucket", LifecycleConfiguration={"Rules": [{
        "ID": "ia", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 0},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    }]})
    advance(clean_stack, "31d")
    entry = admin(clean_stack, "storage")["buckets"]["billing-bucket"]["STANDARD_IA"]
    assert (entry["objects"], entry["bytes"], entry["billed_bytes"]) == (2, 1024 + MIB, 128 * 1024 + MIB)
    assert entry["usd_month"] == round((128 * 1024 + MIB) / 1024 ** 3 * 0.0125, 6)
    printed = CliRunner().invoke(storage_cli, ["report"])
    assert printed.exit_code == 0 and "billed as" in printed.output, printed.output


def test_a_long_move_shows_where_it_has_got(clean_stack):
    """GET /_dealab/clock names the move under way and the lab time it has reached (the CLI's progress bar)."""
    ddb = client(clean_stack, "dynamodb")
    ttl_table(ddb, "progress")
    now = time.time()
    for start in range(0, 1500, 25):  # one expiry every ~5 hours over 300 days: a sweep's work at most moments
        ddb.batch_write_item(RequestItems={"progress": [
            {"PutRequest": {"Item": {"pk": {"S": f"s{i}"}, "expires_at": {"N": str(int(now + i * 17280))}}}} for i in range(start, start + 25)
        ]})
    seen = []

    def watch():
        while not moved.is_set():
            moving = admin(clean_stack, "clock")["moving"]
            if moving:
                seen.append(moving)
            time.sleep(0.02)

    moved = threading.Event()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = CliRunner().invoke(clock_cli, ["advance", "400d"])
    finally:
        moved.set()
        watcher.join(10)
    assert result.exit_code == 0 and "1500 items deleted" in result.output, result.output
    assert seen, "no move was seen under way"
    assert {entry["stage"] for entry in seen} <= {"taking stock", "carrying out"}
    assert all(entry["from"] <= entry["at"] <= entry["to"] for entry in seen)
    assert [entry["at"] for entry in seen] == sorted(entry["at"] for entry in seen)
    assert admin(clean_stack, "clock")["moving"] is None


def test_a_storage_history_saved_by_an_earlier_build_is_left_out(tmp_path):
    """History points with bytes and objects only (before per-object billing) cannot be priced; the report
    leaves them out rather than fail."""
    settings = make_settings(tmp_path / "state")
    history = settings.state_dir / "clock" / "history.json"
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps([{"time": "2026-01-01T00:00:00+00:00", "buckets": {"old": {"STANDARD": [1024, 1]}}}]))
    control.up(settings)
    try:
        assert admin(settings, "storage")["history"] == []
    finally:
        control.down(settings)
