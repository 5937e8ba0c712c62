"""A grade report three ways: a rich table for the learner, JSON for tools, JUnit XML for CI dashboards."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table

from grader.runner import ERROR, FAIL, PASS, Report

STYLE = {PASS: "bold green", FAIL: "bold red", ERROR: "bold yellow"}


def render(report: Report, console: Console) -> None:
    table = Table(title=f"Lab {report.lab:02d} — {report.title}", title_justify="left", show_lines=False)
    table.add_column("check", no_wrap=True)
    table.add_column("task", no_wrap=True)
    table.add_column("pts", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("what the grader saw")
    for result in report.results:
        detail = f"[bold]{result.title}[/bold]\n{result.message}"
        if result.status != PASS:
            detail += f"\n[cyan]hint:[/cyan] {result.hint}"
            if result.docs:
                detail += f"\n[dim]{result.docs}[/dim]"
        table.add_row(result.id, result.task, f"{result.earned}/{result.points}", f"[{STYLE[result.status]}]{result.status}[/]", detail)
    console.print(table)
    style = "bold green" if report.full_marks else "bold"
    console.print(f"[{style}]Score: {report.score}/{report.total}[/]" + ("  — full marks!" if report.full_marks else ""))


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
    for result in report.results:
        case = ElementTree.SubElement(suite, "testcase", classname=f"lab{report.lab:02d}", name=f"{result.id} {result.title}", time=str(result.seconds))
        if result.status != PASS:
            tag = "failure" if result.status == FAIL else "error"
            element = ElementTree.SubElement(case, tag, message=result.message)
            element.text = f"{result.message}\nhint: {result.hint}\n{result.docs}".strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
