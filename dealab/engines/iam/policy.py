"""IAM policy documents evaluated as AWS evaluates them: statements, Principal/NotPrincipal, Action/NotAction,
Resource/NotResource, every condition operator (with ...IfExists, ForAllValues:/ForAnyValue:, Null), and
policy variables. One evaluator for every kind of policy (identity, resource, boundary, session, trust):
`decide` combines them by AWS's policy evaluation logic.

A request context maps condition keys (lower-cased) to a list of values: a single-valued key has one, a
multivalued key (aws:TagKeys) any number.
"""

from __future__ import annotations

import base64
import fnmatch
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

ACCOUNT_ID = "123456789012"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"

Context = Mapping[str, list[str]]


class PolicyError(ValueError):
    """A policy document that cannot be read: the MalformedPolicyDocument a service answers, in words."""


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ---- condition operators, as data -----------------------------------------------------------------------
def _string_like(actual: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(actual, pattern)


def _ip_in(actual: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    """IAM dates: ISO 8601 (with or without time and zone) or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _compare(parse: Callable[[str], float], compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(actual: str, expected: str) -> bool:
        try:
            return compare(parse(actual), parse(expected))
        except ValueError:
            return False  # an unreadable number or date matches nothing, as in IAM

    return match


def _binary_equals(actual: str, expected: str) -> bool:
    try:
        return base64.b64decode(actual) == base64.b64decode(expected)
    except ValueError:
        return False


# operator → (match one request value against one policy value, negated?)
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda a, e: a == e, False),
    "StringNotEquals": (lambda a, e: a == e, True),
    "StringEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "NumericEquals": (_compare(_number, lambda a, e: a == e), False),
    "NumericNotEquals": (_compare(_number, lambda a, e: a == e), True),
    "NumericLessThan": (_compare(_number, lambda a, e: a < e), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, e: a <= e), False),
    "NumericGreaterThan": (_compare(_number, lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, e: a >= e), False),
    "DateEquals": (_compare(_date, lambda a, e: a == e), False),
    "DateNotEquals": (_compare(_date, lambda a, e: a == e), True),
    "DateLessThan": (_compare(_date, lambda a, e: a < e), False),
    "DateLessThanEquals": (_compare(_date, lambda a, e: a <= e), False),
    "DateGreaterThan": (_compare(_date, lambda a, e: a > e), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, e: a >= e), False),
    "Bool": (lambda a, e: a.lower() == e.lower(), False),
    "BinaryEquals": (_binary_equals, False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
    "ArnEquals": (_string_like, False),  # IAM: ArnEquals and ArnLike both take wildcards per ARN part
    "ArnNotEquals": (_string_like, True),
    "ArnLike": (_string_like, False),
    "ArnNotLike": (_string_like, True),
}
SET_QUALIFIERS = ("ForAllValues", "ForAnyValue")


def check_operator(operator: str) -> None:
    qualifier, _, name = operator.rpartition(":")
    if qualifier and qualifier not in SET_QUALIFIERS:
        raise PolicyError(f"Invalid Condition type : {operator}")
    name = name.removesuffix("IfExists") if name != "Null" else name
    if name != "Null" and name not in OPERATORS:
        raise PolicyError(f"Invalid Condition type : {operator}")


def condition_holds(operator: str, actual: list[str] | None, expected: list[str]) -> bool:
    """One operator on one key (AWS: several policy values are ORed; ForAllValues/ForAnyValue compare sets)."""
    qualifier, _, name = operator.rpartition(":")
    if name == "Null":
        return (not actual) == (expected[0].lower() == "true")
    if_exists = name.endswith("IfExists")
    match, negated = OPERATORS[name.removesuffix("IfExists")]

    def one_matches(value: str) -> bool:
        found = any(match(value, e) for e in expected)
        return not found if negated else found

    if qualifier == "ForAllValues":
        return all(one_matches(value) for value in actual or ())  # an empty or missing set: true
    if qualifier == "ForAnyValue":
        return any(one_matches(value) for value in actual or ())  # an empty or missing set: false
    if not actual:
        # a missing key fails positive operators and satisfies negated ones (and any ...IfExists)
        return if_exists or negated
    if negated:
        return not any(any(match(value, e) for e in expected) for value in actual)
    return any(one_matches(value) for value in actual)


# ---- policy variables ------------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SPECIAL_CHARACTERS = {"*": "*", "?": "?", "$": "$"}


class _MissingVariable(Exception):
    pass


def substitute(text: str, context: Context) -> str:
    """${key} → the request's value of key; ${key, 'default'} its default; a key with neither leaves the
    element unmatched (AWS). ${*}, ${?}, ${$} stand for the literal characters."""
    if "${" not in text:
        return text

    def replace(match: re.Match) -> str:
        inner = match.group(1)
        if inner in _SPECIAL_CHARACTERS:
            return _SPECIAL_CHARACTERS[inner]
        key, comma, default = inner.partition(",")
        values = context.get(key.strip().lower())
        if values and len(values) == 1:
            return values[0]
        if comma:
            return default.strip().strip("'")
        raise _MissingVariable(key)

    return _VARIABLE.sub(replace, text)


def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE if ignore_case else 0)


# ---- principals -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    """Who asks. `arn` is what error messages name; `names` every ARN or id a Principal element may use for
    them (AWS: a role session is named by its session ARN or its role's ARN)."""
    arn: str
    kind: str  # root | user | assumed-role | anonymous | service
    names: frozenset[str] = frozenset()
    account: str = ACCOUNT_ID

    @property
    def is_root(self) -> bool:
        return self.kind == "root"


# How a Principal element matched the caller, which decides whether the resource policy alone grants access.
DIRECT, VIA_ROLE, VIA_ACCOUNT = "direct", "role", "account"


def principal_match(element, caller: Caller) -> str | None:
    """How `element` (a Principal or NotPrincipal value) names `caller`, or None."""
    if element == "*":
        return DIRECT
    if not isinstance(element, dict):
        return None
    best = None
    for kind, values in element.items():
        for value in _as_list(values):
            if kind == "AWS":
                if value == "*":
                    return DIRECT  # AWS: {"AWS": "*"} is everyone, anonymous callers too
                if value == caller.arn:
                    return DIRECT
                if value in caller.names:
                    best = best or VIA_ROLE
                elif caller.kind != "anonymous" and value in (caller.account, f"arn:aws:iam::{caller.account}:root"):
                    if caller.is_root:
                        return DIRECT
                    best = best or VIA_ACCOUNT
            elif kind in ("Service", "Federated", "CanonicalUser") and value in caller.names:
                return DIRECT
    return best


# ---- statements -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    raw: dict
    index: int = 0
    variables: bool = True  # Version 2012-10-17: ${...} is a variable; 2008-10-17 takes it literally
    _actions: tuple = field(default=(), compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.raw, dict):
            raise PolicyError("Syntax errors in policy.: a statement must be an object")
        actions = self.raw.get("Action", self.raw.get("NotAction", []))
        compiled = tuple(_wildcard(str(a), ignore_case=True) for a in _as_list(actions))
        object.__setattr__(self, "_actions", compiled)

    @property
    def effect(self) -> str:
        return self.raw.get("Effect", "")

    @property
    def sid(self) -> str:
        return str(self.raw.get("Sid", f"statement {self.index + 1}"))

    def principal_match(self, caller: Caller) -> str | None:
        """For resource and trust policies: how the statement names the caller (None: it does not apply)."""
        if "NotPrincipal" in self.raw:
            return None if principal_match(self.raw["NotPrincipal"], caller) else DIRECT
        if "Principal" not in self.raw:
            return DIRECT  # identity policies name no principal: they are the caller's own
        return principal_match(self.raw["Principal"], caller)

    def applies_to_caller(self, caller: Caller | None = None) -> bool:
        return self.principal_match(caller or ROOT) is not None

    def covers_action(self, action: str) -> bool:
        hit = any(pattern.fullmatch(action) for pattern in self._actions)
        return hit if "Action" in self.raw else not hit

    def covers_resource(self, resource: str, context: Context) -> bool:
        if "Resource" not in self.raw and "NotResource" not in self.raw:
            return True  # resource policies may leave the resource implicit (the resource itself)
        patterns = self.raw.get("Resource", self.raw.get("NotResource"))
        hit = False
        for pattern in _as_list(patterns):
            try:
                pattern = substitute(str(pattern), context) if self.variables else str(pattern)
            except _MissingVariable:
                continue
            if _resource_like(resource, pattern):
                hit = True
                break
        return hit if "Resource" in self.raw else not hit

    def covers(self, action: str, resource: str, context: Context | None = None) -> bool:
        return self.covers_action(action) and self.covers_resource(resource, context or {})

    def conditions_hold(self, context: Context) -> bool:
        context = _normalized(context)
        for operator, keys in self.raw.get("Condition", {}).items():
            check_operator(operator)
            for key, expected in keys.items():
                values = []
                for value in _as_list(expected):
                    text = _policy_text(value)
                    try:
                        values.append(substitute(text, context) if self.variables else text)
                    except _MissingVariable:
                        continue
                if not values and not operator.endswith("Null"):
                    return False
                if not condition_holds(operator, context.get(key.lower()), values):
                    return False
        return True


def _resource_like(resource: str, pattern: str) -> bool:
    # IAM matches ARNs case-sensitively with * and ? wildcards; "*" alone matches any resource
    return pattern == "*" or fnmatch.fnmatchcase(resource, pattern)


def _policy_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


ROOT = Caller(ROOT_ARN, "root", frozenset({ROOT_ARN, ACCOUNT_ID}))


class RequestContext(dict):
    """Condition keys (lower-cased) → values, plus keys resolved only when a policy asks for them (an object's
    tags cost a backend call): `lazy` maps a key prefix to a function of the rest of the key. `consulted` collects
    every key a policy asked for (a copy made for one more check shares it), so the caller can tell whether the
    answer depended on the moment or on an object's tags."""

    def __init__(self, values: Mapping[str, list[str]] = (), lazy: Mapping[str, Callable[[str], list[str] | None]] | None = None,
                 consulted: set[str] | None = None):
        super().__init__(values)
        self.lazy = lazy or {}
        self.consulted = consulted if consulted is not None else set()

    def get(self, key, default=None):
        self.consulted.add(key)
        if key in self:
            return self[key]
        for prefix, resolve in self.lazy.items():
            if key.startswith(prefix):
                value = self[key] = resolve(key[len(prefix):])
                return value
        return default


def _normalized(context) -> dict[str, list[str]]:
    """Accepts {key: value} as well as {key: [values]}; keys compared case-insensitively, as IAM does."""
    if isinstance(context, RequestContext):
        return context
    normalized = {}
    for key, value in context.items():
        normalized[key.lower()] = value if isinstance(value, list) else [value]
    return normalized


STATEMENT_FIELDS = frozenset({"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"})
VERSIONS = frozenset({"2012-10-17", "2008-10-17"})


@lru_cache(maxsize=4096)
def parse(document: str) -> tuple[Statement, ...]:
    """A policy document's statements (cached by text: a changed policy is a new text). PolicyError names the
    first problem, as IAM's MalformedPolicyDocument does."""
    try:
        parsed = json.loads(document)
    except ValueError as error:
        raise PolicyError(f"Syntax errors in policy.: {error}") from None
    if not isinstance(parsed, dict) or "Statement" not in parsed:
        raise PolicyError("Syntax errors in policy.: the document has no Statement")
    version = parsed.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError(f"The policy must contain a valid version string: {version!r}")
    statements = []
    for index, raw in enumerate(_as_list(parsed["Statement"])):
        statement = Statement(raw, index, variables=version == "2012-10-17")
        _check_statement(statement)
        statements.append(statement)
    return tuple(statements)


def _check_statement(statement: Statement) -> None:
    raw = statement.raw
    unknown = set(raw) - STATEMENT_FIELDS
    if unknown:
        raise PolicyError(f"Syntax errors in policy.: unknown field {sorted(unknown)[0]!r}")
    if raw.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"Syntax errors in policy.: Effect must be Allow or Deny, not {raw.get('Effect')!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("Policy statement must contain actions." if "Action" not in raw else "Syntax errors in policy.: Action and NotAction together")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError("Syntax errors in policy.: Resource and NotResource together")
    for action in _as_list(raw.get("Action", raw.get("NotAction"))):
        if not isinstance(action, str) or (action != "*" and ":" not in action):
            raise PolicyError(f"Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: {action!r}")
    condition = raw.get("Condition", {})
    if not isinstance(condition, dict):
        raise PolicyError("Syntax errors in policy.: Condition must be an object")
    for operator, keys in condition.items():
        check_operator(operator)
        if not isinstance(keys, dict):
            raise PolicyError(f"Syntax errors in policy.: condition {operator} must map keys to values")


def parse_identity(document: str) -> tuple[Statement, ...]:
    """An identity, boundary or session policy: no Principal, and every statement names resources."""
    statements = parse(document)
    for statement in statements:
        if "Principal" in statement.raw or "NotPrincipal" in statement.raw:
            raise PolicyError("Policy document should not specify a principal.")
        if "Resource" not in statement.raw and "NotResource" not in statement.raw:
            raise PolicyError("Policy statement must contain resources.")
    return statements


# ---- evaluation -------------------------------------------------------------------------------------------
ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"


@dataclass
class Decision:
    decision: str
    reason: str = ""  # the tail of AWS's message: "because no identity-based policy allows the s3:GetObject action"
    matched: list[tuple[str, Statement]] = field(default_factory=list)  # (policy name, statement)

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED


@dataclass(frozen=True)
class NamedPolicy:
    name: str
    statements: tuple[Statement, ...]


@dataclass
class Policies:
    """Every policy that bears on one request. None for boundary/session means "there is none" (no limit)."""
    identity: list[NamedPolicy] = field(default_factory=list)
    resource: list[NamedPolicy] = field(default_factory=list)
    boundary: list[NamedPolicy] | None = None
    session: list[NamedPolicy] | None = None
    resource_required: bool = False  # KMS key policies: identity policies count only where the key policy lets them


def _matching(policies: Iterable[NamedPolicy], effect: str, action: str, resource: str, context: Context,
              caller: Caller | None) -> list[tuple[str, Statement, str]]:
    hits = []
    for policy in policies:
        for statement in policy.statements:
            if statement.effect != effect or not statement.covers_action(action):
                continue
            how = statement.principal_match(caller) if caller is not None else DIRECT
            if how is None or not statement.covers_resource(resource, context) or not statement.conditions_hold(context):
                continue
            hits.append((policy.name, statement, how))
    return hits


def decide(caller: Caller, action: str, resource: str, context: Context, policies: Policies) -> Decision:
    """AWS's policy evaluation logic within one account: an explicit deny anywhere wins; the account root is
    allowed unless a resource policy denies (identity policies do not apply to it); otherwise an allow must
    come from a resource policy naming the caller, or from identity policies within the permissions boundary
    and the session policy."""
    context = _normalized(context)
    kinds = (("identity-based policy", policies.identity, None), ("resource-based policy", policies.resource, caller),
             ("permissions boundary", policies.boundary or [], None), ("session policy", policies.session or [], None))
    if caller.is_root:
        kinds = kinds[1:2]
    for label, named, principal in kinds:
        denies = _matching(named, "Deny", action, resource, context, principal)
        if denies:
            return Decision(EXPLICIT_DENY, f"with an explicit deny in a {label}" if label != "identity-based policy" else
                            "with an explicit deny in an identity-based policy", [(n, s) for n, s, _ in denies])
    resource_allows = _matching(policies.resource, "Allow", action, resource, context, caller)
    if caller.is_root:
        if policies.resource_required and not resource_allows:
            return Decision(IMPLICIT_DENY, f"because no resource-based policy allows the {action} action")
        return Decision(ALLOWED, matched=[(n, s) for n, s, _ in resource_allows])
    direct = [(n, s) for n, s, how in resource_allows if how == DIRECT]
    if direct and not policies.resource_required:
        return Decision(ALLOWED, matched=direct)  # AWS: not limited by the boundary or session policy
    identity_allows = [(n, s) for n, s, _ in _matching(policies.identity, "Allow", action, resource, context, None)]
    via_role = [(n, s) for n, s, how in resource_allows if how == VIA_ROLE]
    if policies.resource_required:
        if direct:
            return Decision(ALLOWED, matched=direct)
        delegated = [(n, s) for n, s, how in resource_allows if how == VIA_ACCOUNT]
        if not delegated and not via_role:
            return Decision(IMPLICIT_DENY, f"because no resource-based policy allows the {action} action")
    grants = identity_allows + via_role
    if not grants:
        return Decision(IMPLICIT_DENY, f"because no identity-based policy allows the {action} action")
    for label, limit in (("permissions boundary", policies.boundary), ("session policy", policies.session)):
        if limit is not None and not _matching(limit, "Allow", action, resource, context, None):
            return Decision(IMPLICIT_DENY, f"because no {label} allows the {action} action")
    return Decision(ALLOWED, matched=grants)


def explicit_deny(statements, action: str, resource: str, context) -> bool:
    """Whether a resource policy's statements deny the account root (the bucket-policy check)."""
    return decide(ROOT, action, resource, context, Policies(resource=[NamedPolicy("policy", tuple(statements))])).decision == EXPLICIT_DENY


# Conditions that tie a grant to something narrower than "anyone", so an Allow with them is not public.
NARROWING_CONDITION_KEYS = frozenset(
    key.lower()
    for key in ("aws:SourceIp", "aws:SourceVpc", "aws:SourceVpce", "aws:SourceArn", "aws:SourceAccount",
                "aws:SourceOwner", "aws:PrincipalOrgID", "aws:PrincipalAccount", "aws:userid", "aws:PrincipalArn")
)


def is_public(statements) -> bool:
    """S3's test for a public policy: an Allow to everyone not narrowed by a fixed-value condition."""
    for statement in statements:
        if statement.effect != "Allow":
            continue
        principal = statement.raw.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", [])))
        if not everyone:
            continue
        condition_keys = {key.lower() for keys in statement.raw.get("Condition", {}).values() for key in keys}
        if not condition_keys & NARROWING_CONDITION_KEYS:
            return True
    return False
