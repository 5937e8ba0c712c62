"""Runs query executions asynchronously, as Athena does: a small pool of workers, each query on its own
connection to a locked-down DuckDB database (see sandbox.py) with its own scratch folder, measuring the bytes each query
reads from S3, stopping it at the work group's bytes-scanned cutoff, at dealab's query timeout or on
StopQueryExecution, and writing results with their .metadata to the output location through S3, encrypted
as the result configuration says.

How a query reads S3 (READ_PATHS): "direct", the default, runs every query on a connection (a cursor) of one
long-lived QueryDatabase with s3reads.S3ReadFileSystem registered, so its reads are GetObject calls handed to the
gateway in this process by the loopback's raw seam (no HTTP, no botocore, no extension to load), made and
counted for that query alone (its own token in its paths); "http" makes a fresh database per query, loads httpfs
and points it at the gateway, counting bytes from DuckDB's HTTP log. Both pass the same authorization (the
gateway's engines) and count the same bytes.

Nothing a query leaves behind reaches the next: the shared database is opened read-only (no table, view, macro,
sequence or type can be made in it), what a connection makes is temporary and goes with the connection, its
configuration is locked for good, and a query's paths name a token that dies with the query. A cursor costs
~0.3 ms where a fresh database cost 12-50 ms."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import duckdb_extension_httpfs
from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.wire import labtime
from dealab.engines.athena import results, sandbox, statements, translate
from dealab.engines.athena.s3reads import CallerS3, ObjectCache, QueryReads, S3Error, S3ReadFileSystem, ScanCounter
from dealab.engines.athena.catalog import GlueCatalog, split_s3
from dealab.engines.athena.errors import ENGINE_ERROR_TYPE, SYSTEM_ERROR, QueryError
from dealab.engines.athena.governance import governed
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.store import STACK_STOPPED_REASON

log = logging.getLogger("dealab.athena")

WORKERS = 2
HTTPFS_EXTENSION = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
RESULT_WRITE_ERROR_TYPE = 401  # "Failed to write query results to Amazon S3"
BYTES_SCANNED_SQL = (
    "SELECT coalesce(sum(TRY_CAST(response.headers['Content-Length'] AS BIGINT)), 0) "
    "FROM duckdb_logs_parsed('HTTP') WHERE request.type = 'GET'"
)


# How query databases read S3 (module docstring); DEALAB_ATHENA_READ_PATH=http brings back the extension's
# reads over HTTP, kept as the fallback and as the measure the direct path's byte counts are tested against.
READ_PATH_ENV = "DEALAB_ATHENA_READ_PATH"
READ_PATHS = ("direct", "http")
BYTES_LIMIT_REASON = "Bytes scanned limit was exceeded"
USER_CANCEL_REASON = "Query cancelled by user"
WATCH_POLL_SECONDS = 0.1
# Athena cancels a DML query after 30 minutes; on a laptop a query that long is a mistake (a recursive CTE
# that never ends), so dealab's default is 5 minutes, settable in seconds through the environment.
QUERY_TIMEOUT_ENV = "DEALAB_ATHENA_QUERY_TIMEOUT"
DEFAULT_QUERY_TIMEOUT_SECONDS = 300.0
TIMEOUT_REASON = "Query timeout: the query ran longer than {seconds:g} seconds, dealab's limit ({env} sets it, in seconds)"


def read_path() -> str:
    chosen = os.environ.get(READ_PATH_ENV, "").strip().lower() or READ_PATHS[0]
    if chosen not in READ_PATHS:
        log.warning("%s=%r is not one of %s; using %s", READ_PATH_ENV, chosen, READ_PATHS, READ_PATHS[0])
        return READ_PATHS[0]
    return chosen


# Where Athena's ResultConfiguration.EncryptionConfiguration puts a result file's encryption: the
# x-amz-server-side-encryption header of each PutObject (a bucket policy can require it). CSE_KMS (the client
# encrypts before uploading, with S3's encryption-client envelope) is refused when the query is started.
SERVER_SIDE_ENCRYPTION = {"SSE_S3": "AES256", "SSE_KMS": "aws:kms"}
RESULT_ACCESS_DENIED = ("Access denied when writing output to url: {url} . Please ensure you are allowed to access the S3 bucket. "
                        "If you are encrypting query results with KMS key, please ensure you are allowed to access your KMS key")


def encryption_headers(configuration: dict | None) -> dict[str, str]:
    """PutObject headers for a ResultConfiguration.EncryptionConfiguration (none when there is none)."""
    if not configuration:
        return {}
    headers = {"x-amz-server-side-encryption": SERVER_SIDE_ENCRYPTION[configuration["EncryptionOption"]]}
    if configuration["EncryptionOption"] == "SSE_KMS" and configuration.get("KmsKey"):
        headers["x-amz-server-side-encryption-aws-kms-key-id"] = configuration["KmsKey"]
    return headers


def query_timeout_seconds() -> float:
    text = os.environ.get(QUERY_TIMEOUT_ENV, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_QUERY_TIMEOUT_SECONDS
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        log.warning("%s=%r is not a positive number of seconds; using %g", QUERY_TIMEOUT_ENV, text, DEFAULT_QUERY_TIMEOUT_SECONDS)
        return DEFAULT_QUERY_TIMEOUT_SECONDS
    return seconds


class Cancelled(Exception):
    """The query was stopped (StopQueryExecution) or went over the work group's bytes-scanned cutoff."""


class QueryWatch:
    """Interrupts a running query once the bytes it has read pass the work group's cutoff, once it has run
    longer than the timeout, or once it is asked to stop (StopQueryExecution, the stack stopping). Once fired
    it interrupts again at every poll, so a step that swallowed one interrupt (partition pruning falls back
    when DuckDB fails), or an interrupt that came before the query began, does not let the query run on.
    The runner's Watchdog polls it."""

    def __init__(self, box: Sandbox, cutoff: int | None, timeout: float, stop_requested: Callable[[], bool]):
        self.exceeded = False
        self.timed_out = False
        self.stopped = False
        self.deadline = time.monotonic() + timeout
        self._box, self._cutoff, self._stop_requested = box, cutoff, stop_requested
        # the HTTP path's count is in DuckDB's log, read through a second connection to the same database
        self._reader = box.connection.cursor() if cutoff and box.reads is None else None
        self._ended = False
        self._lock = threading.Lock()  # a poll and end() never overlap: end() closes the reader a poll uses

    @property
    def fired(self) -> bool:
        return self.exceeded or self.timed_out or self.stopped

    def exceed(self) -> None:
        """The direct path's counter passed the cutoff: interrupt now rather than at the next poll."""
        self.exceeded = True
        self._box.interrupt()

    def poll(self, now: float) -> None:
        with self._lock:
            if self._ended:
                return
            if not self.fired and self._stop_requested():
                self.stopped = True
            if not self.fired and now >= self.deadline:
                self.timed_out = True
            if not self.fired and self._cutoff and self._box.scanned(self._reader) > self._cutoff:
                self.exceeded = True
            if self.fired:
                self._box.interrupt()

    def end(self) -> None:
        """The query is over: no poll touches it, or its box, once this returns."""
        with self._lock:
            self._ended = True
            if self._reader is not None:
                self._reader.close()


class Watchdog:
    """One thread polls the QueryWatch of every running query, every WATCH_POLL_SECONDS and at the nearest deadline.
    A thread of its own per query cost ~0.45 ms on each query's path (starting one waits for it to run, while the
    answer to StartQueryExecution is being written)."""

    def __init__(self):
        self._watches: set[QueryWatch] = set()
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def watch(self, box: Sandbox, cutoff: int | None, timeout: float, stop_requested: Callable[[], bool]) -> QueryWatch:
        watch = QueryWatch(box, cutoff, timeout, stop_requested)
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="athena-watch", daemon=True)
                self._thread.start()
        self._changed.set()  # its deadline may be the nearest
        return watch

    def forget(self, watch: QueryWatch) -> None:
        watch.end()
        with self._lock:
            self._watches.discard(watch)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._changed.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                watches = list(self._watches)
            now = time.monotonic()
            for watch in watches:
                try:
                    watch.poll(now)
                except Exception:  # one query's failed poll must not end the watch of the others
                    log.exception("watching a query failed")
            wait = min([WATCH_POLL_SECONDS, *(watch.deadline - now for watch in watches)]) if watches else None
            self._changed.wait(max(0.0, wait) if wait is not None else None)
            self._changed.clear()


class Sandbox:
    """One query's DuckDB connection, its scratch folder (the only local path it writes), and (on the direct read
    path) the reads of its own S3 paths and its connection to the one-thread database (QueryDatabase); `release`
    is what discard does besides (the token's end)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, folder: Path, reads: QueryReads | None = None,
                 release: Callable[[], None] | None = None, one_thread: duckdb.DuckDBPyConnection | None = None):
        self.connection, self.folder, self.reads, self._release = connection, folder, reads, release
        self.one_thread = one_thread

    def interrupt(self) -> None:
        for connection in (self.connection, self.one_thread):
            if connection is not None:
                connection.interrupt()

    def scanned(self, connection: duckdb.DuckDBPyConnection | None = None) -> int:
        """Bytes this query has read from S3 so far."""
        if self.reads is not None:
            return self.reads.counter.bytes
        return int((connection or self.connection).execute(BYTES_SCANNED_SQL).fetchone()[0])

    def shown(self, text: str) -> str:
        """`text` (an error's reason) with this query's own paths as the s3:// URLs they read."""
        return text.replace(self.reads.prefix, "s3://") if self.reads is not None else text

    def discard(self) -> None:
        self.connection.close()
        if self.one_thread is not None:
            self.one_thread.close()
        if self._release is not None:
            self._release()
        shutil.rmtree(self.folder, ignore_errors=True)


class QueryDatabase:
    """The DuckDB database queries on the direct read path share, a connection each. It is a file made once with
    the engine's macros and then opened read-only, so no query can change what the next sees; temporary views
    (the planner's) live and die with their connection; the configuration is locked before any query runs.
    Local files: only `queries` (each query's scratch folder is made there; spills go there too).

    A copy of it runs on one thread (`threads` is a database's setting, not a connection's): a query that
    reads little runs there (statements.common.ONE_THREAD_MAX_BYTES), since its time goes to DuckDB's
    calls into the Python file system, which several threads make in turn, waiting for Python's lock. Its
    connections read through the same file system and tokens, and write nothing (spills go to `one-thread`)."""

    def __init__(self, folder: Path, files: S3ReadFileSystem):
        self.folder, self.files = folder, files
        self.queries = folder / "queries"
        self.queries.mkdir(parents=True)
        path = folder / "queries.duckdb"
        with duckdb.connect(str(path), config=sandbox.CONNECT_CONFIG) as writer:
            for statement in translate.macro_statements():
                writer.execute(statement)
        shutil.copyfile(path, folder / "one-thread.duckdb")
        self.connection: duckdb.DuckDBPyConnection | None = None
        self.one_thread: duckdb.DuckDBPyConnection | None = None
        try:
            self.connection = self._locked(path, os.cpu_count() or 2, self.queries)
            self.one_thread = self._locked(folder / "one-thread.duckdb", 1, folder / "one-thread")
        except BaseException:
            self.close()
            raise

    def _locked(self, path: Path, threads: int, scratch: Path) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(str(path), read_only=True, config={**sandbox.CONNECT_CONFIG, "threads": threads})
        try:
            connection.register_filesystem(self.files)  # before the lockdown: a file system registered after it is refused every path
            for statement in [
                # Off: DuckDB's cache of file reads is keyed by path, and each query's paths carry a token of its own,
                # so it kept every query's reads (~10 MB a query for the bench's CTE: the stack grew 0.36 -> 10 GB in
                # 40 s of queries, and slowed as it grew) and never served another. A query's own repeated reads are
                # served by its QueryReads, and reads across queries by the ObjectCache.
                "SET enable_external_file_cache = false",
                *translate.setting_statements(),
                *sandbox.lockdown_statements(scratch),
            ]:
                connection.execute(statement)
        except BaseException:
            connection.close()
            raise
        return connection

    def open(self) -> Sandbox:
        # named, not made: only CTAS, INSERT and UNLOAD write there (and make it), a query need not pay for a folder
        folder = self.queries / f"query-{secrets.token_hex(8)}"
        reads = self.files.open_reads()
        return Sandbox(self.connection.cursor(), folder, reads, lambda: self.files.close_reads(reads), self.one_thread.cursor())

    def close(self) -> None:
        for connection in (self.connection, self.one_thread):
            if connection is not None:
                connection.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class QueryRunner:
    def __init__(self, endpoint_url: str, region: str, catalog: GlueCatalog, scratch: Path, on_change, caller: CallerS3 | None = None):
        self.endpoint = urlsplit(endpoint_url).netloc
        # S3 as the query's caller: reads on the direct path and result writes go through the gateway's
        # authorization (bucket policies, Block Public Access) as the learner's own calls would
        self.caller = caller
        self.read_path = read_path() if caller is not None else "http"
        self.reads = {path: 0 for path in READ_PATHS}  # queries run per read path (the admin endpoint shows them)
        self.region = region
        self.catalog = catalog
        self.scratch = scratch.resolve()  # resolved: DuckDB's allowed_directories compares path text
        self.on_change = on_change  # on_change(execution_id, **fields) persists a state change
        self.timeout = query_timeout_seconds()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="athena-query")
        self._watchdog = Watchdog()
        self._database: QueryDatabase | None = None  # the direct path's shared database, made once (warm_up)
        self._database_lock = threading.Lock()
        self._running: dict[str, Sandbox] = {}
        self._cancelled: set[str] = set()
        self._closing = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def submit(self, execution: dict) -> None:
        self._pool.submit(self._run, execution)

    def stop(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)
            box = self._running.get(execution_id)
        if box is not None:
            box.interrupt()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            for box in self._running.values():
                box.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._watchdog.close()
        with self._database_lock:
            database, self._database = self._database, None
        if database is not None:
            database.close()

    def _http_statements(self) -> list[str]:
        return [
            f"LOAD '{HTTPFS_EXTENSION}'",
            f"SET s3_endpoint = '{self.endpoint}'",
            "SET s3_url_style = 'path'",
            "SET s3_use_ssl = false",
            f"SET s3_region = '{self.region}'",
            f"SET s3_access_key_id = '{TEST_ACCESS_KEY}'",
            f"SET s3_secret_access_key = '{TEST_SECRET_KEY}'",
            "SET enable_http_metadata_cache = false",
            "CALL enable_logging('HTTP')",
        ]

    def _query_database(self) -> QueryDatabase:
        with self._database_lock:
            if self._database is None:
                # reads up to 16 MiB are kept across queries, by ETag (s3reads.ObjectCache)
                files = S3ReadFileSystem(self.caller, ObjectCache(), self.catalog.listed, keep_thread_states=True)
                self._database = QueryDatabase(Path(tempfile.mkdtemp(prefix="database-", dir=self.scratch)), files)
            return self._database

    def _http_sandbox(self) -> Sandbox:
        """The HTTP path's query gets a database of its own: DuckDB's HTTP log, its byte count, is per database."""
        folder = Path(tempfile.mkdtemp(prefix="query-", dir=self.scratch))
        connection = duckdb.connect(config={**sandbox.CONNECT_CONFIG, "threads": os.cpu_count() or 2})
        try:
            for statement in [*self._http_statements(), "SET enable_external_file_cache = true", *translate.setup_statements(),
                              *sandbox.lockdown_statements(folder)]:
                connection.execute(statement)
        except BaseException:
            Sandbox(connection, folder).discard()
            raise
        return Sandbox(connection, folder)

    def _open_sandbox(self) -> Sandbox:
        return self._query_database().open() if self.read_path == "direct" else self._http_sandbox()

    def warm_up(self) -> None:
        """Makes the shared database in the background, so the first query does not wait for it."""
        if self.read_path == "direct":
            self._pool.submit(self._query_database)

    # ------------------------------------------------------------ one execution

    def _run(self, execution: dict) -> None:
        execution_id = execution["QueryExecutionId"]
        with self._lock:
            if execution_id in self._cancelled:
                self._cancelled.discard(execution_id)
                return
        started = time.time()
        # the queue time is measured against SubmissionDateTime, which is on the lab clock
        self.on_change(execution_id, state="RUNNING", started=labtime.unix_time())
        box = None
        try:
            box = self._open_sandbox()
            connection = box.connection
            with self._lock:
                if execution_id in self._cancelled:  # stopped while the worker was getting ready
                    raise Cancelled(USER_CANCEL_REASON)
                self._running[execution_id] = box
            context = statements.StatementContext(
                execution_id=execution_id,
                sql=execution["Query"],
                database=(execution.get("QueryExecutionContext") or {}).get("Database", "default").lower(),
                catalog=governed(self.catalog, execution.get("_Caller")),
                connection=connection,
                one_thread=box.one_thread,
                scratch=box.folder,
                output_folder=execution["_OutputFolder"],
                s3_prefix=box.reads.prefix if box.reads is not None else "s3://",
            )
            cutoff = execution.get("_BytesScannedCutoff")
            watch = self._watchdog.watch(box, cutoff, self.timeout, lambda: self._closing or execution_id in self._cancelled)
            if box.reads is not None:
                box.reads.counter = ScanCounter(cutoff, watch.exceed)
            self.reads[self.read_path if box.reads is not None else "http"] += 1
            try:
                outcome = statements.execute(context)
            except duckdb.InterruptException:
                outcome = None
            except QueryError:
                with self._lock:
                    stopped = execution_id in self._cancelled or self._closing
                if not (watch.fired or stopped):
                    raise
                outcome = None  # an interrupt some step turned into an error: the stop, not the error, is the reason
            finally:
                self._watchdog.forget(watch)
                with self._lock:
                    self._running.pop(execution_id, None)
            scanned = box.scanned()
            engine_ms = int((time.time() - started) * 1000)
            if watch.exceeded or (cutoff and scanned > cutoff):
                self.on_change(execution_id, state="CANCELLED", reason=BYTES_LIMIT_REASON, scanned=scanned, engine_ms=engine_ms)
                return
            if outcome is None and watch.timed_out:
                raise QueryError(TIMEOUT_REASON.format(seconds=self.timeout, env=QUERY_TIMEOUT_ENV))
            with self._lock:
                if outcome is None and self._closing:
                    raise QueryError(STACK_STOPPED_REASON, category=SYSTEM_ERROR)
                if outcome is None or execution_id in self._cancelled:
                    raise Cancelled(USER_CANCEL_REASON)
            try:
                result, manifest = self._write_results(execution, outcome)
            except S3Error as error:
                location = execution["ResultConfiguration"]["OutputLocation"]
                if error.code in ("AccessDenied", "KMS.AccessDeniedException"):
                    raise QueryError(RESULT_ACCESS_DENIED.format(url=location), error_type=RESULT_WRITE_ERROR_TYPE) from None
                raise QueryError(f"Unable to verify/create output bucket {split_s3(location)[0]} ({error.code})",
                                 error_type=RESULT_WRITE_ERROR_TYPE) from None
            self.on_change(execution_id, state="SUCCEEDED", scanned=scanned, engine_ms=engine_ms, outcome=outcome, manifest=manifest,
                           result=result)
        except Cancelled as stopped:
            self.on_change(execution_id, state="CANCELLED", reason=str(stopped), engine_ms=int((time.time() - started) * 1000))
        except QueryError as error:
            reason = box.shown(error.reason) if box is not None else error.reason
            self.on_change(execution_id, state="FAILED", reason=reason, engine_ms=int((time.time() - started) * 1000),
                           error=(error.category, error.error_type))
        except Exception as error:  # an engine bug still ends the query FAILED with a one-line reason
            log.exception("query %s failed", execution_id)
            reason = f"GENERIC_INTERNAL_ERROR: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            reason = box.shown(reason) if box is not None else reason
            self.on_change(execution_id, state="FAILED", reason=reason, engine_ms=int((time.time() - started) * 1000), error=(SYSTEM_ERROR, ENGINE_ERROR_TYPE))
        finally:
            with self._lock:
                self._cancelled.discard(execution_id)
            if box is not None:
                box.discard()

    def _write_results(self, execution: dict, outcome: Outcome) -> tuple[bytes, str | None]:
        """Writes the result file (and its .metadata, and for CTAS/INSERT/UNLOAD the manifest) to S3 as the
        caller; returns the result file's bytes (GetQueryResults reads them without reading S3 again) and the
        manifest's location."""
        location = execution["ResultConfiguration"]["OutputLocation"]
        encryption = encryption_headers(execution["ResultConfiguration"].get("EncryptionConfiguration"))
        bucket, key = split_s3(location)
        body = results.to_csv(outcome) if outcome.tabular else results.to_text(outcome)
        self.caller.put_object(bucket, key, body, encryption)
        if outcome.tabular:
            self.caller.put_object(bucket, key + ".metadata", results.metadata_document(outcome), encryption)
        if outcome.data_files is None:
            return body, None
        manifest_key = key + "-manifest.csv"
        self.caller.put_object(bucket, manifest_key, "".join(f"{url}\n" for url in outcome.data_files).encode(), encryption)
        return body, f"s3://{bucket}/{manifest_key}"
