"""Runs query executions asynchronously, as Athena does: a small pool of workers, each with its own DuckDB
database (httpfs pointed at the gateway), measuring the bytes each query reads from S3 from DuckDB's HTTP
log, and writing results with their .metadata to the output location through S3."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import duckdb_extension_httpfs
from botocore.exceptions import ClientError

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.engines.athena import results, statements, translate
from dealab.engines.athena.catalog import GlueCatalog, split_s3
from dealab.engines.athena.errors import ENGINE_ERROR_TYPE, SYSTEM_ERROR, QueryError
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


BYTES_LIMIT_REASON = "Bytes scanned limit was exceeded"
USER_CANCEL_REASON = "Query cancelled by user"
CUTOFF_POLL_SECONDS = 0.1


class Cancelled(Exception):
    """The query was stopped (StopQueryExecution) or went over the work group's bytes-scanned cutoff."""


class CutoffWatch:
    """Interrupts a running query as soon as the bytes it has read pass the work group's cutoff."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, cutoff: int | None):
        self.exceeded = False
        self._done = threading.Event()
        self._thread = None
        if cutoff:
            self._thread = threading.Thread(target=self._watch, args=(connection, cutoff), name="athena-cutoff", daemon=True)
            self._thread.start()

    def _watch(self, connection: duckdb.DuckDBPyConnection, cutoff: int) -> None:
        reader = connection.cursor()  # a second connection to the same database sees the same HTTP log
        try:
            while not self._done.wait(CUTOFF_POLL_SECONDS):
                if reader.execute(BYTES_SCANNED_SQL).fetchone()[0] > cutoff:
                    self.exceeded = True
                    connection.interrupt()
                    return
        finally:
            reader.close()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


class QueryRunner:
    def __init__(self, endpoint_url: str, region: str, catalog: GlueCatalog, scratch: Path, on_change):
        self.endpoint = urlsplit(endpoint_url).netloc
        self.region = region
        self.catalog = catalog
        self.scratch = scratch
        self.on_change = on_change  # on_change(execution_id, **fields) persists a state change
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="athena-query")
        self._local = threading.local()
        self._running: dict[str, duckdb.DuckDBPyConnection] = {}
        self._cancelled: set[str] = set()
        self._closing = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def submit(self, execution: dict) -> None:
        self._pool.submit(self._run, execution)

    def stop(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled.add(execution_id)
            connection = self._running.get(execution_id)
        if connection is not None:
            connection.interrupt()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            for connection in self._running.values():
                connection.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = duckdb.connect(
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False, "threads": os.cpu_count() or 2}
            )
            connection.execute(f"LOAD '{HTTPFS_EXTENSION}'")
            for statement in [
                f"SET s3_endpoint = '{self.endpoint}'",
                "SET s3_url_style = 'path'",
                "SET s3_use_ssl = false",
                f"SET s3_region = '{self.region}'",
                f"SET s3_access_key_id = '{TEST_ACCESS_KEY}'",
                f"SET s3_secret_access_key = '{TEST_SECRET_KEY}'",
                "SET enable_http_metadata_cache = false",
                "CALL enable_logging('HTTP')",
                *translate.setup_statements(),
            ]:
                connection.execute(statement)
            self._local.connection = connection
        return connection

    # ------------------------------------------------------------ one execution

    def _run(self, execution: dict) -> None:
        execution_id = execution["QueryExecutionId"]
        with self._lock:
            if execution_id in self._cancelled:
                self._cancelled.discard(execution_id)
                return
        started = time.time()
        self.on_change(execution_id, state="RUNNING", started=started)
        scratch = Path(tempfile.mkdtemp(prefix=f"{execution_id}-", dir=self.scratch))
        try:
            connection = self._connection()
            # A fresh file cache per query: what the query needs is fetched once (not once per plan phase)
            # and nothing comes from an earlier query, so DataScannedInBytes is what this query read.
            connection.execute("SET enable_external_file_cache = false")
            connection.execute("SET enable_external_file_cache = true")
            connection.execute("CALL truncate_duckdb_logs()")
            with self._lock:
                if execution_id in self._cancelled:  # stopped while the worker was getting ready
                    raise Cancelled(USER_CANCEL_REASON)
                self._running[execution_id] = connection
            context = statements.StatementContext(
                execution_id=execution_id,
                sql=execution["Query"],
                database=(execution.get("QueryExecutionContext") or {}).get("Database", "default").lower(),
                catalog=self.catalog,
                connection=connection,
                scratch=scratch,
                output_folder=execution["_OutputFolder"],
            )
            cutoff = execution.get("_BytesScannedCutoff")
            watch = CutoffWatch(connection, cutoff)
            try:
                outcome = statements.execute(context)
            except duckdb.InterruptException:
                outcome = None
            finally:
                watch.stop()
                with self._lock:
                    self._running.pop(execution_id, None)
            scanned = int(connection.execute(BYTES_SCANNED_SQL).fetchone()[0])
            engine_ms = int((time.time() - started) * 1000)
            if watch.exceeded or (cutoff and scanned > cutoff):
                self.on_change(execution_id, state="CANCELLED", reason=BYTES_LIMIT_REASON, scanned=scanned, engine_ms=engine_ms)
                return
            with self._lock:
                if outcome is None and self._closing:
                    raise QueryError(STACK_STOPPED_REASON, category=SYSTEM_ERROR)
                if outcome is None or execution_id in self._cancelled:
                    raise Cancelled(USER_CANCEL_REASON)
            try:
                manifest = self._write_results(execution, outcome)
            except ClientError as error:
                bucket = split_s3(execution["ResultConfiguration"]["OutputLocation"])[0]
                raise QueryError(f"Unable to verify/create output bucket {bucket} ({error.response['Error']['Code']})",
                                 error_type=RESULT_WRITE_ERROR_TYPE) from None
            self.on_change(execution_id, state="SUCCEEDED", scanned=scanned, engine_ms=engine_ms, outcome=outcome, manifest=manifest)
        except Cancelled as stopped:
            self.on_change(execution_id, state="CANCELLED", reason=str(stopped), engine_ms=int((time.time() - started) * 1000))
        except QueryError as error:
            self.on_change(execution_id, state="FAILED", reason=error.reason, engine_ms=int((time.time() - started) * 1000),
                           error=(error.category, error.error_type))
        except Exception as error:  # an engine bug still ends the query FAILED with a one-line reason
            log.exception("query %s failed", execution_id)
            reason = f"GENERIC_INTERNAL_ERROR: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            self.on_change(execution_id, state="FAILED", reason=reason, engine_ms=int((time.time() - started) * 1000), error=(SYSTEM_ERROR, ENGINE_ERROR_TYPE))
        finally:
            with self._lock:
                self._cancelled.discard(execution_id)
            shutil.rmtree(scratch, ignore_errors=True)

    def _write_results(self, execution: dict, outcome: Outcome) -> str | None:
        """Writes the result file (and its .metadata, and for CTAS/INSERT/UNLOAD the manifest) to S3."""
        s3 = self.catalog.s3
        location = execution["ResultConfiguration"]["OutputLocation"]
        bucket, key = split_s3(location)
        body = results.to_csv(outcome) if outcome.tabular else results.to_text(outcome)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        if outcome.tabular:
            s3.put_object(Bucket=bucket, Key=key + ".metadata", Body=results.metadata_document(outcome))
        if outcome.data_files is None:
            return None
        manifest_key = key + "-manifest.csv"
        s3.put_object(Bucket=bucket, Key=manifest_key, Body="".join(f"{url}\n" for url in outcome.data_files).encode())
        return f"s3://{bucket}/{manifest_key}"
