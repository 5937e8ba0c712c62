"""The catalog as one query's caller may read it: Lake Formation's answer for each table, asked as AWS's integrated
engines ask it (glue:GetUnfilteredTableMetadata, naming the query's principal), never by importing its engine.

A query by the account root (every caller that signs with the stack's own key) reads the catalog unfiltered; a
query by an IAM user or role session reads each table only if Lake Formation lets it SELECT some of its columns,
and reads only those columns (and, under a data cells filter, only the rows its expression keeps).
"""

from __future__ import annotations

from dataclasses import replace

import sqlglot
from sqlglot import exp

from dealab.engines.athena import sandbox, translate
from dealab.engines.athena.catalog import PATH_COLUMN, GlueCatalog, Table
from dealab.engines.athena.errors import QueryError

PRINCIPAL_CONTEXT_KEY = "dealab:principal"  # = dealab.engines.lakeformation.engine.PRINCIPAL_CONTEXT_KEY
LAKE_FORMATION_DENIAL = "Insufficient permissions to execute the query. Insufficient Lake Formation permission(s) on {table}"


class GovernedCatalog:
    """A GlueCatalog whose tables are those the principal may read; everything else is the catalog's own."""

    def __init__(self, catalog: GlueCatalog, principal: str):
        self._catalog = catalog
        self.principal = principal

    def __getattr__(self, name: str):
        return getattr(self._catalog, name)

    def table(self, database: str, name: str) -> Table | None:
        found = self._catalog.table(database, name)
        if found is None:
            return None
        glue = self._catalog.glue
        try:
            answer = glue.get_unfiltered_table_metadata(
                CatalogId=found.raw.get("CatalogId", "") or "123456789012", DatabaseName=database, Name=name,
                SupportedPermissionTypes=["COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"],
                QuerySessionContext={"AdditionalContext": {PRINCIPAL_CONTEXT_KEY: self.principal}})
        except glue.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "AccessDeniedException":
                raise QueryError(LAKE_FORMATION_DENIAL.format(table=found.name)) from None
            raise
        authorized = tuple(answer.get("AuthorizedColumns") or ())
        if not authorized:
            raise QueryError(LAKE_FORMATION_DENIAL.format(table=found.name))
        every = [column for column, _ in found.columns + found.partition_keys]
        row_filter = answer.get("RowFilter")
        if list(authorized) == every and not row_filter:
            return found
        condition = row_filter_condition(row_filter, found.name).sql(dialect="duckdb") if row_filter else None
        return replace(found, authorized_columns=authorized, row_filter=condition)


def row_filter_condition(expression: str, table_name: str) -> exp.Expression:
    """A data cells filter's row expression (Athena's SQL) parsed and checked as a query's WHERE is; the caller
    writes it in its own engine's dialect (DuckDB here, Spark in Glue's awsglue)."""
    text = f"SELECT 1 FROM t WHERE {expression}"
    try:
        query = sqlglot.parse_one(text, read=translate.DIALECT)
    except sqlglot.errors.ParseError:
        raise QueryError(f"The data cells filter of {table_name} cannot be read: {expression}", "GENERIC_USER_ERROR") from None
    if not isinstance(query, exp.Select) or {key for key, value in query.args.items() if value} != {"expressions", "from_", "where"}:
        # text after the expression (a GROUP BY, a UNION, a second statement) is not part of a row filter
        raise QueryError(f"The data cells filter of {table_name} cannot be read: {expression}", "GENERIC_USER_ERROR")
    sandbox.check(query, text)
    return query.args["where"].this


def restricted(relation: str, table: Table, with_path: bool) -> str:
    """The table's relation as Lake Formation lets the caller read it: its authorized columns, its filtered rows."""
    if table.authorized_columns is None:
        return relation
    shown = ['"' + name.replace('"', '""') + '"' for name in table.authorized_columns + ((PATH_COLUMN,) if with_path else ())]
    where = f" WHERE {table.row_filter}" if table.row_filter else ""
    return f"SELECT {', '.join(shown)} FROM ({relation}){where}"


def governed(catalog: GlueCatalog, principal: str | None) -> GlueCatalog | GovernedCatalog:
    """The catalog a query by `principal` reads: the root's (and the stack's own queries') is unfiltered."""
    return GovernedCatalog(catalog, principal) if principal and not principal.endswith(":root") else catalog
