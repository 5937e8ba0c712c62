"""Engine state kept as JSON files under the stack's state folder, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path


class JsonFile:
    def __init__(self, path: Path):
        self.path = path

    def load(self, default):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return default

    def save(self, document) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, separators=(",", ":")))
        os.replace(temporary, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
