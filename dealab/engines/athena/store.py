"""The engine's own state (query executions, work groups, named queries) in SQLite under state_dir/athena/."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

from dealab.wire.store import set_aside_sqlite, sqlite_damage

STACK_STOPPED_REASON = "The query was interrupted: the dealab stack stopped while it ran"


class Store:
    """JSON documents by (kind, id), kept in insertion order; safe to use from several threads."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "athena.sqlite3"
        damage = sqlite_damage(path)
        if damage:  # a damaged database is kept for a person to look at; the engine starts with an empty one
            set_aside_sqlite(path, damage)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe when the process dies, one fsync per checkpoint
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS documents (kind TEXT, id TEXT, created REAL, body TEXT, PRIMARY KEY (kind, id))"
        )
        self._lock = threading.Lock()

    def put(self, kind: str, key: str, document: dict) -> None:
        body = json.dumps(document, default=str)
        with self._lock:
            self._db.execute(
                "INSERT INTO documents (kind, id, created, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                (kind, key, time.time(), body),
            )

    def get(self, kind: str, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM documents WHERE kind = ? AND id = ?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str, newest_first: bool = False) -> list[dict]:
        order = "DESC" if newest_first else "ASC"
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM documents WHERE kind = ? ORDER BY created {order}, rowid {order}", (kind,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM documents WHERE kind = ? AND id = ?", (kind, key)).rowcount > 0

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM documents")

    def close(self) -> None:
        with self._lock:
            self._db.close()
