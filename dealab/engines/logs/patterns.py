"""CloudWatch Logs filter patterns (metric filters, subscription filters, TestMetricFilter).

Three kinds, told apart by their first character (PATTERN_KINDS), as AWS documents them:
- terms: `ERROR`, `"exact phrase"`, `?ERROR ?WARN` (any of), `-DEBUG` (none of), `%regex%`; an empty
  pattern matches every event;
- JSON: `{ $.level = "ERROR" && $.latency > 100 }` with `=`, `!=`, `<`, `<=`, `>`, `>=`, `*` wildcards in
  strings, `%regex%`, `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`, `&&`, `||` and parentheses;
- space-delimited: `[ip, user, ..., status=5*, bytes>1000]`: words split on spaces, "quoted" and
  [bracketed] text one word each, `...` any number of words, conditions joined by `&&` / `||`.
A pattern compiles once to a matcher: `match(message)` gives None when the event does not match, else the
values it extracted (`$.path` or `$name`), which metric values and dimensions name.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass

MISSING = object()


class PatternError(ValueError):
    """A filter pattern AWS would refuse (InvalidParameterException)."""


def _numeric(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text_matches(value, expected: str, kind: str) -> bool:
    """Equality of a string constant: `*` is a wildcard, %...% a regular expression."""
    if value is MISSING or value is None:
        return False
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    if kind == "regex":
        return re.search(expected, text) is not None
    if "*" in expected:
        return re.fullmatch(".*".join(re.escape(part) for part in expected.split("*")), text, re.S) is not None
    return text == expected


def _compare(value, op: str, constant: tuple[str, object]) -> bool:
    kind, expected = constant
    if kind == "number":
        number = _numeric(value)
        return number is not None and NUMERIC_COMPARATORS[op](number, expected)
    if op not in ("=", "!="):
        raise PatternError(f"{op} compares numbers only")
    matched = _text_matches(value, expected, kind)
    return matched if op == "=" else (value is not MISSING and not matched)


NUMERIC_COMPARATORS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

# ---- a small tokenizer shared by JSON and space-delimited patterns ------------------------------------------
_TOKEN = re.compile(r"""\s*(?:
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<regex>%(?:[^%\\]|\\.)*%)
  | (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|,|\.\.\.)
  | (?P<word>[^\s,()=<>!&|"]+)
)""", re.X)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise PatternError(f"Invalid character(s) in term at position {position}: {text[position:position + 10]!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _constant(kind: str, text: str) -> tuple[str, object]:
    if kind == "string":
        return "string", re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "regex":
        return "regex", text[1:-1]
    number = _numeric(text)
    return ("number", number) if number is not None else ("string", text)


class _Conditions:
    """`a op value` joined by && and || with parentheses: the boolean part of JSON and delimited patterns."""

    def __init__(self, tokens: list[tuple[str, str]], selector: re.Pattern):
        self.tokens, self.index, self.selector = tokens, 0, selector

    def peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise PatternError("the filter pattern ends too early")
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self):
        tree = self.either()
        if self.index != len(self.tokens):
            raise PatternError(f"unexpected {self.peek()!r} in the filter pattern")
        return tree

    def either(self):
        left = self.both()
        while self.peek() == "||":
            self.take()
            left = ("or", left, self.both())
        return left

    def both(self):
        left = self.one()
        while self.peek() == "&&":
            self.take()
            left = ("and", left, self.one())
        return left

    def one(self):
        if self.peek() == "(":
            self.take()
            inner = self.either()
            if self.take()[1] != ")":
                raise PatternError("a ( is not closed in the filter pattern")
            return inner
        kind, name = self.take()
        if kind != "word" or not self.selector.fullmatch(name):
            raise PatternError(f"{name!r} is not a field selector")
        word = self.peek()
        if word is not None and word.upper() in ("IS", "NOT"):
            phrase = [self.take()[1].upper(), self.take()[1].upper()]
            if phrase not in (["IS", "NULL"], ["IS", "TRUE"], ["IS", "FALSE"], ["NOT", "EXISTS"]):
                raise PatternError(f"unknown test {' '.join(phrase)}")
            return ("test", name, " ".join(phrase))
        kind, op = self.take()
        if op not in NUMERIC_COMPARATORS:
            raise PatternError(f"expected a comparison after {name}, found {op!r}")
        kind, value = self.take()
        if kind == "op":
            raise PatternError(f"expected a value after {name} {op}")
        constant = _constant(kind, value)
        if constant[0] != "number" and op not in ("=", "!="):
            raise PatternError(f"{name} {op} {value}: {op} compares numbers only")
        return ("compare", name, op, constant)


TESTS = {
    "IS NULL": lambda value: value is None,
    "IS TRUE": lambda value: value is True,
    "IS FALSE": lambda value: value is False,
    "NOT EXISTS": lambda value: value is MISSING,
}


def _evaluate(tree, lookup) -> bool:
    kind = tree[0]
    if kind == "and":
        return _evaluate(tree[1], lookup) and _evaluate(tree[2], lookup)
    if kind == "or":
        return _evaluate(tree[1], lookup) or _evaluate(tree[2], lookup)
    if kind == "test":
        return TESTS[tree[2]](lookup(tree[1]))
    return _compare(lookup(tree[1]), tree[2], tree[3])


def _selectors(tree) -> list[str]:
    if tree[0] in ("and", "or"):
        return _selectors(tree[1]) + _selectors(tree[2])
    return [tree[1]]


# ---- the three kinds ----------------------------------------------------------------------------------------
class TermsPattern:
    def __init__(self, text: str):
        self.required, self.any_of, self.excluded = [], [], []
        for kind, token in _terms(text):
            target = {"?": self.any_of, "-": self.excluded}.get(token[:1] if kind == "word" else "", self.required)
            word = token[1:] if target is not self.required else token
            target.append(_constant(kind, word) if kind != "word" else ("string", word))

    def match(self, message: str) -> dict | None:
        def found(constant) -> bool:
            kind, value = constant
            return re.search(value, message) is not None if kind == "regex" else str(value) in message

        if not all(map(found, self.required)) or any(map(found, self.excluded)):
            return None
        if self.any_of and not any(map(found, self.any_of)):
            return None
        return {}


def _terms(text: str) -> list[tuple[str, str]]:
    terms = []
    for match in re.finditer(r'\s*([?-]?"(?:[^"\\]|\\.)*"|%(?:[^%\\]|\\.)*%|\S+)', text):
        token = match.group(1)
        if token[:1] in "?-" and token[1:2] == '"':
            terms.append(("word", token[0] + _constant("string", token[1:])[1]))
        elif token.startswith('"'):
            terms.append(("string", token))
        elif token.startswith("%") and token.endswith("%") and len(token) > 1:
            terms.append(("regex", token))
        else:
            terms.append(("word", token))
    return terms


_JSON_SELECTOR = re.compile(r"\$(?:\.[A-Za-z0-9_\-@]+|\[\d+\])*")


class JsonPattern:
    def __init__(self, text: str):
        body = text.strip()
        if not body.endswith("}"):
            raise PatternError("a JSON filter pattern ends with }")
        self.tree = _Conditions(_tokens(body[1:-1]), _JSON_SELECTOR).parse()
        self.selectors = list(dict.fromkeys(_selectors(self.tree)))

    def match(self, message: str) -> dict | None:
        document = _json_document(message)
        if document is MISSING:
            return None
        lookup = lambda selector: json_value(document, selector)  # noqa: E731
        if not _evaluate(self.tree, lookup):
            return None
        return {selector: _text(json_value(document, selector)) for selector in self.selectors
                if json_value(document, selector) is not MISSING}


def _json_document(message: str):
    if not message.lstrip().startswith("{"):
        return MISSING
    try:
        return json.loads(message)
    except ValueError:
        return MISSING


def json_value(document, selector: str):
    """The value `$.a.b[0]` names in a JSON document, MISSING when it has none."""
    value = document
    for key, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", selector[1:]):
        if key and isinstance(value, dict) and key in value:
            value = value[key]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return MISSING
    return value


def _text(value) -> str:
    return json.dumps(value) if isinstance(value, (bool, dict, list)) or value is None else str(value)


_DELIMITED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DelimitedPattern:
    def __init__(self, text: str):
        body = text.strip()
        if not body.endswith("]"):
            raise PatternError("a space-delimited filter pattern ends with ]")
        self.fields: list[str | None] = []  # a name, or None for `...`
        conditions = []
        for number, spec in enumerate(_split_specs(body[1:-1]), start=1):
            if spec == "...":
                self.fields.append(None)
                continue
            tokens = _tokens(spec)
            if not tokens:
                raise PatternError("an empty field in a space-delimited filter pattern")
            name = tokens[0][1]
            if tokens[0][0] == "op":  # `= 404` with no name: the field is known by its position
                name = f"${number}"
                tokens = [("word", name)] + tokens
            elif not _DELIMITED_NAME.fullmatch(name):
                raise PatternError(f"{name!r} is not a field name")
            self.fields.append(name)
            if len(tokens) > 1:
                conditions.append(_Conditions(tokens, re.compile(r"\$?[A-Za-z0-9_]+")).parse())
        self.conditions = conditions

    def match(self, message: str) -> dict | None:
        words = _words(message)
        for values in _align(self.fields, words):
            extracted = {(name if name.startswith("$") else f"${name}"): value for name, value in values}
            lookup = lambda name: extracted.get(name if name.startswith("$") else f"${name}", MISSING)  # noqa: E731
            if all(_evaluate(condition, lookup) for condition in self.conditions):
                return extracted
        return None


def _split_specs(body: str) -> list[str]:
    specs, depth, current, quoted = [], 0, "", False
    for char in body:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted and depth == 0:
            specs.append(current.strip())
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0) if not quoted else 0
        current += char
    if current.strip():
        specs.append(current.strip())
    return specs


def _words(message: str) -> list[str]:
    """An event's words: split on spaces; "quoted" and [bracketed] text is one word, without its marks."""
    return [quoted or bracketed or bare for quoted, bracketed, bare in re.findall(r'"([^"]*)"|\[([^\]]*)\]|(\S+)', message)]


def _align(fields: list[str | None], words: list[str]):
    """Every way the pattern's fields cover the words (`...` takes any number), as (name, word) pairs."""
    if not fields:
        if not words:
            yield []
        return
    head, rest = fields[0], fields[1:]
    if head is None:
        for taken in range(len(words) + 1):
            yield from _align(rest, words[taken:])
        return
    if words:
        for tail in _align(rest, words[1:]):
            yield [(head, words[0])] + tail


PATTERN_KINDS = (("{", JsonPattern), ("[", DelimitedPattern))


def compile_pattern(text: str | None):
    """The matcher of a filter pattern; raises PatternError for one AWS would refuse."""
    stripped = (text or "").strip()
    for opener, kind in PATTERN_KINDS:
        if stripped.startswith(opener):
            return kind(stripped)
    return TermsPattern(stripped)


def selected_value(selector: str, message: str, extracted: dict):
    """The value a metric filter's metricValue or dimension names (`$.path`, `$name`), or a literal."""
    if selector.startswith("$."):
        document = _json_document(message)
        value = MISSING if document is MISSING else json_value(document, selector)
        return None if value is MISSING else value
    if selector.startswith("$"):
        return extracted.get(selector)
    return selector
