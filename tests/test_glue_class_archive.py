"""The JVM class archive of the Spark worker (dealab/engines/glue/spark.py): made in the background after a first
run when the machine has none, then used by the next workers; a damaged archive never fails a run.

Each test has its own cache folder (XDG_CACHE_HOME), so the machine's own archive is left alone.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from dealab.engines.glue.spark import class_archive_folder, class_archive_key, usable_class_archive
from dealab.engines.glue.worker_process import SparkWorker
from tests.conftest import client

pytestmark = pytest.mark.slow

BUCKET = "glue-class-archive-test"
SCRIPT = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print(spark.read.json("s3://glue-class-archive-test/data/").count(), "rows")
"""


@pytest.fixture(scope="module")
def s3_data(stack):
    s3 = client(stack, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/part-0.json", Body=b'{"id": 1}\n{"id": 2}\n')
    s3.put_object(Bucket=BUCKET, Key="scripts/count.py", Body=SCRIPT.encode())
    return stack


@pytest.fixture(scope="module")
def built_archive(s3_data, tmp_path_factory) -> Path:
    """An archive made the way a fresh machine gets one: by the builder a worker's first run starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        worker = SparkWorker(s3_data.endpoint_url, s3_data.region, tmp_path_factory.mktemp("worker") / "worker.log")
        try:
            worker.start()
            assert usable_class_archive() is None
            assert run_script(worker)["state"] == "SUCCEEDED"
            deadline = time.monotonic() + 15 * 60  # about a minute of CPU at the lowest priority on a busy machine
            while (archive := usable_class_archive()) is None and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            worker.stop()
        assert archive is not None, (worker.log_path.with_name("spark-class-archive.log")).read_text()[-3000:]
        return archive


def run_script(worker: SparkWorker, timeout: float = 300) -> dict:
    run_id = f"jr_{time.monotonic_ns()}"
    worker.submit({"run_id": run_id, "job_name": "count", "script_location": f"s3://{BUCKET}/scripts/count.py",
                   "arguments": ["--JOB_NAME", "count"], "bookmark_option": "job-bookmark-disable", "bookmark": {}})
    deadline = time.monotonic() + timeout
    while (result := worker.result(1)) is None:
        assert time.monotonic() < deadline, f"no result within {timeout}s"
    return result


def mapped_files(worker: SparkWorker) -> str:
    """The memory maps of the worker's JVM (the worker's child process running java)."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(stat[1]) == worker.process.pid and b"java" in (entry / "cmdline").read_bytes():
                return (entry / "maps").read_text()
        except OSError:
            continue
    raise AssertionError("the worker has no JVM")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    class_archive_folder().mkdir(parents=True)
    return class_archive_folder()


@pytest.fixture
def worker(s3_data, tmp_path):
    worker = SparkWorker(s3_data.endpoint_url, s3_data.region, tmp_path / "worker.log")
    yield worker
    worker.stop()


def test_a_worker_starts_with_the_archive_the_first_run_left(built_archive, cache, worker):
    archive = Path(shutil.copy(built_archive, cache / built_archive.name))

    worker.start()

    assert str(archive.resolve()) in mapped_files(worker)
    assert run_script(worker)["state"] == "SUCCEEDED"
    assert worker.log_path.read_text().count(f"class archive {archive.name}") == 1


def test_an_archive_the_jvm_refuses_is_removed_and_the_run_succeeds(s3_data, cache, worker):
    garbage = cache / f"{class_archive_key()}-4096.jsa"
    garbage.write_bytes(b"not a class archive\n".ljust(4096, b"\0"))

    worker.start()

    assert run_script(worker)["state"] == "SUCCEEDED"
    assert not garbage.exists()  # so the builder makes a good one after this run
    assert str(garbage.resolve()) not in mapped_files(worker)


def test_an_archive_the_jvm_dies_on_is_removed_and_spark_starts_without_it(built_archive, cache, worker):
    # Java 17 crashes on a cut-short archive; the name usually gives the size away, here it is made to match.
    content = built_archive.read_bytes()[: built_archive.stat().st_size // 2]
    cut_short = cache / f"{class_archive_key()}-{len(content)}.jsa"
    cut_short.write_bytes(content)

    worker.start()

    assert run_script(worker)["state"] == "SUCCEEDED"
    assert not cut_short.exists()
    assert "starting it without" in worker.log_path.read_text()


def test_an_archive_shorter_than_its_name_says_is_never_used(built_archive, cache, worker):
    cut_short = cache / built_archive.name
    cut_short.write_bytes(built_archive.read_bytes()[:4096])

    assert usable_class_archive() is None
    worker.start()
    assert run_script(worker)["state"] == "SUCCEEDED"
