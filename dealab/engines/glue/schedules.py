"""Crawler schedules on the lab clock. The cron evaluator itself lives in dealab.wire.awscron (shared with the
grader); this module adds "now", which is the lab clock (`labtime.now()` carries its offset), so moving the
clock moves schedules too.
"""

from __future__ import annotations

import datetime

from dealab.wire.awscron import UTC, Cron, CronError  # noqa: F401 - the engine's schedule vocabulary, re-exported
from dealab.wire import labtime


def lab_now() -> datetime.datetime:
    """The lab clock's now (aware, UTC)."""
    return labtime.now().replace(tzinfo=UTC)
