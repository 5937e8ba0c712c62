"""Lab 01's source extracts: daily order files from several sales channels, one CSV per source and day."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
from pathlib import Path

from dealab.datasets import rng, write_bytes

COLUMNS = ("order_id", "customer_id", "sku", "quantity", "unit_price", "currency", "ordered_at")
SKUS = ("BK-1001", "BK-1002", "EL-2001", "EL-2002", "HM-3001", "HM-3002", "TY-4001", "SP-5001")
CURRENCIES = ("USD", "EUR", "GBP")


def relative_path(source: str, day: datetime.date) -> str:
    """Where one extract lives, Hive-style, both under data/ and under the raw zone's sales/ prefix."""
    return f"source={source}/dt={day.isoformat()}/orders.csv"


def _extract(seed: str, source: str, day: datetime.date, rows: int) -> bytes:
    random = rng(seed, f"landing-zone:{source}:{day}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number in range(random.randint(rows // 2, rows)):
        moment = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(seconds=random.randrange(86400))
        writer.writerow((
            f"{source[:3].upper()}-{day:%Y%m%d}-{number:05d}",
            f"C{random.randrange(1, 5000):05d}",
            random.choice(SKUS),
            random.randint(1, 6),
            f"{random.uniform(2, 400):.2f}",
            random.choice(CURRENCIES),
            moment.isoformat(timespec="seconds") + "Z",
        ))
    return buffer.getvalue().encode()


def generate(seed: str, out_dir: Path, sources: list[str], days: int, rows_per_file: int) -> dict:
    """Writes one extract per source and day; returns {"files": {relative path: sha256}, "days": [...]}."""
    random = rng(seed, "landing-zone:calendar")
    first_day = datetime.date(2024, 1, 1) + datetime.timedelta(days=random.randrange(330))
    calendar = [first_day + datetime.timedelta(days=offset) for offset in range(days)]
    files = {}
    for source in sources:
        for day in calendar:
            content = _extract(seed, source, day, rows_per_file)
            path = relative_path(source, day)
            write_bytes(out_dir / path, content)
            files[path] = hashlib.sha256(content).hexdigest()
    return {"files": files, "days": [day.isoformat() for day in calendar], "sources": list(sources)}
