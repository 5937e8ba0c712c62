"""Lake Formation's permission model as data and pure functions: who holds which grant on which resource, LF-tags
and tag expressions, and the question every integrated service asks — what may this principal do with this table
and which of its columns may it read.

A grant is one principal's permissions on one resource, in the API's own shapes (Database, Table, TableWithColumns,
DataLocation, LFTag, LFTagPolicy, Catalog). Grants to the same principal on the same resource merge, as AWS merges
them (TableWithColumns: the column lists join). Nothing here calls AWS; the engine keeps the state and asks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
# Every IAM principal of the account: "<account>:IAMPrincipals" (the console's ALLIAMPrincipals).
ALL_IAM_PRINCIPALS_SUFFIX = ":IAMPrincipals"
DATABASE_PERMISSIONS = frozenset({"ALL", "ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"})
TABLE_PERMISSIONS = frozenset({"ALL", "ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"})
# Which permissions each kind of resource takes (GrantPermissions refuses others with InvalidInputException).
PERMISSIONS_FOR_KIND = {
    "Catalog": frozenset({"CREATE_DATABASE", "CREATE_LF_TAG", "ALL", "DESCRIBE"}),
    "Database": DATABASE_PERMISSIONS,
    "Table": TABLE_PERMISSIONS,
    "TableWithColumns": frozenset({"SELECT"}),
    "DataLocation": frozenset({"DATA_LOCATION_ACCESS"}),
    "LFTag": frozenset({"ASSOCIATE", "DESCRIBE", "ALTER", "DROP", "GRANT_WITH_LF_TAG_EXPRESSION"}),
    "LFTagPolicy": DATABASE_PERMISSIONS | TABLE_PERMISSIONS,
    "DataCellsFilter": frozenset({"SELECT", "DESCRIBE", "DROP"}),
}
# Any of these on a table (or on some of its columns) lets a principal see the table in the catalog (GetTable).
SEES_TABLE = frozenset({"ALL", "ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT"})
READS_TABLE = frozenset({"ALL", "SELECT"})


class InvalidInput(ValueError):
    """A grant or revoke AWS refuses (InvalidInputException)."""


def resource_kind(resource: dict) -> str:
    kinds = [kind for kind in PERMISSIONS_FOR_KIND if kind in resource]
    if len(kinds) != 1:
        raise InvalidInput("Resource must name exactly one of: " + ", ".join(PERMISSIONS_FOR_KIND))
    return kinds[0]


def normalized(resource: dict, account: str) -> dict:
    """The resource as grants are kept and listed: one kind, CatalogId filled in, names lower-cased as Glue keeps them."""
    kind = resource_kind(resource)
    body = dict(resource[kind] or {})
    if kind in ("Database", "Table", "TableWithColumns"):
        body["CatalogId"] = body.get("CatalogId") or account
        for name in ("Name", "DatabaseName"):
            if isinstance(body.get(name), str):
                body[name] = body[name].lower()
        if kind == "Table" and not body.get("Name") and "TableWildcard" not in body:
            raise InvalidInput("Table resource needs Name or TableWildcard")
        if kind == "TableWithColumns" and not body.get("ColumnNames") and "ColumnWildcard" not in body:
            raise InvalidInput("TableWithColumns needs ColumnNames or ColumnWildcard")
    if kind == "DataCellsFilter":
        body["TableCatalogId"] = body.get("TableCatalogId") or account
        for name in ("DatabaseName", "TableName"):
            body[name] = str(body.get(name, "")).lower()
    if kind == "LFTagPolicy":
        if body.get("ResourceType") not in ("DATABASE", "TABLE") or not body.get("Expression"):
            raise InvalidInput("LFTagPolicy needs ResourceType DATABASE or TABLE and an Expression")
        body["CatalogId"] = body.get("CatalogId") or account
    return {kind: body}


def grant_key(principal: str, resource: dict) -> str:
    """Grants to one principal on one resource merge under this key (a column grant's key leaves the columns out)."""
    kind = resource_kind(resource)
    body = dict(resource[kind])
    if kind == "TableWithColumns":
        body.pop("ColumnNames", None)
        body.pop("ColumnWildcard", None)
    return json.dumps([principal, kind, body], sort_keys=True)


def check_permissions(resource: dict, permissions: list[str]) -> None:
    kind = resource_kind(resource)
    wrong = sorted(set(permissions) - PERMISSIONS_FOR_KIND[kind])
    if wrong:
        raise InvalidInput(f"Permissions {wrong} are not valid for a {kind} resource")


def merged(existing: dict | None, principal: str, resource: dict, permissions: list[str], grantable: list[str]) -> dict:
    """The grant after GrantPermissions adds `permissions` to what `principal` already holds on `resource`."""
    grant = existing or {"Principal": {"DataLakePrincipalIdentifier": principal}, "Resource": resource,
                         "Permissions": [], "PermissionsWithGrantOption": []}
    grant["Permissions"] = sorted(set(grant["Permissions"]) | set(permissions))
    grant["PermissionsWithGrantOption"] = sorted(set(grant["PermissionsWithGrantOption"]) | set(grantable))
    if existing is not None and "TableWithColumns" in resource:
        held, added = existing["Resource"]["TableWithColumns"], resource["TableWithColumns"]
        if "ColumnWildcard" in added or "ColumnWildcard" in held:
            held.pop("ColumnNames", None)
            held["ColumnWildcard"] = added.get("ColumnWildcard", held.get("ColumnWildcard")) or {}
        else:
            held["ColumnNames"] = sorted(set(held.get("ColumnNames", [])) | set(added.get("ColumnNames", [])))
    return grant


def revoked(grant: dict, resource: dict, permissions: list[str], grantable: list[str]) -> dict | None:
    """The grant after RevokePermissions, or None once nothing is left of it."""
    held = grant["Resource"].get("TableWithColumns")
    named = resource.get("TableWithColumns", {}).get("ColumnNames")
    if held is not None and named and held.get("ColumnNames"):
        # revoking some columns keeps the grant on the others
        remaining = sorted(set(held["ColumnNames"]) - set(named))
        if remaining:
            held["ColumnNames"] = remaining
            return grant
        return None
    grant["Permissions"] = sorted(set(grant["Permissions"]) - set(permissions))
    grant["PermissionsWithGrantOption"] = sorted(set(grant["PermissionsWithGrantOption"]) - set(permissions) - set(grantable))
    return grant if grant["Permissions"] or grant["PermissionsWithGrantOption"] else None


# ---- who a grant names ------------------------------------------------------------------------------------------
def principal_names(caller_arn: str) -> set[str]:
    """The grant principals a caller answers to: a user's ARN, or for an assumed-role session its role (by name, as
    the session ARN carries no path), and the account's IAMPrincipals group."""
    parts = caller_arn.split(":", 5)
    if len(parts) < 6:
        return set()
    account, resource = parts[4], parts[5]
    names = {caller_arn, f"{account}{ALL_IAM_PRINCIPALS_SUFFIX}"}
    if resource.startswith("assumed-role/"):
        names.add(f"role-name:{resource.split('/')[1]}")
    return names


def identity(caller_arn: str) -> str:
    """The one name a caller is known by as a creator: its role for a session, else its own ARN."""
    resource = caller_arn.split(":", 5)[-1]
    return f"role-name:{resource.split('/')[1]}" if resource.startswith("assumed-role/") else caller_arn


def grant_names(identifier: str) -> str:
    """A grant's principal in principal_names' terms (a role ARN by its name, whatever its path)."""
    parts = identifier.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("role/"):
        return f"role-name:{parts[5].rsplit('/', 1)[-1]}"
    return identifier


# ---- LF-tags ---------------------------------------------------------------------------------------------------
def effective_tags(database_tags: dict, table_tags: dict | None = None, column_tags: dict | None = None) -> dict[str, list[str]]:
    """A resource's tags: inherited from its database (and table), a key set lower down overriding the one above."""
    return {**database_tags, **(table_tags or {}), **(column_tags or {})}


def matches(expression: list[dict], tags: dict[str, list[str]]) -> bool:
    """An LF-tag expression (AND over keys, OR over one key's values) against a resource's tags."""
    for clause in expression:
        values = tags.get(clause["TagKey"])
        if values is None or not (set(values) & set(clause["TagValues"]) or "*" in clause["TagValues"]):
            return False
    return True


# ---- what a principal may do with a table ------------------------------------------------------------------------
@dataclass(frozen=True)
class TableAccess:
    sees: bool  # any permission at all: GetTable shows it
    columns: tuple[str, ...]  # the columns it may SELECT, in the table's order ((): none)
    permissions: frozenset[str]
    row_filter: str | None = None  # the rows it may read, as a data cells filter's expression (None: every row)


@dataclass(frozen=True)
class TableFacts:
    """What the evaluation needs to know of one table: names, its columns in order, and its LF-tags."""
    database: str
    name: str
    columns: tuple[str, ...]
    database_tags: dict
    table_tags: dict
    column_tags: dict  # column → its own tags


def _table_grant_applies(body: dict, facts: TableFacts) -> bool:
    return body.get("DatabaseName") == facts.database and (body.get("Name") == facts.name or "TableWildcard" in body)


def filter_columns(cells: dict, columns: tuple[str, ...]) -> set[str]:
    """The columns a data cells filter lets through: ColumnNames, or every column but ColumnWildcard's exclusions."""
    if "ColumnWildcard" in cells or not cells.get("ColumnNames"):
        return set(columns) - set((cells.get("ColumnWildcard") or {}).get("ExcludedColumnNames", []))
    return set(columns) & set(cells["ColumnNames"])


def row_expression(cells: dict) -> str | None:
    """A data cells filter's row filter expression; None when it lets every row through (AllRowsWildcard)."""
    row_filter = cells.get("RowFilter") or {}
    return None if "AllRowsWildcard" in row_filter or not row_filter.get("FilterExpression") else row_filter["FilterExpression"]


def table_access(grants: list[dict], names: set[str], facts: TableFacts, filters: dict | None = None) -> TableAccess:
    """What the principal answering to `names` holds on the table, from every grant that reaches it: on the
    table or all tables of its database, on some of its columns, through an LF-tag expression, or through a data
    cells filter (`filters`: the table's filters by name). Rows are limited only when every SELECT it holds comes
    through data cells filters; several filters' rows add up (OR)."""
    permissions: set[str] = set()
    readable: set[str] = set()
    filtered: set[str] = set()
    rows: list[str | None] = []
    all_columns = set(facts.columns)
    for grant in grants:
        if grant_names(grant["Principal"]["DataLakePrincipalIdentifier"]) not in names:
            continue
        held = set(grant["Permissions"]) | set(grant["PermissionsWithGrantOption"])
        resource = grant["Resource"]
        if "Table" in resource and _table_grant_applies(resource["Table"], facts):
            permissions |= held
            if held & READS_TABLE:
                readable |= all_columns
        elif "TableWithColumns" in resource and _table_grant_applies(resource["TableWithColumns"], facts):
            body = resource["TableWithColumns"]
            permissions |= held
            if "ColumnWildcard" in body:
                readable |= all_columns - set((body["ColumnWildcard"] or {}).get("ExcludedColumnNames", []))
            else:
                readable |= all_columns & set(body.get("ColumnNames", []))
        elif "LFTagPolicy" in resource and resource["LFTagPolicy"]["ResourceType"] == "TABLE":
            expression = resource["LFTagPolicy"]["Expression"]
            table_tags = effective_tags(facts.database_tags, facts.table_tags)
            tagged = {column for column in facts.columns
                      if matches(expression, effective_tags(table_tags, None, facts.column_tags.get(column)))}
            if tagged or matches(expression, table_tags):
                permissions |= held
                if held & READS_TABLE:
                    readable |= tagged
        elif "DataCellsFilter" in resource:
            body = resource["DataCellsFilter"]
            cells = (filters or {}).get(body.get("Name"))
            if cells is None or (body["DatabaseName"], body["TableName"]) != (facts.database, facts.name):
                continue
            permissions |= held
            if held & READS_TABLE:
                filtered |= filter_columns(cells, facts.columns)
                rows.append(row_expression(cells))
    row_filter = None if readable or None in rows or not rows else " OR ".join(f"({expression})" for expression in rows)
    readable |= filtered
    return TableAccess(bool(permissions & SEES_TABLE), tuple(c for c in facts.columns if c in readable), frozenset(permissions),
                       row_filter)


def database_access(grants: list[dict], names: set[str], database: str, database_tags: dict) -> frozenset[str]:
    """The permissions the principal holds on a database itself (directly or through an LF-tag expression)."""
    permissions: set[str] = set()
    for grant in grants:
        if grant_names(grant["Principal"]["DataLakePrincipalIdentifier"]) not in names:
            continue
        resource = grant["Resource"]
        held = set(grant["Permissions"]) | set(grant["PermissionsWithGrantOption"])
        if "Database" in resource and resource["Database"].get("Name") == database:
            permissions |= held
        elif ("LFTagPolicy" in resource and resource["LFTagPolicy"]["ResourceType"] == "DATABASE"
              and matches(resource["LFTagPolicy"]["Expression"], database_tags)):
            permissions |= held
    return frozenset(permissions)


def catalog_access(grants: list[dict], names: set[str]) -> frozenset[str]:
    """The permissions the principal holds on the catalog (CREATE_DATABASE, CREATE_LF_TAG, ...)."""
    return frozenset(p for grant in grants if "Catalog" in grant["Resource"]
                     and grant_names(grant["Principal"]["DataLakePrincipalIdentifier"]) in names
                     for p in grant["Permissions"] + grant["PermissionsWithGrantOption"])


def governed(grants: list[dict], facts: TableFacts) -> bool:
    """Whether Lake Formation decides access to the table: not while IAMAllowedPrincipals holds a grant on it
    (then IAM policies alone decide, as on AWS under the default settings)."""
    return not table_access(grants, {IAM_ALLOWED_PRINCIPALS}, facts).sees


def listed(grant: dict, principal: str | None, resource: dict | None, resource_type: str | None) -> bool:
    """Whether ListPermissions' filters (Principal, Resource, ResourceType) keep this grant."""
    if principal and grant["Principal"]["DataLakePrincipalIdentifier"] != principal:
        return False
    kind = resource_kind(grant["Resource"])
    if resource_type and RESOURCE_TYPE_KINDS.get(resource_type) != kind and not (
            resource_type == "TABLE" and kind == "TableWithColumns"):
        return False
    if resource is not None:
        wanted_kind = resource_kind(resource)
        wanted, body = resource[wanted_kind], grant["Resource"][kind]
        if wanted_kind == "Table" and kind in ("Table", "TableWithColumns"):  # a table's column grants are its grants
            return body.get("DatabaseName") == wanted.get("DatabaseName") and (
                "TableWildcard" in wanted or body.get("Name") == wanted.get("Name"))
        return wanted_kind == kind and all(body.get(field) == value for field, value in wanted.items())
    return True


RESOURCE_TYPE_KINDS = {"CATALOG": "Catalog", "DATABASE": "Database", "TABLE": "Table", "DATA_LOCATION": "DataLocation",
                       "LF_TAG": "LFTag", "LF_TAG_POLICY": "LFTagPolicy", "LF_TAG_POLICY_DATABASE": "LFTagPolicy",
                       "LF_TAG_POLICY_TABLE": "LFTagPolicy"}
