"""`dealab storage report [--png PATH]`: bytes and monthly cost per S3 storage class, and how they shifted."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dealab.commands import admin

app = typer.Typer(help="S3 storage by class and its monthly cost, as lifecycle rules move objects over time.", no_args_is_help=True)
console = Console()

CLASS_COLOURS = {
    "STANDARD": "bright_blue",
    "REDUCED_REDUNDANCY": "blue",
    "STANDARD_IA": "cyan",
    "INTELLIGENT_TIERING": "magenta",
    "ONEZONE_IA": "bright_cyan",
    "GLACIER_IR": "green",
    "GLACIER": "yellow",
    "DEEP_ARCHIVE": "red",
}
BAR_WIDTH = 48
CHART_ROWS = 12


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def usd(amount: float) -> str:
    """A cost as people read it: 3 significant digits, never in exponent notation (0.0000500, 1.23, 1,230)."""
    if amount == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(amount)))
    decimals = max(0, 2 - magnitude)
    return f"{round(amount, decimals):,.{decimals}f}"


def usd_change(amount: float) -> str:
    return ("+" if amount > 0 else "") + usd(amount)


def _timeline(history: list[dict]) -> list[dict]:
    """The history in lab-time order, one point per moment (the last one recorded for a moment wins)."""
    by_time: dict[str, dict] = {}
    for point in history:
        by_time[point["time"]] = point
    return [by_time[moment] for moment in sorted(by_time, key=lambda text: datetime.datetime.fromisoformat(text))]


def _class_totals(point: dict) -> dict[str, int]:
    totals: dict[str, int] = {}
    for classes in point["buckets"].values():
        for storage_class, (size, *_) in classes.items():
            totals[storage_class] = totals.get(storage_class, 0) + size
    return totals


def _bar(totals: dict[str, int], scale: int) -> Text:
    bar = Text()
    for storage_class in CLASS_COLOURS:
        size = totals.get(storage_class, 0)
        if size:
            bar.append("█" * max(1, round(size / scale * BAR_WIDTH)), style=CLASS_COLOURS[storage_class])
    return bar


def _sample(points: list[dict]) -> list[dict]:
    if len(points) <= CHART_ROWS:
        return points
    step = (len(points) - 1) / (CHART_ROWS - 1)
    return [points[round(i * step)] for i in range(CHART_ROWS)]


def render(report: dict) -> None:
    prices = report["prices"]
    console.print(f"S3 storage at lab time [bold]{report['now']}[/bold]; {prices['region']} list prices as of {prices['as_of']} ({prices['source']})")
    # "billed as" differs from the size where objects under a class's minimum billable size are billed as that size
    table = Table("bucket", "storage class", "objects", "size", "billed as", "USD / month")
    for bucket, classes in sorted(report["buckets"].items()):
        for storage_class, entry in sorted(classes.items()):
            table.add_row(bucket, Text(storage_class, style=CLASS_COLOURS.get(storage_class, "")), str(entry["objects"]),
                          human_bytes(entry["bytes"]), human_bytes(entry["billed_bytes"]), usd(entry["usd_month"]))
    console.print(table)
    console.print(f"total estimated storage cost: [bold]{usd(report['usd_month'])}[/bold] USD / month")

    history = _timeline(report["history"])
    if len(history) < 2:
        console.print("no history yet: the clock has not moved over buckets with lifecycle rules (`dealab clock advance 30d`)")
        return
    before, after = history[0], history[-1]
    change = after["usd_month"] - before["usd_month"]
    share = f" ({change / before['usd_month']:+.1%})" if before["usd_month"] else ""
    console.print(
        f"buckets with lifecycle rules: {usd(before['usd_month'])} USD / month at {before['time']} → "
        f"{usd(after['usd_month'])} at {after['time']}: {usd_change(change)}{share}"
    )
    scale = max(sum(_class_totals(point).values()) for point in history) or 1
    chart = Table("lab time", f"bytes by storage class (full width = {human_bytes(scale)})", box=None)
    for point in _sample(history):
        chart.add_row(point["time"][:16].replace("T", " "), _bar(_class_totals(point), scale))
    console.print(chart)
    legend = Text("  ")
    for storage_class, colour in CLASS_COLOURS.items():
        legend.append("█ ", style=colour).append(storage_class + "  ")
    console.print(legend)


def write_png(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = _timeline(report["history"])
    times = [datetime.datetime.fromisoformat(point["time"]) for point in history]
    totals = [_class_totals(point) for point in history]
    classes = [c for c in CLASS_COLOURS if any(t.get(c) for t in totals)]
    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.stackplot(times, [[t.get(c, 0) / 1024 ** 2 for t in totals] for c in classes], labels=classes, step="post")
    axis.set_xlabel("lab time")
    axis.set_ylabel("MiB stored")
    prices = report["prices"]
    axis.set_title(f"S3 bytes by storage class; {usd(history[0]['usd_month'])} → {usd(history[-1]['usd_month'])} USD/month "
                   f"({prices['region']}, prices of {prices['as_of']})", fontsize=9)
    axis.legend(loc="upper right", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


@app.callback()
def storage() -> None:
    """S3 storage by class and its monthly cost (a group, so `dealab storage report` keeps its name)."""


@app.command()
def report(png: Path = typer.Option(None, "--png", help="also draw the history as a PNG chart at this path")) -> None:
    """Bytes per storage class per bucket now, the monthly cost estimate, and how it shifted as the clock moved."""
    document = admin.call("storage", timeout=300)
    render(document)
    if png is not None:
        if len(document["history"]) < 2:
            console.print("[yellow]no PNG written[/yellow]: there is no history to draw yet")
            raise typer.Exit(1)
        write_png(document, png)
        console.print(f"chart written to {png}")
