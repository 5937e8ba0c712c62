"""Every lab folder is complete and consistent: manifest, exercise, starter, solution, checks."""

import ast
import shutil
from pathlib import Path

import pytest

from dealab.config import REPO_ROOT
from dealab.labcheck import PARTS, check_labs
from dealab.labs import all_labs
from tests.test_cli import dealab

LABS = all_labs()


WIRINGS = check_labs()


@pytest.mark.parametrize("wiring", WIRINGS, ids=[wiring.folder.name for wiring in WIRINGS])
def test_every_part_of_the_lab_exists_and_agrees(wiring):
    assert wiring.ok, "; ".join(f"{f.part}: {f.detail}" for f in wiring.findings if not f.ok)
    assert [f.part for f in wiring.findings] == list(PARTS)


def test_the_check_command_passes_on_the_repo():
    result = dealab("labs", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(LABS)} labs, every part present and in agreement" in result.stdout


def _copy_of_the_labs(root: Path) -> Path:
    """The parts `labs --check` reads, copied under `root` (modules still come from the installed package)."""
    shutil.copytree(REPO_ROOT / "labs", root / "labs", ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copytree(REPO_ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests").mkdir()
    for lab in LABS:
        shutil.copy(lab.test_file, root / "tests" / lab.test_file.name)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


# what a half-wired lab looks like → (lab folder, part, words the reason must hold)
BREAKAGES = {
    "grader module renamed": (lambda root: _edit(root / "labs/04-s3-lifecycle/lab.toml", 'grader = "grader.lab04"', 'grader = "grader.lab4"'),
                              "04-s3-lifecycle", "grader", "grader module grader.lab4 does not import"),
    "solution lacks an entrypoint": (lambda root: (root / "solutions/06-glue-etl/run_job.py").unlink(),
                                     "06-glue-etl", "solution", "lacks entrypoint(s) run_job.py"),
    "[parts] missing": (lambda root: _edit(root / "labs/07-athena-analysis/lab.toml", "[parts]", "[partz]"),
                        "07-athena-analysis", "lab.toml", "missing key 'parts'"),
    "task not in the syllabus": (lambda root: _edit(root / "labs/05-catalog-crawlers/lab.toml", '"2.4"]', '"2.4", "9.9"]'),
                                 "05-catalog-crawlers", "tasks", "['9.9'] are not task statements"),
    "slug disagrees with the folder": (lambda root: _edit(root / "labs/01-s3-landing-zone/lab.toml", 'slug = "01-s3-landing-zone"', 'slug = "01-landing"'),
                                       "01-s3-landing-zone", "lab.toml", "slug '01-landing' is not the folder's name"),
    "generator named wrong": (lambda root: _edit(root / "labs/08-dynamodb-modelling/lab.toml", 'generator = "generate"', 'generator = "generat"'),
                              "08-dynamodb-modelling", "dataset", "generator 'generat' is not a function of dealab.datasets.order_model"),
    "test file gone": (lambda root: (root / "tests/test_lab03.py").unlink(), "03-firehose-lake", "test", "test_lab03.py is missing"),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_half_wired_lab_is_reported_with_the_reason(tmp_path, breakage):
    break_it, folder, part, reason = BREAKAGES[breakage]
    root = _copy_of_the_labs(tmp_path)
    assert all(wiring.ok for wiring in check_labs(root)), "the untouched copy must pass"
    break_it(root)
    broken = {(w.folder.name, f.part): f.detail for w in check_labs(root) for f in w.findings if not f.ok}
    assert list(broken) == [(folder, part)] and reason in broken[(folder, part)], broken


def test_the_check_command_names_the_broken_part_and_fails(tmp_path):
    root = _copy_of_the_labs(tmp_path)
    (root / "solutions/06-glue-etl/run_job.py").unlink()
    _edit(root / "labs/04-s3-lifecycle/lab.toml", "raw_objects = 12", "raw_object = 12")
    result = dealab("labs", "--check", "--root", str(root))
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert "06-glue-etl solution: solution lacks entrypoint(s) run_job.py" in result.stdout
    assert "04-s3-lifecycle dataset: [dataset] params do not fit" in result.stdout  # brackets shown, not read as markup
    assert "half-wired lab(s): 04-s3-lifecycle, 06-glue-etl" in result.stdout


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

    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("<!-- labs-table", 1)[1].split("-->", 1)[1].split("<!-- /labs-table -->", 1)[0].strip()
    assert table == labs_markdown(LABS), "README lab table is stale: paste `dealab labs --markdown` into it"
