"""Seeded datasets: every learner gets different data, and the grader recomputes it from the same seed."""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

from dealab.config import Settings
from dealab.wire.store import write_atomic


def learner_seed(settings: Settings) -> str:
    """DEALAB_LEARNER if set, else a seed made once and kept in the state folder (survives `dealab reset`)."""
    named = os.environ.get("DEALAB_LEARNER")
    if named:
        return named
    path = settings.state_dir / "learner"
    try:
        kept = path.read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        kept = ""
    if kept:
        return kept
    seed = f"learner-{secrets.token_hex(4)}"
    write_atomic(path, seed + "\n")
    return seed


def rng(seed: str, purpose: str) -> random.Random:
    """A generator for one purpose of one learner's data, independent of every other purpose."""
    return random.Random(f"{seed}:{purpose}")


def write_bytes(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
