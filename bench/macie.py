"""Macie benchmark: what a classification job spends per object, scanning a CSV of people (names, SSNs, cards,
phones, IBANs, notes) with every managed data identifier (dealab/engines/macie/scan.py), against a baseline in the
same run: the same CSV parsed and each cell matched by the regular expressions the scan tries on it (the IBAN rows picked by
country code, as the scan picks them), with no validators, keywords or occurrences — the least a pattern-based
scanner does. Prints the medians, MB/s and the ratio (goal <= 2).

Run: `.venv/bin/python bench/macie.py [--rows 20000] [--repeat 3]`."""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.engines.macie.identifiers import MACIE_MANAGED, DetectorSet  # noqa: E402
from dealab.engines.macie.scan import scan  # noqa: E402


def people_csv(rows: int) -> bytes:
    draw = random.Random(7)
    out = io.StringIO()
    out.write("name,ssn,card_number,phone,iban,note\n")
    for i in range(rows):
        ssn = f"{draw.randint(100, 665):03d}-{draw.randint(1, 99):02d}-{draw.randint(1, 9999):04d}"
        card = "4539 1488 0343 6467" if i % 3 == 0 else "n/a"
        out.write(f"person{i},{ssn},{card},(206) 555-{i % 10000:04d},GB29 NWBK 6016 1331 9268 19,order {i} shipped to the usual address\n")
    return out.getvalue().encode()


def regex_only(body: bytes, detectors) -> int:
    matches = 0
    chosen = DetectorSet(detectors)
    for row in csv.reader(io.StringIO(body.decode())):
        for value in row:
            for detector in chosen.candidates(value):
                for form in detector.forms:
                    matches += sum(1 for _ in form.regex.finditer(value))
    return matches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    body = people_csv(args.rows)
    detectors = list(MACIE_MANAGED.values())
    scanned, plain = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = scan("people.csv", body, detectors)
        scanned.append(time.perf_counter() - started)
        started = time.perf_counter()
        regex_only(body, detectors)
        plain.append(time.perf_counter() - started)
    megabytes = len(body) / 1e6
    found = {key: detection.count for key, detection in result.detections.items()}
    print(f"{args.rows} rows, {megabytes:.1f} MB, {len(detectors)} managed identifiers; found {found}")
    print(f"scan (validators, keywords, occurrences): {statistics.median(scanned):.2f} s ({megabytes / statistics.median(scanned):.2f} MB/s)")
    print(f"regular expressions alone, same cells:     {statistics.median(plain):.2f} s")
    print(f"ratio: {statistics.median(scanned) / statistics.median(plain):.2f} (goal <= 2)")


if __name__ == "__main__":
    main()
