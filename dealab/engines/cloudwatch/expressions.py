"""Two small languages: metric math (an alarm's Metrics with an Expression) and a composite alarm's AlarmRule.

Metric math is evaluated period by period over the alarm's evaluation range: each metric id is a series (one
value or None per period), numbers are constants. What is supported (`FUNCTIONS`): arithmetic `+ - * / ^`,
comparisons `> < >= <= == !=` and `AND`/`OR` (1 or 0, as AWS gives them), `ABS`, `CEIL`, `FLOOR`,
`FILL(m, value|REPEAT)`, `IF(condition, a[, b])`, `DIFF`, `RATE`, and `SUM`/`AVG`/`MIN`/`MAX`/`STDDEV` over
an array of series (`SUM([m1, m2])`, period by period) or over one series (one value for the whole range, as
AWS returns it). A missing value stays missing through arithmetic, as in AWS's metric math.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable

Value = float | list  # a constant or a series (list of float | None, one per period)


class ExpressionError(ValueError):
    """An expression or rule that cannot be read; its message is AWS-worded where AWS's is known."""


_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<string>\"(?:[^\"\\]|\\.)*\")|(?P<op>>=|<=|==|!=|&&|\|\||[-+*/^(),\[\]<>]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"Invalid token at position {position + 1}: {text[position:position + 10]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


# ---- metric math ---------------------------------------------------------------------------------------------
def _elementwise(function: Callable[..., float | None], *arguments: Value) -> Value:
    length = max((len(a) for a in arguments if isinstance(a, list)), default=None)
    if length is None:
        return function(*arguments)
    columns = [a if isinstance(a, list) else [a] * length for a in arguments]
    return [function(*row) if all(v is not None for v in row) else None for row in zip(*columns)]


def _safe(operation: Callable[[float, float], float]) -> Callable[[float, float], float | None]:
    def apply(left: float, right: float) -> float | None:
        try:
            result = operation(left, right)
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
        return None if isinstance(result, complex) or math.isnan(result) or math.isinf(result) else result
    return apply


BINARY = {
    "+": _safe(lambda a, b: a + b), "-": _safe(lambda a, b: a - b), "*": _safe(lambda a, b: a * b),
    "/": _safe(lambda a, b: a / b), "^": _safe(lambda a, b: a ** b),
    ">": lambda a, b: float(a > b), "<": lambda a, b: float(a < b), ">=": lambda a, b: float(a >= b),
    "<=": lambda a, b: float(a <= b), "==": lambda a, b: float(a == b), "!=": lambda a, b: float(a != b),
    "AND": lambda a, b: float(bool(a) and bool(b)), "&&": lambda a, b: float(bool(a) and bool(b)),
    "OR": lambda a, b: float(bool(a) or bool(b)), "||": lambda a, b: float(bool(a) or bool(b)),
}
# lowest binding first
LEVELS = [("OR", "||"), ("AND", "&&"), (">", "<", ">=", "<=", "==", "!="), ("+", "-"), ("*", "/"), ("^",)]

AGGREGATES = {"SUM": sum, "AVG": statistics.fmean, "MIN": min, "MAX": max,
              "STDDEV": lambda values: statistics.pstdev(values)}


def _aggregate(name: str, arguments: list, period: int) -> Value:
    (argument,) = arguments
    function = AGGREGATES[name]
    if isinstance(argument, tuple):  # an array of series: period by period
        series = [a if isinstance(a, list) else None for a in argument]
        length = max(len(s) for s in series if s is not None)
        columns = [s or [a] * length for s, a in zip(series, argument)]
        result = []
        for row in zip(*columns):
            present = [v for v in row if v is not None]
            result.append(function(present) if present else None)
        return result
    if isinstance(argument, list):  # one series: one value for the whole range
        present = [v for v in argument if v is not None]
        return function(present) if present else None
    return argument


def _fill(arguments: list, period: int) -> Value:
    series, filler = arguments
    if not isinstance(series, list):
        return series
    result, last = [], None
    for value in series:
        if value is None:
            value = last if filler == "REPEAT" else filler
        result.append(value)
        last = value if value is not None else last
    return result


def _if(arguments: list, period: int) -> Value:
    condition, then, otherwise = (arguments + [None])[:3]
    return _elementwise(lambda c, a, b: a if c else b, condition, then, otherwise) if otherwise is not None else \
        _elementwise(lambda c, a: a if c else None, condition, then)


def _diff(arguments: list, period: int, per_second: bool = False) -> Value:
    (series,) = arguments
    if not isinstance(series, list):
        return 0.0
    result = [None]
    for before, after in zip(series, series[1:]):
        change = None if before is None or after is None else after - before
        result.append(change / period if change is not None and per_second else change)
    return result


FUNCTIONS: dict[str, Callable[[list, int], Value]] = {
    "ABS": lambda args, period: _elementwise(abs, args[0]),
    "CEIL": lambda args, period: _elementwise(lambda v: float(math.ceil(v)), args[0]),
    "FLOOR": lambda args, period: _elementwise(lambda v: float(math.floor(v)), args[0]),
    "FILL": _fill,
    "IF": _if,
    "DIFF": _diff,
    "RATE": lambda args, period: _diff(args, period, per_second=True),
    **{name: (lambda args, period, name=name: _aggregate(name, args, period)) for name in AGGREGATES},
}


class MetricMath:
    """One parsed Expression; `evaluate(series_by_id, period)` gives its series over the same periods."""

    def __init__(self, text: str):
        self.text = text
        self._tokens = _tokens(text)
        self._position = 0
        self.tree = self._level(0)
        if self._position != len(self._tokens):
            raise ExpressionError(f"Unexpected '{self._tokens[self._position][1]}' in expression {text}")
        self.ids = sorted(self._ids(self.tree))

    def evaluate(self, series: dict[str, list], period: int) -> Value:
        return self._evaluate(self.tree, series, period)

    # parsing: a tree of ("num", v) | ("id", name) | ("word", name) | ("bin", op, l, r) | ("neg", e)
    # | ("call", name, [args]) | ("array", [items])
    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (expected is not None and token[1] != expected):
            raise ExpressionError(f"Expected '{expected}' in expression {self.text}" if expected else f"Unexpected end of expression {self.text}")
        self._position += 1
        return token

    def _level(self, level: int):
        if level == len(LEVELS):
            return self._unary()
        left = self._level(level + 1)
        while (token := self._peek()) and token[1].upper() in LEVELS[level] and token[0] in ("op", "name"):
            self._take()
            right = self._level(level + 1)
            left = ("bin", token[1].upper(), left, right)
        return left

    def _unary(self):
        if (token := self._peek()) and token[1] == "-":
            self._take()
            return ("neg", self._unary())
        return self._atom()

    def _atom(self):
        kind, text = self._take()
        if kind == "number":
            return ("num", float(text))
        if text == "(":
            inner = self._level(0)
            self._take(")")
            return inner
        if text == "[":
            items = [self._level(0)]
            while self._peek() and self._peek()[1] == ",":
                self._take(",")
                items.append(self._level(0))
            self._take("]")
            return ("array", items)
        if kind == "name":
            if self._peek() and self._peek()[1] == "(":
                if text.upper() not in FUNCTIONS:
                    raise ExpressionError(f"Unsupported function {text} in expression {self.text}: dealab's metric math knows {', '.join(sorted(FUNCTIONS))}")
                self._take("(")
                arguments = [self._level(0)]
                while self._peek() and self._peek()[1] == ",":
                    self._take(",")
                    arguments.append(self._level(0))
                self._take(")")
                return ("call", text.upper(), arguments)
            return ("word", text) if text.isupper() else ("id", text)
        raise ExpressionError(f"Unexpected '{text}' in expression {self.text}")

    def _ids(self, node) -> set[str]:
        kind = node[0]
        if kind == "id":
            return {node[1]}
        if kind == "bin":
            return self._ids(node[2]) | self._ids(node[3])
        if kind == "neg":
            return self._ids(node[1])
        if kind in ("call", "array"):
            return set().union(*(self._ids(child) for child in node[-1]))
        return set()

    def _evaluate(self, node, series: dict[str, list], period: int):
        kind = node[0]
        if kind == "num":
            return node[1]
        if kind == "word":
            return node[1]  # REPEAT and the like, read by the function that takes it
        if kind == "id":
            if node[1] not in series:
                raise ExpressionError(f"Unknown metric id {node[1]} in expression {self.text}")
            return series[node[1]]
        if kind == "neg":
            return _elementwise(lambda v: -v, self._evaluate(node[1], series, period))
        if kind == "bin":
            return _elementwise(BINARY[node[1]], self._evaluate(node[2], series, period), self._evaluate(node[3], series, period))
        if kind == "array":
            return tuple(self._evaluate(child, series, period) for child in node[1])
        return FUNCTIONS[node[1]]([self._evaluate(child, series, period) for child in node[2]], period)


# ---- composite alarm rules -----------------------------------------------------------------------------------
_RULE_TOKEN = re.compile(r"\s*(?:(?P<state>ALARM|OK|INSUFFICIENT_DATA)\s*\(\s*(?:\"(?P<quoted>[^\"]*)\"|(?P<bare>[^()\s]+))\s*\)"
                         r"|(?P<word>AND|OR|NOT|TRUE|FALSE)\b|(?P<paren>[()]))")


class AlarmRule:
    """A parsed AlarmRule; `holds(state_of)` says whether it is true given each named alarm's state."""

    def __init__(self, text: str):
        self.text = text
        self._tokens: list[tuple[str, str, str]] = []
        position, stripped = 0, text.strip()
        while position < len(stripped):
            match = _RULE_TOKEN.match(stripped, position)
            if not match:
                raise ExpressionError(f"Error in alarm rule: unexpected text at position {position + 1}: {stripped[position:position + 20]!r}")
            if match.group("state"):
                self._tokens.append(("state", match.group("state"), match.group("quoted") or match.group("bare")))
            else:
                self._tokens.append(("word", match.group("word") or match.group("paren"), ""))
            position = match.end()
            while position < len(stripped) and stripped[position].isspace():
                position += 1
        self._position = 0
        self.tree = self._or()
        if self._position != len(self._tokens):
            raise ExpressionError(f"Error in alarm rule {text}: unexpected '{self._tokens[self._position][1]}'")
        self.alarms = sorted({token[2] for token in self._tokens if token[0] == "state"})

    def holds(self, state_of: Callable[[str], str]) -> bool:
        return self._holds(self.tree, state_of)

    def _peek(self) -> str | None:
        return self._tokens[self._position][1] if self._position < len(self._tokens) else None

    def _or(self):
        left = self._and()
        while self._peek() == "OR":
            self._position += 1
            left = ("OR", left, self._and())
        return left

    def _and(self):
        left = self._not()
        while self._peek() == "AND":
            self._position += 1
            left = ("AND", left, self._not())
        return left

    def _not(self):
        if self._peek() == "NOT":
            self._position += 1
            return ("NOT", self._not())
        if self._position >= len(self._tokens):
            raise ExpressionError(f"Error in alarm rule {self.text}: it ends too early")
        kind, word, name = self._tokens[self._position]
        self._position += 1
        if kind == "state":
            return ("STATE", word, name)
        if word == "(":
            inner = self._or()
            if self._peek() != ")":
                raise ExpressionError(f"Error in alarm rule {self.text}: a parenthesis is not closed")
            self._position += 1
            return inner
        if word in ("TRUE", "FALSE"):
            return ("CONST", word == "TRUE")
        raise ExpressionError(f"Error in alarm rule {self.text}: unexpected '{word}'")

    def _holds(self, node, state_of) -> bool:
        kind = node[0]
        if kind == "STATE":
            return state_of(node[2]) == node[1]
        if kind == "CONST":
            return node[1]
        if kind == "NOT":
            return not self._holds(node[1], state_of)
        if kind == "AND":
            return self._holds(node[1], state_of) and self._holds(node[2], state_of)
        return self._holds(node[1], state_of) or self._holds(node[2], state_of)
