"""Labs are data: each labs/NN-slug/ folder holds README.md, lab.toml and starter/; this reads them.

A manifest names its joins in a [parts] table, paths relative to the repository root:

    [parts]
    dataset = "dealab.datasets.telemetry"        # module whose functions [dataset] names (generator, setup)
    grader = "grader.lab05"                       # module of @check functions
    solution = "solutions/05-catalog-crawlers"    # reference solution: the same entrypoints as starter/
    test = "tests/test_lab05.py"                  # the lab's end-to-end tests

Nothing finds a lab's parts by naming convention; `dealab labs --check` says whether they exist and agree.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dealab.config import REPO_ROOT, Settings
from dealab.wire.store import JsonFile

SCRIPT_TIMEOUT_SECONDS = 900
# [parts] keys, each required: a lab missing one is half-wired
PARTS = ("dataset", "grader", "solution", "test")


class UnknownLab(LookupError):
    pass


class LabManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Lab:
    path: Path  # the labs/NN-slug/ folder the manifest was read from
    number: int
    slug: str
    title: str
    domain: int
    tasks: tuple[str, ...]
    services: tuple[str, ...]
    minutes: int
    entrypoints: tuple[str, ...]
    hints: tuple[str, ...]
    dataset_module: str
    grader_module: str
    solution_dir: Path
    test_file: Path
    dataset: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)

    @property
    def starter_dir(self) -> Path:
        return self.path / "starter"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def readme(self) -> Path:
        return self.path / "README.md"

    def generator(self) -> Callable | None:
        return self.dataset_function("generator")

    def setup(self) -> Callable | None:
        return self.dataset_function("setup")

    def dataset_function(self, role: str) -> Callable | None:
        """The function [dataset] names for `role` ("generator" or "setup") in the [parts] dataset module."""
        name = self.dataset.get(role)
        return getattr(importlib.import_module(self.dataset_module), name) if name else None


def load(folder: Path, root: Path = REPO_ROOT) -> Lab:
    """Reads folder/lab.toml; [parts] paths resolve under `root`, the repository the labs folder sits in."""
    try:
        manifest = tomllib.loads((folder / "lab.toml").read_text())
        parts = manifest["parts"]
        missing, unknown = set(PARTS) - parts.keys(), parts.keys() - set(PARTS)
        if missing or unknown:
            raise ValueError(f"[parts] must name exactly {', '.join(PARTS)}"
                             + (f"; missing {', '.join(sorted(missing))}" if missing else "")
                             + (f"; unknown {', '.join(sorted(unknown))}" if unknown else ""))
        return Lab(
            path=folder,
            number=int(manifest["id"]),
            slug=manifest["slug"],
            title=manifest["title"],
            domain=int(manifest["domain"]),
            tasks=tuple(manifest["tasks"]),
            services=tuple(manifest.get("services", ())),
            minutes=int(manifest.get("minutes", 45)),
            entrypoints=tuple(manifest.get("entrypoints", ())),
            hints=tuple(h["text"] for h in manifest.get("hints", ())),
            dataset_module=parts["dataset"],
            grader_module=parts["grader"],
            solution_dir=root / parts["solution"],
            test_file=root / parts["test"],
            dataset=manifest.get("dataset", {}),
            resources=manifest.get("resources", {}),
        )
    except KeyError as error:
        raise LabManifestError(f"{folder / 'lab.toml'}: missing key {error}") from None
    except (OSError, ValueError, TypeError) as error:
        raise LabManifestError(f"{folder / 'lab.toml'}: {type(error).__name__}: {error}") from None


def lab_folders(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(folder for folder in (root / "labs").iterdir() if (folder / "lab.toml").exists())


def all_labs(root: Path = REPO_ROOT) -> list[Lab]:
    return sorted((load(folder, root) for folder in lab_folders(root)), key=lambda lab: lab.number)


def get_lab(number: int | str) -> Lab:
    labs = all_labs()
    for lab in labs:
        if str(lab.number) == str(number).lstrip("0") or lab.slug == str(number):
            return lab
    known = ", ".join(f"{lab.number} ({lab.slug})" for lab in labs)
    raise UnknownLab(f"there is no lab {number}; the labs are: {known}")


def empty_bucket(s3, bucket: str) -> None:
    """Deletes every version, delete marker and unfinished upload in the bucket (a lab's reset, a check's
    probe bucket)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


@dataclass(frozen=True)
class ScriptRun:
    script: Path
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _code_dirs_file(settings: Settings) -> Path:
    return settings.state_dir / "code_dirs.json"


def code_dir(lab: Lab, settings: Settings) -> Path:
    """The folder whose scripts last ran for this lab (starter, solution, or a copy): graders that run the
    learner's code again (a consumer restarted mid-stream) run that one."""
    recorded = JsonFile(_code_dirs_file(settings)).load({}).get(str(lab.number))
    return Path(recorded) if recorded else lab.starter_dir


def _remember_code_dir(lab: Lab, settings: Settings, folder: Path) -> None:
    code_dirs = JsonFile(_code_dirs_file(settings))
    recorded = code_dirs.load({})
    recorded[str(lab.number)] = str(folder.resolve())
    code_dirs.save(recorded)


class UnsafeEnvironment(RuntimeError):
    """Learner code would not be pointed at the local AWS (and could reach a real account)."""


# Variables of the caller's shell that would send an SDK's calls elsewhere than AWS_ENDPOINT_URL: per-service
# endpoints win over it, the "ignore" switch drops it, and a real session token does not belong to test/test.
_REDIRECTING_PREFIXES = ("AWS_ENDPOINT_URL_",)
_REDIRECTING = frozenset({"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"})


def learner_env(settings: Settings, base: dict | None = None, extra_env: dict | None = None) -> dict:
    """The environment learner code runs in: the caller's, minus whatever would point an SDK past the stack,
    plus the stack's client variables. Refuses (one line) if the endpoint would be missing."""
    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items() if k not in _REDIRECTING and not k.startswith(_REDIRECTING_PREFIXES)}
    env.update(settings.client_env())
    env.update(extra_env or {})
    if not env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1") and env.get("AWS_ENDPOINT_URL") != settings.endpoint_url:
        raise UnsafeEnvironment(
            "refusing to run your code: AWS_ENDPOINT_URL would not point at the local AWS, so its calls could reach "
            "a real AWS account"
        )
    return env


def run_scripts(lab: Lab, folder: Path, settings: Settings, timeout: int = SCRIPT_TIMEOUT_SECONDS, extra_env: dict | None = None) -> list[ScriptRun]:
    """Runs the lab's entrypoints from `folder` (starter or solution) as the learner would: plain Python, from
    the lab folder, with only AWS_ENDPOINT_URL and friends pointing at the stack."""
    env = learner_env(settings, extra_env=extra_env)
    _remember_code_dir(lab, settings, folder)
    runs = []
    for name in lab.entrypoints:
        script = folder / name
        try:
            completed = subprocess.run(
                [sys.executable, str(script)], cwd=lab.path, env=env, capture_output=True, text=True, timeout=timeout
            )
            runs.append(ScriptRun(script, completed.returncode, completed.stdout + completed.stderr))
        except subprocess.TimeoutExpired as expired:
            runs.append(ScriptRun(script, -1, f"{expired.stdout or ''}{expired.stderr or ''}\ntimed out after {timeout}s"))
        if not runs[-1].ok:
            break
    return runs
