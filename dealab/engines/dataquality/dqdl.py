"""DQDL, the Data Quality Definition Language: a hand-written recursive-descent parser following AWS's
published grammar (github.com/awslabs/dqdl, configuration/dqdl/DataQualityDefinitionLanguage.g4 and
CommonLexerRules.g4) and its rule catalogue (configuration/rules/rules-config.json, mirrored in RULE_TYPES).

Why hand-written: the grammar is ~150 lines with one left-recursive rule (composites), and an ANTLR-generated
parser would need the `antlr4-python3-runtime` wheel plus a build step to regenerate it from the .g4 on every
grammar change; a recursive-descent parser is smaller than the generated one, needs no dependency, and reports
errors the way the Java library does ("line L:C ..." joined after "Parsing Error: ").

The parse gives data: a Ruleset of Rule / Composite entries, each Rule with its type, parameters, Condition,
where clause, threshold and labels. Evaluation (rules.py) reads nothing else."""

from __future__ import annotations

import operator
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

PARSING_ERROR_PREFIX = "Parsing Error"


class DqdlError(ValueError):
    """Invalid DQDL, worded as AWS's DQDL library words it: "Parsing Error: line 1:8 ..., Rule Type: X ..."."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__(f"{PARSING_ERROR_PREFIX}: {', '.join(messages)}" if messages else PARSING_ERROR_PREFIX)


@dataclass(frozen=True)
class RuleType:
    """One entry of rules-config.json: its parameters, what its condition compares, where it may be used."""

    name: str
    parameters: tuple[str, ...]  # names; a trailing "..." marks variadic (at least one)
    returns: tuple[str, ...]  # NUMBER, BOOLEAN, STRING, DATE, DURATION, SIZE (an _ARRAY form takes `in [...]`)
    where: bool = False
    threshold: bool = False
    analyzer_only: bool = False
    alternatives: tuple[tuple[str, ...], ...] = ()  # other parameter lists the type takes (DatasetMatch, File*)
    dynamic: bool = False  # its condition may compare with earlier evaluations' values (AWS's "Dynamic rule support")


RULE_TYPES: dict[str, RuleType] = {t.name: t for t in (
    RuleType("RowCount", (), ("NUMBER",), where=True, dynamic=True),
    RuleType("RowCountMatch", ("ReferenceDatasetAlias",), ("NUMBER",), dynamic=True),
    RuleType("ColumnCount", (), ("NUMBER",), dynamic=True),
    RuleType("Completeness", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("IsComplete", ("TargetColumn",), ("BOOLEAN",), where=True),
    RuleType("ColumnDataType", ("TargetColumn",), ("STRING",), where=True, threshold=True),
    RuleType("ColumnNamesMatchPattern", ("PatternToMatch",), ("BOOLEAN",)),
    RuleType("ColumnExists", ("TargetColumn",), ("BOOLEAN",)),
    RuleType("ColumnCorrelation", ("TargetColumn1", "TargetColumn2"), ("NUMBER",), where=True, dynamic=True),
    RuleType("Uniqueness", ("TargetColumn...",), ("NUMBER",), where=True, dynamic=True),
    RuleType("IsUnique", ("TargetColumn...",), ("BOOLEAN",), where=True),
    RuleType("Mean", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("Sum", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("StandardDeviation", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("Variance", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("Entropy", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("DistinctValuesCount", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("UniqueValueRatio", ("TargetColumn",), ("NUMBER",), where=True, dynamic=True),
    RuleType("ColumnLength", ("TargetColumn",), ("NUMBER",), where=True),
    RuleType("IsPrimaryKey", ("TargetColumn...",), ("BOOLEAN",), where=True),
    RuleType("ColumnValues", ("TargetColumn",), ("STRING_ARRAY", "NUMBER_ARRAY", "DATE_ARRAY"), where=True, threshold=True),
    RuleType("DataFreshness", ("TargetColumn",), ("DURATION_ARRAY",), where=True),
    RuleType("CustomSql", ("CustomSqlStatement",), ("NUMBER", "BOOLEAN"), threshold=True, dynamic=True),
    RuleType("ReferentialIntegrity", ("PrimaryDatasetColumns", "ReferenceDatasetColumns"), ("NUMBER",)),
    RuleType("DatasetMatch", ("ReferenceDatasetAlias", "KeyColumnMappings"), ("NUMBER",),
             alternatives=(("ReferenceDatasetAlias", "KeyColumnMappings", "MatchColumnMappings"),)),
    RuleType("SchemaMatch", ("ReferenceDatasetAlias",), ("NUMBER",)),
    RuleType("AggregateMatch", ("AggregateExpression1", "AggregateExpression2"), ("NUMBER",)),
    RuleType("DetectAnomalies", ("MetricParameter...",), ("BOOLEAN",)),
    RuleType("AllStatistics", ("TargetColumn",), ("NUMBER",), analyzer_only=True),
    RuleType("FileMatch", ("DataPath", "CompareDataPath"), ("BOOLEAN",), alternatives=(("DataPath",), ())),
    RuleType("FileUniqueness", ("DataPath",), ("NUMBER",), alternatives=((),)),
    RuleType("FileFreshness", ("DataPath",), ("DATE",), threshold=True, alternatives=((),)),
    RuleType("FileSize", ("DataPath",), ("SIZE",), threshold=True, alternatives=((),)),
)}

# ---------------------------------------------------------------- values a condition compares with


History = Sequence[float]  # a metric's values in earlier evaluations of the same context, newest first


class HistoryError(Exception):
    """A dynamic rule asks for more history than there is (index(last(3), 3))."""


@dataclass(frozen=True)
class Dynamic:
    """A number worked out from the history of the metric its rule measures: DQDL's dynamic rules."""

    of: Callable[[History], float | None]


@dataclass(frozen=True)
class Number:
    value: float | None  # None: NULL (or a dynamic number, until its history is known)
    text: str
    dynamic: Dynamic | None = None

    def resolved(self, history: History) -> Number:
        return self if self.dynamic is None else Number(self.dynamic.of(history), self.text)


def _last(history: History, count: int) -> list[float]:
    """last(k): the k newest earlier values; all there are when fewer; [0.0] when there are none, as AWS documents."""
    return list(history[:count]) or [0.0]


def _indexed(values: list[float], position: int) -> float:
    if position >= len(values):
        raise HistoryError(f"index {position} asks for the value of an evaluation {position + 1} back, and there are {len(values)}")
    return values[position]


# dynamic rule functions over last(k), as DQDL names them; std is the population standard deviation (defined for one value)
HISTORY_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "avg": statistics.fmean, "median": statistics.median, "max": max, "min": min, "sum": sum, "std": statistics.pstdev,
}
ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": lambda a, b: a / b if b else None}


def _arithmetic(symbol: str, left, right):
    """`left symbol right` over numbers, NULL (None) and dynamic numbers (worked out once the history is known)."""
    if isinstance(left, Dynamic) or isinstance(right, Dynamic):
        def of(history: History, left=left, right=right):
            return _arithmetic(symbol, left.of(history) if isinstance(left, Dynamic) else left,
                               right.of(history) if isinstance(right, Dynamic) else right)
        return Dynamic(of)
    return None if left is None or right is None else ARITHMETIC[symbol](left, right)


@dataclass(frozen=True)
class Text:
    value: str | None  # None: NULL; EMPTY and WHITESPACES_ONLY are keywords
    keyword: str = ""  # "EMPTY" / "WHITESPACES_ONLY" / "NULL"
    text: str = ""


@dataclass(frozen=True)
class DateValue:
    """A date: a literal "2024-01-31", now(), (now() - 3 days), or a time of day "9:30 PM"."""

    text: str
    literal: str | None = None  # yyyy-mm-dd
    days: float = 0.0  # offset from now() when literal is None, in days
    time_of_day: str | None = None  # HH:MM (24 h)


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # days / hours / minutes
    text: str

    @property
    def hours(self) -> float:
        return self.amount * {"days": 24.0, "hours": 1.0, "minutes": 1 / 60}[self.unit]


@dataclass(frozen=True)
class Size:
    amount: int
    unit: str
    text: str


Operand = Number | Text | DateValue | Duration | Size


@dataclass(frozen=True)
class Condition:
    """`operator` is one of between, >, >=, <, <=, =, in, matches; `negated` for not/!."""

    operator: str
    operands: tuple[Operand, ...]
    negated: bool
    text: str

    @property
    def kinds(self) -> set[str]:
        # NULL (a Number without value) stands beside numbers, strings and dates alike
        return {type(o).__name__ for o in self.operands if not (isinstance(o, Number) and o.value is None)}


@dataclass
class Rule:
    type: str
    parameters: list[str]
    condition: Condition | None
    where: str | None = None
    threshold: Condition | None = None
    tags: dict[str, Condition] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the rule as written (AWS's Rule / EvaluatedRule text)


@dataclass
class Composite:
    operator: str  # "and" / "or"
    rules: list[Rule | Composite]
    text: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Ruleset:
    rules: list[Rule | Composite]
    analyzers: list[Rule]
    metadata: dict[str, str | list[str]] = field(default_factory=dict)
    data_sources: dict[str, str | list[str]] = field(default_factory=dict)
    variables: dict[str, str | list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------- lexer (CommonLexerRules.g4)

# Literal tokens of the grammar, longest first so ">=" wins over ">"; "now()" is one token in the grammar.
PUNCTUATION = ("now()", ">=", "<=", ":", ",", "{", "}", "[", "]", "(", ")", "=", ">", "<", "!", "-", "+", "*", "/", "$")
KEYWORDS = {
    "and": "and", "AND": "and", "or": "or", "OR": "or", "of": "of", "OF": "of",
    "null": "NULL", "NULL": "NULL", "empty": "EMPTY", "EMPTY": "EMPTY",
    "whitespaces_only": "WHITESPACES_ONLY", "WHITESPACES_ONLY": "WHITESPACES_ONLY",
    "between": "between", "in": "in", "not": "not", "with": "with", "where": "where", "matches": "matches",
}
DURATION_UNITS = ("days", "hours", "minutes")
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
TOKEN = re.compile(r"""
    (?P<skip>[ \t\r\n]+|\#[^\n]*(?:\n|$))
  | (?P<string>"(?:\\["\\]|[^"\\])*")
  | (?P<number>[0-9]+\.[0-9]+|[0-9]+(?![A-Za-z_.]))
  | (?P<now>now\(\))
  | (?P<word>[A-Za-z0-9_.]+)
  | (?P<punct>>=|<=|[:,{}\[\]()=><!\-+*/$])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # string / number / word / keyword / punct / eof
    text: str
    line: int
    column: int

    @property
    def value(self) -> str:
        return KEYWORDS.get(self.text, self.text) if self.kind == "keyword" else self.text


def tokenize(source: str) -> list[Token]:
    tokens, position, line, line_start = [], 0, 1, 0
    while position < len(source):
        match = TOKEN.match(source, position)
        if match is None:
            raise DqdlError([f"line {line}:{position - line_start} token recognition error at: '{source[position]}'"])
        kind, text = match.lastgroup, match.group()
        if kind == "now":
            kind = "punct"
        elif kind == "word" and text in KEYWORDS:
            kind = "keyword"
        if kind != "skip":
            tokens.append(Token(kind, text, line, position - line_start))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = position + text.rindex("\n") + 1
        position = match.end()
    tokens.append(Token("eof", "<EOF>", line, position - line_start))
    return tokens


def unquote(text: str) -> str:
    return re.sub(r'\\(["\\])', r"\1", text[1:-1])


# ---------------------------------------------------------------- parser (DataQualityDefinitionLanguage.g4)

DATE_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_LITERAL = re.compile(r"(\d{1,2}):(\d{2})(?: (AM|PM))?")


class Parser:
    def __init__(self, source: str):
        self.source = source
        self.tokens = tokenize(source)
        self.position = 0
        self.variables: dict[str, str | list[str]] = {}

    # ------------------------------------------------------------ token helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.position]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def at(self, *values: str) -> bool:
        token = self.token
        return token.kind in ("punct", "keyword", "word") and token.value in values

    def take(self) -> Token:
        token = self.token
        self.position += 1
        return token

    def fail(self, expecting: str) -> DqdlError:
        token = self.token
        return DqdlError([f"line {token.line}:{token.column} mismatched input '{token.text}' expecting {expecting}"])

    def expect(self, *values: str) -> Token:
        if not self.at(*values):
            raise self.fail(values[0] if len(values) == 1 else "{" + ", ".join(f"'{v}'" for v in values) + "}")
        return self.take()

    def text_between(self, start: Token, end_position: int) -> str:
        end = self.tokens[end_position - 1]
        lines = self.source.split("\n")
        first = sum(len(line) + 1 for line in lines[: start.line - 1]) + start.column
        last = sum(len(line) + 1 for line in lines[: end.line - 1]) + end.column + len(end.text)
        return self.source[first:last]

    # ------------------------------------------------------------ document

    def document(self) -> Ruleset:
        metadata = self.section_dictionary("Metadata") if self.at("Metadata") else {}
        for key in metadata:
            if key != "Version":
                raise DqdlError(["Unsupported key provided in Metadata section"])
        sources = self.section_dictionary("DataSources") if self.at("DataSources") else {}
        for key in sources:
            if key not in ("Primary", "AdditionalDataSources"):
                raise DqdlError(["Unsupported key provided in Sources section"])
        while self.token.kind == "word" and self.token.text not in ("Rules", "Analyzers", "DefaultLabels") and self.peek().text == "=":
            self.variable_declaration()
        default_labels = self.labels("DefaultLabels") if self.at("DefaultLabels") else {}
        rules: list[Rule | Composite] = []
        analyzers: list[Rule] = []
        if not self.at("Rules", "Analyzers"):
            raise self.fail("{'Rules', 'Analyzers'}")
        if self.at("Rules"):
            rules = self.section("Rules", self.top_level_rule)
        if self.at("Analyzers"):
            analyzers = self.section("Analyzers", self.analyzer)
        if self.token.kind != "eof":
            token = self.token
            raise DqdlError([f"line {token.line}:{token.column} extraneous input '{token.text}' expecting <EOF>"])
        if not rules and not analyzers:
            raise DqdlError(["No rules or analyzers provided."])
        for rule in _leaves(rules):
            rule.labels = {**default_labels, **rule.labels}
        return Ruleset(rules, analyzers, metadata, sources, dict(self.variables))

    def section(self, name: str, item) -> list:
        self.expect(name)
        self.expect("=")
        self.expect("[")
        items = []
        if not self.at("]"):
            items.append(item())
            while self.at(","):
                self.take()
                items.append(item())
        self.expect("]")
        return items

    def section_dictionary(self, name: str) -> dict[str, str | list[str]]:
        self.expect(name)
        self.expect("=")
        self.expect("{")
        pairs: dict[str, str | list[str]] = {}
        while True:
            if self.token.kind != "string":
                raise self.fail("QUOTED_STRING")
            key = unquote(self.take().text)
            self.expect(":")
            if self.at("["):
                pairs[key] = self.string_list()
            elif self.token.kind == "string":
                pairs[key] = unquote(self.take().text)
            else:
                raise self.fail("{QUOTED_STRING, '['}")
            if not self.at(","):
                break
            self.take()
        self.expect("}")
        return pairs

    def string_list(self) -> list[str]:
        self.expect("[")
        values = []
        while True:
            if self.token.kind != "string":
                raise self.fail("QUOTED_STRING")
            values.append(unquote(self.take().text))
            if not self.at(","):
                break
            self.take()
        self.expect("]")
        return values

    def variable_declaration(self) -> None:
        name = self.take().text
        self.expect("=")
        if name.startswith((".", "_")):
            raise DqdlError([f"Variable name '{name}' cannot start with '.' or '_'"])
        if name in self.variables:
            raise DqdlError([f"Variable '{name}' is already defined"])
        if self.at("["):
            self.variables[name] = self.string_list()
        elif self.token.kind == "string":
            self.variables[name] = unquote(self.take().text)
        else:
            raise DqdlError([f"Missing value for variable '{name}'"])

    def labels(self, keyword: str) -> dict[str, str]:
        self.expect(keyword)
        self.expect("=")
        self.expect("[")
        labels: dict[str, str] = {}
        while self.token.kind == "string":
            key = unquote(self.take().text)
            self.expect("=")
            if self.token.kind != "string":
                raise self.fail("QUOTED_STRING")
            labels[key] = unquote(self.take().text)
            if not self.at(","):
                break
            self.take()
        self.expect("]")
        return labels

    # ------------------------------------------------------------ rules

    def top_level_rule(self) -> Rule | Composite:
        """topLevelRule: AND binds tighter than OR (its alternative comes first in the grammar)."""
        start = self.position
        alternatives = [self.conjunction()]
        while self.at("or"):
            self.take()
            alternatives.append(self.conjunction())
        if len(alternatives) == 1:
            return alternatives[0]
        return Composite("or", alternatives, self.text_between(self.tokens[start], self.position))

    def conjunction(self) -> Rule | Composite:
        start = self.position
        parts = [self.rule_term()]
        while self.at("and"):
            self.take()
            parts.append(self.rule_term())
        if len(parts) == 1:
            return parts[0]
        return Composite("and", parts, self.text_between(self.tokens[start], self.position))

    def rule_term(self) -> Rule | Composite:
        if self.at("("):
            self.take()
            inner = self.top_level_rule()
            self.expect(")")
            if self.at("labels"):
                inner.labels = self.labels("labels")
            return inner
        return self.rule()

    def parameters(self) -> list[str]:
        values = []
        while True:
            connector = self.at("of", "and") and self.peek().kind in ("string", "word") or (self.at("of", "and") and self.peek().text == "$")
            if connector:
                self.take()
            if self.token.kind == "string":
                values.append(unquote(self.take().text))
            elif self.token.kind == "word" and self.token.text not in ("labels",):
                values.append(self.take().text)
            elif self.at("$"):
                values.append(self.dereference_string())
            else:
                return values

    def dereference_string(self) -> str:
        self.expect("$")
        name = self.take().text
        if name not in self.variables:
            raise DqdlError([f"Variable '{name}' is not defined"])
        value = self.variables[name]
        if not isinstance(value, str):
            raise DqdlError([f"Variable '{name}' is not a string"])
        return value

    def rule(self) -> Rule:
        start = self.token
        if self.token.kind != "word":
            raise DqdlError([f"line {start.line}:{start.column} no viable alternative at input '{start.text}'"])
        rule_type = self.take().text
        parameters = self.parameters()
        condition = self.condition() if self.at_condition() else None
        where = None
        if self.at("where"):
            self.take()
            if self.token.kind != "string":
                raise self.fail("QUOTED_STRING")
            where = unquote(self.take().text)
        labels = self.labels("labels") if self.at("labels") else {}
        tags: dict[str, Condition] = {}
        while self.at("with"):
            self.take()
            if self.token.kind != "word":
                raise self.fail("IDENTIFIER")
            tag = self.take().text
            if not self.at_condition():
                raise self.fail("a condition")
            tags[tag] = self.condition()
        rule = Rule(rule_type, parameters, condition, where, tags.pop("threshold", None), tags, labels,
                    self.text_between(start, self.position))
        problem = check_rule(rule, analyzer=False)
        if problem:  # AWS's words, then where: the library names no position for these, a learner needs one
            raise DqdlError([f"{problem} (line {start.line}:{start.column}: {rule.text})"])
        return rule

    def analyzer(self) -> Rule:
        start = self.token
        if self.token.kind != "word":
            raise DqdlError([f"line {start.line}:{start.column} no viable alternative at input '{start.text}'"])
        analyzer_type = self.take().text
        parameters = self.parameters()
        rule = Rule(analyzer_type, parameters, None, text=self.text_between(start, self.position))
        known = RULE_TYPES.get(analyzer_type)
        if known is None:
            raise DqdlError([f"Analyzer Type: {analyzer_type} is not valid"])
        if known.returns == ("BOOLEAN",):
            raise DqdlError([f"Analyzer Type: {analyzer_type} is not supported"])
        problem = _parameter_problem(known, parameters)
        if problem:
            raise DqdlError([f"{problem}: {analyzer_type}"])
        return rule

    # ------------------------------------------------------------ conditions

    def at_condition(self) -> bool:
        return self.at("between", ">", ">=", "<", "<=", "=", "!", "in", "matches") or (
            self.at("not") and self.peek().text in ("between", "in", "matches"))

    def condition(self) -> Condition:
        start = self.token
        negated = False
        if self.at("not", "!"):
            negated = True
            self.take()
        operator = self.expect("between", ">", ">=", "<", "<=", "=", "in", "matches").value
        if negated and operator in (">", ">=", "<", "<="):
            raise self.fail("{'between', 'in', 'matches'}")
        if operator == "between":
            low = self.operand()
            self.expect("and")
            operands = (low, self.operand())
        elif operator == "in":
            operands = self.operand_list()
        elif operator == "matches":
            if self.token.kind != "string":
                raise self.fail("QUOTED_STRING")
            operands = (Text(unquote(self.take().text)),)
        else:
            operands = (self.operand(),)
        return Condition(operator, operands, negated, self.text_between(start, self.position))

    def operand_list(self) -> tuple[Operand, ...]:
        if self.at("$"):
            self.take()
            name = self.take().text
            if name not in self.variables:
                raise DqdlError([f"Variable '{name}' is not defined"])
            value = self.variables[name]
            return tuple(Text(v, text=f'"{v}"') for v in ([value] if isinstance(value, str) else value))
        self.expect("[")
        values = [self.operand()]
        while self.at(","):
            self.take()
            values.append(self.operand())
        self.expect("]")
        return tuple(values)

    def operand(self) -> Operand:
        token = self.token
        if token.kind == "string":
            self.take()
            value = unquote(token.text)
            if DATE_LITERAL.fullmatch(value):
                return DateValue(token.text, literal=value)
            time = TIME_LITERAL.fullmatch(value)
            if time and (time.group(3) or len(time.group(1)) == 2):
                hour = int(time.group(1)) % 12 + (12 if time.group(3) == "PM" else 0) if time.group(3) else int(time.group(1))
                return DateValue(token.text, time_of_day=f"{hour:02d}:{time.group(2)}")
            return Text(value, text=token.text)
        if self.at("EMPTY", "WHITESPACES_ONLY"):
            self.take()
            return Text(None, keyword=token.value, text=token.text)
        if self.at("$"):
            return Text(self.dereference_string(), text=token.text)
        if self.at("now()"):
            self.take()
            return DateValue("now()")
        if self.at("(") and self.peek().text == "now()":
            self.take()
            self.take()
            sign = self.expect("-", "+").text
            duration = self.unit_amount()
            self.expect(")")
            if not isinstance(duration, Duration):
                raise DqdlError([f"line {token.line}:{token.column} no viable alternative at input '{duration.text}'"])
            days = duration.hours / 24 * (-1 if sign == "-" else 1)
            return DateValue(self.text_between(token, self.position), days=days)
        if token.kind == "number" and self.peek().text in DURATION_UNITS + SIZE_UNITS:
            return self.unit_amount()
        return self.number()

    def unit_amount(self) -> Duration | Size:
        amount = self.token
        if amount.kind != "number" or "." in amount.text:
            raise self.fail("INT")
        self.take()
        unit = self.expect(*DURATION_UNITS, *SIZE_UNITS).text
        text = f"{amount.text} {unit}"
        return Duration(int(amount.text), unit, text) if unit in DURATION_UNITS else Size(int(amount.text), unit, text)

    def number(self) -> Number:
        """number: arithmetic over atomic numbers, parentheses and NULL. A function call (a dynamic rule over
        earlier evaluations' metrics, such as avg(last(5))) is refused where it stands."""
        start = self.token
        value = self.number_term()
        while self.at("+", "-"):
            symbol = self.take().text
            value = _arithmetic(symbol, value, self.number_term())
        text = self.text_between(start, self.position)
        return Number(None, text, value) if isinstance(value, Dynamic) else Number(value, text)

    def number_term(self) -> float | Dynamic | None:
        value = self.number_atom()
        while self.at("*", "/"):
            symbol = self.take().text
            value = _arithmetic(symbol, value, self.number_atom())
        return value

    def number_atom(self) -> float | Dynamic | None:
        token = self.token
        if self.at("-"):
            self.take()
            return _arithmetic("*", -1.0, self.number_atom())
        if self.at("("):
            self.take()
            inner = self.number()
            self.expect(")")
            return inner.dynamic or inner.value
        if self.at("NULL"):
            self.take()
            return None
        if token.kind == "number":
            self.take()
            return float(token.text)
        if token.kind == "word" and self.peek().text == "(":
            return self.dynamic_function()
        raise self.fail("a number")

    def dynamic_function(self) -> Dynamic:
        """last(), last(k) reduced by avg/median/max/min/sum/std, index(last(k), i), abs(number)."""
        token = self.take()
        name = token.text
        self.expect("(")
        if name == "last":
            count = self.history_count(token)
            if count != 1:
                raise DqdlError([f"line {token.line}:{token.column} last({count}) gives up to {count} values: reduce them with "
                                 "avg, median, max, min, sum or std, or pick one with index(last(k), i)"])
            return Dynamic(lambda history: _last(history, 1)[0])
        if name in HISTORY_AGGREGATES:
            count = self.history_argument()
            self.expect(")")
            return Dynamic(lambda history: HISTORY_AGGREGATES[name](_last(history, count)))
        if name == "index":
            count = self.history_argument()
            self.expect(",")
            position = self.token
            if position.kind != "number" or "." in position.text:
                raise self.fail("INT")
            self.take()
            self.expect(")")
            return Dynamic(lambda history: _indexed(_last(history, count), int(position.text)))
        if name == "abs":
            inner = self.number()
            self.expect(")")
            return Dynamic(lambda history: None if (value := inner.resolved(history).value) is None else abs(value))
        raise DqdlError([f"line {token.line}:{token.column} '{name}' is not a dynamic rule function "
                         "(last, avg, median, max, min, sum, std, index, abs)"])

    def history_argument(self) -> int:
        """The last(k) a dynamic rule function reduces; its k."""
        token = self.token
        if not (self.at("last") and self.peek().text == "("):
            raise self.fail("last(k)")
        self.take()
        self.expect("(")
        return self.history_count(token)

    def history_count(self, last: Token) -> int:
        """The k of last(k) (1 when left out), up to its closing parenthesis."""
        count = 1
        if self.token.kind == "number":
            if "." in self.token.text or int(self.token.text) < 1:
                raise DqdlError([f"line {last.line}:{last.column} last(k) takes a natural number k >= 1"])
            count = int(self.take().text)
        self.expect(")")
        return count


def _leaves(rules: list[Rule | Composite]) -> list[Rule]:
    found: list[Rule] = []
    for entry in rules:
        found += _leaves(entry.rules) if isinstance(entry, Composite) else [entry]
    return found


def _parameter_problem(rule_type: RuleType, parameters: list[str]) -> str | None:
    for expected in (rule_type.parameters, *rule_type.alternatives):
        if expected and expected[-1].endswith("..."):
            if len(parameters) >= len(expected):
                return None
            continue
        if len(expected) == len(parameters):
            return None
    if rule_type.parameters and rule_type.parameters[-1].endswith("..."):
        return "VarArgs needs at least one parameter"
    return "Unexpected number of parameters"


# which condition operand kinds each return type takes
OPERANDS_FOR_RETURN = {
    "NUMBER": {"Number"}, "NUMBER_ARRAY": {"Number"},
    "STRING": {"Text"}, "STRING_ARRAY": {"Text"},
    "DATE": {"DateValue"}, "DATE_ARRAY": {"DateValue"},
    "DURATION": {"Duration"}, "DURATION_ARRAY": {"Duration"},
    "SIZE": {"Size"}, "SIZE_ARRAY": {"Size"},
}


def _condition_fits(returns: str, condition: Condition) -> bool:
    kinds = condition.kinds
    if condition.operator == "matches":
        return returns.startswith("STRING")
    if condition.operator == "in" and not returns.endswith("_ARRAY") and returns != "NUMBER":
        return False
    if returns.startswith("STRING") and condition.operator not in ("=", "in"):
        return False
    # a quoted string of digits compared with a string column, or NULL among dates: Text stands for all
    allowed = OPERANDS_FOR_RETURN[returns] | ({"Text"} if returns.startswith("DATE") else set())
    return kinds <= allowed


def is_dynamic(condition: Condition | None) -> bool:
    return condition is not None and any(isinstance(o, Number) and o.dynamic is not None for o in condition.operands)


def check_rule(rule: Rule, analyzer: bool) -> str | None:
    """AWS's semantic checks of one rule (DQDLParserListener), worded as the library words them."""
    known = RULE_TYPES.get(rule.type)
    if known is None:
        return f"Rule Type: {rule.type} is not valid"
    if known.analyzer_only and not analyzer:
        return f"Analyzer Type: {rule.type} is not supported in rules section"
    problem = _parameter_problem(known, rule.parameters)
    if problem:
        return f"{problem}: {rule.type}"
    if rule.where is not None:
        if not rule.where.strip():
            return f"Empty where condition provided for rule type: {rule.type}"
        if not known.where:
            return f"Where clause is not supported for rule type: {rule.type}"
    if rule.threshold is not None:
        if not known.threshold:
            return f"Threshold condition not supported for rule type: {rule.type}"
        if not rule.threshold.kinds <= {"Number"} or rule.threshold.operator in ("in", "matches") or is_dynamic(rule.threshold):
            return f"Unable to parse threshold condition provided for rule type: {rule.type}"
    if rule.condition is not None and is_dynamic(rule.condition) and not known.dynamic:
        return f"Dynamic rules are not supported for rule type: {rule.type}"
    if known.returns == ("BOOLEAN",):
        if rule.condition is not None:
            return f"Unexpected condition for rule of type {rule.type} with boolean return type"
        return None
    if rule.condition is None:
        if rule.type == "CustomSql":
            return None  # CustomSql without a condition judges the rows its query returns
        return f"Error while parsing condition for rule with rule type: {rule.type}"
    if not any(_condition_fits(returns, rule.condition) for returns in known.returns):
        return f"Error while parsing condition for rule with rule type: {rule.type}"
    return None


def parse(source: str) -> Ruleset:
    """The ruleset, or DqdlError worded as AWS's DQDL library words it."""
    if not source or not source.strip():
        raise DqdlError(["No rules or analyzers provided."])
    return Parser(source).document()

