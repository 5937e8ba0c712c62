"""awsglue.job.Job: init marks the run's start, commit makes what the run read part of the job bookmark."""

from __future__ import annotations

from awsglue import run_context


class Job:
    def __init__(self, glue_context):
        self._glue_context = glue_context
        self._initialized = False
        self.name = ""

    @staticmethod
    def continuation_options() -> list[str]:
        return [run_context.BOOKMARK_OPTION]

    def init(self, job_name: str, args: dict | None = None) -> None:
        self.name = job_name
        self._initialized = True

    def isInitialized(self) -> bool:
        return self._initialized

    def commit(self) -> None:
        if not self._initialized:
            raise RuntimeError("Job.commit() called before Job.init()")
        run_context.current.committed = True
