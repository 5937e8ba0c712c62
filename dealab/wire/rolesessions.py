"""Role sessions: engines acting with an execution role, as AWS services act.

AWS runs a Glue job, a crawler, a Data Quality run, a Lambda function, a state machine's task calls and a Firehose
delivery with the role the resource names: the service assumes the role (the role's trust policy must allow the
service principal, glue.amazonaws.com and the like) and calls AWS with the session it got, so the role's
policies, permissions boundary and the resources' policies decide what the run may do, and CloudTrail names the
session (arn:aws:sts::<account>:assumed-role/<role>/<session>).

The IAM engine mints those sessions into the same store as STS's AssumeRole (its door and evaluator then treat
them as any session) and offers them here for the stack it belongs to (`offer`, keyed by the stack's loopback as
`dealab.wire.access` is); engines never reach into the IAM engine. An engine asks through `RoleSessions`:
- `check(role)`: refuses a role that does not exist or does not trust the service (creation calls: Lambda's
  CreateFunction, Glue's CreateCrawler, Step Functions' CreateStateMachine);
- `credentials(role, session)`: a session's keys for work done in the stack's process, minted once and minted
  anew when less than `REFRESH_SECONDS` of lab time are left; `client(...)` is a boto3 client signed with them,
  sent through the loopback *without* the engine mark, so the gateway judges it as the role's call. These are the
  service's own calls: CloudTrail records them with `userIdentity.invokedBy` the service principal (`invoked_by`),
  as AWS records the calls a service makes for you;
- `lease(role, session)`: keys for a process of its own that cannot be handed new ones (a Spark or Python shell
  job, a Lambda worker): renewed in place on the lab clock (a timer before they expire, covering a clock move
  under way at once) until the holder releases them. The holder runs the learner's code, whose calls AWS records
  without invokedBy.

A gateway built without the IAM engine (some tests) has no sessions: engines then act as the account root, as
they did before roles were enforced. (Lake Formation's credential vending asks for sessions through
`dealab.wire.access.session_issuer`, for a role and a session policy at once; the IAM engine mints both kinds in
one place, engines/iam/servicesessions.py.)

A role that does not exist is refused, as AWS refuses it (each engine words it as its service does); a role that
exists is enforced: its trust policy and its permissions (docs/iam.md).
"""

from __future__ import annotations

import datetime
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import botocore.credentials

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.wire import labtime
from dealab.wire.loopback import ENGINE_HEADER_NAME, Loopback
from dealab.wire.timers import timers
from dealab.wire.trailevents import ACCOUNT_ID

log = logging.getLogger("dealab.rolesessions")

# How long a session lasts (lab seconds), and how much must be left for `credentials` to hand it out again.
SESSION_SECONDS = 3600
REFRESH_SECONDS = 300
# A lease is renewed this long before it would expire (lab seconds).
RENEW_BEFORE_SECONDS = 600
TIMER_OWNER = "rolesessions"


@dataclass(frozen=True)
class Credentials:
    """A role session's keys, as STS hands them out. `expires`: lab time, seconds since the epoch."""

    access_key: str
    secret_key: str
    token: str
    expires: float
    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>

    def environment(self) -> dict[str, str]:
        """The variables an SDK in another process reads them from."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_SESSION_TOKEN": self.token}


class Refused(Exception):
    """The service cannot assume the role: it does not exist, or its trust policy does not allow the
    service principal. Each engine words the failure as its service does; `message` says what IAM found."""

    def __init__(self, role_arn: str, service: str, message: str):
        super().__init__(message)
        self.role_arn, self.service, self.message = role_arn, service, message


class Issuer(Protocol):
    """What the IAM engine offers (dealab.engines.iam.servicesessions)."""

    def check(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
        """Raises Refused unless `service` may assume the role."""

    def assume(self, role_arn: str, service: str, session_name: str, duration: int, source_arn: str | None = None,
               invoked_by: bool = False) -> Credentials:
        """A new session of the role for `service` (raises Refused); `invoked_by`: its calls are the service's own."""

    def renew(self, access_key: str, expires: float) -> Credentials | None:
        """The session made to last until `expires` (lab epoch seconds); None when it is gone (a reset)."""

    def valid(self, access_key: str) -> bool:
        """Whether the session is still in the store (a reset forgets every session)."""

    def invoked_by(self, access_key: str) -> str | None:
        """The service principal whose own calls the session makes; None for any other session."""


_issuers: weakref.WeakKeyDictionary[Loopback, Callable[[], Issuer | None]] = weakref.WeakKeyDictionary()


def offer(loopback: Loopback, issuer: Issuer) -> None:
    """Makes `issuer` the one that mints role sessions for the stack whose engines share `loopback`. Held weakly
    (its owner keeps it): it holds the IAM engine, whose context holds the loopback, so a strong hold here would
    keep every stack built in this process alive for good."""
    _issuers[loopback] = weakref.WeakMethod(issuer) if inspect.ismethod(issuer) else weakref.ref(issuer)


def issuer(loopback: Loopback) -> Issuer | None:
    held = _issuers.get(loopback)
    return held() if held is not None else None


def invoked_by(loopback: Loopback, access_key: str) -> str | None:
    """The service principal ("glue.amazonaws.com") whose own calls a key's session makes, as CloudTrail's
    userIdentity.invokedBy names it; None for a session handed to the learner's code, any other key, or no IAM engine."""
    found = issuer(loopback)
    return found.invoked_by(access_key) if found is not None else None


def role_arn_of(role: str) -> str:
    """A role as services take it: an ARN, or (Glue) a name, which means the account's role of that name."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"


def lab_epoch() -> float:
    return labtime.live_now().replace(tzinfo=datetime.timezone.utc).timestamp()


class RoleSessions:
    """One engine's role sessions for one service principal (glue.amazonaws.com, lambda.amazonaws.com, ...)."""

    def __init__(self, context, service: str):
        self._context = context  # an EngineContext: its loopback names the stack, its clients reach the gateway
        self.service = service
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], Credentials] = {}

    @property
    def region(self) -> str:
        return self._context.region

    def _issuer(self) -> Issuer | None:
        return issuer(self._context.loopback)

    # ---- what engines call ------------------------------------------------------------------------------
    def check(self, role: str, source_arn: str | None = None) -> None:
        """Raises Refused unless the service may assume `role`."""
        found = self._issuer()
        if found is None:
            return
        found.check(role_arn_of(role), self.service, source_arn)

    def credentials(self, role: str, session_name: str, source_arn: str | None = None) -> Credentials | None:
        """Keys of a session of `role` with at least REFRESH_SECONDS of lab time left; None: act as the account
        root (no IAM engine). Raises Refused."""
        found = self._issuer()
        if found is None:
            return None
        key = (role_arn_of(role), session_name)
        with self._lock:
            held = self._held.get(key)
        if held is not None and held.expires - lab_epoch() > REFRESH_SECONDS and found.valid(held.access_key):
            return held
        try:
            fresh = found.assume(key[0], self.service, session_name, SESSION_SECONDS, source_arn, invoked_by=True)
        except Refused:
            with self._lock:
                self._held.pop(key, None)
            raise
        with self._lock:
            self._held[key] = fresh
        return fresh

    def client(self, service: str, role: str, session_name: str, region: str | None = None, source_arn: str | None = None,
               on_refusal: Callable[[Refused], Exception] | None = None, engine: str | None = None, **config):
        """A boto3 client at the gateway whose calls are the role session's (fresh keys at every call; no engine
        mark, so IAM, faults and CloudTrail treat them as the role's). A refused role raises at each call what
        `on_refusal` makes of it (default: the Refused itself). When there is no session to act with (no IAM
        engine) the calls are the account root's, marked as `engine`'s own when it is given (as that engine's calls were before roles were enforced)."""

        def current() -> botocore.credentials.ReadOnlyCredentials:
            try:
                found = self.credentials(role, session_name, source_arn)
            except Refused as refusal:
                raise (on_refusal(refusal) if on_refusal else refusal) from None
            if found is None:
                return botocore.credentials.ReadOnlyCredentials(TEST_ACCESS_KEY, TEST_SECRET_KEY, None)
            return botocore.credentials.ReadOnlyCredentials(found.access_key, found.secret_key, found.token)

        client = self._context.session_client(service, SessionCredentials(current), region=region, **config)
        if engine:
            def mark(request, **_) -> None:
                try:
                    acting_as_root = self.credentials(role, session_name, source_arn) is None
                except Refused:
                    return  # the signing raises it
                if acting_as_root:
                    request.headers[ENGINE_HEADER_NAME] = engine

            client.meta.events.register("before-sign", mark)
        return client

    def lease(self, role: str, session_name: str, source_arn: str | None = None) -> Lease:
        """A session for a process of its own, renewed on the lab clock until `release()`. Raises Refused."""
        found = self._issuer()
        if found is None:
            return Lease(None, None)
        return Lease(found.assume(role_arn_of(role), self.service, session_name, SESSION_SECONDS, source_arn), found)

    def forget(self) -> None:
        """Forgets the sessions held (a reset: the IAM engine has forgotten them too)."""
        with self._lock:
            self._held.clear()


class Lease:
    """A role session held by a process that keeps its keys for its whole life. `credentials` is None when the
    holder acts as the account root. The session is renewed SESSION_SECONDS at a time, RENEW_BEFORE_SECONDS before
    it would expire on the lab clock (a clock move under way is covered at once), until `release()`."""

    def __init__(self, credentials: Credentials | None, issuer: Issuer | None):
        self.credentials = credentials
        self._issuer = issuer
        self._released = False
        self._lock = threading.Lock()
        if credentials is not None:
            self._schedule(credentials.expires)

    def environment(self) -> dict[str, str]:
        """The session's variables, or the account root's keys (and no token) when there is no session."""
        if self.credentials is None:
            return {"AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY}
        return self.credentials.environment()

    def release(self) -> None:
        with self._lock:
            self._released = True
        if self.credentials is not None:
            timers.cancel(TIMER_OWNER, self.credentials.access_key)

    def _schedule(self, expires: float) -> None:
        due = labtime.EPOCH + datetime.timedelta(seconds=expires - RENEW_BEFORE_SECONDS)
        timers.schedule(TIMER_OWNER, self.credentials.access_key, due, self._renew)

    def _renew(self, at: datetime.datetime) -> None:
        with self._lock:
            if self._released:
                return
        target = timers.move_target()  # the clock engine's is aware, timers' moments naive UTC
        if target is not None and target.tzinfo is not None:
            target = target.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        until = max(at, target or at)
        expires = (until - labtime.EPOCH).total_seconds() + SESSION_SECONDS
        renewed = self._issuer.renew(self.credentials.access_key, expires) if self._issuer is not None else None
        if renewed is None:
            log.warning("role session %s is gone; its holder's calls will be refused", self.credentials.arn)
            return
        self.credentials = renewed
        self._schedule(renewed.expires)


class SessionCredentials(botocore.credentials.Credentials):
    """botocore credentials read afresh for every request signed with them (`fetch` decides when to mint anew)."""

    def __init__(self, fetch: Callable[[], botocore.credentials.ReadOnlyCredentials]):
        self._fetch = fetch
        self.method = "dealab-role-session"

    def get_frozen_credentials(self) -> botocore.credentials.ReadOnlyCredentials:
        return self._fetch()

    @property
    def access_key(self):
        return self._fetch().access_key

    @access_key.setter
    def access_key(self, value):
        pass

    @property
    def secret_key(self):
        return self._fetch().secret_key

    @secret_key.setter
    def secret_key(self, value):
        pass

    @property
    def token(self):
        return self._fetch().token

    @token.setter
    def token(self, value):
        pass
