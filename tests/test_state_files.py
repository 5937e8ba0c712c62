"""State files: names never become paths, damaged files never stop a start, and repair keeps what it can read.

- Traversal and otherwise unusable names go to every engine that writes files, through the real API: the
  answer is AWS's error (or, where AWS takes the name, success) and nothing lands outside the state folder.
- A damaged line in a Firehose buffer loses that record only; a torn last line (a write never acknowledged)
  loses nothing acknowledged; damaged JSON and SQLite state are set aside and the stack starts.
- `repair_state` rewrites JSON lines with their readable records, sets aside damaged documents and databases,
  and leaves the journal to the journal.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dealab.engines.firehose.buffers import Buffer
from dealab.stack import control
from dealab.stack.repair import repair_state
from dealab.wire.store import UnsafeName, child_path
from tests import conftest
from tests.conftest import client, make_settings

BUCKET = "lake"
ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"
# a name no earlier run left in /tmp; the same in every pytest-xdist worker of one run (test ids must agree)
ESCAPE = f"dealab-escape-{os.environ.get('PYTEST_XDIST_TESTRUNUID', uuid.uuid4().hex)[:8]}"
HOSTILE_NAMES = [
    f"../../../../{ESCAPE}",
    f"/tmp/{ESCAPE}",
    "a/b",
    "..",
    ".",
    ".hidden",
    "nul\x00byte",
    "x" * 300,
    "strömung",
    "new\nline",
]


def destination(**overrides) -> dict:
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": "raw/", "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}, **overrides}


def files_outside(root: Path, state_dir: Path) -> list[Path]:
    """Every file under `root` that is not inside `state_dir`."""
    return [path for path in root.rglob("*") if not path.is_dir() and state_dir not in path.parents]


def error_of(call) -> dict | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"] | {"Status": error.response["ResponseMetadata"]["HTTPStatusCode"]}
    return None


def admin(settings, name: str, payload: dict) -> dict:
    # Admin endpoints take the state folder's token once the door has one (conftest.admin_headers).
    headers = getattr(conftest, "admin_headers", lambda _settings: {})(settings)
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/{name}", data=json.dumps(payload).encode(), method="POST",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# --- the second wall ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE_NAMES + ["", "a\\b", "line\u2028separator"])
def test_child_path_refuses_every_name_that_is_not_one_plain_component(tmp_path, name):
    with pytest.raises(UnsafeName):
        child_path(tmp_path, name, ".json")


@pytest.mark.parametrize("name", ["clicks", "_private", "-dash", "a.b.c", "x" * 64])
def test_child_path_keeps_names_aws_takes_inside_the_folder(tmp_path, name):
    assert child_path(tmp_path, name, ".jsonl").parent == tmp_path


# --- through the API ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deep_stack(tmp_path_factory):
    """A stack whose state folder is deep enough that a ../../../../ name would land inside the test's folder."""
    root = tmp_path_factory.mktemp("traversal")
    settings = make_settings(root / "a" / "b" / "c" / "state")
    control.up(settings)
    client(settings, "s3").create_bucket(Bucket=BUCKET)
    yield root, settings
    control.down(settings)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_firehose_refuses_names_outside_its_pattern_with_a_validation_error(deep_stack, name):
    root, settings = deep_stack
    firehose = client(settings, "firehose")
    calls = [
        lambda: firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=destination()),
        lambda: firehose.create_delivery_stream(DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
                                                KinesisStreamSourceConfiguration={"KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                                                                                  "RoleARN": ROLE},
                                                ExtendedS3DestinationConfiguration=destination()),
        lambda: firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x"}),
        lambda: firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x"}]),
        lambda: firehose.delete_delivery_stream(DeliveryStreamName=name),
    ]
    for call in calls:
        error = error_of(call)
        assert error is not None and error["Code"] == "ValidationException" and error["Status"] == 400, (name, error)
        assert "deliveryStreamName" in error["Message"] and "\n" not in error["Message"]
    assert files_outside(root, settings.state_dir) == []
    assert not Path("/tmp", ESCAPE).exists()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_glue_and_athena_keep_any_name_they_take_inside_the_state_folder(deep_stack, name):
    """Glue and Athena keep names as keys in their state (JSON, SQLite), never as file names: a name AWS takes
    works, one AWS refuses gets an AWS error, and no name writes a file anywhere else."""
    root, settings = deep_stack
    glue, athena = client(settings, "glue"), client(settings, "athena")
    calls = [
        lambda: glue.create_job(Name=name, Role=ROLE, Command={"Name": "pythonshell", "ScriptLocation": f"s3://{BUCKET}/none.py",
                                                               "PythonVersion": "3.9"}),
        lambda: glue.start_job_run(JobName=name),
        lambda: glue.create_crawler(Name=name, Role=ROLE, Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]}),
        lambda: glue.start_crawler(Name=name),
        lambda: glue.create_classifier(CsvClassifier={"Name": name, "Delimiter": ","}),
        lambda: athena.create_work_group(Name=name),
        lambda: athena.start_query_execution(QueryString="SELECT 1", WorkGroup=name),
    ]
    for call in calls:
        error = error_of(call)
        assert error is None or (error["Code"] and error["Status"] < 500 and "Traceback" not in error.get("Message", "")), (name, error)
    assert files_outside(root, settings.state_dir) == []
    assert not Path("/tmp", ESCAPE).exists()


# --- damaged state at start -----------------------------------------------------------------------------

def delivered_numbers(settings) -> list[int]:
    s3 = client(settings, "s3")
    numbers = []
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        numbers += [json.loads(line)["n"] for line in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines()]
    return sorted(numbers)


def test_a_damaged_buffer_line_loses_that_record_only_and_a_torn_one_blocks_nothing(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        client(settings, "s3").create_bucket(Bucket=BUCKET)
        conftest.service_role(settings, "firehose-delivery", "firehose")  # ROLE, which destination() names
        firehose = client(settings, "firehose")
        firehose.create_delivery_stream(DeliveryStreamName="clicks", ExtendedS3DestinationConfiguration=destination())
        for n in range(30):
            firehose.put_record(DeliveryStreamName="clicks", Record={"Data": (json.dumps({"n": n}) + "\n").encode()})
        control.down(settings)

        buffer = settings.state_dir / "firehose" / "buffers" / "clicks.jsonl"
        lines = buffer.read_bytes().splitlines(keepends=True)
        assert len(lines) == 30
        lines[10] = b'{"t": "2026-01-01T00:00:00", "d": "\x00\xff broken\n'  # a damaged line in the middle
        torn = json.dumps({"t": "2026-01-01T00:00:00", "d": base64.b64encode(b'{"n": 99}\n').decode()}).encode()[:-7]
        buffer.write_bytes(b"".join(lines) + torn)  # the write the stack died in: never acknowledged

        control.up(settings)
        admin(settings, "clock", {"action": "advance", "by": "61s"})
        admin(settings, "firehose", {"action": "deliver-due"})
        assert delivered_numbers(settings) == [n for n in range(30) if n != 10]
        assert list(buffer.parent.glob("clicks.jsonl.damaged-*")), "the damaged buffer was not kept for a person to look at"
    finally:
        control.down(settings)


def test_damaged_json_and_sqlite_state_is_set_aside_and_the_stack_starts(tmp_path):
    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        client(settings, "athena").create_work_group(Name="analytics")
        assert admin(settings, "faults", {"action": "set", "rules": ["kinesis:ListStreams rate=1"]})["rules"]
    finally:
        control.down(settings)
    state = settings.state_dir
    damaged = {
        state / "faults" / "rules.json": b'["kinesis:PutRec',
        state / "glue" / "job-runs.json": b'{"not": "a list"}',
        state / "glue" / "crawls.json": b"\x00\x01\x02",
        state / "clock" / "clock.json": b"{",
        state / "athena" / "athena.sqlite3": b"SQLite format 3\x00" + b"\xde\xad" * 4096,
    }
    for path, content in damaged.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for companion in ("-wal", "-shm"):
        (state / "athena" / f"athena.sqlite3{companion}").unlink(missing_ok=True)
    control.up(settings)
    try:
        client(settings, "kinesis").list_streams()  # the rule that failed every call was in the damaged file
        assert client(settings, "glue").get_crawlers()["Crawlers"] == []
        athena = client(settings, "athena")
        athena.create_work_group(Name="after-repair")
        assert "after-repair" in [group["Name"] for group in athena.list_work_groups()["WorkGroups"]]
        for path in damaged:
            assert list(path.parent.glob(f"{path.name}.damaged-*")), f"{path} was not set aside"
    finally:
        control.down(settings)


# --- repair_state ---------------------------------------------------------------------------------------

def test_repair_keeps_every_readable_record_and_sets_damage_aside(tmp_path):
    state = tmp_path / "state"
    buffer = state / "firehose" / "buffers" / "clicks.jsonl"
    buffer.parent.mkdir(parents=True)
    good = [json.dumps({"t": "2026-01-01T00:00:00", "d": base64.b64encode(str(n).encode()).decode()}) + "\n" for n in range(8)]
    buffer.write_text("".join(good[:4]) + "garbage{\n" + "".join(good[4:]) + '{"t": "2026')
    document = state / "faults" / "rules.json"
    document.parent.mkdir(parents=True)
    document.write_text("[not json")
    sound = state / "glue" / "classifiers.json"
    sound.parent.mkdir(parents=True)
    sound.write_text('{"csv": {}}')
    database = state / "athena" / "athena.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"not a database at all" * 100)
    leftover = state / "glue" / ".classifiers.json.123.456.tmp"
    leftover.write_text("{half")
    journal = state / "journal" / "journal.jsonl"
    journal.parent.mkdir(parents=True)
    journal.write_text("the journal's own damage\n")

    done = repair_state(state)

    assert len(done) == 4, done
    assert [entry["d"] for entry in map(json.loads, buffer.read_text().splitlines())] == [json.loads(line)["d"] for line in good]
    assert [record[1] for record in Buffer.load(buffer).records] == [str(n).encode() for n in range(8)]
    assert any("clicks.jsonl" in line and "kept 8 record(s)" in line and "line 5" in line and "torn" in line for line in done)
    assert not document.exists() and list(document.parent.glob("rules.json.damaged-*"))
    assert not database.exists() and list(database.parent.glob("athena.sqlite3.damaged-*"))
    assert sound.read_text() == '{"csv": {}}' and not leftover.exists()
    assert journal.read_text() == "the journal's own damage\n"
    assert repair_state(state) == [], "a second repair found something the first left"


def test_repair_passes_a_sound_sqlite_database_and_an_empty_folder(tmp_path):
    database = tmp_path / "athena" / "athena.sqlite3"
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE t (x)")
    connection.close()
    assert repair_state(tmp_path) == []
    assert repair_state(tmp_path / "missing") == []
