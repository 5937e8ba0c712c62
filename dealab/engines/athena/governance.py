"""The catalog as one query's caller may read it: Lake Formation's answer for each table, asked as AWS's integrated
engines ask it (glue:GetUnfilteredTableMetadata, naming the query's principal), never by importing its engine.

A query by the account root (every caller that signs with the stack's own key) reads the catalog unfiltered; a
query by an IAM user or role session reads each table only if Lake Formation lets it SELECT some of its columns,
and reads only those columns.
"""

from __future__ import annotations

from dataclasses import replace

from dealab.engines.athena.catalog import GlueCatalog, Table
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
                SupportedPermissionTypes=["COLUMN_PERMISSION"],
                QuerySessionContext={"AdditionalContext": {PRINCIPAL_CONTEXT_KEY: self.principal}})
        except glue.exceptions.ClientError as error:
            if error.response["Error"]["Code"] == "AccessDeniedException":
                raise QueryError(LAKE_FORMATION_DENIAL.format(table=found.name)) from None
            raise
        authorized = tuple(answer.get("AuthorizedColumns") or ())
        if not authorized:
            raise QueryError(LAKE_FORMATION_DENIAL.format(table=found.name))
        every = [column for column, _ in found.columns + found.partition_keys]
        return found if list(authorized) == every else replace(found, authorized_columns=authorized)


def governed(catalog: GlueCatalog, principal: str | None) -> GlueCatalog | GovernedCatalog:
    """The catalog a query by `principal` reads: the root's (and the stack's own queries') is unfiltered."""
    return GovernedCatalog(catalog, principal) if principal and not principal.endswith(":root") else catalog
