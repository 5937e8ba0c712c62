"""The per-state-folder admin token: `/_dealab/*` endpoints (reset, clock, faults, ...) answer only callers
that can read it, i.e. the learner's own processes, never a web page or another user on the machine.

The stack writes it on its first start in a state folder (mode 0600); the CLI, the grader and tests read
it and send it in the TOKEN_HEADER header. Kept apart from the door so the CLI imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from dealab.wire.store import write_atomic

TOKEN_HEADER = "X-Dealab-Admin-Token"
TOKEN_FILE = "admin-token"
# A classroom learner's admin calls name their access key here; the token is then learner_token(secret).
LEARNER_HEADER = "X-Dealab-Learner"


def token_path(state_dir: Path) -> Path:
    return Path(state_dir) / TOKEN_FILE


def read_token(state_dir: Path) -> str | None:
    try:
        return token_path(state_dir).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def ensure_token(state_dir: Path) -> str:
    """The folder's token, made on first use. The umask keeps the file 0600 from its first byte."""
    existing = read_token(state_dir)
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    previous = os.umask(0o077)
    try:
        write_atomic(token_path(state_dir), token + "\n")
    finally:
        os.umask(previous)
    os.chmod(token_path(state_dir), 0o600)
    return token


def learner_token(secret_key: str) -> str:
    """What a classroom learner's admin calls carry as the token: derived from their secret key, which the
    front door knows and their stack's admin token stays unknown to them."""
    return hmac.new(secret_key.encode(), b"dealab-admin", hashlib.sha256).hexdigest()


def admin_headers(state_dir: Path) -> dict[str, str]:
    """Headers an admin call needs: a classroom learner's (DEALAB_ENDPOINT_URL set) name their key; else the
    token when the folder has one (a stack never started has none)."""
    if os.environ.get("DEALAB_ENDPOINT_URL") and os.environ.get("DEALAB_ACCESS_KEY_ID"):
        return {LEARNER_HEADER: os.environ["DEALAB_ACCESS_KEY_ID"], TOKEN_HEADER: learner_token(os.environ.get("DEALAB_SECRET_ACCESS_KEY", ""))}
    token = read_token(state_dir)
    return {TOKEN_HEADER: token} if token else {}
