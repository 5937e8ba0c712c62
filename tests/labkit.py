"""Helpers for the end-to-end lab tests: start a lab, run a solution (whole or broken), grade, compare."""

from __future__ import annotations

import shutil
from pathlib import Path

from dealab import labrun
from dealab.config import Settings
from dealab.datasets import learner_seed
from dealab.labs import Lab, get_lab, run_scripts
from dealab.stack import control
from grader.runner import FAIL, PASS, Report, grade


def fresh_lab(number: int, settings: Settings) -> Lab:
    """An empty stack and the lab started on it, as `make reset && make lab-N` leaves it."""
    control.reset(settings)
    lab = get_lab(number)
    labrun.start(lab, settings)
    return lab


def run_solution(lab: Lab, settings: Settings, folder: Path | None = None) -> None:
    runs = run_scripts(lab, folder or lab.solution_dir, settings)
    failed = [run for run in runs if not run.ok]
    assert not failed, f"{failed[0].script} exited {failed[0].returncode}:\n{failed[0].output[-3000:]}"


def run_starter(lab: Lab, settings: Settings) -> None:
    """The untouched starter may stop at its first TODO; that is the learner's starting point, not an error."""
    run_scripts(lab, lab.starter_dir, settings)


def edited_solution(lab: Lab, tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the reference solution with text edits applied (a mutant, or a correct variant); each edit
    must find its text exactly once."""
    folder = tmp_path / f"edited-{lab.slug}"
    shutil.copytree(lab.solution_dir, folder)
    for name, replacements in edits.items():
        path = folder / name
        text = path.read_text()
        for old, new in replacements:
            assert text.count(old) == 1, f"{name}: expected {old!r} exactly once, found {text.count(old)}"
            text = text.replace(old, new)
        path.write_text(text)
    return folder


def grade_lab(lab: Lab, settings: Settings) -> Report:
    return grade(lab, settings, learner_seed(settings))


def solution_report(lab: Lab, settings: Settings, folder: Path | None = None) -> Report:
    run_solution(lab, settings, folder)
    return grade_lab(lab, settings)


def starter_report(lab: Lab, settings: Settings) -> Report:
    run_starter(lab, settings)
    return grade_lab(lab, settings)


def assert_fails_only(report: Report, check_ids: set[str]) -> None:
    """Exactly these checks fail, each a FAIL (an ERROR is a grader bug) with a message of one readable line."""
    assert failing_ids(report) == check_ids, explain(report)
    for result in report.results:
        if result.id in check_ids:
            assert result.status == FAIL, f"{result.id} is {result.status}, a grader bug: {result.message}"
            assert result.message and "\n" not in result.message, f"{result.id}: {result.message!r}"


def prove_breakage(lab: Lab, settings: Settings, tmp_path: Path, check_ids: set[str], edits: dict[str, list[tuple[str, str]]]) -> None:
    """The reference solution with `edits` applied fails exactly `check_ids`."""
    assert_fails_only(solution_report(lab, settings, edited_solution(lab, tmp_path, edits)), check_ids)


def combined_mutants(mutants: dict[str, tuple[set[str], dict[str, list[tuple[str, str]]]]], names) -> tuple[set[str], dict[str, list[tuple[str, str]]]]:
    """Several mutants applied in one solution run (a lab run is slow): their checks, which must not overlap or each
    would not prove its own, and their edits together."""
    check_ids, edits = set(), {}
    for name in names:
        checks, changes = mutants[name]
        assert not check_ids & checks, f"{names}: the mutants share checks, so each would not prove its own"
        check_ids |= checks
        for file, replacements in changes.items():
            edits.setdefault(file, []).extend(replacements)
    return check_ids, edits


def prove_variant(lab: Lab, settings: Settings, tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> None:
    """The reference solution written another correct way still gets full marks."""
    report = solution_report(lab, settings, edited_solution(lab, tmp_path, edits))
    assert report.full_marks, explain(report)


def failing_ids(report: Report) -> set[str]:
    return {result.id for result in report.results if result.status != PASS}


def explain(report: Report) -> str:
    return "\n".join(f"{r.id} {r.status}: {r.message}" for r in report.results if r.status != PASS)
