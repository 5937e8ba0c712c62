"""Evaluation of resource-policy statements (the Deny half) with IAM's condition operators as data."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT_ID = "123456789012"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"


def _string_like(actual: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(actual, pattern)


def _ip_in(actual: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(actual: str, expected: str) -> bool:
        try:
            return compare(float(actual), float(expected))
        except ValueError:
            return False

    return match


# operator → (match one actual value against one policy value, negated?)
OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda a, e: a == e, False),
    "StringNotEquals": (lambda a, e: a == e, True),
    "StringEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (lambda a, e: a == e, False),
    "ArnNotEquals": (lambda a, e: a == e, True),
    "ArnLike": (_string_like, False),
    "ArnNotLike": (_string_like, True),
    "Bool": (lambda a, e: a.lower() == e.lower(), False),
    "NumericEquals": (_numeric(lambda a, e: a == e), False),
    "NumericNotEquals": (_numeric(lambda a, e: a == e), True),
    "NumericLessThan": (_numeric(lambda a, e: a < e), False),
    "NumericLessThanEquals": (_numeric(lambda a, e: a <= e), False),
    "NumericGreaterThan": (_numeric(lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, e: a >= e), False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
}


class PolicyError(ValueError):
    """A policy document this evaluator cannot read."""


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    raw: dict

    @property
    def effect(self) -> str:
        return self.raw.get("Effect", "")

    def applies_to_caller(self) -> bool:
        principal = self.raw.get("Principal")
        if principal is None:
            return "NotPrincipal" not in self.raw
        if principal == "*":
            return True
        aws = principal.get("AWS", []) if isinstance(principal, dict) else []
        return any(p in ("*", ACCOUNT_ID, CALLER_ARN) for p in _as_list(aws))

    def covers(self, action: str, resource: str) -> bool:
        if "Action" in self.raw:
            action_match = any(_string_like(action.lower(), a.lower()) for a in _as_list(self.raw["Action"]))
        else:
            action_match = not any(_string_like(action.lower(), a.lower()) for a in _as_list(self.raw.get("NotAction", [])))
        if "Resource" in self.raw:
            resource_match = any(_string_like(resource, r) for r in _as_list(self.raw["Resource"]))
        else:
            resource_match = not any(_string_like(resource, r) for r in _as_list(self.raw.get("NotResource", [])))
        return action_match and resource_match

    def conditions_hold(self, context: dict[str, str]) -> bool:
        lowered = {key.lower(): value for key, value in context.items()}
        for operator, keys in self.raw.get("Condition", {}).items():
            for key, expected in keys.items():
                if not _condition_holds(operator, lowered.get(key.lower()), [str(v) for v in _as_list(expected)]):
                    return False
        return True


def _condition_holds(operator: str, actual: str | None, expected: list[str]) -> bool:
    name = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: on single-valued keys behave as the base
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if name == "Null":
        return (actual is None) == (expected[0].lower() == "true")
    if name not in OPERATORS:
        raise PolicyError(f"condition operator {operator} is not supported by dealab")
    match, negated = OPERATORS[name]
    if actual is None:
        # IAM: a missing key fails positive operators and satisfies negated ones (and any ...IfExists).
        return if_exists or negated
    matched = any(match(actual, value) for value in expected)
    return not matched if negated else matched


def parse(document: str) -> list[Statement]:
    try:
        parsed = json.loads(document)
        return [Statement(s) for s in _as_list(parsed["Statement"])]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PolicyError(f"policy is not a valid JSON policy document: {error}") from None


def explicit_deny(statements: list[Statement], action: str, resource: str, context: dict[str, str]) -> bool:
    return any(
        s.effect == "Deny" and s.applies_to_caller() and s.covers(action, resource) and s.conditions_hold(context)
        for s in statements
    )


# Conditions that tie a grant to something narrower than "anyone", so an Allow with them is not public.
NARROWING_CONDITION_KEYS = frozenset(
    key.lower()
    for key in ("aws:SourceIp", "aws:SourceVpc", "aws:SourceVpce", "aws:SourceArn", "aws:SourceAccount",
                "aws:SourceOwner", "aws:PrincipalOrgID", "aws:PrincipalAccount", "aws:userid", "aws:PrincipalArn")
)


def is_public(statements: list[Statement]) -> bool:
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
