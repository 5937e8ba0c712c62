"""The learner's path between labs, through the real CLI: never-started labs, the hint ladder, honest
scores, 80-column grade output, the shell, and learner code that cannot reach a real AWS account."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dealab.config import REPO_ROOT, Settings
from dealab.labs import UnsafeEnvironment, get_lab, learner_env
from grader.core import checks_of

DEALAB = str(Path(sys.executable).with_name("dealab"))


def dealab(*args: str, columns: int = 200, stdin: str | None = None, **env) -> subprocess.CompletedProcess:
    return subprocess.run([DEALAB, *args], env={**os.environ, "COLUMNS": str(columns), **env}, cwd=REPO_ROOT,
                          input=stdin, capture_output=True, text=True, timeout=600)


def test_a_never_started_lab_says_so_in_one_line(clean_stack):
    for command in (("grade", "1"), ("lab", "run", "1"), ("lab", "hint", "1")):
        result = dealab(*command)
        lines = result.stdout.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "make lab-1" in lines[0], (command, result.stdout)
        assert "Traceback" not in result.stdout + result.stderr


def _hint_of(output: str, check_id: str) -> str:
    """The header line of `check_id` in a `dealab lab hint` answer."""
    return next(line for line in output.splitlines() if line.startswith(check_id))


def test_the_hint_ladder_climbs_per_failing_check_then_points_at_the_solution(clean_stack):
    assert dealab("lab", "start", "1").returncode == 0
    lab = get_lab(1)
    first_check = checks_of(__import__(lab.grader_module, fromlist=["_"]))[0]
    rungs = len(first_check.hints)
    for level in range(1, rungs + 1):
        shown = dealab("lab", "hint", "1").stdout
        assert f"hint {level}/{rungs}" in _hint_of(shown, first_check.id), shown
        assert first_check.hints[level - 1].split()[0] in shown
        assert level == 1 or "docs:" not in shown, "the docs link goes with level 1 only"
    past_the_end = dealab("lab", "hint", "1").stdout
    assert "every hint shown" in _hint_of(past_the_end, first_check.id)
    assert "make solve-1" in past_the_end and "lab diff 1" in past_the_end
    assert f"hint {rungs}/{rungs}" not in past_the_end, "the last level is not repeated as if it were new"

    assert dealab("lab", "reset", "1").returncode == 0  # a reset lab starts its ladder over
    assert dealab("lab", "start", "1").returncode == 0
    assert f"hint 1/{rungs}" in _hint_of(dealab("lab", "hint", "1").stdout, first_check.id)


def test_below_full_marks_the_output_fits_80_columns_and_ends_saying_the_exit_is_the_score(clean_stack):
    assert dealab("lab", "start", "1").returncode == 0
    graded = dealab("grade", "1", columns=80)
    assert graded.returncode == 1
    lines = graded.stdout.rstrip().splitlines()
    assert lines[1].startswith("Score: ") and "not passed yet" in lines[1], "the summary comes first"
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert "not a crash" in " ".join(lines[-2:])
    verbose = dealab("grade", "1", "--verbose", columns=80).stdout
    docs = {c.docs for c in checks_of(__import__("grader.lab01", fromlist=["_"])) if c.docs}
    failing_docs = [url for url in docs if url in verbose]
    assert failing_docs, "verbose output carries the docs links whole"
    assert all(url in verbose.replace("\n", "") for url in failing_docs)


def test_solve_starts_the_lab_and_its_score_is_marked_as_the_reference_solutions(clean_stack, tmp_path):
    solved = dealab("lab", "solve", "1")
    assert solved.returncode == 0 and "starting it first" in solved.stdout, solved.stdout
    graded = dealab("grade", "1", "--json", str(tmp_path / "r.json"))
    assert graded.returncode == 0, graded.stdout
    assert "earned by the reference solution" in graded.stdout
    assert "Next: `make lab-2`" in graded.stdout
    assert json.loads((tmp_path / "r.json").read_text())["earned_by"] == "reference solution"
    assert re.search(r"\d+/\d+ \(reference solution\)", dealab("labs").stdout)
    diff = dealab("lab", "diff", "1")
    assert diff.returncode == 2 and "your own code gets full marks" in diff.stdout


def test_lab_diff_after_the_learners_own_full_marks(clean_stack, tmp_path, monkeypatch):
    from grader.runner import BY_LEARNER

    scores = clean_stack.state_dir / "scores.json"
    kept = scores.read_text() if scores.exists() else None
    try:
        scores.write_text(json.dumps({"1": {"score": 15, "total": 15, "at": "", "earned_by": BY_LEARNER}}))
        shown = dealab("lab", "diff", "1")
        assert shown.returncode == 0
        lab = get_lab(1)
        assert f"reference/{lab.entrypoints[0]}" in shown.stdout or "the same as the reference" in shown.stdout
    finally:
        scores.write_text(kept) if kept is not None else scores.unlink()


def test_up_prints_a_shell_command_that_works_as_typed_from_the_repo_root(aws_env):
    printed = dealab("up").stdout
    command = re.search(r"Open a shell pointed at it: (\S+) shell", printed)
    assert command, printed
    assert (REPO_ROOT / command.group(1)).exists() or Path(command.group(1)).exists()
    assert f'eval "$({command.group(1)} env)"' in printed


def test_the_shell_has_the_stacks_environment_and_a_prompt_marker(aws_env):
    result = dealab("shell", stdin='echo "endpoint=$AWS_ENDPOINT_URL"\necho "prompt=$PS1"\nexit 0\n', SHELL="/bin/bash")
    assert result.returncode == 0, result.stderr
    assert f"endpoint={aws_env.endpoint_url}" in result.stdout
    assert "prompt=(dealab) " in result.stdout


def test_learner_code_never_runs_pointed_past_the_stack(tmp_path):
    settings = Settings(tmp_path, 4566, 4567, "us-east-1", None)
    env = learner_env(settings, base={"PATH": "/bin", "AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com",
                                      "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "AWS_SESSION_TOKEN": "real", "AWS_PROFILE": "prod"})
    assert env["AWS_ENDPOINT_URL"] == settings.endpoint_url and env["PATH"] == "/bin"
    assert not {"AWS_ENDPOINT_URL_S3", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_SESSION_TOKEN", "AWS_PROFILE"} & env.keys()

    class NoEndpoint(Settings):
        def client_env(self):
            return {k: v for k, v in super().client_env().items() if k != "AWS_ENDPOINT_URL"}

    with pytest.raises(UnsafeEnvironment, match="real AWS account"):
        learner_env(NoEndpoint(tmp_path, 4566, 4567, "us-east-1", None), base={"AWS_ENDPOINT_URL": "https://example.com"})
