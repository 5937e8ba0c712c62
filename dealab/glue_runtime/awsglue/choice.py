"""Choice types over Spark DataFrames, and the record-by-record typing of text data that produces them.

AWS Glue types each record on its own, so a column whose records disagree (numbers in most, text in a few)
has a *choice* type: `provider id: choice` of `long` and `string`. Spark settles one type per column, so a
DynamicFrame here keeps a choice as a struct column with one field per candidate type, named after the type
(`long`, `string`, ...), of which at most one is set in each record, and the column's metadata marks it as a
choice. The encoding stays inside DynamicFrame: `printSchema` shows it as Glue does, `resolveChoice` turns
it into one column (or several, or a plain struct), and `toDF()` hands Spark a plain struct of the types,
as Glue's toDF does with an unresolved choice.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, BinaryType, BooleanType, ByteType, DataType, DateType, DecimalType, DoubleType,
                               FloatType, IntegerType, LongType, MapType, NullType, ShortType, StringType, StructField,
                               StructType, TimestampType)

CHOICE_KEY = "dealab.glue.choice"

# Text that a record types as a number or a boolean. Anything else that is not empty is a string.
LONG_PATTERN = r"^[+-]?[0-9]+$"
DOUBLE_PATTERN = r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$"
BOOLEAN_VALUES = ("true", "false")

GLUE_TYPE_NAMES = {
    LongType: "long", IntegerType: "int", ShortType: "short", ByteType: "byte", DoubleType: "double",
    FloatType: "float", StringType: "string", BooleanType: "boolean", DecimalType: "decimal", DateType: "date",
    TimestampType: "timestamp", BinaryType: "binary", StructType: "struct", ArrayType: "array", MapType: "map",
    NullType: "null",
}
SPARK_TYPES = {"long": LongType(), "double": DoubleType(), "string": StringType(), "boolean": BooleanType()}


def glue_type_name(data_type: DataType) -> str:
    return GLUE_TYPE_NAMES.get(type(data_type), data_type.simpleString())


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def is_choice(field: StructField) -> bool:
    return bool(field.metadata.get(CHOICE_KEY)) and isinstance(field.dataType, StructType)


def choice_columns(schema: StructType) -> list[str]:
    return [field.name for field in schema.fields if is_choice(field)]


def choice_column(candidates: list[tuple[str, Column]], name: str) -> Column:
    """A choice column from (type name, value of that type or null) pairs; null where every value is null."""
    ordered = sorted(candidates, key=lambda item: item[0])
    value = F.struct(*[column.alias(type_name) for type_name, column in ordered])
    present = F.coalesce(*[column.cast("string") for _, column in ordered])
    return F.when(present.isNull(), F.lit(None)).otherwise(value).alias(name, metadata={CHOICE_KEY: True})


def plain(column: Column, name: str, data_type: DataType | None = None) -> Column:
    """The column without the choice mark: for a choice (`data_type` its struct), a plain struct of its types
    (Glue's toDF / make_struct). The struct is built anew, since Spark carries an attribute's metadata through
    an alias, even one given empty metadata."""
    if isinstance(data_type, StructType):
        rebuilt = F.struct(*[column.getField(field.name).alias(field.name) for field in data_type.fields])
        return F.when(column.isNull(), F.lit(None)).otherwise(rebuilt).alias(name)
    return column.alias(name)


def to_plain_dataframe(dataframe: DataFrame) -> DataFrame:
    choices = {field.name: field.dataType for field in dataframe.schema.fields if is_choice(field)}
    if not choices:
        return dataframe
    return dataframe.select(*[plain(F.col(quoted(c)), c, choices[c]) if c in choices else F.col(quoted(c)) for c in dataframe.columns])


def cast_choice(column: Column, choice_type: StructType, target: str) -> Column:
    """Every candidate cast to `target` (a value that does not parse becomes null), the first non-null kept."""
    return F.coalesce(*[column.getField(field.name).cast(target) for field in choice_type.fields])


def project_choice(column: Column, choice_type: StructType, target: str) -> Column:
    """The values that are of type `target`; the others become null."""
    names = [field.name for field in choice_type.fields]
    wanted = _canonical(target)
    if wanted in names:
        return column.getField(wanted)
    return F.lit(None).cast(target)


def most_general(choice_type: StructType) -> str:
    """The type Spark itself would have settled on for the column: string if any record was text."""
    names = {field.name for field in choice_type.fields}
    if "string" in names or len(names) > 2 or "boolean" in names:
        return "string"
    return "double"


def _canonical(type_name: str) -> str:
    name = type_name.strip().lower()
    return {"bigint": "long", "integer": "int", "smallint": "short", "tinyint": "byte"}.get(name, name)


# ---- typing text record by record ------------------------------------------------------------------------
def _record_types(value: Column) -> dict[str, Column]:
    is_long = value.rlike(LONG_PATTERN) & value.cast("long").isNotNull()
    is_double = ~is_long & value.rlike(DOUBLE_PATTERN) & value.cast("double").isNotNull()
    is_boolean = F.lower(value).isin(*BOOLEAN_VALUES)
    is_string = value.isNotNull() & ~(is_long | is_double | is_boolean)
    return {"long": is_long, "double": is_double, "boolean": is_boolean, "string": is_string}


def type_records(dataframe: DataFrame, columns: list[str] | None = None) -> DataFrame:
    """Types the text columns of `dataframe` as Glue's readers do: each value as long, double, boolean or
    string by its text (an empty field is null). A column whose records all agree gets that type (long and
    double together widen to double); one whose records disagree becomes a choice. One pass over the data."""
    text_columns = [field.name for field in dataframe.schema.fields
                    if isinstance(field.dataType, StringType) and (columns is None or field.name in columns)]
    if not text_columns:
        return dataframe
    aggregates = []
    for index, name in enumerate(text_columns):
        for type_name, test in _record_types(F.col(quoted(name))).items():
            aggregates.append(F.max(F.when(test, 1).otherwise(0)).alias(f"{index}_{type_name}"))
    seen = dataframe.agg(*aggregates).first()
    seen = seen.asDict() if seen is not None else {}
    columns = []
    for name in dataframe.columns:
        if name not in text_columns:
            columns.append(F.col(quoted(name)))
            continue
        index = text_columns.index(name)
        present = [t for t in ("boolean", "double", "long", "string") if seen.get(f"{index}_{t}")]
        value = F.col(quoted(name))
        tests = _record_types(value)
        if "long" in present and "double" in present:  # numbers widen to double, as they do in Spark
            present.remove("long")
            tests["double"] = tests["double"] | tests["long"]
        if not present:
            columns.append(value.alias(name))
        elif len(present) == 1:
            columns.append(_typed_value(value, present[0], tests).alias(name))
        else:
            candidates = []
            for type_name in present:
                candidates.append((type_name, F.when(tests[type_name], _typed_value(value, type_name, tests))))
            columns.append(choice_column(candidates, name))
    return dataframe.select(*columns)


def _typed_value(value: Column, type_name: str, tests: dict[str, Column]) -> Column:
    if type_name == "boolean":
        return F.when(tests["boolean"], F.lower(value) == "true")
    if type_name == "string":
        return value
    return value.cast(SPARK_TYPES[type_name])


# ---- printing a schema as Glue does ---------------------------------------------------------------------
def tree_string(schema: StructType) -> str:
    lines = ["root"]
    for field in schema.fields:
        _describe(lines, field.name, field.dataType, 0, is_choice(field))
    return "\n".join(lines) + "\n"


def _describe(lines: list[str], name: str, data_type: DataType, depth: int, choice: bool = False) -> None:
    indent = "|    " * depth
    if choice:
        lines.append(f"{indent}|-- {name}: choice")
        lines.extend(f"{indent}|    |-- {field.name}" for field in data_type.fields)
        return
    lines.append(f"{indent}|-- {name}: {glue_type_name(data_type)}")
    _describe_children(lines, data_type, depth + 1)


def _describe_children(lines: list[str], data_type: DataType, depth: int) -> None:
    if isinstance(data_type, StructType):
        for field in data_type.fields:
            _describe(lines, field.name, field.dataType, depth, is_choice(field))
    elif isinstance(data_type, ArrayType):
        _describe(lines, "element", data_type.elementType, depth)
    elif isinstance(data_type, MapType):
        _describe(lines, "key", data_type.keyType, depth)
        _describe(lines, "value", data_type.valueType, depth)

