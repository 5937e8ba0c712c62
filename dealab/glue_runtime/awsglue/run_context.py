"""What the worker tells the library about the run in progress: who runs, and the job bookmark.

A bookmark maps each transformation_ctx to the S3 objects it has already read ({uri: etag}). Reads with a
transformation_ctx skip those objects while bookmarks are enabled; `Job.commit()` makes what this run read
part of the bookmark the worker hands back to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BOOKMARK_OPTION = "--job-bookmark-option"
BOOKMARK_ENABLED = "job-bookmark-enable"
BOOKMARK_PAUSED = "job-bookmark-pause"


@dataclass
class RunContext:
    job_name: str = ""
    run_id: str = ""
    bookmark_option: str = "job-bookmark-disable"
    previous_bookmark: dict[str, dict[str, str]] = field(default_factory=dict)
    read_this_run: dict[str, dict[str, str]] = field(default_factory=dict)
    committed: bool = False
    # how far the lab clock is ahead of real time: S3 stamps objects with lab time (purge and transition compare)
    lab_time_offset_seconds: float = 0.0
    # the worker's own keys, for what AWS's service does itself while the run acts as its role (the Data Quality
    # event EventBridge gets from Glue, not from the job's role): None outside the worker
    service_credentials: tuple[str, str] | None = None
    # Lake Formation fine-grained access control (GlueVersion 5.0 or later with --enable-lakeformation-fine-grained-access
    # true): catalog reads of tables the role may read only in part are filtered instead of refused (lakeformation.py)
    lakeformation_fine_grained: bool = False

    def service_client(self, service: str):
        """A client signed as the service itself, not as the run's role (the worker's keys; else the run's own)."""
        import boto3

        if self.service_credentials is None:
            return boto3.client(service)
        access_key, secret_key = self.service_credentials
        return boto3.client(service, aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    @property
    def bookmarks_filter(self) -> bool:
        return self.bookmark_option in (BOOKMARK_ENABLED, BOOKMARK_PAUSED)

    def already_read(self, transformation_ctx: str) -> dict[str, str]:
        if not transformation_ctx or not self.bookmarks_filter:
            return {}
        return self.previous_bookmark.get(transformation_ctx, {})

    def record_read(self, transformation_ctx: str, objects: dict[str, str]) -> None:
        if transformation_ctx:
            self.read_this_run.setdefault(transformation_ctx, {}).update(objects)

    def bookmark_after_commit(self) -> dict[str, dict[str, str]] | None:
        """The bookmark to keep after this run, or None when it must stay as it was."""
        if not self.committed or self.bookmark_option != BOOKMARK_ENABLED:
            return None
        merged = {ctx: dict(objects) for ctx, objects in self.previous_bookmark.items()}
        for ctx, objects in self.read_this_run.items():
            merged.setdefault(ctx, {}).update(objects)
        return merged


current = RunContext()


def begin(job_name: str, run_id: str, bookmark_option: str, previous_bookmark: dict | None) -> RunContext:
    global current
    current = RunContext(job_name, run_id, bookmark_option or "job-bookmark-disable", previous_bookmark or {})
    return current
