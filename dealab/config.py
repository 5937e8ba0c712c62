"""Where dealab keeps its state and how clients reach the stack, from the environment with defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(os.environ.get("DEALAB_ROOT", Path(__file__).resolve().parents[1]))

# The stack's key pair: every AWS client needs one. `test`/`test` for a learner's own stack; a classroom
# (dealab.classroom) starts each learner's stack with that learner's pair, which then replaces it everywhere
# in that stack's process and its children (engines, Lambda runtimes, Glue workers, the grader).
TEST_ACCESS_KEY = os.environ.get("DEALAB_ACCESS_KEY_ID") or "test"
TEST_SECRET_KEY = os.environ.get("DEALAB_SECRET_ACCESS_KEY") or "test"


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    port: int
    insecure_port: int
    region: str
    backend_url: str | None
    # A Spark standalone master (spark://host:port) Glue jobs run on instead of the stack's local worker.
    spark_master: str | None = None
    # A classroom's front door (DEALAB_ENDPOINT_URL) instead of a stack on this machine's loopback.
    classroom_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        return self.classroom_url or f"http://127.0.0.1:{self.port}"

    @property
    def insecure_endpoint_url(self) -> str:
        if self.classroom_url:  # the front door's plain-HTTP twin is the next port, as a stack's
            address, _, port = self.classroom_url.rpartition(":")
            return f"{address}:{int(port) + 1}"
        return f"http://127.0.0.1:{self.insecure_port}"

    @property
    def backend_name(self) -> str:
        return self.backend_url or "embedded moto"

    def client_env(self) -> dict[str, str]:
        """The variables that point any AWS SDK or CLI at the stack, exactly as `dealab env` prints them."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            # the system's CAs plus the dealab CA of Redshift's Postgres-wire endpoints (the Redshift engine writes it
            # at start): redshift_connector's verify-ca default then trusts a local cluster, and nothing else changes
            **({"SSL_CERT_FILE": str(self.redshift_ca_bundle)} if self.redshift_ca_bundle.exists() else {}),
        }

    @property
    def redshift_ca_bundle(self) -> Path:
        return self.state_dir / "redshift" / "tls" / "ca-bundle.pem"


def settings() -> Settings:
    port = int(os.environ.get("DEALAB_PORT", "4566"))
    return Settings(
        state_dir=Path(os.environ.get("DEALAB_HOME", REPO_ROOT / ".dealab")).resolve(),
        port=port,
        insecure_port=int(os.environ.get("DEALAB_INSECURE_PORT", str(port + 1))),
        region=os.environ.get("DEALAB_REGION", "us-east-1"),
        backend_url=os.environ.get("DEALAB_BACKEND_URL") or None,
        spark_master=os.environ.get("DEALAB_SPARK_MASTER") or None,
        classroom_url=os.environ.get("DEALAB_ENDPOINT_URL", "").rstrip("/") or None,
    )
