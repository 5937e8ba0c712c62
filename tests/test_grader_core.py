"""The grader core: PASS/FAIL/ERROR with one-line messages, timeouts, and the three report formats."""

import json
import types
from xml.etree import ElementTree

from rich.console import Console

from dealab.config import Settings
from dealab.labs import get_lab
from grader.core import Fail, LabContext, check, checks_of
from grader.report import render, write_json, write_junit
from grader.runner import BY_REFERENCE, ERROR, FAIL, PASS, Report, run_check


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
    assert text.splitlines()[1].startswith("Score: 2/5") and "bucket x: versioning" in text and "hint:" not in text
    verbose = Console(record=True, width=120)
    render(report, verbose, verbose=True)
    assert "hint: do the thing" in verbose.export_text()


def test_a_score_the_reference_solution_earned_says_so(tmp_path):
    ctx = context(tmp_path)
    report = Report(1, "01-x", "Lab", "seed", [run_check(passing, ctx)], earned_by=BY_REFERENCE)
    console = Console(record=True, width=80)
    render(report, console)
    assert "earned by the reference solution" in console.export_text()
    write_json(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["earned_by"] == BY_REFERENCE
    write_junit(report, tmp_path / "r.xml")
    properties = {p.get("name"): p.get("value") for p in ElementTree.parse(tmp_path / "r.xml").getroot().iter("property")}
    assert properties["earned_by"] == BY_REFERENCE and properties["score"] == "2/2"


def test_long_messages_wrap_under_their_check_at_80_columns(tmp_path):
    @check("T-05", "fails at length", points=1, task="2.1", hints=("h",), docs="https://docs.aws.amazon.com/AmazonS3/latest/userguide/a-very-long-page-name-that-goes-on.html")
    def long_failure(ctx):
        raise Fail("bucket 'dea-lake-raw': " + "the policy does not deny plain-HTTP object reads, " * 4)

    report = Report(1, "01-x", "Lab", "seed", [run_check(long_failure, context(tmp_path))])
    console = Console(record=True, width=80)
    render(report, console, verbose=True)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines if "https://" not in line)
    assert any(line.strip() == long_failure.docs for line in lines), "the docs link is printed whole, never cut"
