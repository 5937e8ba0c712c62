"""Shard iterators with a birth time, so that one held longer than AWS allows expires as it does on AWS.

The backend's iterator is wrapped with the moment it was handed out: `dealab1.<millis>.<backend iterator>`,
base64-encoded like AWS's opaque iterators. Nothing is stored, so iterators survive a restart of the stack.
"""

from __future__ import annotations

import base64
import binascii
import datetime

# AWS: "A shard iterator expires 5 minutes after it is returned to the requester."
LIFETIME = datetime.timedelta(minutes=5)
_MARK = "dealab1"


class InvalidIterator(ValueError):
    pass


def wrap(backend_iterator: str, issued: datetime.datetime) -> str:
    millis = int(issued.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    return base64.b64encode(f"{_MARK}.{millis}.{backend_iterator}".encode()).decode("ascii")


def unwrap(iterator: str) -> tuple[str, datetime.datetime]:
    """The backend's iterator and when it was issued (naive UTC); InvalidIterator for anything else."""
    try:
        mark, millis, backend_iterator = base64.b64decode(iterator, validate=True).decode().split(".", 2)
        issued = datetime.datetime.fromtimestamp(int(millis) / 1000, datetime.timezone.utc).replace(tzinfo=None)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError):
        raise InvalidIterator(iterator) from None
    if mark != _MARK or not backend_iterator:
        raise InvalidIterator(iterator)
    return backend_iterator, issued


def aws_time(moment: datetime.datetime) -> str:
    """Java's Date.toString(), which AWS's ExpiredIteratorException message uses: Sun Nov 29 12:56:18 UTC 2026."""
    return moment.strftime("%a %b %d %H:%M:%S UTC %Y")
