"""Backend conformance (dealab/conformance.py): the verdict rules, the exceptions table, the processes it starts,
and the gateway behaviours a remote backend's labs needed. The whole run is `make conformance BACKEND=ministack`,
which `make test` runs after pytest."""

import datetime
import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dealab import conformance
from dealab.conformance import BACKENDS, EXCEPTIONS, BackendProcess, judge
from dealab.engines.clock.ttl import TTL_IDENTITY, TtlMarks
from dealab.labs import all_labs, get_lab
from grader.core import checks_of
from grader.runner import FAIL, PASS, Report, Result
from tests.conftest import REPO, client
from tests.test_backends import remote_backed_stack  # noqa: F401 (a fixture)


def _report(lab, failing: set[str]) -> Report:
    checks = checks_of(importlib.import_module(lab.grader_module))
    results = [Result(c.id, c.title, c.task, c.points, 0 if c.id in failing else c.points, FAIL if c.id in failing else PASS,
                      "", "", "", 0.0) for c in checks]
    return Report(lab.number, lab.slug, lab.title, "seed", results)


def test_a_lab_conforms_at_full_marks_or_with_its_documented_exceptions_failing_only():
    lab = get_lab(8)
    ids = [c.id for c in checks_of(importlib.import_module(lab.grader_module))]
    assert judge(lab, _report(lab, set()), {}, 1.0).conforms
    excused = judge(lab, _report(lab, {ids[0]}), {ids[0]: "the backend cannot"}, 1.0)
    assert excused.conforms and excused.excused == {ids[0]: "the backend cannot"}
    failed = judge(lab, _report(lab, {ids[0], ids[1]}), {ids[0]: "the backend cannot"}, 1.0)
    assert not failed.conforms and failed.unexcused == [ids[1]]
    stale = judge(lab, _report(lab, set()), {ids[0]: "the backend cannot"}, 1.0)
    assert not stale.conforms and stale.stale == (ids[0],)
    # another lab's exception is not this lab's
    other = judge(lab, _report(lab, set()), {"L01-01": "not lab 8's"}, 1.0)
    assert other.conforms and not other.stale


def test_documented_exceptions_name_real_checks_of_known_backends_with_a_reason():
    known = {c.id for lab in all_labs() for c in checks_of(importlib.import_module(lab.grader_module))}
    assert set(EXCEPTIONS) <= set(BACKENDS)
    for backend, exceptions in EXCEPTIONS.items():
        for check_id, reason in exceptions.items():
            assert check_id in known, f"{backend}: {check_id} is no check of any lab"
            assert reason.strip() and "\n" not in reason


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_backend_starts_on_loopback_and_stops_with_everything_it_started(tmp_path):
    backend = BACKENDS["ministack"]
    process = BackendProcess(backend, conformance.install(backend, conformance.Console()), tmp_path)
    try:
        process.wait_until_ready()
        assert process.url.startswith("http://127.0.0.1:")
    finally:
        process.stop()
    assert process.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.process.pid, 0)


def _wait_for(path: Path, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.1)
    raise AssertionError(f"{path} did not appear")


def test_ctrl_c_stops_the_backend_and_the_stack(tmp_path):
    workdir = tmp_path / "run"
    # lab 02 runs for most of a minute: long enough to be interrupted mid-run on a busy machine (lab 01 can end first)
    # pytest-xdist's workers ignore SIGINT and a child inherits that; a learner's terminal does not
    runner = subprocess.Popen([sys.executable, "-m", "dealab.conformance", "ministack", "--lab", "2", "--workdir", str(workdir)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        stack_pid = int(_wait_for(workdir / "lab02" / "state" / "stack.pid"))
        backend_pids = [int(path.read_text()) for path in (workdir / "lab02" / "ministack").glob("ministack-*.pid")]
        assert backend_pids, "ministack wrote no pid file in its folder"
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 130, output
    assert "interrupted" in output
    for pid in [stack_pid, *backend_pids]:
        assert _gone(pid), f"process {pid} outlived the interrupted run"


def test_a_remote_backends_head_object_keeps_its_content_length(remote_backed_stack):
    """Spark's S3A reads an object's length from HEAD: without it every object read as empty (Lab 06 on ministack)."""
    settings, _ = remote_backed_stack
    s3 = client(settings, "s3")
    s3.create_bucket(Bucket="lengths")
    s3.put_object(Bucket="lengths", Key="k", Body=b"x" * 1234)
    assert s3.head_object(Bucket="lengths", Key="k")["ContentLength"] == 1234
    assert s3.get_object(Bucket="lengths", Key="k", Range="bytes=0-9")["ContentLength"] == 10


def test_ttl_removes_dated_by_a_backend_keeping_real_time_carry_the_ttl_identity(tmp_path):
    marks = TtlMarks(tmp_path)
    lab_window, real_window = (2_000_000_000.0, 2_000_000_000.5), (1_800_000_000.0, 1_800_000_000.5)
    marks.add("sessions", [{"id": {"S": "a"}}], [lab_window, real_window])

    def remove(key: str, when: float) -> dict:
        return {"eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": key}}, "ApproximateCreationDateTime": when}}

    records = [remove("a", 2_000_000_000.2), remove("a", 1_800_000_000.2), remove("a", 1_900_000_000.0), remove("b", 1_800_000_000.2)]
    assert marks.label("sessions", records) == 2
    assert [record.get("userIdentity") for record in records] == [TTL_IDENTITY, TTL_IDENTITY, None, None]


def test_a_real_time_backends_stamps_are_dated_on_the_lab_clock_by_the_offset_then_in_force(monkeypatch):
    """Lifecycle counts an object's age from its LastModified: a remote backend stamps real time, so an object
    put after `clock advance 30d` must not look 30 days older than it is, nor one put before look younger."""
    from dealab.wire import labtime

    monkeypatch.setattr(labtime, "_backend_reads_lab_time", False)
    monkeypatch.setattr(labtime, "_moves", [])
    day = 86400.0
    labtime.restore_moves([[1_000 * day, 0.0], [1_010 * day, 30 * day]])  # the clock moved 30 days on, on real day 1010
    real = labtime.EPOCH + datetime.timedelta(days=1_005)
    assert labtime.lab_time_of_backend_stamp(real) == real  # stamped before the move
    later = labtime.EPOCH + datetime.timedelta(days=1_011)
    assert labtime.lab_time_of_backend_stamp(later) == later + datetime.timedelta(days=30)
    aware = later.replace(tzinfo=datetime.timezone.utc)
    assert labtime.lab_time_of_backend_stamp(aware) == aware + datetime.timedelta(days=30)
    assert labtime.moves() == [[1_000 * day, 0.0], [1_010 * day, 30 * day]]
    labtime.declare_backend_reads_lab_time()  # the embedded backend: its stamps are lab time already
    assert labtime.lab_time_of_backend_stamp(later) == later


def test_a_last_modified_header_in_a_second_the_clock_moved_in_is_dated_from_the_listings_finer_stamp(monkeypatch):
    """A header names whole seconds; a seeding script puts, advances 71 days and puts again within one."""
    from dealab.engines.clock.overlay import lab_dated_headers
    from dealab.wire import labtime

    monkeypatch.setattr(labtime, "_backend_reads_lab_time", False)
    monkeypatch.setattr(labtime, "_moves", [])
    move = datetime.datetime(2026, 12, 6, 13, 13, 9, 867000)
    labtime.restore_moves([[(move - labtime.EPOCH).total_seconds(), 71 * 86400.0]])
    header = [("Last-Modified", "Sun, 06 Dec 2026 13:13:09 GMT"), ("ETag", '"e"')]
    after_the_move = move.replace(microsecond=901000, tzinfo=datetime.timezone.utc)
    asked = []
    dated = lab_dated_headers(header, lambda: asked.append(1) or after_the_move)
    assert dated == [("Last-Modified", "Mon, 15 Feb 2027 13:13:09 GMT"), ("ETag", '"e"')] and asked
    calm = [("Last-Modified", "Sun, 06 Dec 2026 13:13:12 GMT")]
    assert lab_dated_headers(calm, lambda: pytest.fail("no move in that second: no listing needed")) == [
        ("Last-Modified", "Mon, 15 Feb 2027 13:13:12 GMT")]
