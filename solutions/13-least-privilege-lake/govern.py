"""Lab 13, part 3 — Lake Formation decides what analysts see: EU customers, without the personal columns.

The catalog database was made before anyone changed the account's Lake Formation settings, so it and its table
hand ALL to IAM_ALLOWED_PRINCIPALS (IAM policies alone decide, grants restrict nothing). Emptying the account's
defaults changes nothing already made: the database keeps its own table defaults, and the grants already given
stay until they are revoked.
"""

import boto3

from roles import ANALYST, DATABASE, LAKE, STEWARD, account

TABLE = "customers"
FILTER = "analysts_eu_no_pii"
PII_COLUMNS = ["full_name", "email", "phone", "ssn", "card_number", "iban"]
EVERYONE = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}
ANALYST_ARN = f"arn:aws:iam::{account}:role/{ANALYST}"
STEWARD_ARN = f"arn:aws:iam::{account}:role/{STEWARD}"

lakeformation = boto3.client("lakeformation")
glue = boto3.client("glue")


def revoke_quietly(principal: dict, resource: dict, permissions: list[str]) -> None:
    try:
        lakeformation.revoke_permissions(Principal=principal, Resource=resource, Permissions=permissions)
    except (lakeformation.exceptions.InvalidInputException, lakeformation.exceptions.EntityNotFoundException):
        pass  # not granted (any more)


def lake_formation_decides() -> None:
    settings = lakeformation.get_data_lake_settings()["DataLakeSettings"]
    admins = [a for a in settings.get("DataLakeAdmins", []) if a["DataLakePrincipalIdentifier"] != STEWARD_ARN]
    settings.update(DataLakeAdmins=admins + [{"DataLakePrincipalIdentifier": STEWARD_ARN}],
                    CreateDatabaseDefaultPermissions=[], CreateTableDefaultPermissions=[])
    lakeformation.put_data_lake_settings(DataLakeSettings=settings)
    # the trap: the database keeps the table defaults it was made with
    database = glue.get_database(Name=DATABASE)["Database"]
    glue.update_database(Name=DATABASE, DatabaseInput={"Name": DATABASE, "Description": database.get("Description", ""),
                                                       "CreateTableDefaultPermissions": []})
    revoke_quietly(EVERYONE, {"Database": {"Name": DATABASE}}, ["ALL"])
    for table in glue.get_tables(DatabaseName=DATABASE)["TableList"]:
        revoke_quietly(EVERYONE, {"Table": {"DatabaseName": DATABASE, "Name": table["Name"]}}, ["ALL"])


def register_lake() -> None:
    """Integrated engines read the lake with the steward's rights, vended by Lake Formation to whoever it lets in."""
    try:
        lakeformation.register_resource(ResourceArn=f"arn:aws:s3:::{LAKE}", RoleArn=STEWARD_ARN)
    except lakeformation.exceptions.AlreadyExistsException:
        pass


def analysts_see_eu_without_pii() -> None:
    table = {"TableCatalogId": account, "DatabaseName": DATABASE, "TableName": TABLE, "Name": FILTER}
    definition = {**table, "RowFilter": {"FilterExpression": "region = 'EU'"}, "ColumnWildcard": {"ExcludedColumnNames": PII_COLUMNS}}
    try:
        lakeformation.create_data_cells_filter(TableData=definition)
    except lakeformation.exceptions.AlreadyExistsException:
        lakeformation.update_data_cells_filter(TableData=definition)
    analyst = {"DataLakePrincipalIdentifier": ANALYST_ARN}
    lakeformation.grant_permissions(Principal=analyst, Resource={"Database": {"Name": DATABASE}}, Permissions=["DESCRIBE"])
    lakeformation.grant_permissions(Principal=analyst, Resource={"DataCellsFilter": table}, Permissions=["SELECT"])


if __name__ == "__main__":
    lake_formation_decides()
    register_lake()
    analysts_see_eu_without_pii()
    print(f"Lake Formation governs {DATABASE}: {ANALYST} reads {TABLE} through filter {FILTER}")
