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


# A stack's loopback → its session issuer, offered the same way: a service acting with a role it was given (Lake
# Formation vending a registered location's role) asks it for that role's credentials. It takes the role's ARN, the
# service principal, the session's name, a session policy (or None) and the duration in seconds, and returns the
# credentials STS would answer (AccessKeyId, SecretAccessKey, SessionToken, Expiration) or, as a string, why the
# service may not assume the role.
Issuer = Callable[[str, str, str, "str | None", int], "dict | str"]
_issuers: weakref.WeakKeyDictionary[Loopback, Callable[[], Issuer | None]] = weakref.WeakKeyDictionary()


def offer_sessions(loopback: Loopback, issuer: Issuer) -> None:
    _issuers[loopback] = weakref.WeakMethod(issuer) if inspect.ismethod(issuer) else (lambda: issuer)


def session_issuer(loopback: Loopback) -> Issuer | None:
    held = _issuers.get(loopback)
    return held() if held is not None else None
