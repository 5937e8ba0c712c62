"""Lake Formation as an AWS Glue 5.0 job meets it when it reads the Data Catalog.

A job reads a catalog table as its role. For a table whose location is registered with Lake Formation, the library
asks glue:GetUnfilteredTableMetadata (as AWS's integrated engines do, listing COLUMN_PERMISSION and
CELL_FILTER_PERMISSION) what the role may read of it:
- every column and every row: the table is read whole (full table access), as before;
- only some columns or rows: with fine-grained access control (GlueVersion 5.0 or later and the job argument
  --enable-lakeformation-fine-grained-access true) a DataFrame read gets only the authorized columns and the rows
  the data cells filter keeps; without it the read fails as Lake Formation refuses an engine that cannot filter.
AWS Glue 5.0 applies fine-grained access control to Spark DataFrames only, and to reads only: with it, a DynamicFrame
read and a catalog write of a table the role may read only in part are refused, in the docs' terms.

The row filter is the data cells filter's expression, parsed and checked by the parser Athena applies to it
(dealab.engines.athena.governance) and written as Spark SQL only when every part of it is an operator, a literal
or a plain scalar function (FILTER_NODES): nothing a filter says reaches Spark as text of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from awsglue import catalog, run_context

SUPPORTED_PERMISSION_TYPES = ["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"]
FINE_GRAINED_ARGUMENT = "--enable-lakeformation-fine-grained-access"
# What a row filter may be made of, on its way to Spark: column references, literals, operators, casts, and
# scalar functions that read nothing but their arguments.
FILTER_NODES = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple, exp.DataType, exp.DataTypeParam,
    exp.Not, exp.And, exp.Or, exp.Neg, exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is,
    exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Cast, exp.TryCast,
    exp.Lower, exp.Upper, exp.Trim, exp.Length, exp.Substring, exp.Coalesce, exp.Abs, exp.Round, exp.Year,
    exp.Month, exp.Day, exp.CurrentDate, exp.CurrentTimestamp,
)


class AccessDeniedException(Exception):
    """Lake Formation's refusal of a principal that may read nothing of a table."""


class PermissionTypeMismatchException(Exception):
    """Lake Formation's refusal of an engine that cannot apply the column or cell restrictions on a table."""


class UnsupportedOperationException(Exception):
    """What AWS Glue 5.0's fine-grained access control does not do (DynamicFrames, writes), or a row filter dealab's
    Spark reader cannot apply."""


@dataclass(frozen=True)
class Access:
    """A catalog table and what the job's role may read of it."""

    table: dict  # the whole table (column positions of CSV files need every column)
    columns: tuple[str, ...] | None = None  # the columns the role may read; None: every column
    row_filter: str | None = None  # the data cells filter's expression of the rows it may read; None: every row

    @property
    def restricted(self) -> bool:
        return self.columns is not None or self.row_filter is not None


def fine_grained() -> bool:
    return run_context.current.lakeformation_fine_grained


def access(database: str, table_name: str) -> Access:
    """The table, and what the job's role may read of it when its location is registered with Lake Formation."""
    answer = catalog.glue().get_unfiltered_table_metadata(
        CatalogId=catalog.catalog_id(), DatabaseName=database, Name=table_name,
        SupportedPermissionTypes=SUPPORTED_PERMISSION_TYPES)
    table = answer["Table"]
    if not answer.get("IsRegisteredWithLakeFormation"):
        # Lake Formation does not stand between the role and the data: IAM decides, as for any S3 read
        return Access(table)
    every = [column["Name"] for column in table.get("StorageDescriptor", {}).get("Columns", []) + table.get("PartitionKeys", [])]
    authorized = tuple(answer.get("AuthorizedColumns") or ())
    row_filter = answer.get("RowFilter") or None
    return Access(table, None if set(authorized) >= set(every) else authorized, row_filter)


def readable(database: str, table_name: str) -> Access:
    """What the job's role may read of the table; raises PermissionTypeMismatchException for a table it may read
    only in part when the job does not run with fine-grained access control."""
    found = access(database, table_name)
    if found.columns == ():  # DESCRIBE without SELECT: it may see the table but read nothing of it
        raise AccessDeniedException(f"Insufficient Lake Formation permission(s) on {table_name}")
    if found.restricted and not fine_grained():
        raise PermissionTypeMismatchException(
            f"The engine does not support filtering data based on the enforced permissions (Lake Formation lets the job's "
            f"role read only some columns or rows of {database}.{table_name}; AWS Glue filters them only for a job with "
            f"GlueVersion 5.0 and the job argument {FINE_GRAINED_ARGUMENT} true, else the role needs SELECT on the whole table)")
    return found


def spark_condition(expression: str, table_name: str) -> str:
    """A data cells filter's row expression as a Spark SQL condition: parsed and checked as Athena checks it, and
    written by sqlglot from its parse tree only when FILTER_NODES holds every node of it."""
    from dealab.engines.athena.errors import QueryError
    from dealab.engines.athena.governance import row_filter_condition

    try:
        condition = row_filter_condition(expression, table_name)
    except QueryError as error:
        raise UnsupportedOperationException(f"Lake Formation's row filter of {table_name} cannot be applied: {error}") from None
    for node in condition.walk():
        if not isinstance(node, FILTER_NODES) or isinstance(node, exp.Column) and node.table:
            raise UnsupportedOperationException(
                f"Lake Formation's row filter of {table_name} cannot be applied by dealab's Spark reader: "
                f"{node.sql(dialect='spark')} is not a column, a literal, an operator or a plain scalar function ({expression})")
    return condition.sql(dialect="spark")


def refuse_dynamic_frame(database: str, table_name: str) -> None:
    raise UnsupportedOperationException(
        f"create_dynamic_frame.from_catalog does not support Lake Formation fine-grained access control, and the job's "
        f"role may read only some columns or rows of {database}.{table_name}: in AWS Glue 5.0 read it as a Spark "
        "DataFrame (glueContext.create_data_frame.from_catalog), which applies the column and cell permissions")


def refuse_write(database: str, table_name: str) -> None:
    raise UnsupportedOperationException(
        f"AWS Glue with Lake Formation fine-grained access control supports read queries only: the job's role may read "
        f"only some columns or rows of {database}.{table_name}, so write_dynamic_frame.from_catalog cannot write to it")
