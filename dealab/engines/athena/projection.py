"""Partition projection: partitions computed from the table's projection.* properties instead of read
from the catalog (enum, integer, date and injected types; storage.location.template or Hive-style folders).

An `injected` column has no values of its own: they come from the query, whose WHERE clause must name them with
static equality conditions (the planner finds them, `Planner.injected_values`); a query without one fails with
Athena's CONSTRAINT_VIOLATION."""

from __future__ import annotations

import datetime
import itertools
import re

from dealab.engines.athena.catalog import PartitionFiles, Table, folder
from dealab.engines.athena.errors import QueryError
from dealab.engines.athena.translate import joda_to_strftime
from dealab.wire import labtime

MAX_PROJECTED_PARTITIONS = 1_000_000
_RELATIVE_DATE = re.compile(r"^NOW\s*(?:([+-])\s*(\d+)\s*(YEARS?|MONTHS?|WEEKS?|DAYS?|HOURS?|MINUTES?|SECONDS?))?$", re.I)


def _add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31))


# interval.unit (and NOW±N unit) → step applied to a datetime.
UNIT_STEPS = {
    "YEARS": lambda moment, n: _add_months(moment, 12 * n),
    "MONTHS": lambda moment, n: _add_months(moment, n),
    "WEEKS": lambda moment, n: moment + datetime.timedelta(weeks=n),
    "DAYS": lambda moment, n: moment + datetime.timedelta(days=n),
    "HOURS": lambda moment, n: moment + datetime.timedelta(hours=n),
    "MINUTES": lambda moment, n: moment + datetime.timedelta(minutes=n),
    "SECONDS": lambda moment, n: moment + datetime.timedelta(seconds=n),
}


def _unit(text: str) -> str:
    text = text.upper()
    return text if text.endswith("S") else text + "S"


def _enum_values(column: str, properties: dict) -> list[str]:
    return [v.strip() for v in properties.get(f"projection.{column}.values", "").split(",") if v.strip()]


def _integer_values(column: str, properties: dict) -> list[str]:
    low, _, high = properties.get(f"projection.{column}.range", "").partition(",")
    step = int(properties.get(f"projection.{column}.interval", "1"))
    digits = int(properties.get(f"projection.{column}.digits", "0") or 0)
    return [str(n).zfill(digits) for n in range(int(low), int(high) + 1, step)]


def _date_bound(text: str, pattern: str, now: datetime.datetime) -> datetime.datetime:
    match = _RELATIVE_DATE.match(text.strip())
    if match:
        if not match.group(1):
            return now
        amount = int(match.group(2)) * (1 if match.group(1) == "+" else -1)
        return UNIT_STEPS[_unit(match.group(3))](now, amount)
    return datetime.datetime.strptime(text.strip(), pattern)


def _date_values(column: str, properties: dict) -> list[str]:
    pattern = joda_to_strftime(properties.get(f"projection.{column}.format", "yyyy-MM-dd"))
    low, _, high = properties.get(f"projection.{column}.range", "").partition(",")
    now = labtime.now()  # NOW in a range is the lab clock's now, as every other "now" of the stack
    start, end = _date_bound(low, pattern, now), _date_bound(high, pattern, now)
    step = int(properties.get(f"projection.{column}.interval", "1"))
    unit = _unit(properties.get(f"projection.{column}.interval.unit", "DAYS" if "%d" in pattern else "HOURS"))
    values, moment = [], start
    while moment <= end and len(values) < MAX_PROJECTED_PARTITIONS:
        values.append(moment.strftime(pattern))
        moment = UNIT_STEPS[unit](moment, step)
    return values


VALUE_GENERATORS = {"enum": _enum_values, "integer": _integer_values, "date": _date_values}
INJECTED = "injected"


def _kind(properties: dict, column: str) -> str:
    return properties.get(f"projection.{column}.type", "").strip().lower()


def injected_columns(table: Table) -> list[str]:
    """The partition columns whose values the query supplies."""
    return [column for column, _ in table.partition_keys if _kind(table.parameters, column) == INJECTED]


def injection_violation(column: str) -> QueryError:
    return QueryError(f"For the injected projected partition column {column}, the WHERE clause must contain only static "
                      "equality conditions, and at least one such condition must be present.", "CONSTRAINT_VIOLATION")


def projected_partitions(table: Table, injected: dict[str, list[str]] | None = None) -> list[PartitionFiles]:
    """The table's partitions; `injected` gives the values the query names for each injected column."""
    properties = table.parameters
    domains = []
    for column, _ in table.partition_keys:
        kind = _kind(properties, column)
        if kind == INJECTED:
            if injected is None or column not in injected:
                raise injection_violation(column)
            domains.append(injected[column])
            continue
        generator = VALUE_GENERATORS.get(kind)
        if generator is None:
            raise QueryError(
                f"Partition projection type '{kind or 'missing'}' for column '{column}' of table "
                f"{table.database}.{table.name} is not supported (dealab projects enum, integer, date and injected)",
                "HIVE_METASTORE_ERROR",
            )
        try:
            domains.append(generator(column, properties))
        except ValueError as error:
            raise QueryError(f"Invalid projection properties for column '{column}': {error}", "HIVE_METASTORE_ERROR") from None
    count = 1
    for domain in domains:
        count *= len(domain)
    if count > MAX_PROJECTED_PARTITIONS:
        raise QueryError(f"Partition projection of {table.database}.{table.name} yields {count} partitions", "HIVE_EXCEEDED_PARTITION_LIMIT")
    template = properties.get("storage.location.template")
    names = [column for column, _ in table.partition_keys]
    partitions = []
    for combination in itertools.product(*domains):
        values = dict(zip(names, combination))
        if template:
            location = template
            for name, value in values.items():
                location = location.replace("${" + name + "}", value)
        else:
            location = folder(table.location) + "/".join(f"{n}={v}" for n, v in values.items())
        partitions.append(PartitionFiles(values, folder(location)))
    return partitions
