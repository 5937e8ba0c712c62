"""A grade report three ways: a rich table for the learner, JSON for tools, JUnit XML for CI dashboards."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from grader.runner import BY_REFERENCE, ERROR, FAIL, PASS, Report

STYLE = {PASS: "bold green", FAIL: "bold red", ERROR: "bold yellow"}
# the column where a check's message starts under its status line ("FAIL  L01-02  0/1  ")
MESSAGE_INDENT = 7


def summary(report: Report) -> str:
    """One line that says where the learner stands, printed before the details."""
    failing = sum(r.status != PASS for r in report.results)
    line = f"Score: {report.score}/{report.total}"
    line += "  — full marks!" if report.full_marks else f" — {failing} of {len(report.results)} checks not passed yet"
    if report.earned_by == BY_REFERENCE:
        line += f" (earned by the {BY_REFERENCE}, `make solve-{report.lab}`)"
    return line


def render(report: Report, console: Console, verbose: bool = False) -> None:
    """The summary first, then one line per check, the message of each check not passed under it. Fits 80
    columns: long messages wrap under their check; hints and docs links (which must not be cut) only with
    `verbose`, each link on a line of its own that the terminal may wrap but rich never cuts."""
    console.print(f"[bold]Lab {report.lab:02d} — {report.title}[/bold]", highlight=False)
    console.print(f"[{'bold green' if report.full_marks else 'bold'}]{summary(report)}[/]", highlight=False)
    for result in report.results:
        line = Text()
        line.append(f"{result.status:<5}", style=STYLE[result.status])
        line.append(f" {result.id}  {result.earned}/{result.points}  ")
        line.append(result.title, style="bold" if result.status != PASS else "")
        console.print(line)
        if result.status != PASS or verbose:
            console.print(Padding(Text(result.message), (0, 0, 0, MESSAGE_INDENT)))
        if result.status != PASS and verbose:
            console.print(Padding(Text.assemble(("hint: ", "cyan"), result.hint), (0, 0, 0, MESSAGE_INDENT)))
            if result.docs:
                console.print(" " * MESSAGE_INDENT + result.docs, style="dim", soft_wrap=True, highlight=False)


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2))


def write_junit(report: Report, path: Path) -> None:
    suite = ElementTree.Element(
        "testsuite",
        name=f"lab{report.lab:02d}-{report.slug}",
        tests=str(len(report.results)),
        failures=str(sum(r.status == FAIL for r in report.results)),
        errors=str(sum(r.status == ERROR for r in report.results)),
        time=str(round(sum(r.seconds for r in report.results), 3)),
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (("score", f"{report.score}/{report.total}"), ("earned_by", report.earned_by), ("seed", report.seed)):
        ElementTree.SubElement(properties, "property", name=name, value=value)
    for result in report.results:
        case = ElementTree.SubElement(suite, "testcase", classname=f"lab{report.lab:02d}", name=f"{result.id} {result.title}", time=str(result.seconds))
        if result.status != PASS:
            tag = "failure" if result.status == FAIL else "error"
            element = ElementTree.SubElement(case, tag, message=result.message)
            element.text = f"{result.message}\nhint: {result.hint}\n{result.docs}".strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
