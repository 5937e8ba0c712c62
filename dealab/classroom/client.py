"""A learner's CLI in a classroom (DEALAB_ENDPOINT_URL and their keys exported): what it tells the front door.

The front door records both for the instructor: a run of the reference solution flags that lab's scores
by_reference (there is no call that clears it), and a learner's own grading is shown as self-reported.
Outside a classroom nothing is sent: a learner's own stack keeps these in its state folder.
"""

from __future__ import annotations

import json
import os
import urllib.request

from dealab.config import Settings
from dealab.wire.admintoken import admin_headers


def in_classroom() -> bool:
    return bool(os.environ.get("DEALAB_ENDPOINT_URL") and os.environ.get("DEALAB_ACCESS_KEY_ID"))


def tell(settings: Settings, endpoint: str, payload: dict) -> None:
    """POSTs `payload` to the front door's /_dealab/<endpoint> as this learner."""
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/{endpoint}", data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **admin_headers(settings.state_dir)})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
