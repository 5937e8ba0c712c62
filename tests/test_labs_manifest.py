"""Every lab folder is complete and consistent: manifest, exercise, starter, solution, checks."""

import ast
import importlib

import pytest

from dealab.labs import all_labs
from dealab.syllabus import TASKS
from grader.core import checks_of

LABS = all_labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.slug for lab in LABS])
def test_lab_is_complete(lab):
    assert lab.readme.exists() and "check" in lab.readme.read_text().lower()
    assert set(lab.tasks) <= TASKS.keys()
    assert lab.entrypoints and lab.hints
    for name in lab.entrypoints:
        assert (lab.starter_dir / name).exists() and (lab.solution_dir / name).exists()
    checks = checks_of(importlib.import_module(lab.grader_module))
    assert checks, "a lab without checks grades nothing"
    prefix = f"L{lab.number:02d}-"
    for check_ in checks:
        assert check_.id.startswith(prefix) and check_.hints and all(check_.hints) and check_.points > 0
        assert check_.task in lab.tasks, f"{check_.id} covers {check_.task}, not listed in lab.toml tasks"


@pytest.mark.parametrize("lab", LABS, ids=[lab.slug for lab in LABS])
def test_learner_code_is_plain_aws_code(lab):
    """Starter and solution never name an endpoint and import nothing from dealab: they run on AWS as they are."""
    for folder in (lab.starter_dir, lab.solution_dir):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                assert not (isinstance(node, ast.keyword) and node.arg == "endpoint_url"), path
                assert not (isinstance(node, ast.Constant) and isinstance(node.value, str) and ("127.0.0.1" in node.value or "localhost:" in node.value)), path
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(n.split(".")[0] in ("dealab", "grader") for n in names), path


def test_readme_lab_table_matches_the_manifests():
    from dealab.cli import labs_markdown
    from dealab.config import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("<!-- labs-table", 1)[1].split("-->", 1)[1].split("<!-- /labs-table -->", 1)[0].strip()
    assert table == labs_markdown(LABS), "README lab table is stale: paste `dealab labs --markdown` into it"
