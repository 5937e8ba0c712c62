"""The grader core: PASS/FAIL/ERROR with one-line messages, timeouts, and the three report formats."""

import json
import types
from xml.etree import ElementTree

from rich.console import Console

from dealab.config import Settings
from dealab.labs import get_lab
from grader.core import Fail, LabContext, check, checks_of
from grader.report import render, write_json, write_junit
from grader.runner import ERROR, FAIL, PASS, Report, run_check


@check("T-01", "passes", points=2, task="2.1", hints=("none needed",))
def passing(ctx):
    return "bucket x is fine"


@check("T-02", "fails", points=3, task="2.1", hints=("do the thing",))
def failing(ctx):
    raise Fail("bucket x: versioning is Suspended,\n expected Enabled")


@check("T-03", "crashes", points=1, task="2.1", hints=("-",))
def crashing(ctx):
    return {}["missing"]


@check("T-04", "hangs", points=1, task="2.1", hints=("-",), timeout=1)
def hanging(ctx):
    import time

    time.sleep(5)
    return "never"


def context(tmp_path) -> LabContext:
    settings = Settings(tmp_path, 1, 2, "us-east-1", None)
    return LabContext(get_lab(1), settings, "seed")


def test_statuses_and_one_line_messages(tmp_path):
    ctx = context(tmp_path)
    results = {c.id: run_check(c, ctx) for c in (passing, failing, crashing, hanging)}
    assert (results["T-01"].status, results["T-01"].earned) == (PASS, 2)
    assert (results["T-02"].status, results["T-02"].earned) == (FAIL, 0)
    assert results["T-02"].message == "bucket x: versioning is Suspended, expected Enabled"
    assert results["T-03"].status == ERROR and "KeyError" in results["T-03"].message and "Traceback" not in results["T-03"].message
    assert results["T-04"].status == ERROR and "within 1s" in results["T-04"].message


def test_checks_are_collected_in_id_order():
    module = types.SimpleNamespace(b=failing, a=passing, other=42)
    assert [c.id for c in checks_of(module)] == ["T-01", "T-02"]


def test_reports(tmp_path):
    ctx = context(tmp_path)
    report = Report(1, "01-x", "Lab", "seed", [run_check(c, ctx) for c in (passing, failing)])
    assert (report.score, report.total, report.full_marks) == (2, 5, False)
    write_json(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["results"][1]["status"] == FAIL
    write_junit(report, tmp_path / "r.xml")
    suite = ElementTree.parse(tmp_path / "r.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase/failure").get("message").startswith("bucket x")
    console = Console(record=True, width=120)
    render(report, console)
    text = console.export_text()
    assert "Score: 2/5" in text and "hint: do the thing" in text
