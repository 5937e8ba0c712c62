"""Lab 05's raw zone: a few days of weather-station sensor readings (JSON lines, one folder per day), a CSV of
stations, and one more day, held back, whose readings carry a new `firmware` field."""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

from dealab.datasets import rng, write_bytes

RAW_BUCKET = "dea-catalog-raw"
RAW_PREFIX = "raw/"
READING_COLUMNS = [("reading_id", "string"), ("device_id", "string"), ("station_id", "string"), ("ts", "string"),
                   ("temperature", "double"), ("humidity", "bigint"), ("battery", "bigint"), ("ok", "boolean")]
NEW_COLUMN = ("firmware", "string")
STATION_COLUMNS = [("station_id", "string"), ("name", "string"), ("latitude", "double"), ("longitude", "double"), ("elevation_m", "bigint")]
TOWNS = ("Aberdeen", "Bergen", "Cork", "Dundee", "Esbjerg", "Faro", "Galway", "Hull", "Inverness", "Kiel", "Lyon", "Malmo")


def _readings(random, day: datetime.date, stations: int, count: int, firmware: bool) -> list[dict]:
    rows = []
    for number in range(count):
        moment = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(seconds=random.randrange(86400))
        row = {
            "reading_id": f"R{day:%Y%m%d}{number:05d}",
            "device_id": f"D{random.randrange(1, 60):04d}",
            "station_id": f"S{random.randrange(1, stations + 1):02d}",
            "ts": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temperature": round(random.uniform(-8, 31), 1),
            "humidity": random.randrange(20, 100),
            "battery": random.randrange(5, 101),
            "ok": random.random() > 0.03,
        }
        if firmware:
            row["firmware"] = random.choice(("v2.3.0", "v2.3.1", "v2.4.0"))
        rows.append(row)
    return rows


def _json_lines(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def generate(seed: str, out_dir: Path, days: int, readings_per_day: int) -> dict:
    """raw/readings/dt=<day>/part-N.json, raw/stations/stations.csv, and new_day/dt=<day>/part-0.json."""
    random = rng(seed, "telemetry")
    first_day = datetime.date(2024, 3, 1) + datetime.timedelta(days=random.randrange(200))
    stations = random.randint(6, len(TOWNS))
    rows_per_day = {}
    for offset in range(days + 1):
        day = first_day + datetime.timedelta(days=offset)
        held_back = offset == days
        rows = _readings(random, day, stations, random.randint(readings_per_day * 3 // 4, readings_per_day), firmware=held_back)
        rows_per_day[day.isoformat()] = len(rows)
        folder = out_dir / ("new_day" if held_back else "raw/readings") / f"dt={day.isoformat()}"
        half = len(rows) // 2
        write_bytes(folder / "part-0.json", _json_lines(rows[:half]))
        write_bytes(folder / "part-1.json", _json_lines(rows[half:]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _ in STATION_COLUMNS])
    for number in range(1, stations + 1):
        writer.writerow([f"S{number:02d}", TOWNS[number - 1], round(random.uniform(36, 60), 4), round(random.uniform(-9, 15), 4), random.randrange(0, 900)])
    write_bytes(out_dir / "raw" / "stations" / "stations.csv", buffer.getvalue().encode())
    days_list = sorted(rows_per_day)
    return {
        "days": days_list[:-1],
        "new_day": days_list[-1],
        "rows_per_day": rows_per_day,
        "stations": stations,
    }


def setup(ctx) -> None:
    """Creates the raw bucket and uploads raw/ (the new day stays in data/new_day/ for the learner)."""
    s3 = ctx.client("s3")
    try:
        s3.create_bucket(Bucket=RAW_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    raw = ctx.data_dir / "raw"
    for path in sorted(raw.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), RAW_BUCKET, RAW_PREFIX + path.relative_to(raw).as_posix())
