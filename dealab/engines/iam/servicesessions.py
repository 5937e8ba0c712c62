"""Sessions of execution roles for the AWS services the stack's engines play (dealab.wire.rolesessions): a Glue job
run, a crawler, a Lambda function's environment, a state machine's task calls, a Firehose delivery.

The service principal assumes the role as STS's AssumeRole would let it: the role must exist and its trust policy
must allow the principal sts:AssumeRole (conditions see aws:SourceAccount and, where the engine names it, the
resource acting as aws:SourceArn). The session goes into the engine's one session store, as AssumeRole's do, so the
door knows its keys, it expires on the lab clock, the evaluator judges its calls by the role's identity policies and
boundary, and CloudTrail names it. A holder that cannot take new keys (a job's process) has its session renewed in
place instead. Lake Formation's vended credentials (dealab.wire.access.session_issuer) are minted here too, with the
session policy that narrows them to a table's location.
"""

from __future__ import annotations

import threading

from dealab.engines.iam.policy import ACCOUNT_ID, Caller, NamedPolicy, Policies, PolicyError, decide, parse, parse_identity
from dealab.engines.iam.sts import _new_credentials, lab_epoch
from dealab.wire.rolesessions import Credentials, Refused

# Service sessions that expired this long ago (lab seconds) are forgotten: no holder uses them any more.
FORGET_AFTER_SECONDS = 24 * 3600
# Services whose regional principal (states.us-east-1.amazonaws.com) a trust policy may name instead.
REGIONAL_PRINCIPALS = frozenset({"states.amazonaws.com"})


class ServiceSessions:
    def __init__(self, engine):
        self._engine = engine
        self._lock = threading.Lock()

    def check(self, role_arn: str, service: str, source_arn: str | None = None) -> None:
        self._trusting_role(role_arn, service, source_arn)

    def assume(self, role_arn: str, service: str, session_name: str, duration: int, source_arn: str | None = None,
               policy: str | None = None, invoked_by: bool = False) -> Credentials:
        """A new session of the role for `service`, at most the role's MaxSessionDuration long; `policy` (a session
        policy, as Lake Formation's vended credentials carry) narrows it; `invoked_by`: the session makes the
        service's own calls (CloudTrail's userIdentity.invokedBy), not the learner's code's."""
        role = self._trusting_role(role_arn, service, source_arn)
        if policy is not None:
            try:
                parse_identity(policy)
            except PolicyError as error:
                raise Refused(role_arn, service, f"the role {role_arn} cannot be assumed: {error}") from None
        now = lab_epoch()
        name = role["RoleName"]
        arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{session_name}"
        session = {"kind": "assumed-role", "arn": arn, "role_name": name, "session_name": session_name, "issued": now,
                   "expires": now + min(duration, role.get("MaxSessionDuration", 3600)), "policies": [policy] if policy else [],
                   "tags": {}, "transitive": [], "mfa": False, "source": service, "service": service,
                   "invoked_by": service if invoked_by else None}
        with self._lock:
            self._forget_expired(now)
            issued = _new_credentials(self._engine, session)
        return Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"], session["expires"], arn)

    def renew(self, access_key: str, expires: float) -> Credentials | None:
        with self._lock:
            session = self._engine.sessions.get(access_key)
            if session is None:
                return None
            session["expires"] = max(session["expires"], expires)
            self._engine._save()
        return Credentials(access_key, session["secret"], session["token"], session["expires"], session["arn"])

    def valid(self, access_key: str) -> bool:
        return access_key in self._engine.sessions

    def invoked_by(self, access_key: str) -> str | None:
        session = self._engine.sessions.get(access_key)
        return session.get("invoked_by") if session is not None else None

    # ---- inside -----------------------------------------------------------------------------------------
    def _trusting_role(self, role_arn: str, service: str, source_arn: str | None) -> dict:
        role = self._engine._role(role_arn) if ":role/" in role_arn else None
        if role is None:
            raise Refused(role_arn, service, f"the role {role_arn} does not exist")
        names = {service}
        if service in REGIONAL_PRINCIPALS:
            names.add(service.replace(".amazonaws.com", f".{self._engine.context.region}.amazonaws.com"))
        caller = Caller(service, "service", frozenset(names))
        context = {"aws:sourceaccount": [ACCOUNT_ID], "aws:principalservicename": [service]}
        if source_arn:
            context["aws:sourcearn"] = [source_arn]
        try:
            trust = self._engine._trust_policy(role_arn)
            allowed = trust is not None and decide(caller, "sts:AssumeRole", role_arn, context,
                                                   Policies(resource=[NamedPolicy("trust policy", parse(trust))], resource_required=True)).allowed
        except PolicyError as error:
            raise Refused(role_arn, service, f"the role {role_arn} cannot be assumed: {error}") from None
        if not allowed:
            raise Refused(role_arn, service, f"{service} is not authorized to perform: sts:AssumeRole on resource: {role_arn} "
                                                    "(the role's trust policy does not trust it)")
        return role

    def _forget_expired(self, now: float) -> None:
        engine = self._engine
        gone = [key for key, session in engine.sessions.items() if session.get("service") and session["expires"] < now - FORGET_AFTER_SECONDS]
        for key in gone:
            del engine.sessions[key]
        if gone:
            with engine._lock:
                for key in gone:
                    engine._principals.forget(key)
