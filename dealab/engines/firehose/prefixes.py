"""Firehose's custom S3 prefixes: `!{timestamp:<Java date pattern>}` and `!{firehose:...}` expressions.

    events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/   →  events/year=2026/month=11/
    errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/

A prefix without expressions gets Firehose's default time prefix YYYY/MM/dd/HH/ appended; one with
expressions is used as evaluated. Timestamps are UTC.
"""

from __future__ import annotations

import datetime
import re
import uuid

EXPRESSION = re.compile(r"!\{([^}:]*):?([^}]*)\}")
# Java DateTimeFormatter letters Firehose prefixes use → how to render them from a datetime.
PATTERN_LETTERS = {
    "yyyy": lambda t: f"{t.year:04d}", "yy": lambda t: f"{t.year % 100:02d}",
    "MM": lambda t: f"{t.month:02d}", "M": lambda t: str(t.month),
    "dd": lambda t: f"{t.day:02d}", "d": lambda t: str(t.day),
    "HH": lambda t: f"{t.hour:02d}", "H": lambda t: str(t.hour),
    "mm": lambda t: f"{t.minute:02d}", "ss": lambda t: f"{t.second:02d}",
}
_PATTERN_TOKEN = re.compile(r"'[^']*'|[A-Za-z]+|[^A-Za-z']+")
FIREHOSE_KEYS_IN_PREFIX = frozenset({"random-string"})
FIREHOSE_KEYS_IN_ERROR_PREFIX = frozenset({"random-string", "error-output-type"})
DEFAULT_TIME_PREFIX = "yyyy/MM/dd/HH/"


class PrefixError(ValueError):
    """A prefix Firehose would refuse at CreateDeliveryStream; the message is AWS's kind of explanation."""


def _render_pattern(pattern: str, moment: datetime.datetime) -> str:
    out = []
    for token in _PATTERN_TOKEN.findall(pattern):
        if token.startswith("'"):
            out.append(token.strip("'"))
        elif token[0].isalpha():
            if token not in PATTERN_LETTERS:
                raise PrefixError(f"The timestamp pattern '{pattern}' uses '{token}', which is not a supported date/time field")
            out.append(PATTERN_LETTERS[token](moment))
        else:
            out.append(token)
    return "".join(out)


def has_expressions(prefix: str) -> bool:
    return bool(EXPRESSION.search(prefix or ""))


def validate(prefix: str, error_prefix: str) -> None:
    """AWS's rules for a pair of prefixes; PrefixError says which is broken."""
    moment = datetime.datetime(2000, 1, 1)
    evaluate(prefix, moment, allowed=FIREHOSE_KEYS_IN_PREFIX)
    evaluate(error_prefix, moment, error_type="processing-failed", allowed=FIREHOSE_KEYS_IN_ERROR_PREFIX)
    if has_expressions(prefix) and not error_prefix:
        raise PrefixError("ErrorOutputPrefix cannot be null or empty when Prefix contains expressions")
    if error_prefix and has_expressions(error_prefix) and "!{firehose:error-output-type}" not in error_prefix:
        raise PrefixError("ErrorOutputPrefix must contain !{firehose:error-output-type} when it contains expressions")


def evaluate(prefix: str, moment: datetime.datetime, error_type: str = "", allowed=FIREHOSE_KEYS_IN_ERROR_PREFIX) -> str:
    """The prefix with its expressions filled in for an object whose oldest record arrived at `moment`."""
    prefix = prefix or ""

    def fill(match: re.Match) -> str:
        namespace, key = match.group(1), match.group(2)
        if namespace == "timestamp" and key:
            return _render_pattern(key, moment)
        if namespace == "firehose" and key in allowed:
            return error_type if key == "error-output-type" else uuid.uuid4().hex[:11]
        raise PrefixError(f"The expression {match.group(0)} is not supported in this prefix; use !{{timestamp:<pattern>}}"
                          f" or !{{firehose:{'|'.join(sorted(allowed))}}}")

    evaluated = EXPRESSION.sub(fill, prefix)
    if has_expressions(prefix):
        return evaluated
    return evaluated + _render_pattern(DEFAULT_TIME_PREFIX, moment)


def object_name(stream: str, version: str, moment: datetime.datetime, gzip: bool) -> str:
    """Firehose's object name: DeliveryStreamName-DeliveryStreamVersion-YYYY-MM-dd-HH-MM-SS-RandomString."""
    return f"{stream}-{version}-{moment:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}" + (".gz" if gzip else "")
