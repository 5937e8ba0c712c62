"""Athena benchmark: each query end to end through the Athena API (boto3, polling every 5 ms) against DuckDB
querying the same S3 files directly through the same gateway, in one run, on a generated dataset of
ten daily partitions (CSV and Parquet). Prints times and ratios, DataScannedInBytes against the bytes
DuckDB fetched for the same query, and the scan of one partition against the full scan.

Run: `.venv/bin/python bench/athena.py [--csv-gb 1.0] [--repeat 3]` (about 3 minutes for 1 GB).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3
import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.engines.athena.execution import HTTPFS_EXTENSION  # noqa: E402
from dealab.stack import control  # noqa: E402

DAYS = [f"2024-03-{day:02d}" for day in range(1, 11)]
FILES_PER_DAY = 10
CSV_ROW_BYTES = 76  # measured size of one generated CSV row
BUCKET = "bench-lake"
OUTPUT = "s3://bench-results/"
RATIO_FLOOR_MS = 100  # below this a ratio says nothing; the trivial query's goal is absolute (<= 150 ms)
# (name, Athena SQL, the same question asked of DuckDB over the files: {csv} / {parquet} are relations)
QUERIES = [
    ("trivial SELECT 1", "SELECT 1", "SELECT 1"),
    ("CSV count(*), all days", "SELECT count(*) FROM bench.events_csv", "SELECT count(*) FROM {csv}"),
    ("CSV sum by category, one day", "SELECT category, sum(amount) FROM bench.events_csv WHERE dt = '2024-03-05' GROUP BY category",
     "SELECT category, sum(amount) FROM {csv} WHERE dt = '2024-03-05' GROUP BY category"),
    ("Parquet sum by category, all days", "SELECT category, sum(amount) FROM bench.events_parquet GROUP BY category",
     "SELECT category, sum(amount) FROM {parquet} GROUP BY category"),
    ("Parquet sum by category, one day", "SELECT category, sum(amount) FROM bench.events_parquet WHERE dt = '2024-03-05' GROUP BY category",
     "SELECT category, sum(amount) FROM {parquet} WHERE dt = '2024-03-05' GROUP BY category"),
    ("Parquet top users, all days", "SELECT user_id, count(*) AS n FROM bench.events_parquet GROUP BY user_id ORDER BY n DESC LIMIT 10",
     "SELECT user_id, count(*) AS n FROM {parquet} GROUP BY user_id ORDER BY n DESC LIMIT 10"),
]


def free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65000 and control._port_free(port + 1):
            return port


def generate(folder: Path, csv_gb: float) -> None:
    """CSV and Parquet files, FILES_PER_DAY per day, with Hive-style dt= folders."""
    rows_per_file = int(csv_gb * 1e9 / (len(DAYS) * FILES_PER_DAY) / CSV_ROW_BYTES)
    local = duckdb.connect()
    for day in DAYS:
        for number in range(FILES_PER_DAY):
            seed = DAYS.index(day) * FILES_PER_DAY + number
            select = (
                f"SELECT {seed} * {rows_per_file} + i AS id, (hash(i + {seed}) % 50000)::BIGINT AS user_id, "
                f"['books','games','garden','home','music','sports','toys'][1 + (hash(i * 7 + {seed}) % 7)::INT] AS category, "
                f"round((hash(i * 13 + {seed}) % 100000) / 100.0, 2) AS amount, "
                f"'https://shop.example.com/p/' || (hash(i * 17) % 1000000)::VARCHAR || '?ref=campaign-' || (i % 97)::VARCHAR AS url "
                f"FROM range({rows_per_file}) AS t(i)"
            )
            for fmt, suffix in (("csv", ".csv"), ("parquet", ".parquet")):
                path = folder / fmt / f"dt={day}" / f"part-{number:02d}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                options = "FORMAT csv, HEADER false" if fmt == "csv" else "FORMAT parquet, COMPRESSION snappy"
                local.execute(f"COPY ({select}) TO '{path}' ({options})")


def upload(settings: Settings, folder: Path) -> dict[str, int]:
    s3 = boto3.client("s3", endpoint_url=settings.endpoint_url, region_name="us-east-1",
                      aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=OUTPUT.split("/")[2])
    sizes = {}
    for path in sorted(folder.rglob("*.*")):
        key = path.relative_to(folder).as_posix()
        s3.upload_file(str(path), BUCKET, key)
        sizes[key] = path.stat().st_size
    return sizes


class AthenaClient:
    def __init__(self, settings: Settings):
        self.api = boto3.client("athena", endpoint_url=settings.endpoint_url, region_name="us-east-1",
                                aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)

    def run(self, sql: str) -> tuple[float, dict, list]:
        started = time.perf_counter()
        execution_id = self.api.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": OUTPUT})["QueryExecutionId"]
        while True:
            execution = self.api.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.005)
        if execution["Status"]["State"] != "SUCCEEDED":
            raise SystemExit(f"{sql}: {execution['Status']}")
        rows = self.api.get_query_results(QueryExecutionId=execution_id)["ResultSet"]["Rows"]
        return time.perf_counter() - started, execution, rows


class DirectDuckDB:
    """DuckDB with httpfs on the same gateway, reading the same files (no catalog, no API)."""

    def __init__(self, settings: Settings):
        self.connection = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
        self.connection.execute(f"LOAD '{HTTPFS_EXTENSION}'")
        for statement in (f"SET s3_endpoint = '127.0.0.1:{settings.port}'", "SET s3_url_style = 'path'", "SET s3_use_ssl = false",
                          "SET s3_region = 'us-east-1'", f"SET s3_access_key_id = '{TEST_ACCESS_KEY}'",
                          f"SET s3_secret_access_key = '{TEST_SECRET_KEY}'", "SET enable_http_metadata_cache = false",
                          "CALL enable_logging('HTTP')"):
            self.connection.execute(statement)

    def run(self, sql: str, sizes: dict[str, int]) -> tuple[float, int]:
        def files(fmt: str) -> str:
            return "[" + ", ".join(f"'s3://{BUCKET}/{key}'" for key in sizes if key.startswith(fmt + "/")) + "]"

        relations = {
            "csv": f"read_csv({files('csv')}, header = false, columns = {{'id': 'BIGINT', 'user_id': 'BIGINT', 'category': 'VARCHAR', "
                   f"'amount': 'DOUBLE', 'url': 'VARCHAR'}}, auto_detect = false, hive_partitioning = true, hive_types = {{'dt': VARCHAR}})",
            "parquet": f"read_parquet({files('parquet')}, hive_partitioning = true, hive_types = {{'dt': VARCHAR}})",
        }
        self.connection.execute("SET enable_external_file_cache = false")
        self.connection.execute("SET enable_external_file_cache = true")
        self.connection.execute("CALL truncate_duckdb_logs()")
        started = time.perf_counter()
        self.connection.execute(sql.format(**relations)).fetchall()
        elapsed = time.perf_counter() - started
        fetched = self.connection.execute(
            "SELECT coalesce(sum(TRY_CAST(response.headers['Content-Length'] AS BIGINT)), 0) FROM duckdb_logs_parsed('HTTP') WHERE request.type = 'GET'"
        ).fetchone()[0]
        return elapsed, int(fetched)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-gb", type=float, default=1.0, help="size of the CSV copy of the dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query (the median is reported)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="dealab-bench-athena-"))
    settings = None
    try:
        print(f"generating {args.csv_gb} GB of CSV (+ the same rows as Parquet) ...", flush=True)
        generate(scratch / "data", args.csv_gb)
        port = free_port()  # chosen just before use: other programs may take ports meanwhile
        settings = Settings(state_dir=scratch / "state", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        started = time.perf_counter()
        sizes = upload(settings, scratch / "data")
        csv_bytes = sum(v for k, v in sizes.items() if k.startswith("csv/"))
        parquet_bytes = sum(v for k, v in sizes.items() if k.startswith("parquet/"))
        print(f"uploaded {len(sizes)} files ({csv_bytes / 1e9:.2f} GB CSV, {parquet_bytes / 1e9:.2f} GB Parquet) in {time.perf_counter() - started:.0f} s")
        athena, direct = AthenaClient(settings), DirectDuckDB(settings)
        columns = "id bigint, user_id bigint, category string, amount double, url string"
        for ddl in ("CREATE DATABASE bench",
                    f"CREATE EXTERNAL TABLE bench.events_csv ({columns}) PARTITIONED BY (dt string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{BUCKET}/csv/'",
                    f"CREATE EXTERNAL TABLE bench.events_parquet ({columns}) PARTITIONED BY (dt string) STORED AS PARQUET LOCATION 's3://{BUCKET}/parquet/'",
                    "MSCK REPAIR TABLE bench.events_csv", "MSCK REPAIR TABLE bench.events_parquet"):
            athena.run(ddl)
        print(f"\n{'query':36} {'Athena ms':>10} {'DuckDB ms':>10} {'ratio':>6} {'scanned':>14} {'fetched':>14} {'diff':>7}")
        scanned_by_query = {}
        for name, athena_sql, duckdb_sql in QUERIES:
            athena_runs, direct_runs = [], []
            for _ in range(args.repeat):
                elapsed, execution, _ = athena.run(athena_sql)
                athena_runs.append((elapsed, execution["Statistics"]["DataScannedInBytes"]))
                direct_runs.append(direct.run(duckdb_sql, sizes))
            athena_ms = statistics.median(r[0] for r in athena_runs) * 1000
            direct_ms = statistics.median(r[0] for r in direct_runs) * 1000
            scanned, fetched = athena_runs[-1][1], direct_runs[-1][1]
            scanned_by_query[name] = scanned
            ratio = f"{athena_ms / direct_ms:.2f}" if direct_ms >= RATIO_FLOOR_MS else "-"
            diff = f"{(scanned - fetched) / fetched:+.1%}" if fetched else "-"
            print(f"{name:36} {athena_ms:10.0f} {direct_ms:10.1f} {ratio:>6} {scanned:14,d} {fetched:14,d} {diff:>7}")
        print(f"\nCSV full scan: DataScannedInBytes {scanned_by_query['CSV count(*), all days']:,d} vs CSV object bytes {csv_bytes:,d}")
        for fmt in ("CSV", "Parquet"):
            full = scanned_by_query["CSV count(*), all days"] if fmt == "CSV" else scanned_by_query["Parquet sum by category, all days"]
            one = scanned_by_query[f"{fmt} sum by category, one day"]
            print(f"{fmt}: one of ten partitions scans {one / full:.1%} of the full scan")
    finally:
        if settings is not None:
            control.down(settings)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
