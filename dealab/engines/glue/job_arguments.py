"""Glue's special job parameters (--extra-py-files, --additional-python-modules, --extra-files, --conf, ...): what
a run gets from them, prepared by the engine before the script starts and removed after it ends.

As on AWS: --extra-py-files (S3 .py, .zip, .whl, .egg) are on the script's sys.path; --extra-files are copied into
the run's working folder; --additional-python-modules installs S3 wheels (pip, offline: --no-index --no-deps)
into a folder kept per wheel digest under the glue state folder, never into the stack's venv. A bare name
(`pyarrow==7`) would need PyPI: the venv's own copy is used when it satisfies the name, and otherwise the run
FAILS saying so. What cannot be honoured here (--extra-jars: the warm JVM's class path is fixed) fails the run
with one line; flags that change nothing here are noted in the run's error log. --conf settings are applied
by the Spark worker, which can tell which are settable at run time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from dealab.wire.store import rename

PIP_TIMEOUT_SECONDS = 300
PYTHON_FILE_SUFFIXES = (".py", ".zip", ".whl", ".egg")
SPARK_ONLY = ("--conf", "--extra-jars", "--user-jars-first")

# Arguments that change nothing in dealab, and why; each is noted in the run's error log when given (and not "false").
NO_EFFECT = {
    "--enable-metrics": "dealab publishes no Glue job metrics to CloudWatch",
    "--enable-observability-metrics": "dealab publishes no Glue job metrics to CloudWatch",
    "--enable-spark-ui": "dealab keeps no Spark UI event logs",
    "--spark-event-logs-path": "dealab keeps no Spark UI event logs",
    "--enable-job-insights": "dealab has no job run insights",
    "--enable-auto-scaling": "runs use one local Spark worker whatever the scaling",
    "--enable-s3-parquet-optimized-committer": "the S3A connector's committer writes the files",
    "--enable-continuous-cloudwatch-log": "output already reaches CloudWatch Logs every second",
    "--enable-continuous-log-filter": "output already reaches CloudWatch Logs every second",
    "--enable-rename-algorithm-v2": "the output committer already uses algorithm version 2",
    "--enable-glue-datacatalog": "awsglue reads the Data Catalog always; spark.sql() table names are Spark's own catalog here",
    "--enable-data-lineage": "dealab records no data lineage",
}
# Arguments that cannot be honoured: the run fails with this reason.
REFUSED = {
    "--extra-jars": "the Spark worker's JVM is already running with a fixed class path (Spark 3.5 of Glue 5.0 and the "
                    "S3A connector), and a jar cannot be added to it; dealab runs PySpark code only",
}


class JobArgumentError(Exception):
    """A job argument the run cannot honour; the message is the run's ErrorMessage."""


@dataclass
class RunSetup:
    """What a run gets from its job arguments: paths for sys.path, a working folder, Spark settings, log notes."""

    folder: Path  # glue_folder/runs/<run id>, removed by remove_run
    python_paths: list[str] = field(default_factory=list)
    spark_conf: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return self.folder / "work"



def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _is_set(value: str) -> bool:
    return value.strip().lower() not in ("false", "")


def prepare(arguments: dict[str, str], s3, glue_folder: Path, run_id: str, spark: bool) -> RunSetup:
    """The run's setup; raises JobArgumentError (after removing what it made) when an argument cannot be honoured."""
    remove_run(glue_folder, run_id)
    setup = RunSetup(glue_folder / "runs" / run_id)
    setup.work_dir.mkdir(parents=True)
    try:
        _apply(arguments, s3, glue_folder, setup, spark)
    except BaseException:
        remove_run(glue_folder, run_id)
        raise
    return setup


def remove_run(glue_folder: Path, run_id: str) -> None:
    """Removes what the run's arguments brought (its files and paths), once the run has ended."""
    shutil.rmtree(glue_folder / "runs" / run_id, ignore_errors=True)


def remove_leftovers(glue_folder: Path) -> None:
    """The run folders an earlier life of the stack left (a run in progress at a kill -9)."""
    shutil.rmtree(glue_folder / "runs", ignore_errors=True)


def _apply(arguments: dict[str, str], s3, glue_folder: Path, setup: RunSetup, spark: bool) -> None:
    for name, reason in REFUSED.items():
        if spark and arguments.get(name, "").strip():
            raise JobArgumentError(f"{name} cannot be honoured: {reason}")
    for name, value in arguments.items():
        if name in NO_EFFECT and _is_set(value):
            setup.notes.append(f"{name}: no effect in dealab ({NO_EFFECT[name]})")
        elif not spark and name in SPARK_ONLY and value.strip():
            setup.notes.append(f"{name}: no effect in a Python shell job (it has no Spark)")
    if spark and _is_set(arguments.get("--user-jars-first", "")):
        setup.notes.append("--user-jars-first: no effect without --extra-jars")
    if spark and arguments.get("--conf", "").strip():
        setup.spark_conf = parse_conf(arguments["--conf"])
    python_folder = setup.folder / "python"
    python_folder.mkdir()
    for uri in _listed(arguments.get("--extra-py-files", "")):
        if not uri.lower().endswith(PYTHON_FILE_SUFFIXES):
            raise JobArgumentError(f"--extra-py-files: {uri} is not a .py, .zip, .whl or .egg file")
        local = _fetch(s3, uri, python_folder, "--extra-py-files")
        if local.suffix != ".py":  # zip archives go on sys.path themselves; .py files through their folder
            setup.python_paths.append(str(local))
    setup.python_paths.insert(0, str(python_folder))
    for uri in _listed(arguments.get("--extra-files", "")):
        _fetch(s3, uri, setup.work_dir, "--extra-files")
    installer_options = arguments.get("--python-modules-installer-option", "").split()
    for entry in _listed(arguments.get("--additional-python-modules", "")):
        if entry.startswith("s3://"):
            setup.python_paths.append(str(_install_wheel(s3, entry, installer_options, glue_folder, setup)))
        else:
            setup.notes.append(_venv_satisfies(entry))


def parse_conf(value: str) -> dict[str, str]:
    """`--conf` as AWS reads it: `key=value`, more of them joined by ` --conf ` inside the one value."""
    settings = {}
    for part in value.split("--conf"):
        part = part.strip()
        if not part:
            continue
        key, equals, setting = part.partition("=")
        if not equals or not key.strip():
            raise JobArgumentError(f"--conf: {part!r} is not key=value")
        settings[key.strip()] = setting.strip()
    return settings


def _fetch(s3, uri: str, folder: Path, argument: str) -> Path:
    parts = urlsplit(uri)
    name = parts.path.rsplit("/", 1)[-1]
    if parts.scheme != "s3" or not parts.netloc or not name:
        raise JobArgumentError(f"{argument}: {uri} is not an s3://bucket/key path of a file")
    try:
        body = s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    except s3.exceptions.ClientError as error:
        raise JobArgumentError(f"{argument}: {uri} cannot be read ({error.response['Error']['Code']})") from None
    local = folder / name
    local.write_bytes(body)
    return local


def _install_wheel(s3, uri: str, installer_options: list[str], glue_folder: Path, setup: RunSetup) -> Path:
    """The folder holding the wheel's install (made once per wheel digest and installer options)."""
    if not uri.endswith(".whl"):
        raise JobArgumentError(f"--additional-python-modules: {uri} is not a wheel (.whl); dealab installs S3 wheels only")
    downloads = setup.folder / "wheels"
    downloads.mkdir(exist_ok=True)
    wheel = _fetch(s3, uri, downloads, "--additional-python-modules")
    digest = hashlib.sha256(wheel.read_bytes() + " ".join(installer_options).encode()).hexdigest()[:20]
    target = glue_folder / "python-modules" / digest
    if target.is_dir():
        setup.notes.append(f"--additional-python-modules: {wheel.name} installed from {uri} (cached)")
        return target
    partial = target.with_name(f"{digest}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check",
               "--no-warn-script-location", "--target", str(partial), *installer_options, str(wheel)]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        finished = None
    if finished is None or finished.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        detail = [line for line in (finished.stderr if finished else "timed out").splitlines() if line.strip()]
        raise JobArgumentError(f"--additional-python-modules: pip could not install {uri}: {detail[-1] if detail else 'no output'}")
    with contextlib.suppress(OSError):  # another run installed the same wheel meanwhile: theirs is as good
        rename(partial, target)
    shutil.rmtree(partial, ignore_errors=True)
    setup.notes.append(f"--additional-python-modules: {wheel.name} installed from {uri}")
    return target


def _venv_satisfies(entry: str) -> str:
    """The note for a module named without a path, which would need PyPI: the venv's copy, if it satisfies it."""
    try:
        requirement = Requirement(entry)
    except InvalidRequirement:
        raise JobArgumentError(f"--additional-python-modules: {entry!r} is neither a requirement (name==version) nor an s3:// wheel path") from None
    try:
        installed = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is not None and requirement.specifier.contains(installed, prereleases=True):
        return f"--additional-python-modules: {entry} is satisfied by {requirement.name} {installed} of the dealab environment, used as it is"
    has = f"the dealab environment has {requirement.name} {installed}" if installed else f"the dealab environment has no {requirement.name}"
    raise JobArgumentError(f"--additional-python-modules: {entry} cannot be installed: dealab works offline (no PyPI) and {has}; "
                           "put the module's wheel in S3 and give its s3:// path instead")
