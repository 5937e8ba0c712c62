"""Logs Insights query language → DuckDB SQL.

A query is commands joined by `|`. The tokenizer and a recursive-descent parser turn it into commands with
expression trees; each command is translated by the COMMANDS table into one stage (a CTE) over the stage
before it; functions and aggregates are SQL templates in FUNCTIONS and AGGREGATES. The first stage reads the
events table the engine registers (`timestamp`, `ingestion` in epoch ms, `message`, `stream`, `log`).

Fields are typed as the translator sees them ("str", "num", "bool", "time"): every value read from a message
(JSON discovery, `parse`) is text, compared as a number when the other side is one, as Insights does.
A syntax error raises MalformedQuery with the offset of the symbol, which the engine answers as AWS's
MalformedQueryException with queryCompileError.location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

IMPLICIT_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")
DEFAULT_DISPLAY = ("@timestamp", "@message")
RESULT_LIMIT = 10000
# the columns the base stage reads from the registered events table, typed
BASE_COLUMNS = {
    "@timestamp": ("epoch_ms(\"timestamp\")", "time"),
    "@ingestionTime": ("epoch_ms(ingestion)", "time"),
    "@message": ("message", "str"),
    "@logStream": ("stream", "str"),
    "@log": ("log", "str"),
}
JSON_COLUMN = "__json"
PTR_COLUMN = "@ptr"

# Duration units of bin(), datefloor() and dateceil(), in milliseconds.
DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "hr": 3_600_000,
                  "d": 86_400_000, "w": 604_800_000}


class MalformedQuery(Exception):
    def __init__(self, message: str, start: int, end: int | None = None):
        super().__init__(message)
        self.start = start
        self.end = start if end is None else end


# ---- tokens ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # name, string, regex, number, duration, op, end
    text: str
    start: int
    end: int
    value: object = None


_TOKEN_PATTERNS = [
    ("space", r"\s+"),
    ("string", r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"),
    ("duration", r"\d+(?:\.\d+)?(?:ms|min|hr|s|m|h|d|w)(?![A-Za-z0-9_])"),
    ("number", r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"),
    ("name", r"`[^`]+`(?:\.(?:`[^`]+`|[A-Za-z0-9_@$]+))*|[@A-Za-z_$][A-Za-z0-9_@$]*(?:\.(?:`[^`]+`|[A-Za-z0-9_@$]+))*"),
    ("op", r"=~|!=|<=|>=|[|,()\[\]=<>+\-*/%^!]"),
]
_TOKENIZER = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _TOKEN_PATTERNS))
# After these, `/` divides; anywhere else it opens a regular expression.
_OPERAND_ENDS = {"name", "string", "regex", "number", "duration"}


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(query):
        if query[position] == "/" and not _ends_operand(tokens):
            closing = _regex_end(query, position)
            tokens.append(Token("regex", query[position:closing], position, closing, query[position + 1:closing - 1]))
            position = closing
            continue
        match = _TOKENIZER.match(query, position)
        if not match:
            raise MalformedQuery(f"unexpected symbol found {query[position]} at {_where(query, position)}", position)
        kind, text = match.lastgroup, match.group()
        if kind != "space":
            tokens.append(Token(kind, text, position, match.end(), _token_value(kind, text)))
        position = match.end()
    tokens.append(Token("end", "", len(query), len(query)))
    return tokens


def _ends_operand(tokens: list[Token]) -> bool:
    """Whether the tokens so far end an operand, so that a `/` divides. A keyword (like, and, ...) ends none,
    and neither does the field after `parse`: `parse @message /(?<x>...)/` opens a regular expression."""
    if not tokens:
        return False
    previous = tokens[-1]
    if previous.kind == "name":
        parsed_field = len(tokens) > 1 and tokens[-2].kind == "name" and tokens[-2].text.lower() == "parse"
        return previous.text.lower() not in RESERVED and not parsed_field
    return previous.kind in _OPERAND_ENDS or previous.text in (")", "]")


def _regex_end(query: str, start: int) -> int:
    position = start + 1
    while position < len(query):
        if query[position] == "\\":
            position += 2
            continue
        if query[position] == "/":
            return position + 1
        position += 1
    raise MalformedQuery(f"unterminated regular expression at {_where(query, start)}", start)


def _token_value(kind: str, text: str):
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "number":
        return float(text) if any(c in text for c in ".eE") else int(text)
    if kind == "duration":
        number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]+)", text).groups()
        return int(float(number) * DURATION_UNITS[unit])
    if kind == "name":
        return ".".join(part.strip("`") for part in re.findall(r"`[^`]+`|[^.]+", text))
    return None


def _where(query: str, position: int) -> str:
    line = query.count("\n", 0, position) + 1
    column = position - (query.rfind("\n", 0, position) + 1)
    return f"line {line} and position {column}"


# ---- syntax tree ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    text: str


@dataclass(frozen=True)
class Literal:
    value: object
    text: str


@dataclass(frozen=True)
class Regex:
    pattern: str
    text: str


@dataclass(frozen=True)
class Duration:
    millis: int
    text: str


@dataclass(frozen=True)
class Star:
    text: str = "*"


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    text: str
    start: int


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object
    text: str


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object
    text: str


@dataclass(frozen=True)
class Membership:
    operand: object
    items: tuple
    negated: bool
    text: str


@dataclass
class Command:
    name: str
    start: int
    items: list = field(default_factory=list)  # (expression, alias) pairs, or sort (expression, descending) pairs
    by: list = field(default_factory=list)
    source: object = None  # parse: the field parsed
    pattern: Token | None = None  # parse: the glob string or regex
    names: list = field(default_factory=list)  # parse: `as` names of a glob
    count: int = 0  # limit


# ---- parser ---------------------------------------------------------------------------------------------
# Binary operators by precedence, loosest first; None is where the prefix `not` binds.
BINARY_LEVELS = (("or",), ("and",), None, ("=", "!=", "<", "<=", ">", ">=", "=~", "like"), ("+", "-"), ("*", "/", "%"), ("^",))
NOT_LEVEL = BINARY_LEVELS.index(None)
COMPARISON_LEVEL = NOT_LEVEL + 1


class Parser:
    def __init__(self, query: str):
        self.query = query
        self.tokens = tokenize(query)
        self.index = 0

    # tokens
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def word(self) -> str:
        return self.token.text.lower() if self.token.kind == "name" else self.token.text

    def at(self, *texts: str) -> bool:
        return self.token.kind in ("op", "name") and self.word() in texts

    def expect(self, text: str) -> Token:
        if not self.at(text):
            self.fail(f"expected {text}")
        return self.advance()

    def fail(self, why: str = ""):
        token = self.token
        shown = token.text or "end of query"
        detail = f" ({why})" if why else ""
        raise MalformedQuery(f"unexpected symbol found {shown} at {_where(self.query, token.start)}{detail}",
                             token.start, max(token.start, token.end - 1))

    def span(self, start: int) -> str:
        return self.query[start:self.tokens[self.index - 1].end]

    # commands
    def parse(self) -> list[Command]:
        commands = []
        while True:
            if self.token.kind != "name" or self.word() not in COMMANDS:
                self.fail("expected a command: " + ", ".join(COMMANDS))
            start = self.token.start
            name = self.advance().text.lower()
            command = Command(name, start)
            COMMANDS[name].parse(self, command)
            commands.append(command)
            if self.token.kind == "end":
                return commands
            self.expect("|")

    def aliased_list(self, command: Command) -> None:
        while True:
            expression = self.expression()
            alias = None
            if self.at("as"):
                self.advance()
                alias = self.name()
            command.items.append((expression, alias or expression.text))
            if not self.at(","):
                return
            self.advance()

    def name(self) -> str:
        if self.token.kind != "name":
            self.fail("expected a field name")
        return self.advance().value

    # expressions
    def expression(self, level: int = 0):
        if level == len(BINARY_LEVELS):
            return self.unary()
        start = self.token.start
        if level == NOT_LEVEL:
            if self.at("not"):
                self.advance()
                return Unary("not", self.expression(NOT_LEVEL), self.span(start))
            return self.expression(level + 1)
        left = self.expression(level + 1)
        while True:
            negated = level == COMPARISON_LEVEL and self.at("not") and self.tokens[self.index + 1].text.lower() in ("like", "in")
            if negated:
                self.advance()
            if level == COMPARISON_LEVEL and self.at("in"):
                self.advance()
                left = Membership(left, self.list_literal(), negated, self.span(start))
                continue
            if not self.at(*BINARY_LEVELS[level]):
                return left
            op = self.advance().text.lower()
            left = Binary(op, left, self.expression(level + 1), self.span(start))
            if negated:
                left = Unary("not", left, self.span(start))

    def list_literal(self) -> tuple:
        self.expect("[")
        items = []
        while not self.at("]"):
            items.append(self.unary())
            if not self.at("]"):
                self.expect(",")
        self.advance()
        return tuple(items)

    def unary(self):
        start = self.token.start
        if self.at("-"):
            self.advance()
            return Unary("-", self.unary(), self.span(start))
        return self.primary()

    def primary(self):
        token = self.token
        if token.kind == "string" or token.kind == "number":
            self.advance()
            return Literal(token.value, token.text)
        if token.kind == "regex":
            self.advance()
            return Regex(token.value, token.text)
        if token.kind == "duration":
            self.advance()
            return Duration(token.value, token.text)
        if self.at("("):
            self.advance()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("*"):
            self.advance()
            return Star()
        if token.kind == "name" and self.word() not in RESERVED:
            self.advance()
            if self.at("("):
                self.advance()
                args = []
                while not self.at(")"):
                    args.append(self.expression())
                    if not self.at(")"):
                        self.expect(",")
                self.advance()
                return Call(token.text.lower(), tuple(args), self.span(token.start), token.start)
            return Field(token.value, token.text)
        self.fail()


RESERVED = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})


# ---- command grammars -----------------------------------------------------------------------------------
def _parse_fields(parser: Parser, command: Command) -> None:
    parser.aliased_list(command)


def _parse_filter(parser: Parser, command: Command) -> None:
    command.items.append((parser.expression(), None))


def _parse_stats(parser: Parser, command: Command) -> None:
    parser.aliased_list(command)
    if parser.at("by"):
        parser.advance()
        while True:
            expression = parser.expression()
            alias = None
            if parser.at("as"):
                parser.advance()
                alias = parser.name()
            command.by.append((expression, alias or expression.text))
            if not parser.at(","):
                break
            parser.advance()


def _parse_sort(parser: Parser, command: Command) -> None:
    while True:
        expression = parser.expression()
        descending = False
        if parser.at("asc", "desc"):
            descending = parser.advance().text.lower() == "desc"
        command.items.append((expression, descending))
        if not parser.at(","):
            return
        parser.advance()


def _parse_limit(parser: Parser, command: Command) -> None:
    token = parser.token
    if token.kind != "number" or not isinstance(token.value, int) or not 0 < token.value <= RESULT_LIMIT:
        parser.fail(f"limit takes a whole number from 1 to {RESULT_LIMIT}")
    command.count = parser.advance().value


def _parse_names(parser: Parser, command: Command) -> None:
    while True:
        command.names.append(parser.name())
        if not parser.at(","):
            return
        parser.advance()


def _parse_parse(parser: Parser, command: Command) -> None:
    if parser.token.kind in ("string", "regex"):
        command.source = Field("@message", "@message")
    else:
        command.source = parser.expression(COMPARISON_LEVEL + 1)
    if parser.token.kind not in ("string", "regex"):
        parser.fail("parse takes a glob string or a /regular expression/")
    command.pattern = parser.advance()
    if command.pattern.kind == "string":
        parser.expect("as")
        _parse_names(parser, command)
        stars = command.pattern.value.count("*")
        if stars != len(command.names):
            raise MalformedQuery(f"parse pattern has {stars} wildcard(s) but {len(command.names)} name(s) at "
                                 f"{_where(parser.query, command.pattern.start)}", command.pattern.start)
    else:
        try:
            names = list(re.compile(_python_regex(command.pattern.value)).groupindex)
        except re.error as error:
            raise MalformedQuery(f"invalid regular expression {command.pattern.text}: {error}", command.pattern.start)
        if not names:
            raise MalformedQuery("parse regular expression names no field: use (?<name>...)", command.pattern.start)
        command.names = names


def _python_regex(pattern: str) -> str:
    return re.sub(r"\(\?<(?![=!])", "(?P<", pattern)


@dataclass(frozen=True)
class CommandRule:
    parse: object
    translate: str  # the Translator method


# ---- translation ----------------------------------------------------------------------------------------
def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Sql:
    text: str
    type: str  # str | num | bool | time


def coerce(value: Sql, want: str) -> str:
    if want == "any" or value.type == want:
        return value.text
    if want == "num":
        if value.type == "time":
            return f"epoch_ms({value.text})"
        return f"TRY_CAST({value.text} AS DOUBLE)"
    if want == "str":
        if value.type == "time":
            return f"strftime({value.text}, '%Y-%m-%d %H:%M:%S.%g')"
        return f"CAST({value.text} AS VARCHAR)"
    if want == "time":
        if value.type == "num":
            return f"epoch_ms(CAST({value.text} AS BIGINT))"
        return f"TRY_CAST({value.text} AS TIMESTAMP)"
    if want == "bool":
        return f"({value.text} IS NOT NULL)" if value.type != "num" else f"({value.text} <> 0)"
    raise ValueError(want)


@dataclass(frozen=True)
class Function:
    template: str  # {0}, {1}, ... are the arguments; {args} all of them joined by commas
    params: tuple  # each argument's wanted type; the last repeats for variadic functions
    returns: str
    arity: tuple = ()  # (fewest, most) arguments; most None = any number; () = exactly len(params)
    unit_params: tuple = ()  # indexes of arguments given as a duration (bin(5m))


FUNCTIONS = {
    "strlen": Function("length({0})", ("str",), "num"),
    "toupper": Function("upper({0})", ("str",), "str"),
    "tolower": Function("lower({0})", ("str",), "str"),
    "trim": Function("trim({0})", ("str",), "str"),
    "ltrim": Function("ltrim({0})", ("str",), "str"),
    "rtrim": Function("rtrim({0})", ("str",), "str"),
    "concat": Function("concat({args})", ("str",), "str", (1, None)),
    # Insights counts from 0, SQL from 1
    "substr": Function("substr({0}, CAST({1} AS BIGINT) + 1{rest})", ("str", "num", "num"), "str", (2, 3)),
    "replace": Function("replace({0}, {1}, {2})", ("str", "str", "str"), "str"),
    "strcontains": Function("CAST(contains({0}, {1}) AS INTEGER)", ("str", "str"), "num"),
    "abs": Function("abs({0})", ("num",), "num"),
    "ceil": Function("ceil({0})", ("num",), "num"),
    "floor": Function("floor({0})", ("num",), "num"),
    "round": Function("round({0}{rest})", ("num", "num"), "num", (1, 2)),
    "sqrt": Function("sqrt({0})", ("num",), "num"),
    "log": Function("ln({0})", ("num",), "num"),
    "greatest": Function("greatest({args})", ("num",), "num", (1, None)),
    "least": Function("least({args})", ("num",), "num", (1, None)),
    "bin": Function("time_bucket(INTERVAL ({0}) MILLISECOND, \"@timestamp\")", ("num",), "time", (), (0,)),
    "datefloor": Function("time_bucket(INTERVAL ({1}) MILLISECOND, {0})", ("time", "num"), "time", (), (1,)),
    "dateceil": Function("(time_bucket(INTERVAL ({1}) MILLISECOND, {0} - INTERVAL 1 MILLISECOND) + INTERVAL ({1}) MILLISECOND)",
                         ("time", "num"), "time", (), (1,)),
    "frommillis": Function("epoch_ms(CAST({0} AS BIGINT))", ("num",), "time"),
    "tomillis": Function("epoch_ms({0})", ("time",), "num"),
    "isempty": Function("({0} IS NULL OR {0} = '')", ("str",), "bool"),
    "isblank": Function("({0} IS NULL OR trim({0}) = '')", ("str",), "bool"),
    "ispresent": Function("({0} IS NOT NULL)", ("any",), "bool"),
    "coalesce": Function("coalesce({args})", ("str",), "str", (1, None)),
}

# Aggregates of `stats`: template over the coerced argument, wanted type, result type.
AGGREGATES = {
    "count": Function("count({0})", ("any",), "num", (0, 1)),
    "count_distinct": Function("count(DISTINCT {0})", ("any",), "num"),
    "sum": Function("sum({0})", ("num",), "num"),
    "avg": Function("avg({0})", ("num",), "num"),
    "min": Function("min({0})", ("num",), "num"),
    "max": Function("max({0})", ("num",), "num"),
    "stddev": Function("stddev_samp({0})", ("num",), "num"),
    "pct": Function("quantile_disc({0}, {1} / 100.0)", ("num", "num"), "num"),
    "percentile": Function("quantile_disc({0}, {1} / 100.0)", ("num", "num"), "num"),
    "earliest": Function("arg_min({0}, \"@timestamp\")", ("any",), "any"),
    "latest": Function("arg_max({0}, \"@timestamp\")", ("any",), "any"),
    "sortsfirst": Function("min({0})", ("str",), "str"),
    "sortslast": Function("max({0})", ("str",), "str"),
}

COMPARISONS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
ARITHMETIC = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "^": "**"}


@dataclass
class Plan:
    sql: str
    display: list[str]
    matched_stage: str
    aggregated: bool


class Translator:
    """Turns parsed commands into stages. `columns` are the fields the current stage has, with their types."""

    def __init__(self, query: str, commands: list[Command], base_filter: str):
        self.query = query
        self.commands = commands
        self.base_filter = base_filter
        self.stages: list[str] = []
        self.columns: dict[str, str] = {name: kind for name, (_, kind) in BASE_COLUMNS.items()}
        self.stage_columns: set[str] = set(BASE_COLUMNS) | {PTR_COLUMN}  # what `SELECT *` of the current stage has
        self.fields: list[str] = []
        self.display: list[str] | None = None
        self.order: list[str] = ['"@timestamp" DESC']  # newest first unless a sort says otherwise
        self.limit = RESULT_LIMIT
        self.uses_json = False
        self.aggregated = False
        self.matched_stage = ""

    def plan(self, limit: int) -> Plan:
        self.limit = min(limit, RESULT_LIMIT)
        for command in self.commands:
            getattr(self, COMMANDS[command.name].translate)(command)
        if not self.matched_stage:
            self.matched_stage = self._current()
        if self.display is not None:
            display = self.display
        elif self.aggregated:
            display = list(self.columns)
        else:
            display = self.fields or list(DEFAULT_DISPLAY)
        selected = [f"{self.expr(Field(name, name)).text} AS {q(name)}" for name in display]
        if not self.aggregated:
            selected.append(f"{q(PTR_COLUMN)}")
        order = f" ORDER BY {', '.join(self.order)}" if self.order else ""
        final = f"SELECT {', '.join(selected)} FROM {self._current()}{order} LIMIT {self.limit}"
        return Plan(self._with(final), display, self.matched_stage, self.aggregated)

    def matched_sql(self, stage: str) -> str:
        return self._with(f"SELECT count(*) FROM {stage}")

    # stages
    def _base(self) -> str:
        columns = [f"{sql} AS {q(name)}" for name, (sql, _) in BASE_COLUMNS.items()]
        columns.append(f"log || ':' || stream || ':' || CAST(\"timestamp\" AS VARCHAR) AS {q(PTR_COLUMN)}")
        if self.uses_json:
            columns.append(f"CASE WHEN starts_with(ltrim(message), '{{') AND json_valid(message) THEN message END AS {JSON_COLUMN}")
        return f"SELECT {', '.join(columns)} FROM events WHERE {self.base_filter}"

    def _with(self, final: str) -> str:
        ctes = [f"s0 AS ({self._base()})"] + [f"s{number} AS ({sql})" for number, sql in enumerate(self.stages, start=1)]
        return f"WITH {', '.join(ctes)} {final}"

    def _current(self) -> str:
        return f"s{len(self.stages)}"

    def _stage(self, sql: str) -> None:
        self.stages.append(sql)

    # commands
    def command_fields(self, command: Command) -> None:
        added, names = [], []
        for expression, alias in command.items:
            value = self.expr(expression)
            if not (isinstance(expression, Field) and alias == expression.name and expression.name in self.columns):
                added.append(f"{value.text} AS {q(alias)}")
                names.append(alias)
                self.columns[alias] = value.type
            if alias not in self.fields:
                self.fields.append(alias)
        if added:
            self._replace_columns(added, names)

    def _replace_columns(self, added: list[str], names: list[str]) -> None:
        """A stage that adds (or redefines) columns; a redefined one is dropped from * first."""
        current = self._current()
        kept = [name for name in names if name in self.stage_columns]
        exclude = f" EXCLUDE ({', '.join(q(name) for name in kept)})" if kept else ""
        self._stage(f"SELECT *{exclude}, {', '.join(added)} FROM {current}")
        self.stage_columns.update(names)

    def command_filter(self, command: Command) -> None:
        condition = self.expr(command.items[0][0])
        self._stage(f"SELECT * FROM {self._current()} WHERE {coerce(condition, 'bool')}")

    def command_parse(self, command: Command) -> None:
        source = coerce(self.expr(command.source), "str")
        if command.pattern.kind == "string":
            pieces = command.pattern.value.split("*")
            regex = "".join(re.escape(piece) + ("(.*?)" if number < len(pieces) - 2 else "(.*)" if number == len(pieces) - 2 else "")
                            for number, piece in enumerate(pieces))
            groups = {name: number for number, name in enumerate(command.names, start=1)}
        else:
            python = _python_regex(command.pattern.value)
            regex = python
            groups = re.compile(python).groupindex
        pattern = sql_string(regex)
        added = [f"CASE WHEN regexp_matches({source}, {pattern}) THEN regexp_extract({source}, {pattern}, {groups[name]}) END AS {q(name)}"
                 for name in command.names]
        for name in command.names:
            self.columns[name] = "str"
        self._replace_columns(added, list(command.names))

    def command_stats(self, command: Command) -> None:
        if not self.matched_stage:
            self.matched_stage = self._current()
        groups = [(self.expr(expression), alias) for expression, alias in command.by]
        aggregates = [(self.aggregate(expression), alias) for expression, alias in command.items]
        selected = [f"{value.text} AS {q(alias)}" for value, alias in groups + aggregates]
        group_by = f" GROUP BY {', '.join(str(n) for n in range(1, len(groups) + 1))}" if groups else ""
        self._stage(f"SELECT {', '.join(selected)} FROM {self._current()}{group_by}")
        self.columns = {alias: value.type for value, alias in groups + aggregates}
        self.stage_columns = set(self.columns)
        self.aggregated = True
        self.fields = []
        # bins read best oldest first, as the console charts them
        self.order = [f"{q(alias)} ASC" for _, alias in groups]

    def command_sort(self, command: Command) -> None:
        self.order = []
        for expression, descending in command.items:
            value, direction = self.expr(expression), "DESC" if descending else "ASC"
            if value.type == "str":  # text read from messages sorts as numbers where it is one, as Insights does
                self.order.append(f"{coerce(value, 'num')} {direction} NULLS LAST")
            self.order.append(f"{value.text} {direction} NULLS LAST")

    def command_limit(self, command: Command) -> None:
        self.limit = min(self.limit, command.count)
        if self.stages or self.order:
            order = f" ORDER BY {', '.join(self.order)}" if self.order else ""
            self._stage(f"SELECT * FROM {self._current()}{order} LIMIT {command.count}")

    def command_dedup(self, command: Command) -> None:
        keys = [self.expr(expression).text for expression, _ in command.items]
        order = f" ORDER BY {', '.join(self.order)}" if self.order else ""
        self._stage(f"SELECT * FROM {self._current()} QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)}{order}) = 1")

    def command_display(self, command: Command) -> None:
        self.display = [alias for _, alias in command.items]
        names = []
        added = []
        for expression, alias in command.items:
            if alias not in self.columns:
                value = self.expr(expression)
                added.append(f"{value.text} AS {q(alias)}")
                self.columns[alias] = value.type
                names.append(alias)
        if added:
            self._replace_columns(added, names)

    # expressions
    def expr(self, node) -> Sql:
        if isinstance(node, Field):
            return self.field(node.name)
        if isinstance(node, Literal):
            if isinstance(node.value, str):
                return Sql(sql_string(node.value), "str")
            return Sql(repr(node.value), "num")
        if isinstance(node, Duration):
            return Sql(str(node.millis), "num")
        if isinstance(node, Regex):
            return Sql(sql_string(_python_regex(node.pattern)), "regex")
        if isinstance(node, Call):
            if node.text in self.columns and self.aggregated:
                return Sql(q(node.text), self.columns[node.text])
            return self.call(node, FUNCTIONS)
        if isinstance(node, Unary):
            if node.op == "not":
                return Sql(f"(NOT coalesce({coerce(self.expr(node.operand), 'bool')}, false))", "bool")
            return Sql(f"(-{coerce(self.expr(node.operand), 'num')})", "num")
        if isinstance(node, Membership):
            operand = self.expr(node.operand)
            items = [self.expr(item) for item in node.items]
            want = "num" if items and all(item.type == "num" for item in items) else "str"
            keyword = "NOT IN" if node.negated else "IN"
            return Sql(f"({coerce(operand, want)} {keyword} ({', '.join(coerce(item, want) for item in items)}))", "bool")
        if isinstance(node, Binary):
            return self.binary(node)
        raise MalformedQuery(f"unexpected symbol found {node.text}", self.query.find(node.text))

    def field(self, name: str) -> Sql:
        if name in self.columns:
            return Sql(q(name), self.columns[name])
        if self.aggregated or name.startswith("@"):
            return Sql("NULL", "str")
        self.uses_json = True
        path = "$" + "".join(f'."{part}"' for part in name.split("."))
        return Sql(f"json_extract_string({JSON_COLUMN}, {sql_string(path)})", "str")

    def binary(self, node: Binary) -> Sql:
        left, right = self.expr(node.left), self.expr(node.right)
        if node.op in ("and", "or"):
            return Sql(f"({coerce(left, 'bool')} {node.op.upper()} {coerce(right, 'bool')})", "bool")
        if node.op in ("like", "=~"):
            subject = coerce(left, "str")
            if right.type == "regex":
                return Sql(f"regexp_matches({subject}, {right.text})", "bool")
            return Sql(f"contains({subject}, {coerce(right, 'str')})", "bool")
        if node.op in COMPARISONS:
            want = "num" if "num" in (left.type, right.type) else "time" if "time" in (left.type, right.type) else "str"
            if want == "time" and "str" in (left.type, right.type):
                want = "str"
            return Sql(f"({coerce(left, want)} {COMPARISONS[node.op]} {coerce(right, want)})", "bool")
        return Sql(f"({coerce(left, 'num')} {ARITHMETIC[node.op]} {coerce(right, 'num')})", "num")

    def call(self, node: Call, table: dict[str, Function]) -> Sql:
        function = table.get(node.name)
        if function is None:
            kind = "aggregate" if table is AGGREGATES else "function"
            raise MalformedQuery(f"unknown {kind} {node.name} at {_where(self.query, node.start)}", node.start, node.start + len(node.name) - 1)
        fewest, most = function.arity or (len(function.params), len(function.params))
        if len(node.args) < fewest or (most is not None and len(node.args) > most):
            raise MalformedQuery(f"{node.name} takes {fewest}{'' if most == fewest else ' or more' if most is None else f' to {most}'} "
                                 f"argument(s) at {_where(self.query, node.start)}", node.start)
        args = []
        for number, arg in enumerate(node.args):
            want = function.params[min(number, len(function.params) - 1)]
            if number in function.unit_params and not isinstance(arg, (Duration, Literal)):
                raise MalformedQuery(f"{node.name} takes a period such as 5m at {_where(self.query, node.start)}", node.start)
            args.append("*" if isinstance(arg, Star) else coerce(self.expr(arg), want))
        # {rest}: the optional last argument of functions such as round(n[, digits]), when given
        optional = len(function.params) - 1
        rest = f", {args[optional]}" if function.arity and function.arity[1] == len(function.params) and len(args) > optional else ""
        text = function.template.format(*args, args=", ".join(args), rest=rest)
        returns = function.returns
        if returns == "any":
            returns = self.expr(node.args[0]).type if node.args and not isinstance(node.args[0], Star) else "str"
        return Sql(text, returns)

    def aggregate(self, node) -> Sql:
        if not isinstance(node, Call) or node.name not in AGGREGATES:
            where = node.start if isinstance(node, Call) else self.query.find(node.text)
            raise MalformedQuery(f"stats takes aggregate functions ({', '.join(AGGREGATES)}): {node.text} at "
                                 f"{_where(self.query, where)}", where)
        if node.name == "count" and (not node.args or isinstance(node.args[0], Star)):
            return Sql("count(*)", "num")
        if node.name in ("min", "max") and node.args and self.expr(node.args[0]).type == "time":
            return Sql(f"{node.name}({self.expr(node.args[0]).text})", "time")
        return self.call(node, AGGREGATES)


COMMANDS = {
    "fields": CommandRule(_parse_fields, "command_fields"),
    "filter": CommandRule(_parse_filter, "command_filter"),
    "stats": CommandRule(_parse_stats, "command_stats"),
    "sort": CommandRule(_parse_sort, "command_sort"),
    "limit": CommandRule(_parse_limit, "command_limit"),
    "parse": CommandRule(_parse_parse, "command_parse"),
    "dedup": CommandRule(_parse_fields, "command_dedup"),
    "display": CommandRule(_parse_fields, "command_display"),
}


def compile_query(query: str, base_filter: str, limit: int = RESULT_LIMIT) -> tuple[Plan, Translator]:
    """The DuckDB SQL of `query` over the events the base filter keeps; raises MalformedQuery."""
    if not query.strip():
        raise MalformedQuery("the query is empty", 0)
    commands = Parser(query).parse()
    translator = Translator(query, commands, base_filter)
    return translator.plan(limit), translator
