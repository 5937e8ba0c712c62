"""The Spark worker: a long-lived process that keeps one local Spark session warm and runs job scripts.

Started by the glue engine (`python -m dealab.engines.glue.worker RESULT_FD`), never inside the gateway.
It reads one run request per line on stdin and answers each with one JSON line on RESULT_FD. A script's
print() output goes to CloudWatch Logs /aws-glue/jobs/output, its stderr and tracebacks to
/aws-glue/jobs/error, both in a stream named after the run id, through the stack's Logs API.

`python -m dealab.engines.glue.worker --build-class-archive` instead makes the JVM class archive (spark.py)
that later workers start with, and exits.

With DEALAB_SPARK_MASTER (spark.SparkCluster) the session's tasks run on a Spark standalone cluster: the worker
ships the glue runtime to its executors as a zip and, before it says it is ready, runs one task there.

The worker never outlives the stack: Linux sends it SIGTERM when the stack ends (PR_SET_PDEATHSIG), even by
kill -9, and a thread watching its parent pid does the same work should the main thread be stuck. Either way
it ends its whole process group (its JVM gets SIGTERM first, so Spark cleans its temporary folders, then
SIGKILL) and what its scripts started outside that group, then exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import queue
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3

from dealab.engines.glue.job_arguments import JobArgumentError
from dealab.engines.glue.pyshell import (
    MARK_OWNER,
    MARK_PARENT,
    MARK_ROLE,
    MARK_RUN,
    die_with_parent,
    end_own_group,
    kill_marked,
    process_tree,
    script_outcome,
    watch_parent,
)
from dealab.engines.glue.spark import (
    SparkCluster,
    SparkSetupError,
    build_session,
    class_archive_folder,
    class_archive_key,
    set_run_credentials,
    usable_class_archive,
    using_class_archive,
    writing_class_archive,
)
from dealab.engines.glue.worker_process import RUNTIME_DIR, WORKER_ROLE

OUTPUT_LOG_GROUP = "/aws-glue/jobs/output"
ERROR_LOG_GROUP = "/aws-glue/jobs/error"
LOG_FLUSH_SECONDS = 1.0
MAX_EVENTS_PER_PUT = 1000
APP_NAME = "dealab-glue-worker"
# How long a worker that has just started waits for a run before it warms up. A run that was already waiting for
# it (a job started right after CreateJob) comes within milliseconds and does the warm-up's work itself, without
# the warm-up's own jobs: Lab 06 job cold, 7 runs of each alternated at load 3-5, median 22.1 s → 21.3 s and
# 20.0 → 19.0 CPU seconds (warming up in a thread beside the run: 21.5 s, no better).
FIRST_RUN_WAIT_SECONDS = 1.0
KEPT_CLASS_ARCHIVES = 3
# How long the JVM and the rest of the worker's group have after SIGTERM before SIGKILL when the worker ends.
GROUP_GRACE_SECONDS = 5.0
# How long the check of a cluster waits for an executor before the worker gives up starting.
EXECUTOR_WAIT_SECONDS = 90.0
EXECUTOR_CHECK_TAG = "dealab-executor-check"
RUNTIME_ARCHIVE = "glue-runtime.zip"
# The line of an executor's failure that says what is wrong, found in the Java stack trace pyspark hands back.
EXECUTOR_FAILURE_LINE = re.compile(r"^.*(?:PYTHON_VERSION_MISMATCH|ModuleNotFoundError|ImportError|ClassNotFoundException).*$", re.MULTILINE)


def real_time_ms() -> int:
    return int(time.time() * 1000)


def lab_time_ms(offset_seconds: float):
    """A clock reading lab time in milliseconds: CloudWatch Logs keeps only events near its own "now", which is
    the lab clock, so lines stamped in real time after `clock advance 700d` would be dropped as too old."""
    return lambda: int((time.time() + offset_seconds) * 1000)


class LogStream:
    """Lines written to a stream, sent to one CloudWatch Logs stream every second and at the end, each stamped
    by `clock_ms` (lab time)."""

    def __init__(self, logs, group: str, stream: str, clock_ms=real_time_ms):
        self._logs, self.group, self.stream = logs, group, stream
        self._clock_ms = clock_ms
        self._pending: list[dict] = []
        self._partial = ""
        self._lock = threading.Lock()
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            now = self._clock_ms()
            self._pending.extend({"timestamp": now, "message": line} for line in lines if line)
        return len(text)

    def flush(self) -> None:
        """Python's flush is a no-op here; lines leave with the next send."""

    def isatty(self) -> bool:
        return False

    def send(self, final: bool = False) -> None:
        with self._lock:
            if final and self._partial.strip():
                self._pending.append({"timestamp": self._clock_ms(), "message": self._partial})
                self._partial = ""
            events, self._pending = self._pending, []
        try:
            for start in range(0, len(events), MAX_EVENTS_PER_PUT):
                self._logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events[start:start + MAX_EVENTS_PER_PUT])
        except Exception as error:  # losing log lines must not lose the run; the worker log keeps the reason
            print(f"dealab worker: could not send {len(events)} log lines to {self.group}/{self.stream}: {error}", file=sys.__stderr__)


class RunLogs:
    """The output and error streams of one run, swapped in for sys.stdout / sys.stderr while it runs."""

    def __init__(self, logs, run_id: str, clock_ms=real_time_ms):
        self.output = LogStream(logs, OUTPUT_LOG_GROUP, run_id, clock_ms)
        self.error = LogStream(logs, ERROR_LOG_GROUP, run_id, clock_ms)
        self._done = threading.Event()
        self._sender = threading.Thread(target=self._send_periodically, daemon=True)

    def _send_periodically(self) -> None:
        while not self._done.wait(LOG_FLUSH_SECONDS):
            self.output.send()
            self.error.send()

    def __enter__(self) -> RunLogs:
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.output, self.error
        self._sender.start()
        return self

    def __exit__(self, *exc) -> None:
        sys.stdout, sys.stderr = self._saved
        self._done.set()
        self._sender.join()
        self.output.send(final=True)
        self.error.send(final=True)


def reuse_active_spark_context() -> None:
    """Makes `SparkContext()` in a script return the worker's running context, as on a Glue driver.

    Glue scripts construct SparkContext() themselves; a second context in one process is an error in Spark.
    """
    from pyspark import SparkContext

    original_init = SparkContext.__init__

    def __new__(cls, *args, **kwargs):
        active = SparkContext._active_spark_context
        return active if active is not None else object.__new__(cls)

    def __init__(self, *args, **kwargs):
        if getattr(self, "_jsc", None) is not None:
            return
        original_init(self, *args, **kwargs)

    SparkContext.__new__ = __new__
    SparkContext.__init__ = __init__


def forget_library_clients() -> None:
    """The glue library keeps one client per service; a run with other keys needs new ones."""
    from awsglue import catalog, s3_objects, sources

    for made in (catalog.glue, s3_objects.s3, sources.dynamodb):
        made.cache_clear()


def stack_credentials() -> tuple[str, str]:
    """The keys the engine gave this worker (SparkWorker._environment): Spark's S3 requests are signed with them."""
    return os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]


def runtime_archive(folder: Path) -> Path:
    """The glue runtime (awsglue, awsgluedq) as one zip, for executors that do not share this machine's files;
    written whole, then renamed, so an executor never fetches half of one."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / RUNTIME_ARCHIVE
    partial = archive.with_name(f"{RUNTIME_ARCHIVE}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(RUNTIME_DIR.rglob("*.py")):
            bundle.write(path, path.relative_to(RUNTIME_DIR).as_posix())
    partial.replace(archive)
    return archive


def executor_failure(error: Exception) -> str:
    text = str(error)
    found = EXECUTOR_FAILURE_LINE.search(text)
    return (found.group(0) if found else text.strip().splitlines()[0]).strip()


def check_executors(spark, cluster: SparkCluster, wait_seconds: float = EXECUTOR_WAIT_SECONDS) -> None:
    """One task on the cluster before the worker says it is ready: the cluster grants an executor, whose Python
    is this one's minor version (pyspark refuses any other) and imports the glue runtime. Either failure becomes
    one line in the run's ErrorMessage instead of a job that waits for resources forever or fails in a task."""

    def probe(_):
        import awsglue.dynamicframe  # noqa: F401 (the shipped zip, or the executor's own copy)

        return True

    context = spark.sparkContext
    expired = threading.Event()

    def give_up() -> None:
        expired.set()
        context.cancelJobsWithTag(EXECUTOR_CHECK_TAG)

    context.addJobTag(EXECUTOR_CHECK_TAG)
    timer = threading.Timer(wait_seconds, give_up)
    timer.start()
    try:
        context.parallelize([0], 1).map(probe).collect()
    except Exception as error:
        if expired.is_set():
            raise SparkSetupError(f"the Spark cluster {cluster.master} gave this job no executor within {wait_seconds:.0f}s: "
                                  "are its workers up, with a free core and the executor's memory?") from None
        raise SparkSetupError(f"the executors of the Spark cluster {cluster.master} cannot run Glue scripts: {executor_failure(error)}") from None
    finally:
        timer.cancel()
        context.removeJobTag(EXECUTOR_CHECK_TAG)


class Worker:
    def __init__(self, endpoint_url: str, cluster: SparkCluster | None = None):
        self.endpoint_url = endpoint_url
        self.cluster = cluster
        self.spark = None
        self._running: str | None = None
        self._running_lock = threading.Lock()
        self._logs = boto3.client("logs")

    def start_spark(self, java_options: tuple[str, ...] | None = None) -> None:
        """Starts Spark: with the class archive when there is a usable one, unless `java_options` say otherwise."""
        started = time.monotonic()
        if self.cluster:
            self.cluster.check_master()
        archive = usable_class_archive() if java_options is None else None
        self.spark = self._session(archive) if java_options is None else self._build(java_options)
        self.spark.sparkContext.setLogLevel("ERROR")
        print(f"dealab worker: Spark session in {time.monotonic() - started:.1f}s ({f'class archive {archive.name}' if archive else 'no class archive'})", file=sys.stderr)
        if self.cluster:
            self.spark.sparkContext.addPyFile(str(runtime_archive(Path(os.environ.get(MARK_OWNER) or tempfile.gettempdir()))))
            check_executors(self.spark, self.cluster)
            print(f"dealab worker: executors of {self.cluster.master} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)

    def _build(self, java_options: tuple[str, ...] = ()):
        return build_session(self.endpoint_url, APP_NAME, java_options, self.cluster, stack_credentials(), per_run_credentials=True)

    def _session(self, archive: Path | None):
        """A session started with `archive`. An archive the JVM dies on (Spark is then started without it) or
        refuses (the JVM then runs without it) is deleted, so that a builder makes a new one after the next run."""
        if archive is None:
            return self._build()
        try:
            session = self._build(using_class_archive(archive))
        except Exception as error:  # if Spark fails without the archive too, that error is the one to report
            print(f"dealab worker: Spark did not start with the class archive {archive} ({error}); starting it without", file=sys.stderr)
            session = self._build()
        if not jvm_maps(session, archive):
            print(f"dealab worker: the JVM did not use the class archive {archive}; deleting it", file=sys.stderr)
            archive.unlink(missing_ok=True)
        return session

    def warm_up(self) -> None:
        """Loads the classes a first small job needs (JSON reader, Parquet writer, S3A), so runs start warm. On a
        cluster only the driver's S3A: executors elsewhere cannot read this machine's files (the executor check
        has already started their Python)."""
        started = time.monotonic()
        if self.cluster is None:
            with tempfile.TemporaryDirectory() as folder:
                sample = Path(folder) / "sample.json"
                sample.write_text('{"id": 1, "day": "2024-01-01"}\n')
                frame = self.spark.read.json(str(sample))
                frame.dropDuplicates(["id"]).write.partitionBy("day").parquet(str(Path(folder) / "out"))
        jvm = self.spark._jvm
        jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI.create("s3://dealab-warm-up/"), self.spark._jsc.hadoopConfiguration())
        print(f"dealab worker: warm-up in {time.monotonic() - started:.1f}s", file=sys.stderr)

    def run(self, request: dict) -> dict:
        from awsglue import run_context

        run_id = request["run_id"]
        context = run_context.begin(request["job_name"], run_id, request["bookmark_option"], request["bookmark"])
        context.lab_time_offset_seconds = request.get("lab_time_offset_seconds", 0.0)
        context.lakeformation_fine_grained = bool(request.get("lakeformation_fine_grained"))
        script_name = request["script_location"].rsplit("/", 1)[-1]
        spark_conf = request.get("spark_conf", {})

        def run_script() -> None:
            self._apply_spark_conf(spark_conf)
            source = self._fetch_script(request["script_location"])
            sys.argv = [script_name, *request["arguments"]]
            exec(compile(source, script_name, "exec"), {"__name__": "__main__", "__file__": script_name, "__builtins__": __builtins__})

        os.environ[MARK_RUN] = run_id  # inherited by every process the script starts
        try:
            with (RunLogs(self._logs, run_id, lab_time_ms(request.get("lab_time_offset_seconds", 0.0))), self._running_as(run_id),
                  self._acting_as(request.get("credentials")), self._job_arguments(request, spark_conf)):
                state, error_message = script_outcome(run_script, script_name)
        finally:
            del os.environ[MARK_RUN]
            self._end_processes_of(run_id)
        self._after_run()
        return {"run_id": run_id, "state": state, "error_message": error_message, "bookmark": context.bookmark_after_commit()}

    @contextlib.contextmanager
    def _job_arguments(self, request: dict, spark_conf: dict[str, str]) -> Iterator[None]:
        """For one run, what its job arguments give (job_arguments.py): notes in its error log, its working folder
        as the current one, its --extra-py-files and modules on sys.path (the driver's, and each task's through
        the context's Python includes); after it, the worker as it was, the modules imported from those paths
        forgotten, so the next run of another job does not see them, and the --conf settings as they were."""
        from pyspark import SparkContext

        for note in request.get("notes", []):
            print(f"dealab: {note}", file=sys.stderr)
        paths = list(request.get("python_paths", []))
        if self.cluster and any(Path(path).is_file() or any(Path(path).iterdir()) for path in paths):
            print(f"dealab: --extra-py-files and --additional-python-modules are on the driver's sys.path; the executors of "
                  f"{self.cluster.master} find them only if they share this machine's files", file=sys.stderr)
        context = SparkContext._active_spark_context
        includes = getattr(context, "_python_includes", None)
        before = {key: self.spark.conf.get(key, None) for key in spark_conf if self.spark.conf.isModifiable(key)}
        home = os.getcwd()
        os.chdir(request.get("work_dir") or home)
        sys.path[:0] = paths
        if includes is not None:
            includes.extend(paths)  # a task's worker puts each on its sys.path (an absolute path stays as it is)
        try:
            yield
        finally:
            os.chdir(home)
            for path in paths:
                with contextlib.suppress(ValueError):
                    sys.path.remove(path)
                if includes is not None:
                    with contextlib.suppress(ValueError):
                        includes.remove(path)
            for name, module in list(sys.modules.items()):
                if any(str(getattr(module, "__file__", "") or "").startswith(path) for path in paths):
                    del sys.modules[name]
            if SparkContext._active_spark_context is not None:
                for key, value in before.items():
                    if value is None:
                        self.spark.conf.unset(key)
                    else:
                        self.spark.conf.set(key, value)

    def _apply_spark_conf(self, settings: dict[str, str]) -> None:
        """--conf settings: those Spark can change in a running session (SQL settings); any other fails the run."""
        for key, value in settings.items():
            if not self.spark.conf.isModifiable(key):
                raise JobArgumentError(f"--conf {key}={value} cannot be honoured: the Spark worker is already running and only "
                                        "settings Spark changes at run time (spark.sql.*, such as spark.sql.shuffle.partitions) can be set")
        for key, value in settings.items():
            self.spark.conf.set(key, value)

    @contextlib.contextmanager
    def _acting_as(self, credentials: dict[str, str] | None) -> Iterator[None]:
        """For one run, its role session's keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) in
        everything that signs: the environment (the script's boto3 clients and the processes it starts), the glue
        library's clients, and the driver's S3A requests; after it, the worker's own keys again."""
        from pyspark import SparkContext

        names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        before = {name: os.environ.get(name) for name in names}

        def use(keys: dict[str, str | None]) -> None:
            for name in names:
                if keys.get(name):
                    os.environ[name] = keys[name]
                else:
                    os.environ.pop(name, None)
            boto3.DEFAULT_SESSION = None  # it keeps the keys it first read
            forget_library_clients()
            if self.spark is not None and SparkContext._active_spark_context is not None:
                set_run_credentials(self.spark, keys.get("AWS_ACCESS_KEY_ID") or "", keys.get("AWS_SECRET_ACCESS_KEY") or "",
                                    keys.get("AWS_SESSION_TOKEN"))

        use(credentials or before)
        from awsglue import run_context

        if before.get("AWS_ACCESS_KEY_ID") and before.get("AWS_SECRET_ACCESS_KEY"):
            run_context.current.service_credentials = (before["AWS_ACCESS_KEY_ID"], before["AWS_SECRET_ACCESS_KEY"])
        try:
            yield
        finally:
            use(before)

    @contextlib.contextmanager
    def _running_as(self, run_id: str) -> Iterator[None]:
        with self._running_lock:
            self._running = run_id
        try:
            yield
        finally:
            with self._running_lock:
                self._running = None

    @staticmethod
    def _end_processes_of(run_id: str) -> None:
        """The run ends with its script, as on AWS: what the script started goes, even outside the worker's process
        group, but not a Spark the script started anew (its JVM would be marked with the run)."""
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        jvm_pid = getattr(getattr(gateway, "proc", None), "pid", None)
        spare = frozenset(process_tree(jvm_pid)) if jvm_pid else frozenset()
        kill_marked({MARK_OWNER: os.environ.get(MARK_OWNER, ""), MARK_RUN: run_id}, spare)

    def interrupt(self, run_id: str) -> None:
        """Ends the running script as Ctrl-C would: pyspark's SIGINT handler cancels its Spark jobs and raises
        KeyboardInterrupt in it. A signal to the main thread also wakes it from a sleep or a blocking call."""
        with self._running_lock:
            if self._running == run_id:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def _fetch_script(self, location: str) -> str:
        """The script, fetched as the run's role (Glue fetches it with the job's role)."""
        from awsglue.s3_objects import s3, split_uri

        bucket, key = split_uri(location)
        return s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def _after_run(self) -> None:
        from pyspark import SparkContext

        if SparkContext._active_spark_context is None:  # the script stopped Spark; bring it back for the next run
            self.start_spark()
            self.warm_up()
        else:
            self.spark.catalog.clearCache()


def jvm_maps(session, archive: Path) -> bool:
    """Whether the session's JVM has `archive` mapped, i.e. uses it (Linux; elsewhere assumed)."""
    try:
        maps = Path(f"/proc/{session.sparkContext._gateway.proc.pid}/maps").read_text()
    except OSError:
        return True
    return str(archive.resolve()) in maps


def exercise_typical_job(spark) -> None:
    """What the Lab 06 job and most small Glue ETL scripts do, on a few local rows, plus S3A requests (for a bucket
    that does not exist, so the learner's S3 is left as it is): the classes they load go into the class archive."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "orders.json"
        source.write_text("".join(json.dumps({"id": str(n % 3), "amount": f"{n * 1.5}", "ts": f"2024-01-0{n % 3 + 1}T10:00:00"}) + "\n" for n in range(6)))
        raw = spark.read.json(str(source))
        typed = raw.select("id", F.col("amount").cast("double").alias("amount"), F.to_timestamp("ts").alias("ts"),
                           F.to_json(F.struct("id", "amount")).alias("raw")).cache()
        latest = typed.withColumn("n", F.row_number().over(Window.partitionBy("id").orderBy(F.col("ts").desc()))).where("n = 1")
        print(f"{typed.count()} rows, {latest.count()} latest")
        typed.select(F.from_json("raw", "id string, amount string").alias("r")).select("r.*").write.json(f"{folder}/json")
        latest.withColumn("day", F.to_date("ts")).write.partitionBy("day").parquet(f"{folder}/parquet")
        typed.write.option("header", "true").csv(f"{folder}/csv")
        totals = spark.read.parquet(f"{folder}/parquet").groupBy("day").agg(F.sum("amount").alias("total"))
        spark.read.option("header", "true").csv(f"{folder}/csv").join(totals, F.to_date("ts") == totals.day, "left").collect()
    try:
        spark.read.json("s3://dealab-class-archive-probe/none/").collect()
    except Exception as error:  # the bucket does not exist: the request, not its answer, is the point
        print(f"S3A probe: {type(error).__name__}")


def build_class_archive(endpoint_url: str) -> int:
    """Makes the class archive at the lowest CPU priority: a Spark session starts, warms up as a worker does and
    runs a typical small job; its JVM writes the classes it loaded when it exits. One builder per machine at a
    time (a lock); the archive appears under its final name only once complete."""
    die_with_parent(signal.SIGKILL)  # its JVM then sees its stdin end, and exits too
    os.nice(19)
    folder = class_archive_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("another process is building the class archive")
            return 0
        if usable_class_archive() is not None:
            return 0
        key = class_archive_key()
        for leftover in [*folder.glob("*.partial"), *folder.glob(f"{key}-*.jsa")]:  # cut short by a kill, or damaged
            leftover.unlink()
        partial = folder / f"{key}.jsa.partial"
        worker = Worker(endpoint_url)
        worker.start_spark(writing_class_archive(partial))
        worker.warm_up()
        exercise_typical_job(worker.spark)
        from pyspark import SparkContext

        jvm = SparkContext._gateway.proc
        worker.spark.stop()
        jvm.stdin.close()  # the JVM exits when its stdin closes, and writes the archive on its way out
        code = jvm.wait()
        if code != 0 or not partial.exists() or partial.stat().st_size == 0:
            (folder / f"{key}.failed").write_text(f"the JVM exited with status {code} and wrote no archive; see spark-class-archive.log "
                                                  "in the glue folder of the stack's state folder\n")
            print(f"no class archive: the JVM exited with status {code} without writing {partial}")
            return 1
        archive = partial.rename(folder / f"{key}-{partial.stat().st_size}.jsa")
        # Archives of other JVMs or jars (an old pyspark, another checkout's .venv) are kept, the newest few only
        # (~160 MB each): two checkouts on one machine would otherwise delete each other's archive at every build.
        for old in sorted(folder.glob("*.jsa"), key=lambda path: path.stat().st_mtime, reverse=True)[KEPT_CLASS_ARCHIVES:]:
            old.unlink()
    print(f"class archive {archive} written")
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["--build-class-archive"]:
        return build_class_archive(os.environ["AWS_ENDPOINT_URL"])
    end_with_the_stack()
    os.set_inheritable(int(argv[1]), False)  # a script's child started through a shell must not hold it open
    results = os.fdopen(int(argv[1]), "w", buffering=1)
    sys.path.insert(0, str(RUNTIME_DIR))
    reuse_active_spark_context()
    worker = Worker(os.environ["AWS_ENDPOINT_URL"], SparkCluster.from_environment(os.environ))
    try:
        worker.start_spark()
    except Exception as error:  # e.g. the S3A jars missing: the engine puts this in the run's ErrorMessage
        results.write(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}) + "\n")
        raise
    results.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    runs: queue.Queue = queue.Queue()
    threading.Thread(target=read_commands, args=(worker, runs), daemon=True).start()
    try:
        request = runs.get(timeout=FIRST_RUN_WAIT_SECONDS)
    except queue.Empty:  # nothing to run yet: the time until the first run goes into warming up
        worker.warm_up()
        request = runs.get()
    while request is not None:
        try:
            result = worker.run(request)
        except KeyboardInterrupt:  # a stop that landed just after the script ended
            result = {"run_id": request["run_id"], "state": "FAILED", "error_message": "KeyboardInterrupt", "bookmark": None}
        results.write(json.dumps(result) + "\n")
        request = runs.get()
    return 0


_ending = threading.Lock()


def end_worker(*_signal_arguments) -> None:
    """Ends the worker's process group (its JVM included), the processes its scripts started outside it, and the
    worker itself. Called on SIGTERM and by the watch on the stack; the first caller does the work."""
    if not _ending.acquire(blocking=False):
        return
    end_own_group(GROUP_GRACE_SECONDS)
    kill_marked({MARK_OWNER: os.environ.get(MARK_OWNER, ""), MARK_ROLE: WORKER_ROLE})
    os._exit(0)


def end_with_the_stack() -> None:
    """Ties the worker's life to the stack's (its parent): SIGTERM when the parent ends, and a watch on it."""
    signal.signal(signal.SIGTERM, end_worker)
    die_with_parent(signal.SIGTERM)
    parent = os.environ.get(MARK_PARENT, "")
    if parent.isdigit():
        watch_parent(int(parent), end_worker)


def read_commands(worker: Worker, runs: queue.Queue) -> None:
    """Run requests go to the main thread; {"stop": run_id} interrupts that run if it is the one running."""
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "stop" in message:
            worker.interrupt(message["stop"])
        else:
            runs.put(message)
    runs.put(None)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
