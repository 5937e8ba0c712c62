"""DQDL evaluated on DuckDB: rule type → evaluator (RULES), one evaluator for catalog-table runs and for
EvaluateDataQuality in job scripts (there the frame arrives as Arrow).

A rule's work is split in two so a whole ruleset costs few scans: `aggregates` names the SQL aggregates it
needs over the primary dataset (a where clause becomes the aggregate's FILTER), and all of them run in ONE
scan; `judge` turns what came back (plus any query of its own: frequencies, references, custom SQL) into
metrics and an outcome. Conditions compare as the DQDL library compares (`between` is exclusive). Metric names
and failure reasons are AWS's ("Column.id.Completeness", "Value: 0.82 does not meet the constraint
requirement!").

Learner SQL (where clauses, CustomSql, AggregateMatch expressions) is parsed with sqlglot, checked by the
Athena sandbox's function check, and may name only the datasets of the run; the database itself is locked
down (no host files), so nothing reaches the host."""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp

from dealab.engines.athena import sandbox
from dealab.engines.athena.errors import QueryError
from dealab.engines.dataquality.dqdl import (Composite, Condition, DateValue, Duration, History, HistoryError, Number, Rule, Ruleset,
                                              Text, is_dynamic)

PRIMARY = "primary"
FAILED_CONSTRAINT = "Value: {value} does not meet the constraint requirement!"
NOT_SUPPORTED = "{rule} is not supported in dealab: {why}"
SQL_DIALECT = "spark"  # Glue Data Quality's SQL (where clauses, CustomSql) is Spark SQL
NO_HISTORY = ("Dynamic rules are supported in AWS Glue ETL jobs (EvaluateDataQuality) only: a Data Catalog evaluation "
              "run keeps no history to compare with")


class RuleError(Exception):
    """The rule cannot be evaluated (a column that does not exist, bad SQL): its outcome is Error."""


@dataclass
class RuleResult:
    name: str
    rule: str
    outcome: str  # Passed / Failed / Error
    failure_reason: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    row_check: str | None = None  # SQL true for the rows that pass (row-level outcomes)
    where: str | None = None  # SQL true for the rows the rule looks at
    evaluated_rule: str | None = None  # a dynamic rule with the values its history gave (AWS's EvaluatedRule)


@dataclass
class Evaluation:
    rules: list[RuleResult]
    analyzers: list[RuleResult]
    row_count: int

    @property
    def score(self) -> float:
        return sum(r.outcome == "Passed" for r in self.rules) / len(self.rules) if self.rules else 1.0


def java_double(value: float | None) -> str:
    """A number as the JVM prints a double (AWS's messages come from Scala): 1 → 1.0."""
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return repr(float(value))


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ---------------------------------------------------------------- the data a run evaluates


class Datasets:
    """The primary dataset and the reference datasets (AdditionalDataSources) as DuckDB views."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, relations: dict[str, str], now: datetime.datetime):
        self.connection = connection
        self.now = now.replace(tzinfo=None) if now.tzinfo is None else now.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        self.views: dict[str, str] = {}
        for number, (alias, relation) in enumerate(relations.items()):
            view = f"__dq_{number}"
            connection.execute(f"CREATE OR REPLACE TEMPORARY VIEW {view} AS {relation}")
            self.views[alias.lower()] = view
        self._columns: dict[str, dict[str, str]] = {}

    def view(self, alias: str) -> str:
        found = self.views.get(alias.lower())
        if found is None:
            raise RuleError(f"Reference dataset {alias} is not among the run's data sources (AdditionalDataSources)")
        return found

    def columns(self, alias: str = PRIMARY) -> dict[str, str]:
        """column name → DuckDB type, in order."""
        if alias not in self._columns:
            rows = self.connection.execute(f"DESCRIBE SELECT * FROM {self.view(alias)}").fetchall()
            self._columns[alias] = {row[0]: row[1] for row in rows}
        return self._columns[alias]

    def column(self, name: str, alias: str = PRIMARY) -> str:
        """The column's quoted name (matched case-insensitively, as Spark resolves names)."""
        for column in self.columns(alias):
            if column.lower() == name.lower():
                return ident(column)
        raise RuleError(f"Column {name} does not exist")

    def value(self, sql: str):
        return self.connection.execute(sql).fetchone()[0]

    def sql(self, text: str, aliases: bool = True, expression: bool = False) -> str:
        """Learner SQL (Spark dialect) as DuckDB SQL over this run's views only, after the sandbox's check."""
        try:
            parsed = sqlglot.parse_one(text, read=SQL_DIALECT) if not expression else sqlglot.parse_one(f"SELECT {text}", read=SQL_DIALECT)
            sandbox.check(parsed, text)
        except sqlglot.errors.ParseError as error:
            raise RuleError(f"Invalid SQL: {str(error).splitlines()[0]}") from None
        except QueryError as error:
            raise RuleError(error.reason) from None
        for table in list(parsed.find_all(exp.Table)):
            if not table.name:
                continue
            if table.db or not aliases:
                raise RuleError(f"Table or view not found: {table.sql(dialect=SQL_DIALECT)}")
            table.set("this", exp.to_identifier(self.view(table.name)))
        rendered = parsed.sql(dialect="duckdb")
        return rendered[len("SELECT "):] if expression else rendered


# ---------------------------------------------------------------- conditions


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (datetime.date, datetime.datetime)):
        raise RuleError("a date cannot be compared with a number")
    return float(value)


def compare(value: float | None, condition: Condition) -> bool:
    """A metric against a number condition, as DQDL's NumberBasedCondition evaluates it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    operands = [o.value for o in condition.operands if isinstance(o, Number)]
    if len(operands) != len(condition.operands) or any(o is None for o in operands):
        return False
    outcome = {
        "between": lambda: operands[0] < value < operands[1],
        ">": lambda: value > operands[0],
        ">=": lambda: value >= operands[0],
        "<": lambda: value < operands[0],
        "<=": lambda: value <= operands[0],
        "=": lambda: math.isclose(value, operands[0], rel_tol=1e-9, abs_tol=1e-9),
        "in": lambda: any(math.isclose(value, o, rel_tol=1e-9, abs_tol=1e-9) for o in operands),
    }[condition.operator]()
    return not outcome if condition.negated else outcome


def _date_sql(operand, datasets: Datasets) -> str:
    if isinstance(operand, Text):
        if operand.value is None:
            return "NULL"
        return f"TRY_CAST({literal(operand.value)} AS TIMESTAMP)"
    if operand.literal:
        return f"TIMESTAMP {literal(operand.literal)}"
    if operand.time_of_day:
        return f"(CAST(DATE {literal(datasets.now.date().isoformat())} AS TIMESTAMP) + INTERVAL {literal(operand.time_of_day)} HOUR TO MINUTE)"
    moment = datasets.now + datetime.timedelta(days=operand.days)
    return f"TIMESTAMP {literal(moment.isoformat(sep=' '))}"


def _operand_sql(operand, datasets: Datasets, kind: str) -> str:
    if kind == "date":
        return _date_sql(operand, datasets)
    if isinstance(operand, Number):
        return "NULL" if operand.value is None else f"CAST('{operand.value!r}' AS DOUBLE)"
    if isinstance(operand, Duration):
        return repr(operand.hours)
    return "NULL" if operand.value is None else literal(operand.value)


def row_condition(subject: str, condition: Condition, datasets: Datasets, kind: str) -> str:
    """SQL true where `subject` meets the condition (kind: number / text / date); a NULL never meets a
    comparison, and is in a set only when NULL is in it."""
    operator = condition.operator
    if operator == "matches":
        test = f"regexp_full_match(CAST({subject} AS VARCHAR), {literal(condition.operands[0].value)})"
    elif operator == "in":
        keywords = {o.keyword for o in condition.operands if isinstance(o, Text) and o.keyword}
        values = [o for o in condition.operands if not (isinstance(o, Text) and o.keyword) and getattr(o, "value", "") is not None]
        nulls = any(getattr(o, "value", "") is None and not getattr(o, "keyword", "") for o in condition.operands)
        parts = [f"{subject} IN ({', '.join(_operand_sql(o, datasets, kind) for o in values)})"] if values else []
        parts += [f"{subject} IS NULL"] if nulls else []
        parts += [f"{subject} = ''"] if "EMPTY" in keywords else []
        parts += [f"(length({subject}) > 0 AND trim({subject}) = '')"] if "WHITESPACES_ONLY" in keywords else []
        test = "(" + " OR ".join(parts or ["false"]) + ")"
    elif operator == "=" and isinstance(condition.operands[0], Text) and condition.operands[0].keyword:
        test = {"EMPTY": f"{subject} = ''", "WHITESPACES_ONLY": f"(length({subject}) > 0 AND trim({subject}) = '')",
                "NULL": f"{subject} IS NULL"}[condition.operands[0].keyword]
    else:
        operands = [_operand_sql(o, datasets, kind) for o in condition.operands]
        if "NULL" in operands and operator == "=":
            test = f"{subject} IS NULL"
        elif operator == "between":
            test = f"({subject} > {operands[0]} AND {subject} < {operands[1]})"
        else:
            test = f"{subject} {operator} {operands[0]}"
    test = f"coalesce({test}, false)"
    return f"NOT {test}" if condition.negated else test


# ---------------------------------------------------------------- judgement helpers


@dataclass
class Judgement:
    metrics: dict[str, float]
    passed: bool
    reason: str | None = None
    row_check: str | None = None


def _judge_number(rule: Rule, metric: str, value) -> Judgement:
    number = _number(value)
    metrics = {metric: number} if number is not None else {}
    passed = compare(number, rule.condition)
    return Judgement(metrics, passed, None if passed else FAILED_CONSTRAINT.format(value=java_double(number)))


def _judge_ratio(metrics: dict[str, float], ratio, threshold: Condition | None, row_check: str | None = None) -> Judgement:
    """A compliance ratio: 1.0 is required, unless a threshold says otherwise."""
    ratio = _number(ratio)
    passed = compare(ratio, threshold) if threshold else ratio is not None and math.isclose(ratio, 1.0)
    return Judgement(metrics, passed, None if passed else FAILED_CONSTRAINT.format(value=java_double(ratio)), row_check)


def _column_name(rule: Rule, index: int = 0) -> str:
    return rule.parameters[index]


def _where(rule: Rule, datasets: Datasets) -> str | None:
    return datasets.sql(rule.where, aliases=False, expression=True) if rule.where else None


def _filtered(aggregate: str, where: str | None) -> str:
    return f"{aggregate} FILTER (WHERE {where})" if where else aggregate


# ---------------------------------------------------------------- rule types


@dataclass(frozen=True)
class Evaluator:
    # rule, datasets → {key: SQL aggregate over the primary dataset}; run together in one scan
    aggregates: Callable[[Rule, Datasets], dict[str, str]]
    # rule, {key: value}, datasets → judgement (may run queries of its own)
    judge: Callable[[Rule, dict, Datasets], Judgement]


def _no_aggregates(rule: Rule, datasets: Datasets) -> dict[str, str]:
    return {}


def _statistic(metric: str, sql: Callable[[str], str], numeric: bool = True) -> Evaluator:
    """Mean, Sum, ... : one aggregate of the column, compared with the condition."""
    def aggregates(rule, datasets):
        column = datasets.column(_column_name(rule))
        if numeric and not _is_numeric(datasets, rule.parameters[0]):
            raise RuleError(f"Column {rule.parameters[0]} is not numeric")
        return {"value": _filtered(sql(column), _where(rule, datasets))}

    def judge(rule, got, datasets):
        return _judge_number(rule, f"Column.{rule.parameters[0]}.{metric}", got["value"])

    return Evaluator(aggregates, judge)


def _is_numeric(datasets: Datasets, column: str) -> bool:
    kind = next((t for c, t in datasets.columns().items() if c.lower() == column.lower()), "")
    return bool(re.match(r"(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL)", kind))


def _completeness(boolean: bool) -> Evaluator:
    def aggregates(rule, datasets):
        column = datasets.column(rule.parameters[0])
        where = _where(rule, datasets)
        return {"complete": _filtered(f"count({column})", where), "rows": _filtered("count(*)", where)}

    def judge(rule, got, datasets):
        ratio = got["complete"] / got["rows"] if got["rows"] else 1.0
        metrics = {f"Column.{rule.parameters[0]}.Completeness": ratio}
        row_check = f"{datasets.column(rule.parameters[0])} IS NOT NULL"
        if boolean:
            return _judge_ratio(metrics, ratio, None, row_check)
        judgement = _judge_number(rule, f"Column.{rule.parameters[0]}.Completeness", ratio)
        judgement.row_check = row_check
        return judgement

    return Evaluator(aggregates, judge)


def _frequencies(rule: Rule, datasets: Datasets, columns: list[str]) -> dict[str, float]:
    """Deequ's frequency statistics over the (non-null) value combinations of the columns."""
    quoted = [datasets.column(c) for c in columns]
    where = _where(rule, datasets)
    filters = " AND ".join([f"{c} IS NOT NULL" for c in quoted] + ([f"({where})"] if where else []))
    view = datasets.view(PRIMARY)
    row = datasets.connection.execute(
        f"WITH counted AS (SELECT count(*) AS n FROM {view} WHERE {filters} GROUP BY {', '.join(quoted)}), "
        f"total AS (SELECT count(*) AS rows FROM {view}{' WHERE ' + where if where else ''}) "
        "SELECT (SELECT rows FROM total), count(*) FILTER (WHERE n = 1), count(*), "
        "sum(-(CAST(n AS DOUBLE) / (SELECT rows FROM total)) * ln(CAST(n AS DOUBLE) / (SELECT rows FROM total))) "
        "FROM counted").fetchone()  # CAST: the Athena setup makes integer division integral, as Trino does
    rows, unique, distinct, entropy = row
    return {"rows": rows, "unique": unique, "distinct": distinct, "entropy": entropy or 0.0}


def _uniqueness(kind: str) -> Evaluator:
    def judge(rule, got, datasets):
        columns = rule.parameters
        name = ",".join(columns)
        stats = _frequencies(rule, datasets, columns)
        uniqueness = stats["unique"] / stats["rows"] if stats["rows"] else 1.0
        if kind == "UniqueValueRatio":
            ratio = stats["unique"] / stats["distinct"] if stats["distinct"] else 0.0
            return _judge_number(rule, f"Column.{name}.UniqueValueRatio", ratio)
        row_check = _unique_row_check(rule, datasets)
        if kind == "Uniqueness":
            judgement = _judge_number(rule, f"Column.{name}.Uniqueness", uniqueness)
            judgement.row_check = row_check
            return judgement
        metrics = {f"Column.{name}.Uniqueness": uniqueness}
        if kind == "IsPrimaryKey":
            quoted = [datasets.column(c) for c in columns]
            complete = datasets.value(f"SELECT avg(CASE WHEN {' AND '.join(q + ' IS NOT NULL' for q in quoted)} THEN 1.0 ELSE 0.0 END) "
                                      f"FROM {datasets.view(PRIMARY)}")
            metrics[f"Column.{name}.Completeness"] = complete if complete is not None else 1.0
            ratio = min(uniqueness, metrics[f"Column.{name}.Completeness"])
            return _judge_ratio(metrics, ratio, None, row_check)
        return _judge_ratio(metrics, uniqueness, None, row_check)

    return Evaluator(_no_aggregates, judge)


def _unique_row_check(rule: Rule, datasets: Datasets) -> str:
    """A row passes when its value combination occurs once among the rows the rule looks at; a null fails, as
    the metric counts it (Deequ's uniqueness: unique combinations over all rows)."""
    quoted = [datasets.column(c) for c in rule.parameters]
    where = _where(rule, datasets)
    count = f"count(*){f' FILTER (WHERE {where})' if where else ''} OVER (PARTITION BY {', '.join(quoted)})"
    return " AND ".join([f"{c} IS NOT NULL" for c in quoted] + [f"{count} = 1"])


def _entropy_judge(rule, got, datasets):
    return _judge_number(rule, f"Column.{rule.parameters[0]}.Entropy", _frequencies(rule, datasets, rule.parameters)["entropy"])


def _distinct_judge(rule, got, datasets):
    return _judge_number(rule, f"Column.{rule.parameters[0]}.DistinctValuesCount", _frequencies(rule, datasets, rule.parameters)["distinct"])


def _value_kind(rule: Rule, datasets: Datasets) -> str:
    if any(isinstance(o, DateValue) for o in rule.condition.operands):
        return "date"
    if all(isinstance(o, Number) for o in rule.condition.operands):
        return "number"
    return "text"


def _column_values_check(rule: Rule, datasets: Datasets) -> str:
    column = datasets.column(rule.parameters[0])
    kind = _value_kind(rule, datasets)
    subject = {"date": f"TRY_CAST({column} AS TIMESTAMP)", "number": f"TRY_CAST({column} AS DOUBLE)",
               "text": f"CAST({column} AS VARCHAR)"}[kind]
    return row_condition(subject, rule.condition, datasets, kind)


def _compliance(check: Callable[[Rule, Datasets], str], metric: str,
                extra: Callable[[Rule, Datasets], dict[str, str]] | None = None) -> Evaluator:
    """ColumnValues, ColumnLength, DataFreshness, ColumnDataType: the share of rows meeting a row check."""
    def aggregates(rule, datasets):
        where = _where(rule, datasets)
        passing = f"({where}) AND {check(rule, datasets)}" if where else check(rule, datasets)
        found = {"passing": f"count(*) FILTER (WHERE {passing})", "rows": _filtered("count(*)", where)}
        return {**found, **(extra(rule, datasets) if extra else {})}

    def judge(rule, got, datasets):
        ratio = got["passing"] / got["rows"] if got["rows"] else 1.0
        metrics = {f"Column.{rule.parameters[0]}.{metric}": ratio}
        metrics.update({key: _number(value) for key, value in got.items() if key.startswith("Column.") and value is not None})
        return _judge_ratio(metrics, ratio, rule.threshold, check(rule, datasets))

    return Evaluator(aggregates, judge)


def _length_check(rule: Rule, datasets: Datasets) -> str:
    return row_condition(f"length(CAST({datasets.column(rule.parameters[0])} AS VARCHAR))", rule.condition, datasets, "number")


def _length_extremes(rule: Rule, datasets: Datasets) -> dict[str, str]:
    length = f"length(CAST({datasets.column(rule.parameters[0])} AS VARCHAR))"
    where = _where(rule, datasets)
    return {f"Column.{rule.parameters[0]}.MaximumLength": _filtered(f"max({length})", where),
            f"Column.{rule.parameters[0]}.MinimumLength": _filtered(f"min({length})", where)}


def _freshness_check(rule: Rule, datasets: Datasets) -> str:
    column = datasets.column(rule.parameters[0])
    age_hours = f"(epoch(TIMESTAMP {literal(datasets.now.isoformat(sep=' '))}) - epoch(TRY_CAST({column} AS TIMESTAMP))) / 3600.0"
    return row_condition(age_hours, rule.condition, datasets, "number")


# ColumnDataType's names → the DuckDB type a value must cast to
DATA_TYPES = {"BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP", "INTEGER": "INTEGER", "INT": "INTEGER",
              "LONG": "BIGINT", "BIGINT": "BIGINT", "SHORT": "SMALLINT", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT",
              "DECIMAL": "DECIMAL(38, 10)", "STRING": "VARCHAR"}


def _data_type_check(rule: Rule, datasets: Datasets) -> str:
    column = datasets.column(rule.parameters[0])
    wanted = [o.value.upper() for o in rule.condition.operands if isinstance(o, Text) and o.value]
    unknown = [w for w in wanted if w not in DATA_TYPES]
    if unknown:
        raise RuleError(f"Unsupported data type: {unknown[0]}")
    test = " OR ".join(f"TRY_CAST(CAST({column} AS VARCHAR) AS {DATA_TYPES[w]}) IS NOT NULL" for w in wanted)
    passing = f"({column} IS NULL OR {test})"
    return f"NOT {passing}" if rule.condition.negated else passing


def _row_count(rule, got, datasets):
    return _judge_number(rule, "Dataset.*.RowCount", got["rows"])


def _row_count_aggregates(rule, datasets):
    return {"rows": _filtered("count(*)", _where(rule, datasets))}


def _column_count(rule, got, datasets):
    return _judge_number(rule, "Dataset.*.ColumnCount", len(datasets.columns()))


def _column_exists(rule, got, datasets):
    exists = any(c.lower() == rule.parameters[0].lower() for c in datasets.columns())
    return Judgement({}, exists, None if exists else f"Column {rule.parameters[0]} does not exist")


def _column_names_match(rule, got, datasets):
    pattern = re.compile(rule.parameters[0])
    names = list(datasets.columns())
    matching = [n for n in names if pattern.fullmatch(n)]
    ratio = len(matching) / len(names) if names else 1.0
    passed = len(matching) == len(names)
    reason = None if passed else f"Columns that do not match the pattern: {', '.join(n for n in names if n not in matching)}"
    return Judgement({"Dataset.*.ColumnNamesPatternMatchRatio": ratio}, passed, reason)


def _correlation(rule, got, datasets):
    return _judge_number(rule, f"Multicolumn.{rule.parameters[0]},{rule.parameters[1]}.ColumnCorrelation", got["value"])


def _correlation_aggregates(rule, datasets):
    first, second = (datasets.column(c) for c in rule.parameters)
    return {"value": _filtered(f"corr(CAST({first} AS DOUBLE), CAST({second} AS DOUBLE))", _where(rule, datasets))}


def _custom_sql(rule, got, datasets):
    query = datasets.sql(rule.parameters[0])
    try:
        described = datasets.connection.execute(f"DESCRIBE {query}").fetchall()
    except duckdb.Error as error:
        raise RuleError(f"Custom SQL failed: {str(error).splitlines()[0]}") from None
    if len(described) != 1:
        raise RuleError("Custom SQL must return a single column")
    if rule.condition is not None:
        rows = datasets.connection.execute(f"SELECT * FROM ({query}) LIMIT 2").fetchall()
        if len(rows) != 1:
            raise RuleError("Custom SQL with a condition must return a single value")
        return _judge_number(rule, "Dataset.*.CustomSQL", rows[0][0])
    # no condition: the query picks the rows that pass; all of them must (or the threshold's share)
    returned = datasets.value(f"SELECT count(*) FROM ({query})")
    total = datasets.value(f"SELECT count(*) FROM {datasets.view(PRIMARY)}")
    ratio = returned / total if total else 1.0
    return _judge_ratio({"Dataset.*.CustomSQL.Compliance": ratio}, ratio, rule.threshold)


def _column_list(text: str) -> list[str]:
    text = text.strip()
    return [c.strip() for c in text[1:-1].split(",")] if text.startswith("{") else [text]


def _referential_integrity(rule, got, datasets):
    primary = _column_list(rule.parameters[0])
    alias, _, columns = rule.parameters[1].partition(".")
    reference = _column_list(columns)
    if len(primary) != len(reference):
        raise RuleError("ReferentialIntegrity needs as many reference columns as primary columns")
    left = [datasets.column(c) for c in primary]
    right = [datasets.column(c, alias) for c in reference]
    on = " AND ".join(f"p.{l} = r.{r}" for l, r in zip(left, right))
    ratio = datasets.value(
        f"SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM {datasets.view(alias)} r WHERE {on}) THEN 1.0 ELSE 0.0 END) "
        f"FROM {datasets.view(PRIMARY)} p")
    ratio = 1.0 if ratio is None else ratio
    judgement = _judge_number(rule, f"Column.{alias}.ReferentialIntegrity", ratio)
    # row-level: the primary view is the outer query's table in row_outcomes_sql, named to reach past the reference's columns
    outer = datasets.view(PRIMARY)
    judgement.row_check = (f"EXISTS (SELECT 1 FROM {datasets.view(alias)} r WHERE "
                           + " AND ".join(f"r.{r} = {outer}.{l}" for l, r in zip(left, right)) + ")")
    return judgement


def _mappings(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        left, arrow, right = item.partition("->")
        pairs.append((left.strip(), (right if arrow else left).strip()))
    return pairs


def _dataset_match(rule, got, datasets):
    alias = rule.parameters[0]
    keys = _mappings(rule.parameters[1])
    if len(rule.parameters) > 2:
        matches = _mappings(rule.parameters[2])
    else:
        key_names = {k.lower() for k, _ in keys}
        matches = [(c, c) for c in datasets.columns() if c.lower() not in key_names]
    on = " AND ".join(f"p.{datasets.column(l)} = r.{datasets.column(r, alias)}" for l, r in keys)
    same = " AND ".join(f"p.{datasets.column(l)} IS NOT DISTINCT FROM r.{datasets.column(r, alias)}" for l, r in matches) or "true"
    ratio = datasets.value(
        f"SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM {datasets.view(alias)} r WHERE {on} AND {same}) THEN 1.0 ELSE 0.0 END) "
        f"FROM {datasets.view(PRIMARY)} p")
    return _judge_number(rule, "Dataset.*.DatasetMatch", 1.0 if ratio is None else ratio)


def _schema_match(rule, got, datasets):
    alias = rule.parameters[0]
    reference = {name.lower(): kind for name, kind in datasets.columns(alias).items()}
    primary = datasets.columns()
    same = sum(1 for name, kind in primary.items() if reference.get(name.lower()) == kind)
    ratio = same / max(len(primary), len(reference)) if primary or reference else 1.0
    return _judge_number(rule, "Dataset.*.SchemaMatch", ratio)


def _row_count_match(rule, got, datasets):
    primary = datasets.value(f"SELECT count(*) FROM {datasets.view(PRIMARY)}")
    reference = datasets.value(f"SELECT count(*) FROM {datasets.view(rule.parameters[0])}")
    return _judge_number(rule, "Dataset.*.RowCountMatch", primary / reference if reference else 0.0)


def _aggregate_value(text: str, datasets: Datasets) -> float:
    """sum(col) over the primary dataset, sum(alias.col) over a reference dataset."""
    parsed = sqlglot.parse_one(text, read=SQL_DIALECT)
    tables = {c.table.lower() for c in parsed.find_all(exp.Column) if c.table}
    if len(tables) > 1:
        raise RuleError(f"Aggregate expression {text} names more than one dataset")
    alias = tables.pop() if tables else PRIMARY
    for column in parsed.find_all(exp.Column):
        column.set("table", None)
    expression = datasets.sql(parsed.sql(dialect=SQL_DIALECT), aliases=False, expression=True)
    return _number(datasets.value(f"SELECT {expression} FROM {datasets.view(alias)}"))


def _aggregate_match(rule, got, datasets):
    first, second = (_aggregate_value(text, datasets) for text in rule.parameters)
    ratio = first / second if first is not None and second else 0.0
    return _judge_number(rule, "Dataset.*.AggregateMatch", ratio)


def _not_supported(why: str) -> Evaluator:
    def judge(rule, got, datasets):
        raise RuleError(NOT_SUPPORTED.format(rule=rule.type, why=why))

    return Evaluator(_no_aggregates, judge)


def _all_statistics(rule, got, datasets):
    name = rule.parameters[0]
    stats = _frequencies(rule, datasets, [name])
    column = datasets.column(name)
    numeric = _is_numeric(datasets, name)
    items = [f"CAST(count({column}) AS DOUBLE) / greatest(count(*), 1)"]
    items += [f"avg({column})", f"sum({column})", f"stddev_pop({column})", f"min({column})", f"max({column})"] if numeric else []
    values = datasets.connection.execute(f"SELECT {', '.join(items)} FROM {datasets.view(PRIMARY)}").fetchone()
    metrics = {f"Column.{name}.Completeness": values[0], f"Column.{name}.DistinctValuesCount": stats["distinct"],
               f"Column.{name}.Entropy": stats["entropy"],
               f"Column.{name}.Uniqueness": stats["unique"] / stats["rows"] if stats["rows"] else 1.0,
               f"Column.{name}.UniqueValueRatio": stats["unique"] / stats["distinct"] if stats["distinct"] else 0.0}
    if numeric:
        for key, value in zip(("Mean", "Sum", "StandardDeviation", "Minimum", "Maximum"), values[1:]):
            metrics[f"Column.{name}.{key}"] = value
    return Judgement({k: _number(v) for k, v in metrics.items() if v is not None}, True)


FILE_RULES_WHY = "File rules read files that Glue Data Quality sees in S3 and dealab evaluates catalog tables and frames only"

# Rule type → evaluator: the whole of DQDL's rules-config.json.
RULES: dict[str, Evaluator] = {
    "RowCount": Evaluator(_row_count_aggregates, _row_count),
    "RowCountMatch": Evaluator(_no_aggregates, _row_count_match),
    "ColumnCount": Evaluator(_no_aggregates, _column_count),
    "Completeness": _completeness(boolean=False),
    "IsComplete": _completeness(boolean=True),
    "ColumnDataType": _compliance(_data_type_check, "ColumnDataType.Compliance"),
    "ColumnNamesMatchPattern": Evaluator(_no_aggregates, _column_names_match),
    "ColumnExists": Evaluator(_no_aggregates, _column_exists),
    "ColumnCorrelation": Evaluator(_correlation_aggregates, _correlation),
    "Uniqueness": _uniqueness("Uniqueness"),
    "IsUnique": _uniqueness("IsUnique"),
    "UniqueValueRatio": _uniqueness("UniqueValueRatio"),
    "IsPrimaryKey": _uniqueness("IsPrimaryKey"),
    "Mean": _statistic("Mean", lambda c: f"avg({c})"),
    "Sum": _statistic("Sum", lambda c: f"sum({c})"),
    "StandardDeviation": _statistic("StandardDeviation", lambda c: f"stddev_pop({c})"),
    "Variance": _statistic("Variance", lambda c: f"var_pop({c})"),
    "Entropy": Evaluator(_no_aggregates, _entropy_judge),
    "DistinctValuesCount": Evaluator(_no_aggregates, _distinct_judge),
    "ColumnLength": _compliance(_length_check, "ColumnLength.Compliance", _length_extremes),
    "ColumnValues": _compliance(_column_values_check, "ColumnValues.Compliance"),
    "DataFreshness": _compliance(_freshness_check, "DataFreshness.Compliance"),
    "CustomSql": Evaluator(_no_aggregates, _custom_sql),
    "ReferentialIntegrity": Evaluator(_no_aggregates, _referential_integrity),
    "DatasetMatch": Evaluator(_no_aggregates, _dataset_match),
    "SchemaMatch": Evaluator(_no_aggregates, _schema_match),
    "AggregateMatch": Evaluator(_no_aggregates, _aggregate_match),
    "AllStatistics": Evaluator(_no_aggregates, _all_statistics),
    "DetectAnomalies": _not_supported("anomaly detection judges a statistic against a machine-learning model AWS "
                                      "trains on earlier evaluations and does not publish; dynamic rules "
                                      "(RowCount > avg(last(5)) * 0.8) compare with that history openly"),
    "FileMatch": _not_supported(FILE_RULES_WHY),
    "FileUniqueness": _not_supported(FILE_RULES_WHY),
    "FileFreshness": _not_supported(FILE_RULES_WHY),
    "FileSize": _not_supported(FILE_RULES_WHY),
}



def _column_metric(kind: str) -> Callable[[Rule], str]:
    return lambda rule: f"Column.{','.join(rule.parameters)}.{kind}"


# Rule type → the metric its condition compares: a dynamic rule (RowCount > avg(last(5))) compares with that
# metric's values in earlier evaluations. The types are those dqdl.RULE_TYPES marks dynamic.
DYNAMIC_METRICS: dict[str, Callable[[Rule], str]] = {
    "RowCount": lambda rule: "Dataset.*.RowCount",
    "RowCountMatch": lambda rule: "Dataset.*.RowCountMatch",
    "ColumnCount": lambda rule: "Dataset.*.ColumnCount",
    "CustomSql": lambda rule: "Dataset.*.CustomSQL",
    "ColumnCorrelation": lambda rule: f"Multicolumn.{rule.parameters[0]},{rule.parameters[1]}.ColumnCorrelation",
    **{kind: _column_metric(kind) for kind in ("Completeness", "Uniqueness", "Mean", "Sum", "StandardDeviation", "Variance",
                                               "Entropy", "DistinctValuesCount", "UniqueValueRatio")},
}


def with_history(rule: Rule, history: Callable[[str], History] | None) -> tuple[Rule, str]:
    """The dynamic rule with its condition worked out from its metric's earlier values, and its text so."""
    if history is None:
        raise RuleError(NO_HISTORY)
    past = history(DYNAMIC_METRICS[rule.type](rule))
    try:
        operands = tuple(o.resolved(past) if isinstance(o, Number) else o for o in rule.condition.operands)
    except HistoryError as error:
        raise RuleError(str(error)) from None
    text = rule.text
    for written, worked_out in zip(rule.condition.operands, operands):
        if isinstance(written, Number) and written.dynamic is not None:
            text = text.replace(written.text, java_double(worked_out.value), 1)
    return dataclasses.replace(rule, condition=dataclasses.replace(rule.condition, operands=operands)), text


# ---------------------------------------------------------------- a whole ruleset


def _leaves(entry: Rule | Composite) -> list[Rule]:
    return [r for child in entry.rules for r in _leaves(child)] if isinstance(entry, Composite) else [entry]


def _as_analyzer(rule: Rule) -> Rule:
    """An analyzer computes its rule type's metrics without judging them: a condition every value meets."""
    return Rule(rule.type, rule.parameters, Condition(">=", (Number(float("-inf"), "-inf"),), False, ""), rule.where, text=rule.text)


def evaluate(ruleset: Ruleset, datasets: Datasets, history: Callable[[str], History] | None = None) -> Evaluation:
    """Every rule and analyzer of the ruleset over the datasets: one scan for all aggregates, then each
    rule's own queries. `history` gives a metric's values in earlier evaluations of the same context, newest
    first, for dynamic rules (None: there is none to give, and dynamic rules are errors)."""
    measured = [_as_analyzer(analyzer) for analyzer in ruleset.analyzers]
    leaves = [leaf for entry in ruleset.rules for leaf in _leaves(entry)] + measured
    planned: dict[int, dict[str, str]] = {}
    failures: dict[int, str] = {}
    for leaf in leaves:
        try:
            planned[id(leaf)] = RULES[leaf.type].aggregates(leaf, datasets)
        except RuleError as error:
            failures[id(leaf)] = str(error)
    columns = [(id(leaf), key, sql) for leaf in leaves for key, sql in planned.get(id(leaf), {}).items()]
    values: dict[int, dict] = {id(leaf): {} for leaf in leaves}
    if columns:
        row = datasets.connection.execute(
            f"SELECT {', '.join(sql for _, _, sql in columns)} FROM {datasets.view(PRIMARY)}").fetchone()
        for (owner, key, _), value in zip(columns, row):
            values[owner][key] = value
    row_count = datasets.value(f"SELECT count(*) FROM {datasets.view(PRIMARY)}")

    evaluated_rules: dict[int, str] = {}

    def judge(leaf: Rule) -> tuple[Judgement | None, str | None]:
        if id(leaf) in failures:
            return None, failures[id(leaf)]
        try:
            rule = leaf
            if is_dynamic(leaf.condition):
                rule, evaluated_rules[id(leaf)] = with_history(leaf, history)
            return RULES[leaf.type].judge(rule, values[id(leaf)], datasets), None
        except RuleError as error:
            return None, str(error)
        except duckdb.Error as error:
            return None, str(error).splitlines()[0]

    def result(entry: Rule | Composite, number: int) -> RuleResult:
        name = f"Rule_{number}"
        if isinstance(entry, Composite):
            parts = [result(child, number) for child in entry.rules]
            metrics = {k: v for part in parts for k, v in part.metrics.items()}
            if any(p.outcome == "Error" for p in parts):
                outcome = "Error"
            elif entry.operator == "and":
                outcome = "Passed" if all(p.outcome == "Passed" for p in parts) else "Failed"
            else:
                outcome = "Passed" if any(p.outcome == "Passed" for p in parts) else "Failed"
            reasons = [p.failure_reason for p in parts if p.failure_reason]
            checks = [p.row_check for p in parts]
            row_check = None
            if all(checks):
                row_check = "(" + f" {entry.operator.upper()} ".join(f"({c})" for c in checks) + ")"
            return RuleResult(name, entry.text, outcome, None if outcome == "Passed" else "; ".join(reasons) or "Composite rule failed",
                              metrics, entry.labels, row_check)
        judgement, error = judge(entry)
        where = _where(entry, datasets) if entry.where and error is None else None
        if judgement is None:
            return RuleResult(name, entry.text, "Error", error, {}, entry.labels)
        return RuleResult(name, entry.text, "Passed" if judgement.passed else "Failed", judgement.reason,
                          {k: v for k, v in judgement.metrics.items() if v is not None}, entry.labels, judgement.row_check, where,
                          evaluated_rules.get(id(entry)))

    rules = [result(entry, number) for number, entry in enumerate(ruleset.rules, start=1)]
    analyzers = []
    for number, analyzer in enumerate(measured, start=1):
        judgement, error = judge(analyzer)
        analyzers.append(RuleResult(f"Analyzer_{number}", analyzer.text, "Error" if judgement is None else "Passed", error,
                                    {} if judgement is None else {k: v for k, v in judgement.metrics.items() if v is not None}))
    return Evaluation(rules, analyzers, row_count)


def row_outcomes_sql(evaluation: Evaluation, view: str) -> str:
    """The primary rows with AWS's row-level columns: DataQualityRulesPass / Fail / Skip (the rules' texts) and
    DataQualityEvaluationResult. A rule with a row check judges each row (rows its where clause leaves out are
    skipped); a dataset-level rule gives every row its outcome."""
    passes, fails, skips = [], [], []
    for result in evaluation.rules:
        text = literal(result.rule)
        if result.outcome == "Error":
            skips.append(f"[{text}]")
            continue
        if result.row_check is None:
            (passes if result.outcome == "Passed" else fails).append(f"[{text}]")
            continue
        scope = f"({result.where})" if result.where else "true"
        passes.append(f"CASE WHEN coalesce({scope}, false) AND ({result.row_check}) THEN [{text}] ELSE [] END")
        fails.append(f"CASE WHEN coalesce({scope}, false) AND NOT ({result.row_check}) THEN [{text}] ELSE [] END")
        skips.append(f"CASE WHEN NOT coalesce({scope}, false) THEN [{text}] ELSE [] END")

    def concatenated(items: list[str]) -> str:
        return "list_concat(" + ", ".join(items) + ")" if len(items) > 1 else (items[0] if items else "CAST([] AS VARCHAR[])")

    return (f"SELECT *, CASE WHEN len(DataQualityRulesFail) = 0 THEN 'Passed' ELSE 'Failed' END AS DataQualityEvaluationResult "
            f"FROM (SELECT *, CAST({concatenated(passes)} AS VARCHAR[]) AS DataQualityRulesPass, "
            f"CAST({concatenated(fails)} AS VARCHAR[]) AS DataQualityRulesFail, "
            f"CAST({concatenated(skips)} AS VARCHAR[]) AS DataQualityRulesSkip FROM {view})")
