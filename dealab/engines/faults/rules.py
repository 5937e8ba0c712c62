"""Fault rules: which requests fail, how often and how, written as `service:Operation key=value ...`.

    kinesis:PutRecords rate=0.1                 a tenth of the records in each PutRecords fail (per entry)
    dynamodb:* rate=0.05 error=throttling seed=7
    s3:GetObject rate=0.2 error=internal

Whether the n-th request (or batch entry) a rule sees fails is a pure function of the rule's seed, its
target and n, so the same run of requests fails at the same places every time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

ANY = "*"
DEFAULT_SEED = "dealab"
# The ways a request can fail; what each looks like per service and protocol is in errors.py.
ERROR_KINDS = ("throttling", "internal", "unavailable")


class RuleError(ValueError):
    """A rule that cannot be read; the message says which part and what is allowed."""


@dataclass
class Rule:
    service: str
    operation: str
    rate: float
    error: str = "throttling"
    seed: str = DEFAULT_SEED
    seen: int = field(default=0, compare=False)
    injected: int = field(default=0, compare=False)

    @property
    def target(self) -> str:
        return f"{self.service}:{self.operation}"

    def matches(self, service: str, operation: str) -> bool:
        return self.service in (ANY, service) and self.operation in (ANY, operation)

    def draw(self) -> bool:
        """True if the next request (or entry) this rule sees is to fail. Not thread-safe: callers lock."""
        digest = hashlib.blake2b(f"{self.seed}|{self.target}|{self.seen}".encode(), digest_size=8).digest()
        self.seen += 1
        fails = int.from_bytes(digest, "big") / 2**64 < self.rate
        self.injected += fails
        return fails

    def spec(self) -> str:
        return f"{self.target} rate={self.rate:g} error={self.error} seed={self.seed}"

    def to_dict(self) -> dict:
        return {"target": self.target, "rate": self.rate, "error": self.error, "seed": self.seed,
                "spec": self.spec(), "seen": self.seen, "injected": self.injected}


def parse(spec: str) -> Rule:
    """`service:Operation rate=R [error=KIND] [seed=S]` → Rule; RuleError says what is wrong."""
    target, *options = spec.split()
    service, colon, operation = target.partition(":")
    if not colon or not service or not operation:
        raise RuleError(f"'{target}' is not service:Operation (for example kinesis:PutRecords or dynamodb:*)")
    values: dict[str, str] = {}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq or key not in ("rate", "error", "seed"):
            raise RuleError(f"'{option}' is not one of rate=<0..1>, error=<{'|'.join(ERROR_KINDS)}>, seed=<text>")
        values[key] = value
    if "rate" not in values:
        raise RuleError(f"'{spec}' has no rate=<0..1>")
    try:
        rate = float(values["rate"])
    except ValueError:
        raise RuleError(f"rate '{values['rate']}' is not a number") from None
    if not 0 <= rate <= 1:
        raise RuleError(f"rate {rate:g} is outside 0..1")
    error = values.get("error", "throttling")
    if error not in ERROR_KINDS:
        raise RuleError(f"error '{error}' is not one of {', '.join(ERROR_KINDS)}")
    return Rule(service.lower(), operation, rate, error, values.get("seed", DEFAULT_SEED))
