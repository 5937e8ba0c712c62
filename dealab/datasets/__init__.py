"""Seeded datasets: every learner gets different data, and the grader recomputes it from the same seed."""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path

from dealab.config import Settings


def learner_seed(settings: Settings) -> str:
    """DEALAB_LEARNER if set, else a seed made once and kept in the state folder (survives `dealab reset`)."""
    named = os.environ.get("DEALAB_LEARNER")
    if named:
        return named
    path = settings.state_dir / "learner"
    if path.exists():
        return path.read_text().strip()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    seed = f"learner-{secrets.token_hex(4)}"
    path.write_text(seed + "\n")
    return seed


def rng(seed: str, purpose: str) -> random.Random:
    """A generator for one purpose of one learner's data, independent of every other purpose."""
    return random.Random(f"{seed}:{purpose}")


def write_bytes(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
