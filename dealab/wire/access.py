"""Access decisions inside the stack's process, without a request through the gateway.

An engine that acts for the caller on many resources at once (Athena reading every object of a table) needs, for
each resource, the answer IAM would give a request for it. Sending that request costs the door, every engine and the
backend each time (1.5-3.3 ms for a conditional GetObject); asking the IAM engine's evaluator costs microseconds.
The IAM engine offers its evaluator here for the stack it belongs to (keyed by that stack's loopback, which every
engine of one stack shares); an engine asks `judge(loopback)` and falls back to sending the request when no IAM
engine is there (a gateway built with a few engines, in tests).

A judge takes the request as it would be sent (service, operation, path, headers, caller key) and returns the
refusal IAM would answer, or None when IAM would let it pass. It decides IAM alone: whatever other engines do to
the request (faults, CloudTrail's record) does not happen.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable

from dealab.wire.loopback import Loopback
from dealab.wire.messages import AwsRequest, AwsResponse

Judge = Callable[[AwsRequest], "AwsResponse | None"]

# A stack's loopback → its judge. An engine's method is held weakly: the engine holds its context, which holds the
# loopback, so a strong hold here would keep every stack built in this process (tests build many) alive for good.
_judges: weakref.WeakKeyDictionary[Loopback, Callable[[], Judge | None]] = weakref.WeakKeyDictionary()


def offer(loopback: Loopback, judge: Judge) -> None:
    """Makes `judge` the one that decides for the stack whose engines share `loopback`."""
    _judges[loopback] = weakref.WeakMethod(judge) if inspect.ismethod(judge) else (lambda: judge)


def judge(loopback: Loopback) -> Judge | None:
    held = _judges.get(loopback)
    return held() if held is not None else None
