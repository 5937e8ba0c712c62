"""EventBridge event patterns: read once, checked as AWS checks them, compiled to a test of an event.

A pattern is a JSON object whose fields mirror the event's. A field's value is either a nested object (the
event's field must be an object matching it) or an array of match conditions, any one of which must hold. An
event field holding an array matches when any element does. `$or` joins alternative objects. The match
conditions are the table `OPERATORS`: each entry reads its operand (refusing what AWS refuses, with AWS's
reason) and gives back a test of one event value. moto matches some of these but accepts malformed patterns
and misreads others (anything-but on arrays, wildcard, numeric ranges over booleans).

A refused pattern raises `PatternError`, whose message has AWS's shape:
`Event pattern is not valid. Reason: <why> at [Source: (String)"<pattern>"; line: L, column: C]`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

# A test of an event field: whether it is present, and its values (an array field's elements, else the value).
FieldTest = Callable[[bool, list], bool]
ValueTest = Callable[[Any], bool]
EventTest = Callable[[Any], bool]

NUMERIC_LIMIT = 5.0e9  # AWS matches numbers from -5.0e9 to +5.0e9
NUMERIC_OPERATORS = {
    "<": lambda value, bound: value < bound,
    "<=": lambda value, bound: value <= bound,
    "=": lambda value, bound: value == bound,
    ">=": lambda value, bound: value >= bound,
    ">": lambda value, bound: value > bound,
}
LOWER_BOUNDS, UPPER_BOUNDS = (">", ">="), ("<", "<=")
_MISSING = object()


class PatternError(ValueError):
    """A pattern AWS refuses: `reason` in event-ruler's words, `near` a text the error points at."""

    def __init__(self, reason: str, near: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.near = near

    def message(self, source: str) -> str:
        offset = max(source.find(self.near), 0) if self.near else len(source)
        line = source.count("\n", 0, offset) + 1
        column = offset - (source.rfind("\n", 0, offset) + 1) + 1
        return f'Event pattern is not valid. Reason: {self.reason} at [Source: (String)"{source}"; line: {line}, column: {column}]'


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def _string_operand(operator: str, operand: Any) -> str:
    if not isinstance(operand, str):
        raise PatternError(f"{operator} match pattern must be a string", f'"{operator}"')
    return operand


def _strings(operator: str, operand: Any) -> list[str]:
    """A string, or a non-empty array of strings (anything-but's forms)."""
    items = operand if isinstance(operand, list) else [operand]
    if not items or not all(isinstance(item, str) for item in items):
        raise PatternError(f"{operator} match pattern must be a string or an array of strings", f'"{operator}"')
    return items


def _ignore_case_form(operator: str, operand: Any) -> str | None:
    """prefix/suffix take {"equals-ignore-case": "text"}: the text, lower-cased; None for the plain form."""
    if isinstance(operand, dict):
        if list(operand) != ["equals-ignore-case"]:
            raise PatternError(f"Unsupported {operator} pattern: {json.dumps(operand)}", f'"{operator}"')
        return _string_operand("equals-ignore-case", operand["equals-ignore-case"]).lower()
    return None


# ---- the operators: operand → test of one value --------------------------------------------------------
def _exact(operand: Any) -> ValueTest:
    if isinstance(operand, str):
        return lambda value: value == operand and isinstance(value, str)
    if isinstance(operand, bool) or operand is None:
        return lambda value: value is operand
    return lambda value: _is_number(value) and value == operand  # 300 matches 300.0, as AWS compares numbers


def _prefix(operand: Any) -> ValueTest:
    folded = _ignore_case_form("prefix", operand)
    if folded is not None:
        return lambda value: isinstance(value, str) and value.lower().startswith(folded)
    text = _string_operand("prefix", operand)
    return lambda value: isinstance(value, str) and value.startswith(text)


def _suffix(operand: Any) -> ValueTest:
    folded = _ignore_case_form("suffix", operand)
    if folded is not None:
        return lambda value: isinstance(value, str) and value.lower().endswith(folded)
    text = _string_operand("suffix", operand)
    return lambda value: isinstance(value, str) and value.endswith(text)


def _equals_ignore_case(operand: Any) -> ValueTest:
    folded = _string_operand("equals-ignore-case", operand).lower()
    return lambda value: isinstance(value, str) and value.lower() == folded


def _wildcard_regex(operand: Any) -> re.Pattern:
    text = _string_operand("wildcard", operand)
    parts, literal, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in "*\\":
            literal.append(text[index + 1])
            index += 2
            continue
        if char == "*":
            if index + 1 < len(text) and text[index + 1] == "*":
                raise PatternError(f"Consecutive wildcard characters at pos {index + 1}", '"wildcard"')
            parts.append(re.escape("".join(literal)))
            parts.append(".*")
            literal = []
        else:
            literal.append(char)
        index += 1
    parts.append(re.escape("".join(literal)))
    return re.compile("".join(parts), re.S)


def _wildcard(operand: Any) -> ValueTest:
    regex = _wildcard_regex(operand)
    return lambda value: isinstance(value, str) and regex.fullmatch(value) is not None


def _numeric(operand: Any) -> ValueTest:
    if not isinstance(operand, list) or not operand:
        raise PatternError("Value of numeric must be an array.", '"numeric"')
    if len(operand) % 2 or len(operand) > 4:
        raise PatternError("Too many elements in numeric expression" if len(operand) > 4 else "Missing numeric value", '"numeric"')
    checks = []
    for operator, bound in zip(operand[::2], operand[1::2]):
        if operator not in NUMERIC_OPERATORS:
            raise PatternError(f"Unrecognized numeric range operator: {operator}", '"numeric"')
        if not _is_number(bound):
            raise PatternError(f"Value of {operator} must be numeric", '"numeric"')
        if abs(bound) > NUMERIC_LIMIT:
            raise PatternError(f"Value of {operator} must be between -5.0E9 and 5.0E9 inclusive", '"numeric"')
        checks.append((NUMERIC_OPERATORS[operator], bound))
    if len(checks) == 2:
        (first, _), (second, _) = operand[0:2], operand[2:4]
        if first not in LOWER_BOUNDS or second not in UPPER_BOUNDS:
            raise PatternError("Bad numeric range: give a lower bound (> or >=) then an upper bound (< or <=)", '"numeric"')
        if operand[1] >= operand[3]:
            raise PatternError("Bottom must be less than top", '"numeric"')
    return lambda value: _is_number(value) and all(check(value, bound) for check, bound in checks)


def _cidr(operand: Any) -> ValueTest:
    text = _string_operand("cidr", operand)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PatternError(f"Nonsensical CIDR IP: {text}", '"cidr"') from None

    def test(value: Any) -> bool:
        try:
            return isinstance(value, str) and ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return test


# anything-but's object forms: operator → test of one value it must not pass
ANYTHING_BUT_FORMS: dict[str, Callable[[Any], ValueTest]] = {
    "prefix": lambda operand: _prefix(_string_operand("prefix", operand)),
    "suffix": lambda operand: _suffix(_string_operand("suffix", operand)),
    "equals-ignore-case": lambda operand: _any_of([_equals_ignore_case(text) for text in _strings("equals-ignore-case", operand)]),
    "wildcard": lambda operand: _any_of([_wildcard(text) for text in _strings("wildcard", operand)]),
}


def _any_of(tests: list[ValueTest]) -> ValueTest:
    return lambda value: any(test(value) for test in tests)


def _anything_but(operand: Any) -> ValueTest:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in ANYTHING_BUT_FORMS:
            raise PatternError(f"Unsupported anything-but pattern: {', '.join(operand) or '{}'}", '"anything-but"')
        (form, inner), = operand.items()
        excluded = ANYTHING_BUT_FORMS[form](inner)
    else:
        items = operand if isinstance(operand, list) else [operand]
        if not items or not all(isinstance(item, str) or _is_number(item) for item in items):
            raise PatternError("Value of anything-but must be an array or single string/number value.", '"anything-but"')
        excluded = _any_of([_exact(item) for item in items])
    return lambda value: not excluded(value)


# The match conditions: name → reads the operand, gives the test of one event value.
OPERATORS: dict[str, Callable[[Any], ValueTest]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "cidr": _cidr,
}


def _exists(operand: Any) -> FieldTest:
    if not isinstance(operand, bool):
        raise PatternError("exists match pattern must be either true or false.", '"exists"')
    return lambda present, values: present == operand


# ---- compiling -------------------------------------------------------------------------------------------
def _condition(condition: Any, field: str) -> FieldTest:
    if _is_scalar(condition):
        test = _exact(condition)
    elif isinstance(condition, dict):
        if not condition:
            raise PatternError("Empty objects are not allowed", f'"{field}"')
        if len(condition) > 1:
            raise PatternError("Only one key allowed in match expression", f'"{next(iter(condition))}"')
        (operator, operand), = condition.items()
        if operator == "exists":
            return _exists(operand)
        if operator not in OPERATORS:
            raise PatternError(f"Unrecognized match type {operator}", f'"{operator}"')
        test = OPERATORS[operator](operand)
    else:
        raise PatternError("Match value must be String, number, true, false, or null", f'"{field}"')
    return lambda present, values: any(test(value) for value in values)


def _field(field: str, spec: Any) -> EventTest:
    if isinstance(spec, dict):
        inner = _object(spec, field)

        def nested(event: Any) -> bool:
            value = event.get(field, _MISSING) if isinstance(event, dict) else _MISSING
            if isinstance(value, list):
                objects = [element for element in value if isinstance(element, dict)]
                return any(inner(element) for element in objects) if objects else inner({})
            return inner(value if isinstance(value, dict) else {})

        return nested
    if not isinstance(spec, list):
        raise PatternError(f'"{field}" must be an object or an array', f'"{field}"')
    if not spec:
        raise PatternError("Empty arrays are not allowed", f'"{field}"')
    conditions = [_condition(condition, field) for condition in spec]

    def leaf(event: Any) -> bool:
        value = event.get(field, _MISSING) if isinstance(event, dict) else _MISSING
        present = value is not _MISSING
        values = value if isinstance(value, list) else ([value] if present else [])
        return any(condition(present, values) for condition in conditions)

    return leaf


def _object(pattern: dict, where: str = "") -> EventTest:
    if not pattern:
        raise PatternError("Empty objects are not allowed", f'"{where}"' if where else "")
    tests: list[EventTest] = []
    for field, spec in pattern.items():
        if field == "$or":
            if not isinstance(spec, list) or not all(isinstance(item, dict) for item in spec):
                raise PatternError("Or relationship must be an array of objects", '"$or"')
            if len(spec) < 2:
                raise PatternError("There must have at least 2 items in Or relationship.", '"$or"')
            alternatives = [_object(item, "$or") for item in spec]
            tests.append(lambda event, alternatives=alternatives: any(alternative(event) for alternative in alternatives))
        else:
            tests.append(_field(field, spec))
    if len(tests) == 1:
        return tests[0]
    return lambda event: all(test(event) for test in tests)


def parse(source: str) -> EventTest:
    """The test an event must pass, or PatternError (use `.message(source)` for AWS's wording)."""
    try:
        pattern = json.loads(source)
    except ValueError as error:
        raise PatternError(f"Unexpected input: {error.msg}", source[getattr(error, "pos", 0):][:1]) from None
    if not isinstance(pattern, dict):
        raise PatternError("Filter is not an object", source.strip()[:1])
    return _object(pattern)


@lru_cache(maxsize=4096)
def compiled(source: str) -> EventTest:
    """`parse`, remembered: each rule's pattern is read once however many events it meets."""
    return parse(source)


def matches(source: str, event: dict) -> bool:
    return compiled(source)(event)
