"""The class folder (DEALAB_HOME/class/): the roster with each learner's key pair, the instructor token, and
where each learner's stack keeps its state (class/<learner>/). Learner ids become folder names, so only
ids of lower-case letters, digits, '-' and '_' are taken; the front door's own files live in class/.door/,
a name no learner id can have.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from dealab.wire.store import JsonFile, write_atomic

LEARNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ROSTER_COLUMNS = ("learner", "name", "email")
DOOR_FOLDER = ".door"
LEARNERS_FILE = "learners.json"
TOKEN_FILE = "instructor-token"
KEY_ALPHABET = string.ascii_uppercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


class RosterError(ValueError):
    """A roster the class cannot start from; the message names the line."""


@dataclass(frozen=True)
class Learner:
    id: str
    name: str
    email: str
    access_key_id: str
    secret_access_key: str


def class_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "class"


def door_dir(state_dir: Path) -> Path:
    return class_dir(state_dir) / DOOR_FOLDER


def learner_dir(state_dir: Path, learner: str) -> Path:
    if not LEARNER_ID.match(learner):  # never a path from an unchecked name
        raise RosterError(f"{learner!r} is not a learner id")
    return class_dir(state_dir) / learner


def read_roster(path: Path) -> list[dict]:
    """The roster's rows ({learner, name, email}); refuses, naming the line, a missing `learner` column,
    an unknown column, an invalid id or one seen before."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError(f"cannot read the roster {path}: {error}") from None
    reader = csv.DictReader(text.splitlines())
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    if "learner" not in columns:
        raise RosterError(f"{path} line 1: the roster needs a 'learner' column (optional: name, email); found {columns or 'nothing'}")
    unknown = [name for name in columns if name not in ROSTER_COLUMNS]
    if unknown:
        raise RosterError(f"{path} line 1: unknown column(s) {unknown}; a roster has learner, name, email")
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        row = {name.strip().lower(): (value or "").strip() for name, value in raw.items() if name is not None}
        if not any(row.values()):
            continue
        learner = row.get("learner", "")
        if not LEARNER_ID.match(learner):
            raise RosterError(f"{path} line {line}: learner id {learner!r} is not valid (1-63 of a-z, 0-9, '-', '_', starting with a letter or digit)")
        if learner in seen:
            raise RosterError(f"{path} line {line}: learner {learner!r} is already on line {seen[learner]}")
        seen[learner] = line
        rows.append({"learner": learner, "name": row.get("name", ""), "email": row.get("email", "")})
    if not rows:
        raise RosterError(f"{path}: the roster lists no learner")
    return rows


def _new_key_pair() -> tuple[str, str]:
    return ("AKIA" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(16)),
            "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40)))


def _private(path: Path, text: str) -> None:
    previous = os.umask(0o077)
    try:
        write_atomic(path, text)
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)


def enrol(state_dir: Path, rows: list[dict]) -> list[Learner]:
    """The class's learners for these roster rows: a learner already enrolled keeps their keys (a second
    `class up` hands out nothing new); each new one gets a fresh pair. Kept 0600 in class/.door/."""
    folder = door_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    known = {entry["id"]: entry for entry in JsonFile(folder / LEARNERS_FILE).load([])}
    learners = []
    for row in rows:
        entry = known.get(row["learner"])
        key, secret = (entry["access_key_id"], entry["secret_access_key"]) if entry else _new_key_pair()
        learners.append(Learner(row["learner"], row["name"], row["email"], key, secret))
    _private(folder / LEARNERS_FILE, json.dumps([asdict(learner) for learner in learners], indent=1))
    for learner in learners:
        home = learner_dir(state_dir, learner.id)
        home.mkdir(parents=True, exist_ok=True)
        write_atomic(home / "learner", learner.id + "\n")  # the stack's seed is the learner id
    return learners


def learners(state_dir: Path) -> list[Learner]:
    return [Learner(**entry) for entry in JsonFile(door_dir(state_dir) / LEARNERS_FILE).load([])]


def instructor_token(state_dir: Path) -> str:
    """The token the instructor page and `dealab class` commands send; made once, kept 0600."""
    path = door_dir(state_dir) / TOKEN_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    _private(path, token + "\n")
    return token
