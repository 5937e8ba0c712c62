"""What the IAM engine answers itself: STS (the backend's AssumeRole evaluates no trust policy and its
GetSessionToken returns one fixed example key), IAM's policy simulator (from the same evaluator that
authorizes requests), and the policy documents IAM must refuse before the backend stores them.

Each answer is a function (engine, request, principal) → response, run after the request was authorized.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from datetime import datetime, timezone

from dealab.engines.iam import requests as req
from dealab.engines.iam.policy import ACCOUNT_ID, Caller, NamedPolicy, Policies, PolicyError, decide, parse, parse_identity
from dealab.wire import labtime

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
ROLE_CHAINING_LIMIT = 3600
# GetSessionToken: (least, most, default) seconds, for the root and for IAM users (AWS's limits)
SESSION_TOKEN_LIMITS = {"root": (900, 3600, 3600), "user": (900, 129600, 43200)}
SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
ALPHANUMERIC = string.ascii_uppercase + string.digits


def lab_epoch() -> float:
    return labtime.now().replace(tzinfo=timezone.utc).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _members(params: dict, name: str, suffix: str = "") -> list[str]:
    """A query-protocol list: Name.member.1[suffix], Name.member.2[suffix], … in order."""
    found = []
    for key, value in params.items():
        match = re.fullmatch(rf"{re.escape(name)}\.member\.(\d+){re.escape(suffix)}", key)
        if match:
            found.append((int(match.group(1)), value))
    return [value for _, value in sorted(found)]


def _new_credentials(engine, session: dict) -> dict:
    access_key = "ASIA" + "".join(secrets.choice(ALPHANUMERIC) for _ in range(16))
    session.update(secret=secrets.token_urlsafe(30)[:40], token=secrets.token_urlsafe(96))
    engine.sessions[access_key] = session
    engine._save()
    return {"AccessKeyId": access_key, "SecretAccessKey": session["secret"], "SessionToken": session["token"],
            "Expiration": iso(session["expires"])}


def _validation(message: str):
    return req.query_error("ValidationError", message, 400)


# ---- STS ---------------------------------------------------------------------------------------------------------
def assume_role(engine, request, principal):
    if principal.caller.is_root:
        return req.query_error("AccessDenied", "Roles may not be assumed by root accounts.", 403)
    params = req.parameters(request)
    role = engine._role(params.get("RoleArn", ""))
    session_name = params.get("RoleSessionName", "")
    if not SESSION_NAME.fullmatch(session_name):
        return _validation(f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: "
                           "Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64")
    try:
        duration = int(params.get("DurationSeconds", 3600))
    except ValueError:
        return _validation("DurationSeconds must be a number of seconds")
    chained = principal.caller.kind == "assumed-role"
    if duration < 900:
        return _validation(f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                           "Member must have value greater than or equal to 900")
    if chained and duration > ROLE_CHAINING_LIMIT:
        return _validation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
    if duration > role.get("MaxSessionDuration", 3600):
        return _validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    documents = []
    try:
        if params.get("Policy"):
            parse_identity(params["Policy"])
            documents.append(params["Policy"])
        for arn in _members(params, "PolicyArns", ".arn"):
            documents.append(_policy_text(engine._managed(arn)))
    except PolicyError as error:
        return req.query_error("MalformedPolicyDocument", str(error), 400)
    tags = req.request_tags(request, params)
    transitive = _members(params, "TransitiveTagKeys")
    if chained:  # AWS: transitive tags pass down the chain and cannot be overridden
        inherited = principal.session.get("transitive", [])
        for key in inherited:
            if key in tags and tags[key] != principal.session["tags"][key]:
                return req.query_error("InvalidParameterValue", f"the transitive session tag {key} cannot be changed by role chaining", 400)
            tags[key] = principal.session["tags"][key]
        transitive = sorted(set(transitive) | set(inherited))
    now = lab_epoch()
    role_name = role["RoleName"]
    arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{session_name}"
    session = {"kind": "assumed-role", "arn": arn, "role_name": role_name, "session_name": session_name, "issued": now,
               "expires": now + duration, "policies": documents, "tags": tags, "transitive": transitive,
               "mfa": bool(principal.session and principal.session.get("mfa")), "source": principal.caller.arn}
    credentials = _new_credentials(engine, session)
    return req.query_result("AssumeRole", STS_NAMESPACE, req.xml_fields({
        "Credentials": credentials,
        "AssumedRoleUser": {"AssumedRoleId": f"{role['RoleId']}:{session_name}", "Arn": arn},
        "PackedPolicySize": min(100, 6 * len(documents) + 3 * len(tags)),
    }))


def get_session_token(engine, request, principal):
    if principal.session is not None:
        return req.query_error("AccessDenied", "Cannot call GetSessionToken with session credentials", 403)
    params = req.parameters(request)
    kind = "root" if principal.caller.is_root else "user"
    least, most, default = SESSION_TOKEN_LIMITS[kind]
    try:
        duration = int(params.get("DurationSeconds", default))
    except ValueError:
        return _validation("DurationSeconds must be a number of seconds")
    if not least <= duration <= most:
        return _validation(f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
                           f"Member must have value between {least} and {most}")
    now = lab_epoch()
    user = None if principal.caller.is_root else principal.caller.arn.rsplit("/", 1)[-1]
    # MFA: a device serial and a six-digit code make the session MFA-authenticated (the code is not checked
    # against a TOTP secret: the backend keeps none for virtual devices)
    mfa = bool(params.get("SerialNumber")) and bool(re.fullmatch(r"\d{6}", params.get("TokenCode", "")))
    session = {"kind": "user-session", "arn": principal.caller.arn, "user": user, "issued": now, "expires": now + duration,
               "policies": [], "tags": {}, "transitive": [], "mfa": mfa}
    return req.query_result("GetSessionToken", STS_NAMESPACE, req.xml_fields({"Credentials": _new_credentials(engine, session)}))


def get_caller_identity(engine, request, principal):
    return req.query_result("GetCallerIdentity", STS_NAMESPACE, req.xml_fields(
        {"UserId": principal.user_id, "Account": ACCOUNT_ID, "Arn": principal.caller.arn}))


STS_ANSWERS = {("sts", "AssumeRole"): assume_role, ("sts", "GetSessionToken"): get_session_token,
               ("sts", "GetCallerIdentity"): get_caller_identity}


# ---- IAM: the policy simulator --------------------------------------------------------------------------------------
def simulate_principal_policy(engine, request, principal):
    params = req.parameters(request)
    source = params.get("PolicySourceArn", "")
    kind, _, name = source.partition(":")[2].rpartition(":")[2].partition("/")
    iam = engine._iam()
    try:
        if kind == "user":
            details = iam.get_user(UserName=name)["User"]
            policies = Policies(identity=engine._user_policies(name), boundary=engine._boundary(details))
        elif kind == "role":
            details = iam.get_role(RoleName=name)["Role"]
            policies = Policies(identity=engine._role_policies(name), boundary=engine._boundary(details))
        else:
            return req.query_error("InvalidInput", f"PolicySourceArn {source!r} names no user or role", 400)
    except iam.exceptions.NoSuchEntityException:
        return req.query_error("NoSuchEntity", f"The entity {source} cannot be found.", 404)
    extra = [NamedPolicy(f"PolicyInputList.{i + 1}", parse_identity(doc)) for i, doc in enumerate(_members(params, "PolicyInputList"))]
    policies.identity = policies.identity + extra
    return _simulate(request, params, Caller(source, kind, frozenset({source})), policies)


def simulate_custom_policy(engine, request, principal):
    params = req.parameters(request)
    identity = [NamedPolicy(f"PolicyInputList.{i + 1}", parse_identity(doc)) for i, doc in enumerate(_members(params, "PolicyInputList"))]
    boundary = [NamedPolicy(f"PermissionsBoundaryPolicyInputList.{i + 1}", parse_identity(doc))
                for i, doc in enumerate(_members(params, "PermissionsBoundaryPolicyInputList"))] or None
    caller_arn = params.get("CallerArn", f"arn:aws:iam::{ACCOUNT_ID}:user/simulated")
    return _simulate(request, params, Caller(caller_arn, "user", frozenset({caller_arn})), Policies(identity=identity, boundary=boundary))


def _simulate(request, params: dict, caller: Caller, policies: Policies):
    if params.get("ResourcePolicy"):
        policies.resource = [NamedPolicy("ResourcePolicy", parse(params["ResourcePolicy"]))]
    context = {}
    for index, key in enumerate(_members(params, "ContextEntries", ".ContextKeyName"), start=1):
        context[key] = _members(params, f"ContextEntries.member.{index}.ContextKeyValues")
    context.setdefault("aws:PrincipalArn", [caller.arn])
    results = []
    for action in _members(params, "ActionNames"):
        for resource in _members(params, "ResourceArns") or ["*"]:
            decision = decide(caller, action, resource, context, policies)
            results.append({
                "EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision.decision,
                "MatchedStatements": [{"SourcePolicyId": name, "SourcePolicyType": "IAM Policy" if name != "ResourcePolicy" else "Resource Policy",
                                       "StartPosition": {"Line": 1, "Column": statement.index + 1}} for name, statement in decision.matched],
                "MissingContextValues": [],
            })
    operation = request.operation
    return req.query_result(operation, IAM_NAMESPACE, req.xml_fields({"EvaluationResults": results, "IsTruncated": "false"}))


# ---- IAM: documents refused before the backend stores them ------------------------------------------------------------
# operation → (parameter, parser): the evaluator must be able to read every policy IAM stores
POLICY_PARAMETERS = {
    "CreateRole": ("AssumeRolePolicyDocument", parse),
    "UpdateAssumeRolePolicy": ("PolicyDocument", parse),
    "PutUserPolicy": ("PolicyDocument", parse_identity),
    "PutGroupPolicy": ("PolicyDocument", parse_identity),
    "PutRolePolicy": ("PolicyDocument", parse_identity),
    "CreatePolicy": ("PolicyDocument", parse_identity),
    "CreatePolicyVersion": ("PolicyDocument", parse_identity),
}


def checked_policy(engine, request, principal):
    name, parser = POLICY_PARAMETERS[request.operation]
    document = req.parameters(request).get(name)
    if document is not None:
        try:
            parser(document)
        except PolicyError as error:
            return req.query_error("MalformedPolicyDocument", str(error), 400)
    return engine.pass_on(request)


IAM_ANSWERS = {("iam", "SimulatePrincipalPolicy"): simulate_principal_policy, ("iam", "SimulateCustomPolicy"): simulate_custom_policy,
               **{("iam", operation): checked_policy for operation in POLICY_PARAMETERS}}


def _policy_text(policy: NamedPolicy) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [s.raw for s in policy.statements]})
