"""`dealab labs --check`: each lab's parts exist and agree, so no lab is half-wired.

One rule per part (the PARTS table below): a rule returns a short account of what it found, or raises
Broken with the reason. A manifest that does not load breaks its whole row; every other part is judged
on its own, so one run lists every problem.
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dealab.config import REPO_ROOT
from dealab.labrun import DELETERS
from dealab.labs import Lab, LabManifestError, lab_folders, load
from dealab.syllabus import DOMAINS, TASKS
from grader.core import checks_of

DATASET_ROLES = ("generator", "setup")
DATASET_KEYS = frozenset({*DATASET_ROLES, "params"})


class Broken(Exception):
    """A part is missing, or disagrees with the manifest; the message says which and how."""


def _import(kind: str, module: str):
    try:
        return importlib.import_module(module)
    except Exception as error:  # any failure to import is the finding, whatever its kind
        raise Broken(f"{kind} module {module} does not import: {type(error).__name__}: {error}") from None


def _lab_toml(lab: Lab) -> str:
    folder = lab.path.name
    if lab.slug != folder:
        raise Broken(f"slug {lab.slug!r} is not the folder's name {folder!r}")
    if not folder.startswith(f"{lab.number:02d}-"):
        raise Broken(f"id {lab.number} does not match the folder {folder!r} (expected it to start with {lab.number:02d}-)")
    if not lab.readme.is_file():
        raise Broken(f"no exercise: {lab.readme} is missing")
    if not lab.hints:
        raise Broken("no [[hints]]: `dealab lab hint` would have nothing to say before grading")
    return f"{folder}, README, {len(lab.hints)} hint(s)"


def _tasks(lab: Lab) -> str:
    if lab.domain not in DOMAINS:
        raise Broken(f"domain {lab.domain} is not an exam domain (dealab/syllabus.py has {', '.join(map(str, DOMAINS))})")
    unknown = [task for task in lab.tasks if task not in TASKS]
    if not lab.tasks or unknown:
        raise Broken(f"tasks {unknown or '[]'} are not task statements in dealab/syllabus.py")
    return " ".join(lab.tasks)


def _dataset(lab: Lab) -> str:
    unknown = lab.dataset.keys() - DATASET_KEYS
    if unknown:
        raise Broken(f"[dataset] has unknown keys {sorted(unknown)} (known: {', '.join(sorted(DATASET_KEYS))})")
    module = _import("dataset", lab.dataset_module)
    found = []
    for role in DATASET_ROLES:
        name = lab.dataset.get(role)
        if name is None:
            continue
        function = getattr(module, name, None)
        if not callable(function):
            raise Broken(f"[dataset] {role} {name!r} is not a function of {lab.dataset_module}")
        found.append(f"{role} {name}")
    generator = lab.generator()
    if generator is not None:
        try:  # the call labrun makes: generator(seed, data folder, **params)
            inspect.signature(generator).bind("seed", Path(tempfile.gettempdir()), **lab.dataset.get("params", {}))
        except TypeError as error:
            raise Broken(f"[dataset] params do not fit {lab.dataset_module}.{lab.dataset['generator']}: {error}") from None
    elif "params" in lab.dataset:
        raise Broken("[dataset] has params but no generator to take them")
    return ", ".join(found) or "no seed data"


def _grader(lab: Lab) -> str:
    checks = checks_of(_import("grader", lab.grader_module))
    if not checks:
        raise Broken(f"{lab.grader_module} defines no @check: the lab would grade nothing")
    prefix = f"L{lab.number:02d}-"
    seen: set[str] = set()
    for check_ in checks:
        if not check_.id.startswith(prefix):
            raise Broken(f"check {check_.id} does not start with {prefix}")
        if check_.id in seen:
            raise Broken(f"two checks are {check_.id}")
        seen.add(check_.id)
        if check_.task not in lab.tasks:
            raise Broken(f"{check_.id} covers task {check_.task}, which lab.toml tasks do not list")
        if check_.points <= 0 or not check_.hints or not all(check_.hints):
            raise Broken(f"{check_.id} needs points above 0 and a hint ladder without empty rungs")
    return f"{len(checks)} checks, {sum(c.points for c in checks)} points"


def _entrypoints_in(folder: Path, lab: Lab, what: str) -> str:
    if not lab.entrypoints:
        raise Broken("lab.toml lists no entrypoints: there is nothing for the learner to run")
    if not folder.is_dir():
        raise Broken(f"{what} folder {folder} is missing")
    missing = [name for name in lab.entrypoints if not (folder / name).is_file()]
    if missing:
        raise Broken(f"{what} lacks entrypoint(s) {', '.join(missing)} in {folder}")
    return ", ".join(lab.entrypoints)


def _starter(lab: Lab) -> str:
    return _entrypoints_in(lab.starter_dir, lab, "starter")


def _solution(lab: Lab) -> str:
    return _entrypoints_in(lab.solution_dir, lab, "solution")


def _test(lab: Lab) -> str:
    if not lab.test_file.is_file():
        raise Broken(f"test file {lab.test_file} is missing")
    return lab.test_file.name


def _reset(lab: Lab) -> str:
    unknown = lab.resources.keys() - DELETERS.keys()
    if unknown:
        raise Broken(f"[resources] kinds {sorted(unknown)} cannot be deleted by `reset` (known: {', '.join(sorted(DELETERS))})")
    return f"{sum(len(names) for names in lab.resources.values())} to reset"


# part → the rule that judges it; the order is the table's column order
PARTS: dict[str, Callable[[Lab], str]] = {
    "lab.toml": _lab_toml,
    "tasks": _tasks,
    "dataset": _dataset,
    "grader": _grader,
    "starter": _starter,
    "solution": _solution,
    "test": _test,
    "reset": _reset,
}


@dataclass(frozen=True)
class Finding:
    part: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class LabWiring:
    folder: Path
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)


def _judge(part: str, rule: Callable[[Lab], str], lab: Lab) -> Finding:
    try:
        return Finding(part, True, rule(lab))
    except Broken as broken:
        return Finding(part, False, str(broken))


def check_labs(root: Path = REPO_ROOT) -> list[LabWiring]:
    """Every folder under root/labs/ with a lab.toml, each part judged; ids must also be unique across labs."""
    wirings, owners = [], {}
    for folder in lab_folders(root):
        try:
            lab = load(folder, root)
        except LabManifestError as error:
            reason = str(error).removeprefix(f"{folder / 'lab.toml'}: ")
            wirings.append(LabWiring(folder, (Finding("lab.toml", False, f"does not load: {reason}"),)))
            continue
        findings = [_judge(part, rule, lab) for part, rule in PARTS.items()]
        if lab.number in owners:
            findings[0] = Finding("lab.toml", False, f"id {lab.number} is also lab {owners[lab.number]}'s")
        owners.setdefault(lab.number, folder.name)
        wirings.append(LabWiring(folder, tuple(findings)))
    return wirings
