"""Crawler runs: list the S3 targets through the S3 API, infer each dataset's format, columns and partitions,
and write tables and partitions through the Glue API. Crawl status and metrics are kept under
state_dir/glue/crawls.json; messages go to CloudWatch Logs /aws-glue/crawlers (stream = crawler name).

A dataset is a folder: each first-level folder under a target is a table, unless those folders are all
partitions (`dt=2024-01-01`, or all numbers such as `2024`), in which case the target itself is the table.
Deeper folders are partitions, named from `key=value` or else partition_0, partition_1, ...

SchemaChangePolicy.DeleteBehavior acts on what a crawl no longer finds, among the tables this crawler made
(UPDATED_BY_CRAWLER names it) in its database whose location is under one of its S3 targets: a table no
dataset of the crawl matched, and the partitions of a crawled table whose folders are gone.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from dealab.engines.glue import inference
from dealab.engines.glue.classifiers import Classifiers
from dealab.engines.glue.jobs import GlueError
from dealab.engines.glue.schedules import Cron, CronError, lab_now
from dealab.wire import rolesessions, serviceevents
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.glue.crawlers")

LOG_GROUP = "/aws-glue/crawlers"
SAMPLE_BYTES = 1024 * 1024
WHOLE_FILE_LIMIT = 32 * 1024 * 1024
# Glue samples a few files of each partition rather than every one.
FILES_SAMPLED_PER_PARTITION = 3
FILES_SAMPLED_UNPARTITIONED = 50
FETCH_THREADS = 8
SIMILARITY = 0.7
STORAGE = {
    "csv": ("org.apache.hadoop.mapred.TextInputFormat", "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"),
    "json": ("org.apache.hadoop.mapred.TextInputFormat", "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
             "org.openx.data.jsonserde.JsonSerDe"),
    "parquet": ("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"),
}
OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
_PARTITION_LIKE = re.compile(r"^(?:[^=/]+=[^/]*|\d+)$")
# The table parameter AWS crawlers set on a table whose data is gone (DEPRECATE_IN_DATABASE): epoch milliseconds.
DEPRECATED_MARK = "DEPRECATED_BY_CRAWLER"
PARTITIONS_PER_DELETE = 25
CRAWLER_SESSION = "AWS-Crawler"  # the session a crawl's calls are made with (CloudTrail names it so)


@dataclass
class Dataset:
    """One table's worth of objects: its root folder and its files by partition folder path."""

    name: str
    location: str  # s3://bucket/prefix/
    files: dict[tuple[str, ...], list[dict]] = field(default_factory=dict)


def _similar(schemas: list[inference.FileSchema]) -> bool:
    """Glue's test for files of one table: one format, and each file shares most (70%) of its columns with the first."""
    first = {name for name, _ in schemas[0].columns}
    for schema in schemas[1:]:
        names = {name for name, _ in schema.columns}
        if schema.format != schemas[0].format or len(first & names) < SIMILARITY * len(first | names):
            return False
    return True


def _table_name(prefix: str, folder: str) -> str:
    return prefix + re.sub(r"[^a-z0-9_]", "_", folder.lower())


def _excluded(relative_key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative_key, pattern) or fnmatch.fnmatchcase(relative_key, pattern.replace("**", "*"))
               for pattern in patterns)


def group_into_datasets(target: str, objects: list[dict], table_prefix: str) -> tuple[list[Dataset], list[str]]:
    """Splits a target's objects into datasets; returns them and notes on objects left out."""
    parts = urlsplit(target)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    relative = [(item, item["Key"][len(prefix):].split("/")) for item in objects]
    first_folders = {segments[0] for _, segments in relative if len(segments) > 1}
    target_is_table = not first_folders or all(_PARTITION_LIKE.match(folder) for folder in first_folders)
    datasets: dict[str, Dataset] = {}
    notes = []
    for item, segments in relative:
        if target_is_table:
            root_name = prefix.rstrip("/").rsplit("/", 1)[-1] or bucket
            location, folders = f"s3://{bucket}/{prefix}", segments[:-1]
        elif len(segments) == 1:
            notes.append(f"s3://{bucket}/{item['Key']}: a file beside dataset folders belongs to no table; skipped")
            continue
        else:
            root_name = segments[0]
            location, folders = f"s3://{bucket}/{prefix}{segments[0]}/", segments[1:-1]
        dataset = datasets.setdefault(location, Dataset(_table_name(table_prefix, root_name), location))
        dataset.files.setdefault(tuple(folders), []).append(item)
    for dataset in datasets.values():
        depths = {len(folders) for folders in dataset.files}
        if len(depths) > 1:
            deepest = max(depths)
            for folders in [f for f in dataset.files if len(f) != deepest]:
                notes.append(f"{dataset.location}{'/'.join(folders)}: files at a different folder depth than the partitions; skipped")
                del dataset.files[folders]
    return list(datasets.values()), notes


def under_target(location: str, target: str) -> bool:
    """Whether a table location is the target folder itself or lies inside it."""
    folder = target.rstrip("/") + "/"
    return location.rstrip("/") == target.rstrip("/") or location.startswith(folder)


def as_table_input(table: dict, glue) -> dict:
    """The TableInput that recreates a GetTable answer (which also carries read-only members)."""
    members = glue.meta.service_model.shape_for("TableInput").members
    return {key: value for key, value in table.items() if key in members}


def partition_keys(folders: tuple[str, ...]) -> list[str]:
    return [folder.split("=", 1)[0] if "=" in folder else f"partition_{index}" for index, folder in enumerate(folders)]


def partition_values(folders: tuple[str, ...]) -> list[str]:
    return [folder.split("=", 1)[1] if "=" in folder else folder for folder in folders]


def crawler_role_refusal(role_arn: str) -> str:
    """Glue's words for a crawler role it cannot assume (CreateCrawler's InvalidInputException, a crawl's error)."""
    return f"Service is unable to assume role {role_arn}. Please verify role's TrustPolicy"


class Crawls:
    def __init__(self, state_dir: Path, client: Callable[[str], object], classifiers: Classifiers,
                 roles: rolesessions.RoleSessions | None = None):
        self._file = JsonFile(state_dir / "glue" / "crawls.json")
        self._client = client
        self._roles = roles
        self._classifiers = classifiers
        self._lock = threading.Lock()
        self._state: dict[str, dict] = self._file.load({})
        self._threads: dict[str, threading.Thread] = {}
        self._cancel: set[str] = set()
        # Told of every crawl that ends (crawler name, its LastCrawl and CompletedOn): how workflows learn of it.
        self.on_finish: Callable[[str, dict], None] = lambda name, crawl: None
        for name, entry in self._state.items():
            if entry["State"] != "READY":  # the stack stopped mid-crawl: the crawl does not resume
                entry["LastCrawl"] = {
                    **(entry.get("LastCrawl") or {}),  # None before a first crawl
                    "Status": "FAILED",
                    "ErrorMessage": f"the dealab stack stopped while this crawl was {entry['State']}",
                    "LogGroup": LOG_GROUP,
                    "LogStream": name,
                    "StartTime": entry.get("StartTime", lab_now().timestamp()),
                }
                entry["State"] = "READY"

    def _save(self) -> None:
        self._file.save(self._state)

    def _entry(self, name: str) -> dict:
        return self._state.setdefault(name, {"State": "READY", "LastCrawl": None, "Metrics": None, "CrawledFolders": []})

    # ---- API -----------------------------------------------------------------------------------------
    def start(self, crawler: dict, reason: str = "") -> None:
        name = crawler["Name"]
        with self._lock:
            entry = self._entry(name)
            if entry["State"] != "READY":
                raise GlueError("CrawlerRunningException", f"Crawler with name {name} has already started")
            entry["State"] = "RUNNING"
            entry["StartedAt"] = lab_now().timestamp()
            entry["StartTime"] = lab_now().timestamp()
            self._save()
            serviceevents.publish("aws.glue", "Glue Crawler State Change", {"accountId": ACCOUNT_ID, "crawlerName": name, "startTime": _event_time(lab_now()),
                                                                          "state": "Started", "message": "Crawler Started"})
            thread = threading.Thread(target=self._crawl, args=(crawler, reason), name=f"crawler-{name}", daemon=True)
            self._threads[name] = thread
        thread.start()

    def stop(self, name: str) -> None:
        with self._lock:
            entry = self._state.get(name)
            if entry is None or entry["State"] == "READY":
                raise GlueError("CrawlerNotRunningException", f"Crawler with name {name} isn't running")
            if entry["State"] == "STOPPING":
                raise GlueError("CrawlerStoppingException", f"Crawler with name {name} is already stopping")
            entry["State"] = "STOPPING"
            self._cancel.add(name)
            self._save()

    def running(self, name: str) -> bool:
        with self._lock:
            return self._state.get(name, {}).get("State", "READY") != "READY"

    def describe_into(self, crawler: dict) -> None:
        """Puts this engine's view of the crawl (State, LastCrawl, CrawlElapsedTime) into a GetCrawler answer."""
        with self._lock:
            entry = self._state.get(crawler["Name"])
            crawler["State"] = entry["State"] if entry else "READY"
            if entry and isinstance(crawler.get("Schedule"), dict):
                crawler["Schedule"]["State"] = entry.get("ScheduleState", "SCHEDULED")
            crawler.pop("LastCrawl", None)
            if entry and entry.get("LastCrawl"):
                crawler["LastCrawl"] = dict(entry["LastCrawl"])
            if entry and entry["State"] != "READY":
                crawler["CrawlElapsedTime"] = int((lab_now().timestamp() - entry["StartedAt"]) * 1000)

    def metrics(self, name: str) -> dict:
        with self._lock:
            entry = self._state.get(name) or {}
            metrics = entry.get("Metrics") or {}
            runtimes = entry.get("Runtimes", [])
        return {
            "CrawlerName": name,
            "TimeLeftSeconds": 0.0,
            "StillEstimating": entry.get("State") == "RUNNING",
            "LastRuntimeSeconds": runtimes[-1] if runtimes else 0.0,
            "MedianRuntimeSeconds": sorted(runtimes)[len(runtimes) // 2] if runtimes else 0.0,
            "TablesCreated": metrics.get("TablesCreated", 0),
            "TablesUpdated": metrics.get("TablesUpdated", 0),
            "TablesDeleted": metrics.get("TablesDeleted", 0),
        }

    def set_schedule_state(self, crawler: dict, scheduled: bool) -> None:
        """StartCrawlerSchedule / StopCrawlerSchedule: whether the crawler's schedule starts it."""
        name = crawler["Name"]
        if not (crawler.get("Schedule") or {}).get("ScheduleExpression"):
            raise GlueError("NoScheduleException", f"Crawler with name {name} has no schedule")
        with self._lock:
            entry = self._entry(name)
            current = entry.get("ScheduleState", "SCHEDULED")
            if scheduled and current == "SCHEDULED":
                raise GlueError("SchedulerRunningException", f"The schedule of crawler {name} is already running")
            if not scheduled and current == "NOT_SCHEDULED":
                raise GlueError("SchedulerNotRunningException", f"The schedule of crawler {name} is not running")
            entry["ScheduleState"] = "SCHEDULED" if scheduled else "NOT_SCHEDULED"
            entry["ScheduleCheckedUntil"] = lab_now().timestamp()  # a restarted schedule does not catch up on times it was off
            self._save()

    def fire_due_schedules(self, crawlers: list[dict], now: datetime) -> None:
        """Starts each crawler whose schedule came due since the last check (on the lab clock).

        However many due times passed since then (the clock may have jumped days), the crawler starts once;
        a crawler still running at a due time skips it, as AWS skips a schedule while the crawler runs.
        """
        due_crawlers = []
        with self._lock:
            for crawler in crawlers:
                try:
                    cron = Cron.parse((crawler.get("Schedule") or {}).get("ScheduleExpression", ""))
                except CronError:  # no schedule, or one stored before dealab checked schedules
                    continue
                entry = self._entry(crawler["Name"])
                defined_at = (crawler.get("LastUpdated") or crawler.get("CreationTime") or now).timestamp()
                checked_until = max(entry.get("ScheduleCheckedUntil", defined_at), defined_at)
                since = datetime.fromtimestamp(min(checked_until, now.timestamp()), now.tzinfo)  # min: the clock was reset back
                # Kept in memory each check, written to disk with the next change: after a restart the schedule
                # catches up (once) on what came due while the stack was down.
                entry["ScheduleCheckedUntil"] = now.timestamp()
                if entry.get("ScheduleState", "SCHEDULED") != "SCHEDULED":
                    continue
                first_due = cron.first_time_between(since, now)
                if first_due is not None and entry["State"] == "READY":
                    due_crawlers.append((crawler, f"Started by its schedule {cron.expression}, due at {first_due.isoformat()} on the lab clock"))
        for crawler, reason in due_crawlers:
            try:
                self.start(crawler, reason)
            except GlueError:  # started by hand since the check
                pass

    def forget(self, name: str) -> None:
        with self._lock:
            self._state.pop(name, None)
            self._save()

    def reset(self) -> None:
        with self._lock:
            self._cancel.update(self._threads)
            self._state.clear()
            self._save()

    def close(self) -> None:
        with self._lock:
            self._cancel.update(self._threads)
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout=10)

    # ---- a crawl -------------------------------------------------------------------------------------
    def _crawl(self, crawler: dict, reason: str) -> None:
        name = crawler["Name"]
        csv_classifiers, missing = self._classifiers.csv_rules(crawler.get("Classifiers") or [])
        run = CrawlRun(crawler, self._as_role(crawler), self._crawled_folders(name), lambda: name in self._cancel, csv_classifiers)
        if reason:
            run.log(reason)
        for classifier in missing:
            run.log(f"Classifier {classifier} not found; the crawl goes on without it")
        status, error_message = "SUCCEEDED", ""
        try:
            run.execute()
        except CrawlCancelled:
            status = "CANCELLED"
        except CrawlerRoleRefused as error:  # Glue could not assume the crawler's role
            status, error_message = "FAILED", str(error)
            run.log(f"ERROR: {error_message}")
        except Exception as error:  # a crawl that fails reports why, as on AWS, and leaves the crawler READY
            log.exception("crawler %s", name)
            status, error_message = "FAILED", f"{type(error).__name__}: {error}"
            run.log(f"ERROR: {error_message}")
        run.log(f"Finished Crawl with status {status}: {run.tables_created} tables created, {run.tables_updated} tables updated, "
                f"{run.tables_deleted} tables deleted or deprecated, {run.partitions_added} partitions added, "
                f"{run.partitions_deleted} partitions deleted")
        run.send_logs()
        with self._lock:
            entry = self._state.get(name)
            self._cancel.discard(name)
            self._threads.pop(name, None)
            if entry is None:  # reset or deleted meanwhile
                return
            entry["State"] = "STOPPING"
            self._save()
            elapsed = round(lab_now().timestamp() - entry["StartedAt"], 3)
            entry["Runtimes"] = (entry.get("Runtimes", []) + [elapsed])[-20:]
            entry["LastCrawl"] = {
                "Status": status,
                "LogGroup": LOG_GROUP,
                "LogStream": name,
                "MessagePrefix": run.message_prefix,
                "StartTime": entry["StartTime"],
            }
            if error_message:
                entry["LastCrawl"]["ErrorMessage"] = error_message
            entry["Metrics"] = {"TablesCreated": run.tables_created, "TablesUpdated": run.tables_updated, "TablesDeleted": run.tables_deleted}
            if status == "SUCCEEDED":
                entry["CrawledFolders"] = sorted(set(entry.get("CrawledFolders", [])) | run.folders_seen)
            entry["State"] = "READY"
            self._save()
            if status in ("SUCCEEDED", "FAILED"):
                serviceevents.publish("aws.glue", "Glue Crawler State Change", {
                    "tablesCreated": str(run.tables_created), "warningMessage": "N/A", "partitionsUpdated": "0", "tablesUpdated": str(run.tables_updated),
                    "message": "Crawler Succeeded" if status == "SUCCEEDED" else "Crawler Failed", "partitionsDeleted": str(run.partitions_deleted),
                    "accountId": ACCOUNT_ID, "runningTime (sec)": str(int(elapsed)), "tablesDeleted": str(run.tables_deleted), "crawlerName": name,
                    "completionDate": _event_time(lab_now()), "state": status.capitalize(), "partitionsCreated": str(run.partitions_added),
                    **({"errorMessage": error_message} if error_message else {})})
            self.on_finish(name, {**entry["LastCrawl"], "CompletedOn": lab_now().timestamp()})

    def _as_role(self, crawler: dict) -> Callable[[str], object]:
        """The crawl's clients: S3 and the Data Catalog as the crawler's Role (a session Glue assumed, renewed on
        the lab clock), its log as the engine's."""
        if self._roles is None or not crawler.get("Role"):
            return self._client
        role = crawler["Role"]
        source = f"arn:aws:glue:{self._roles.region}:{ACCOUNT_ID}:crawler/{crawler['Name']}"

        def refused(refusal: rolesessions.Refused) -> Exception:
            return CrawlerRoleRefused(crawler_role_refusal(refusal.role_arn))

        def client(service: str):
            if service == "logs":
                return self._client(service)
            return self._roles.client(service, role, CRAWLER_SESSION, source_arn=source, on_refusal=refused, engine="glue")
        return client

    def _crawled_folders(self, name: str) -> set[str]:
        with self._lock:
            return set(self._state.get(name, {}).get("CrawledFolders", []))


class CrawlCancelled(Exception):
    pass


class CrawlerRoleRefused(Exception):
    """Glue cannot assume the crawler's role: the crawl fails with Glue's words."""


class CrawlRun:
    def __init__(self, crawler: dict, client: Callable[[str], object], crawled_folders: set[str], cancelled: Callable[[], bool],
                 csv_classifiers: list[inference.CsvRules]):
        self.crawler = crawler
        self.csv_classifiers = csv_classifiers
        self.s3, self.glue, self.logs = client("s3"), client("glue"), client("logs")
        self.cancelled = cancelled
        self.message_prefix = str(uuid.uuid4())
        self.new_folders_only = crawler.get("RecrawlPolicy", {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY"
        self.crawled_folders = crawled_folders
        self.folders_seen: set[str] = set()
        policy = crawler.get("SchemaChangePolicy") or {}
        self.update_schema = policy.get("UpdateBehavior", "UPDATE_IN_DATABASE") == "UPDATE_IN_DATABASE"
        self.delete_behavior = policy.get("DeleteBehavior", "DEPRECATE_IN_DATABASE")
        self.tables_created = self.tables_updated = self.tables_deleted = self.partitions_added = self.partitions_deleted = 0
        self.tables_found: set[str] = set()
        self._messages: list[dict] = []

    def log(self, message: str) -> None:
        self._messages.append({"timestamp": int(lab_now().timestamp() * 1000), "message": f"[{self.message_prefix}] {message}"})

    def send_logs(self) -> None:
        try:
            self.logs.create_log_group(logGroupName=LOG_GROUP)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=self.crawler["Name"])
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        for start in range(0, len(self._messages), 1000):
            self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=self.crawler["Name"], logEvents=self._messages[start:start + 1000])

    def _check_cancel(self) -> None:
        if self.cancelled():
            raise CrawlCancelled()

    def execute(self) -> None:
        database = self.crawler.get("DatabaseName")
        if not database:
            raise ValueError("the crawler has no DatabaseName")
        self.glue.get_database(Name=database)
        self.log(f"Running Start Crawl for Crawler {self.crawler['Name']}")
        for target in self.crawler.get("Targets", {}).get("S3Targets", []):
            datasets, notes = group_into_datasets(target["Path"], self._list(target), self.crawler.get("TablePrefix", ""))
            for note in notes:
                self.log(note)
            for dataset in datasets:
                self._check_cancel()
                self._crawl_dataset(database, dataset)
        # A crawl of new folders only cannot tell a removed folder from one it skipped (AWS makes such crawlers LOG).
        if not self.new_folders_only:
            self._check_cancel()
            self._retire_vanished_tables(database)

    def _list(self, target: dict) -> list[dict]:
        parts = urlsplit(target["Path"])
        bucket, prefix = parts.netloc, parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        patterns = target.get("Exclusions", [])
        objects = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            self._check_cancel()
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix):]
                if key.endswith("/") or any(part.startswith(("_", ".")) for part in relative.split("/")):
                    continue
                if _excluded(relative, patterns):
                    continue
                if item["Size"] == 0:
                    self.log(f"s3://{bucket}/{key}: empty file; skipped")
                    continue
                folder = f"s3://{bucket}/{key.rsplit('/', 1)[0]}/" if "/" in key else f"s3://{bucket}/"
                if self.new_folders_only and folder in self.crawled_folders:
                    continue
                self.folders_seen.add(folder)
                objects.append({"Bucket": bucket, "Key": key, "Size": item["Size"]})
        return objects

    def _schema_of(self, item: dict) -> inference.FileSchema | None:
        whole = item["Size"] <= SAMPLE_BYTES
        head = self.s3.get_object(Bucket=item["Bucket"], Key=item["Key"], **({} if whole else {"Range": f"bytes=0-{SAMPLE_BYTES - 1}"}))
        data = head["Body"].read()
        if data.startswith(inference.PARQUET_MAGIC) and not whole:
            if item["Size"] > WHOLE_FILE_LIMIT:
                raise inference.UnreadableFile(f"a Parquet file over {WHOLE_FILE_LIMIT // 2**20} MB is not sampled by dealab")
            data, whole = self.s3.get_object(Bucket=item["Bucket"], Key=item["Key"])["Body"].read(), True
        return inference.infer(data, whole, self.csv_classifiers)

    def _crawl_dataset(self, database: str, dataset: Dataset) -> None:
        per_folder = FILES_SAMPLED_PER_PARTITION if len(dataset.files) > 1 or () not in dataset.files else FILES_SAMPLED_UNPARTITIONED
        samples = [(folders, item) for folders, items in sorted(dataset.files.items())
                   for item in sorted(items, key=lambda i: i["Key"])[:per_folder]]
        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            schemas = list(pool.map(lambda sample: self._sample(sample[1]), samples))
        self._check_cancel()
        by_partition: dict[tuple[str, ...], list[inference.FileSchema]] = {}
        for (folders, _), schema in zip(samples, schemas):
            if schema is not None:
                by_partition.setdefault(folders, []).append(schema)
        if not by_partition:
            self.log(f"{dataset.location}: no readable files; no table")
            return
        if list(by_partition) == [()] and not _similar(by_partition[()]):
            self.log(f"{dataset.location}: its files differ in format or columns; one table per file")
            read = [(item, schema) for (_, item), schema in zip(samples, schemas) if schema is not None]
            for item, schema in read:
                file_name = item["Key"].rsplit("/", 1)[-1]
                single = Dataset(_table_name(self.crawler.get("TablePrefix", ""), file_name), f"s3://{item['Bucket']}/{item['Key']}", {(): [item]})
                self._catalog_dataset(database, single, {(): [schema]})
            return
        self._catalog_dataset(database, dataset, by_partition)

    def _catalog_dataset(self, database: str, dataset: Dataset, by_partition: dict[tuple[str, ...], list[inference.FileSchema]]) -> None:
        formats = {schema.format for schemas_ in by_partition.values() for schema in schemas_}
        if len(formats) > 1:
            self.log(f"{dataset.location}: files of several formats ({', '.join(sorted(formats))}); the table takes the most common")
        counts = {fmt: sum(s.format == fmt for ss in by_partition.values() for s in ss) for fmt in formats}
        data_format = max(sorted(formats), key=counts.get)
        columns: list[tuple[str, str]] = []
        for schemas_ in by_partition.values():
            for schema in schemas_:
                if schema.format == data_format:
                    columns = inference.merge_columns(columns, schema.columns)
        representative = next(s for ss in by_partition.values() for s in ss if s.format == data_format)
        keys = partition_keys(next(iter(by_partition)))
        columns = [(name, kind) for name, kind in inference.finalize(columns) if name not in keys]
        self._write_table(database, dataset, data_format, columns, keys, representative)
        self._write_partitions(database, dataset, sorted(by_partition), data_format, representative)
        if keys and not self.new_folders_only:
            self._retire_vanished_partitions(database, dataset)

    def _sample(self, item: dict) -> inference.FileSchema | None:
        """A file's schema, or None for a file the crawl skips (logged): one bad file never fails a crawl."""
        try:
            return self._schema_of(item)
        except inference.UnreadableFile as error:
            reason = str(error)
        except Exception as error:  # anything a file can make reading it raise (or the object gone meanwhile)
            reason = f"{type(error).__name__}: {error}"
        self.log(f"s3://{item['Bucket']}/{item['Key']}: unreadable ({reason}); skipped")
        return None

    def _descriptor(self, location: str, data_format: str, columns: list[tuple[str, str]], sample: inference.FileSchema) -> dict:
        input_format, output_format, serde = STORAGE[data_format]
        parameters = {"classification": data_format, "compressionType": sample.compression, "typeOfData": "file"}
        serde_parameters = {"serialization.format": "1"}
        if data_format == "csv":
            quoted = sample.csv_serde == "OpenCSVSerDe"
            parameters.update(delimiter=sample.csv_delimiter, areColumnsQuoted=str(quoted).lower())
            if sample.csv_header:
                parameters["skip.header.line.count"] = "1"
            if quoted:
                serde, serde_parameters = OPEN_CSV_SERDE, {"separatorChar": sample.csv_delimiter, "quoteChar": sample.csv_quote}
            else:
                serde_parameters["field.delim"] = sample.csv_delimiter
        elif data_format == "json":
            serde_parameters["paths"] = ",".join(name for name, _ in columns)
        return {
            "Columns": [{"Name": name, "Type": kind} for name, kind in columns],
            "Location": location,
            "InputFormat": input_format,
            "OutputFormat": output_format,
            "Compressed": sample.compression != "none",
            "SerdeInfo": {"SerializationLibrary": serde, "Parameters": serde_parameters},
            "Parameters": parameters,
        }

    def _write_table(self, database: str, dataset: Dataset, data_format: str, columns: list[tuple[str, str]],
                     keys: list[str], sample: inference.FileSchema) -> None:
        descriptor = self._descriptor(dataset.location, data_format, columns, sample)
        table_input = {
            "Name": dataset.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {**descriptor["Parameters"], "UPDATED_BY_CRAWLER": self.crawler["Name"], "CrawlerSchemaSerializerVersion": "1.0"},
            "StorageDescriptor": descriptor,
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in keys],
        }
        self.tables_found.add(dataset.name)
        try:
            existing = self.glue.get_table(DatabaseName=database, Name=dataset.name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            self.glue.create_table(DatabaseName=database, TableInput=table_input)
            self.tables_created += 1
            by = f" by classifier {sample.classifier}" if sample.classifier else ""
            self.log(f"Created table {dataset.name} in database {database} ({data_format}{by}, {len(columns)} columns, "
                     f"partition keys {keys or 'none'})")
            return
        old_columns = [(c["Name"], c["Type"]) for c in existing.get("StorageDescriptor", {}).get("Columns", [])]
        merged = inference.merge_columns(old_columns, columns)
        deprecated = DEPRECATED_MARK in (existing.get("Parameters") or {})
        changes = ", ".join(f"{name} {kind}" for name, kind in merged if (name, kind) not in old_columns)
        if merged != old_columns and not self.update_schema:
            self.log(f"Table {dataset.name}: schema change detected ({changes}); not applied, SchemaChangePolicy.UpdateBehavior is LOG")
        if merged != old_columns and self.update_schema:
            table_input["StorageDescriptor"] = self._descriptor(dataset.location, data_format, merged, sample)
            self.glue.update_table(DatabaseName=database, TableInput=table_input)
            self.log(f"Updated table {dataset.name} in database {database}: {changes}")
        elif deprecated:
            revived = as_table_input(existing, self.glue)
            revived["Parameters"] = {key: value for key, value in revived["Parameters"].items() if key != DEPRECATED_MARK}
            self.glue.update_table(DatabaseName=database, TableInput=revived)
        else:
            return
        self.tables_updated += 1
        if deprecated:
            self.log(f"Table {dataset.name}: its data is back at {dataset.location}; no longer deprecated")

    def _write_partitions(self, database: str, dataset: Dataset, partitions: list[tuple[str, ...]], data_format: str,
                          sample: inference.FileSchema) -> None:
        if not partitions or not partitions[0]:
            return
        table = self.glue.get_table(DatabaseName=database, Name=dataset.name)["Table"]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        known = {
            tuple(p["Values"])
            for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=dataset.name)
            for p in page["Partitions"]
        }
        new = [folders for folders in partitions if tuple(partition_values(folders)) not in known]
        for start in range(0, len(new), 100):
            self._check_cancel()
            self.glue.batch_create_partition(
                DatabaseName=database,
                TableName=dataset.name,
                PartitionInputList=[
                    {
                        "Values": partition_values(folders),
                        "StorageDescriptor": self._descriptor(dataset.location + "/".join(folders) + "/", data_format, columns, sample),
                    }
                    for folders in new[start:start + 100]
                ],
            )
        self.partitions_added += len(new)
        if new:
            self.log(f"Table {dataset.name}: added {len(new)} partitions")

    # ---- what the crawl no longer finds (SchemaChangePolicy.DeleteBehavior) ------------------------------
    def _retire_vanished_tables(self, database: str) -> None:
        targets = [target["Path"] for target in self.crawler.get("Targets", {}).get("S3Targets", [])]
        vanished = [
            table
            for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=database)
            for table in page["TableList"]
            if table["Name"] not in self.tables_found
            and (table.get("Parameters") or {}).get("UPDATED_BY_CRAWLER") == self.crawler["Name"]
            and DEPRECATED_MARK not in (table.get("Parameters") or {})  # deprecated by an earlier crawl: left as it is
            and any(under_target(table.get("StorageDescriptor", {}).get("Location", ""), target) for target in targets)
        ]
        for table in vanished:
            self._check_cancel()
            name, location = table["Name"], table.get("StorageDescriptor", {}).get("Location", "")
            if self.delete_behavior == "DELETE_FROM_DATABASE":
                self.glue.delete_table(DatabaseName=database, Name=name)
                self.tables_deleted += 1
                self.log(f"Deleted table {name} from database {database}: no data at {location}")
            elif self.delete_behavior == "DEPRECATE_IN_DATABASE":
                deprecated = as_table_input(table, self.glue)
                deprecated["Parameters"] = {**deprecated.get("Parameters", {}), DEPRECATED_MARK: str(int(lab_now().timestamp() * 1000))}
                self.glue.update_table(DatabaseName=database, TableInput=deprecated)
                self.tables_deleted += 1
                self.log(f"Deprecated table {name} in database {database}: no data at {location}")
            else:
                self.log(f"Table {name}: no data at {location}; left in the database, SchemaChangePolicy.DeleteBehavior is LOG")

    def _retire_vanished_partitions(self, database: str, dataset: Dataset) -> None:
        present = {tuple(partition_values(folders)) for folders in dataset.files}
        vanished = [
            partition["Values"]
            for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=dataset.name)
            for partition in page["Partitions"]
            if tuple(partition["Values"]) not in present
        ]
        if not vanished:
            return
        shown = ", ".join("/".join(values) for values in vanished[:5]) + (", ..." if len(vanished) > 5 else "")
        if self.delete_behavior != "DELETE_FROM_DATABASE":
            # AWS deprecates tables only; a partition whose folder is gone stays unless the policy deletes it.
            self.log(f"Table {dataset.name}: {len(vanished)} partitions have no folder any more ({shown}); left in the database, "
                     f"SchemaChangePolicy.DeleteBehavior is {self.delete_behavior}")
            return
        for start in range(0, len(vanished), PARTITIONS_PER_DELETE):
            self._check_cancel()
            self.glue.batch_delete_partition(DatabaseName=database, TableName=dataset.name,
                                             PartitionsToDelete=[{"Values": values} for values in vanished[start:start + PARTITIONS_PER_DELETE]])
        self.partitions_deleted += len(vanished)
        self.log(f"Table {dataset.name}: deleted {len(vanished)} partitions whose folders are gone ({shown})")


ACCOUNT_ID = "123456789012"


def _event_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
