"""Rule recommendation: profile a table and propose a DQDL ruleset, as StartDataQualityRuleRecommendationRun
does — a RowCount band around the rows seen, IsComplete (or a Completeness floor) per column, IsUnique for
columns whose values never repeat, ColumnValues ranges for numbers and dates, ColumnValues sets for columns of
few distinct values, ColumnLength bands for complete text columns. One profiling query reads the table once for all columns
but the distinct counts, which take one more."""

from __future__ import annotations

import json
import re

from dealab.engines.dataquality.rules import PRIMARY, Datasets, ident

# A column with at most this many distinct values (and values repeating) gets a ColumnValues set.
SET_LIMIT = 10
NUMERIC = re.compile(r"(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|FLOAT|DOUBLE|DECIMAL)")
TEMPORAL = re.compile(r"(DATE|TIMESTAMP)")
TEXT = re.compile(r"VARCHAR")


def _quote(value) -> str:
    return json.dumps(str(value))


def _number(value) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def recommend(datasets: Datasets) -> str:
    view = datasets.view(PRIMARY)
    columns = datasets.columns()
    items = ["count(*)"]
    for name, kind in columns.items():
        column = ident(name)
        items += [f"count({column})", f"count(DISTINCT {column})"]
        if NUMERIC.match(kind) or TEMPORAL.match(kind):
            items += [f"min({column})", f"max({column})"]
        elif TEXT.match(kind):
            items += [f"min(length({column}))", f"max(length({column}))"]
        else:
            items += ["NULL", "NULL"]
    profile = datasets.connection.execute(f"SELECT {', '.join(items)} FROM {view}").fetchone()
    rows = profile[0]
    rules = [f"RowCount between {int(rows * 0.8)} and {int(rows * 1.2) + 1}"]
    for index, (name, kind) in enumerate(columns.items()):
        complete, distinct, low, high = profile[1 + index * 4: 5 + index * 4]
        quoted = _quote(name)
        if rows and complete == rows:
            rules.append(f"IsComplete {quoted}")
        elif rows and complete:
            rules.append(f"Completeness {quoted} >= {round(complete / rows * 0.95, 2)}")
        if rows and distinct == rows and complete == rows:
            rules.append(f"IsUnique {quoted}")
        if 0 < distinct <= SET_LIMIT and distinct < complete:
            values = [row[0] for row in datasets.connection.execute(
                f"SELECT DISTINCT {ident(name)} FROM {view} WHERE {ident(name)} IS NOT NULL ORDER BY 1").fetchall()]
            rendered = [_number(v) if NUMERIC.match(kind) else _quote(v) for v in values]
            rules.append(f"ColumnValues {quoted} in [{', '.join(rendered)}]")
        elif low is not None and NUMERIC.match(kind):
            rules.append(f"ColumnValues {quoted} between {_number(low) if float(low) == 0 else _number(float(low) - abs(float(low)) * 0.1 - 1)} "
                         f"and {_number(float(high) + abs(float(high)) * 0.1 + 1)}")
        elif low is not None and TEMPORAL.match(kind):
            rules.append(f"ColumnValues {quoted} >= \"{str(low)[:10]}\"")
        elif low is not None and TEXT.match(kind) and complete == rows:  # a NULL has no length: it fails ColumnLength
            rules.append(f"ColumnLength {quoted} between {max(int(low) - 1, 0)} and {int(high) + 1}")
    return "Rules = [\n    " + ",\n    ".join(rules) + "\n]"
