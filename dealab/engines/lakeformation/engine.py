"""The Lake Formation engine: the Lake Formation API answered here, and its grants enforced where AWS enforces them.

Answered: data lake settings (admins, the default permissions of new databases and tables), registered locations,
grants and revokes (catalog, database, table, columns with ColumnWildcard/ExcludedColumnNames, data locations,
LF-tags and LF-tag expressions), LF-tags on databases, tables and columns. State is one document in
state_dir/lakeformation/, so it survives restarts and works in front of any backend.

Watched: Glue's CreateDatabase/CreateTable (whoever makes them: a learner, Athena's DDL, a crawler) get the
default grants AWS gives them — ALL to IAM_ALLOWED_PRINCIPALS unless the settings (for a database) or the database's
own CreateTableDefaultPermissions (for its tables) were emptied; deletes drop the grants on what they deleted.

Enforced, for IAM principals (the account root, every call made inside the stack, is not governed): Glue GetTable
and GetTables by a principal without permissions on a governed table are refused or filtered, and show only the
columns it may read; glue:GetUnfilteredTableMetadata answers what integrated engines ask before reading a table
(the Athena engine asks it for each table of a query run by an IAM principal). A table is governed once no
IAM_ALLOWED_PRINCIPALS grant reaches it — exactly AWS's opt-in.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from datetime import datetime, timezone

from dealab.engines.lakeformation import permissions as lf
from dealab.wire import access, labtime, paging
from dealab.wire.engine import ANY_OPERATION, ENGINE_HEADER, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile

ACCOUNT_ID = "123456789012"  # the one account every caller of the stack is (moto's default)
SERVICE_LINKED_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/lakeformation.amazonaws.com/AWSServiceRoleForLakeFormationDataAccess"
ALL_TO_IAM_ALLOWED = [{"Principal": {"DataLakePrincipalIdentifier": lf.IAM_ALLOWED_PRINCIPALS}, "Permissions": ["ALL"]}]
# GetDataLakeSettings of an account that never changed them.
DEFAULT_SETTINGS = {
    "DataLakeAdmins": [], "ReadOnlyAdmins": [],
    "CreateDatabaseDefaultPermissions": ALL_TO_IAM_ALLOWED, "CreateTableDefaultPermissions": ALL_TO_IAM_ALLOWED,
    "Parameters": {"CROSS_ACCOUNT_VERSION": "1", "SET_CONTEXT": "TRUE"}, "TrustedResourceOwners": [],
    "AllowExternalDataFiltering": False, "AllowFullTableExternalDataAccess": False, "ExternalDataFilteringAllowList": [],
    "AuthorizedSessionTagValueList": [],
}
# The key under QuerySessionContext.AdditionalContext by which an engine names the principal it asks for (trusted
# only on an engine's own call: the gateway drops the engine header from the network).
PRINCIPAL_CONTEXT_KEY = "dealab:principal"
LF_OPERATIONS = (
    "GetDataLakeSettings", "PutDataLakeSettings", "RegisterResource", "DeregisterResource", "ListResources",
    "DescribeResource", "UpdateResource", "GrantPermissions", "RevokePermissions", "BatchGrantPermissions",
    "BatchRevokePermissions", "ListPermissions", "CreateLFTag", "GetLFTag", "UpdateLFTag", "DeleteLFTag", "ListLFTags",
    "AddLFTagsToResource", "RemoveLFTagsFromResource", "GetResourceLFTags", "CreateDataCellsFilter", "GetDataCellsFilter",
    "UpdateDataCellsFilter", "DeleteDataCellsFilter", "ListDataCellsFilter", "GetTemporaryGlueTableCredentials",
    "GetTemporaryGluePartitionCredentials",
)
# Credential vending (IAM action lakeformation:GetDataAccess): the duration AWS allows a vended session (seconds), and what each Lake Formation permission lets the
# vended credentials do with the table's objects
VENDED_SECONDS = (900, 43200, 3600)
OBJECT_ACTIONS = {"SELECT": ["s3:GetObject"], "INSERT": ["s3:PutObject"], "DELETE": ["s3:DeleteObject"],
                  "ALTER": [], "DESCRIBE": [], "DROP": []}
GLUE_WATCHED = ("CreateDatabase", "UpdateDatabase", "DeleteDatabase", "CreateTable", "DeleteTable", "BatchDeleteTable")


class LakeFormationError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class LakeFormationEngine(Engine):
    name = "lakeformation"
    operations = {("lakeformation", op): f"op_{op}" for op in LF_OPERATIONS} | {
        ("lakeformation", ANY_OPERATION): "_not_answered",
        ("glue", "GetTable"): "_get_table",
        ("glue", "GetTables"): "_get_tables",
        ("glue", "GetDatabase"): "_get_database",
        ("glue", "GetDatabases"): "_get_databases",
        ("glue", "GetUnfilteredTableMetadata"): "_unfiltered_table",
    } | {("glue", op): "_catalog_change" for op in GLUE_WATCHED}

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.file = JsonFile(context.state_dir / self.name / "state.json")
        self._lock = threading.RLock()
        self.state = self.file.load({})
        self._fill_defaults()

    def _fill_defaults(self) -> None:
        self.state.setdefault("settings", copy.deepcopy(DEFAULT_SETTINGS))
        if "grants" not in self.state:  # a new account: IAM principals may create databases ("Database creators")
            catalog = lf.normalized({"Catalog": {}}, ACCOUNT_ID)
            self.state["grants"] = {lf.grant_key(lf.IAM_ALLOWED_PRINCIPALS, catalog): lf.merged(
                None, lf.IAM_ALLOWED_PRINCIPALS, catalog, ["CREATE_DATABASE"], [])}
        for name in ("resources", "tags", "resource_tags", "table_defaults", "creators", "cell_filters"):
            self.state.setdefault(name, {})

    def _save(self) -> None:
        self.file.save(self.state)

    def reset(self) -> None:
        with self._lock:
            self.state = {}
            self._fill_defaults()
            self._save()

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            if request.service == "glue":
                return handler(request)
            with self._lock:
                return AwsResponse.json(handler(request.json, request.caller_arn))
        except lf.InvalidInput as error:
            return AwsResponse.json_error("InvalidInputException", str(error))
        except LakeFormationError as error:
            return AwsResponse.json_error(error.code, error.message, error.status)

    def _not_answered(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json_error("InvalidInputException", f"dealab does not answer lakeformation:{request.operation} "
                                      "(docs/lakeformation.md lists what it answers)")

    # ---- who is asking ---------------------------------------------------------------------------------------
    @staticmethod
    def _governs(caller_arn: str | None) -> bool:
        """IAM principals are governed; the account root (every call made inside the stack) is not."""
        return bool(caller_arn) and not caller_arn.endswith(":root")

    def _is_admin(self, caller_arn: str | None) -> bool:
        if not self._governs(caller_arn):
            return True
        names = lf.principal_names(caller_arn)
        return any(lf.grant_names(a["DataLakePrincipalIdentifier"]) in names for a in self.state["settings"]["DataLakeAdmins"])

    # ---- data lake settings ------------------------------------------------------------------------------------
    def op_GetDataLakeSettings(self, params: dict, caller: str | None) -> dict:
        return {"DataLakeSettings": self.state["settings"]}

    def op_PutDataLakeSettings(self, params: dict, caller: str | None) -> dict:
        settings = params.get("DataLakeSettings")
        if not isinstance(settings, dict):
            raise lf.InvalidInput("DataLakeSettings is required")
        # missing lists are emptied, as AWS replaces the whole document; changing defaults revokes nothing granted
        self.state["settings"] = {**DEFAULT_SETTINGS, "CreateDatabaseDefaultPermissions": [], "CreateTableDefaultPermissions": [],
                                  **settings}
        self._save()
        return {}

    # ---- registered locations ----------------------------------------------------------------------------------
    def op_RegisterResource(self, params: dict, caller: str | None) -> dict:
        arn = params.get("ResourceArn", "")
        if not arn.startswith("arn:aws:s3:::"):
            raise lf.InvalidInput(f"ResourceArn must be an Amazon S3 location: {arn}")
        if arn in self.state["resources"]:
            raise LakeFormationError("AlreadyExistsException", "Resource is already registered")
        role = SERVICE_LINKED_ROLE if params.get("UseServiceLinkedRole") or not params.get("RoleArn") else params["RoleArn"]
        self.state["resources"][arn] = {"ResourceArn": arn, "RoleArn": role, "LastModified": labtime.unix_time(),
                                        "WithFederation": bool(params.get("WithFederation")),
                                        "HybridAccessEnabled": bool(params.get("HybridAccessEnabled"))}
        self._save()
        return {}

    def _registered(self, arn: str) -> dict:
        found = self.state["resources"].get(arn)
        if found is None:
            raise LakeFormationError("EntityNotFoundException", "Entity not found")
        return found

    def op_DeregisterResource(self, params: dict, caller: str | None) -> dict:
        self._registered(params.get("ResourceArn", ""))
        del self.state["resources"][params["ResourceArn"]]
        self._save()
        return {}

    def op_DescribeResource(self, params: dict, caller: str | None) -> dict:
        return {"ResourceInfo": self._registered(params.get("ResourceArn", ""))}

    def op_UpdateResource(self, params: dict, caller: str | None) -> dict:
        found = self._registered(params.get("ResourceArn", ""))
        found.update(RoleArn=params.get("RoleArn", found["RoleArn"]), LastModified=labtime.unix_time())
        if "HybridAccessEnabled" in params:
            found["HybridAccessEnabled"] = bool(params["HybridAccessEnabled"])
        self._save()
        return {}

    def op_ListResources(self, params: dict, caller: str | None) -> dict:
        return {"ResourceInfoList": list(self.state["resources"].values())}

    def is_registered(self, location: str) -> bool:
        """Whether an s3:// location lies under a registered one (Lake Formation vends its data)."""
        arn = "arn:aws:s3:::" + location.removeprefix("s3://").rstrip("/")
        return any(arn == r or arn.startswith(r.rstrip("/") + "/") for r in self.state["resources"])

    # ---- credential vending ---------------------------------------------------------------------------------------
    def op_GetTemporaryGlueTableCredentials(self, params: dict, caller: str | None) -> dict:
        return self._vend(params, caller, None)

    def op_GetTemporaryGluePartitionCredentials(self, params: dict, caller: str | None) -> dict:
        values = (params.get("Partition") or {}).get("Values")
        if not values:
            raise lf.InvalidInput("Partition.Values is required")
        return self._vend(params, caller, values)

    def _vend(self, params: dict, caller: str | None, partition: list[str] | None) -> dict:
        """Credentials for a table's (or one partition's) data, as integrated engines get them (IAM action
        lakeformation:GetDataAccess): the role its location is registered with, assumed by Lake Formation and
        narrowed by a session policy to that location and to what the requested permissions allow; for a caller
        holding those permissions on the table."""
        parts = str(params.get("TableArn", "")).split(":", 5)
        if len(parts) != 6 or parts[2] != "glue" or not parts[5].startswith("table/") or parts[5].count("/") != 2:
            raise lf.InvalidInput(f"TableArn is not a Glue table's ARN: {params.get('TableArn', '')}")
        database, name = parts[5].split("/")[1:]
        requested = list(params.get("Permissions") or ["SELECT"])
        unknown = sorted(set(requested) - set(OBJECT_ACTIONS) - {"ALL"})
        if unknown:
            raise lf.InvalidInput(f"Permissions not valid for a table: {', '.join(unknown)}")
        least, most, default = VENDED_SECONDS
        duration = int(params.get("DurationSeconds") or default)
        if not least <= duration <= most:
            raise lf.InvalidInput(f"DurationSeconds must be between {least} and {most}")
        glue = self.own_client("glue")
        try:
            table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        except glue.exceptions.EntityNotFoundException as error:
            raise LakeFormationError("EntityNotFoundException", error.response["Error"]["Message"]) from None
        facts = self._facts(database, name, table)
        found = self.access(caller, facts)
        refused = LakeFormationError("AccessDeniedException", f"Insufficient Lake Formation permission(s) on {table['Name']}")
        if found is not None:
            if "ALL" not in found.permissions and not set(requested) <= found.permissions:
                raise refused
            supported = set(params.get("SupportedPermissionTypes") or ["COLUMN_PERMISSION"])
            if (found.row_filter and "CELL_FILTER_PERMISSION" not in supported
                    or set(found.columns) != set(facts.columns) and not supported & {"COLUMN_PERMISSION", "CELL_FILTER_PERMISSION"}):
                raise LakeFormationError("PermissionTypeMismatchException", "The engine does not support filtering data based on the enforced permissions")
        location = (table.get("StorageDescriptor") or {}).get("Location", "")
        if partition is not None:
            try:
                location = glue.get_partition(DatabaseName=database, TableName=name, PartitionValues=partition)["Partition"]["StorageDescriptor"]["Location"]
            except glue.exceptions.EntityNotFoundException as error:
                raise LakeFormationError("EntityNotFoundException", error.response["Error"]["Message"]) from None
        if params.get("S3Path"):  # a narrower path inside the table's location
            if not self._within(params["S3Path"], location):
                raise lf.InvalidInput(f"S3Path {params['S3Path']} is not within the table's location {location}")
            location = params["S3Path"]
        registered = self._registration_of(location) if location.startswith("s3://") else None
        if registered is None:
            raise lf.InvalidInput(f"The location of {database}.{name} ({location or 'none'}) is not registered with Lake Formation")
        issuer = access.session_issuer(self.context.loopback)
        if issuer is None:
            raise LakeFormationError("InternalServiceException", "dealab cannot vend credentials: no IAM engine in this stack")
        vended = issuer(registered["RoleArn"], "lakeformation.amazonaws.com", f"AWSLF-00-{secrets.token_hex(8)}",
                        json.dumps(self._scope_down(location, requested)), duration)
        if isinstance(vended, str):
            raise LakeFormationError("AccessDeniedException", f"Lake Formation could not assume the role registered with {registered['ResourceArn']}: {vended}")
        expiration = datetime.strptime(vended["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        return {"AccessKeyId": vended["AccessKeyId"], "SecretAccessKey": vended["SecretAccessKey"], "SessionToken": vended["SessionToken"],
                "Expiration": expiration.timestamp(), "VendedS3Path": [location]}

    def _registration_of(self, location: str) -> dict | None:
        """The registered resource an s3:// location lies under (the most specific one), or None."""
        covering = [r for key, r in self.state["resources"].items() if self._within(location, "s3://" + key.removeprefix("arn:aws:s3:::"))]
        return max(covering, key=lambda r: len(r["ResourceArn"]), default=None)

    @staticmethod
    def _within(path: str, location: str) -> bool:
        path, location = path.rstrip("/"), location.rstrip("/")
        return path == location or path.startswith(location + "/")

    @staticmethod
    def _scope_down(location: str, permissions: list[str]) -> dict:
        """The session policy of vended credentials: the table's objects, for what the permissions allow."""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        actions = sorted({a for p in permissions for a in (
            [a for group in OBJECT_ACTIONS.values() for a in group] if p == "ALL" else OBJECT_ACTIONS[p])})
        statements = [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
                       "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}}]
        if actions:
            statements.append({"Effect": "Allow", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"})
        return {"Version": "2012-10-17", "Statement": statements}

    # ---- grants --------------------------------------------------------------------------------------------------
    def _grant(self, principal: dict, resource: dict, permissions: list[str], grantable: list[str], caller: str | None) -> None:
        identifier = (principal or {}).get("DataLakePrincipalIdentifier")
        if not identifier:
            raise lf.InvalidInput("Principal.DataLakePrincipalIdentifier is required")
        resource = lf.normalized(resource, ACCOUNT_ID)
        lf.check_permissions(resource, permissions + grantable)
        self._check_grantor(caller, resource, permissions + grantable)
        self._check_exists(resource)
        key = lf.grant_key(identifier, resource)
        self.state["grants"][key] = lf.merged(self.state["grants"].get(key), identifier, resource, permissions, grantable)

    def _revoke(self, principal: dict, resource: dict, permissions: list[str], grantable: list[str], caller: str | None) -> None:
        identifier = (principal or {}).get("DataLakePrincipalIdentifier", "")
        resource = lf.normalized(resource, ACCOUNT_ID)
        self._check_grantor(caller, resource, permissions + grantable)
        key = lf.grant_key(identifier, resource)
        grant = self.state["grants"].get(key)
        if grant is None:
            raise lf.InvalidInput(f"No permissions revoked. Grantee '{identifier}' does not have {permissions} permission on the resource.")
        left = lf.revoked(grant, resource, permissions, grantable)
        if left is None:
            del self.state["grants"][key]

    def _check_grantor(self, caller: str | None, resource: dict, permissions: list[str]) -> None:
        """Admins grant anything; others only what they hold with the grant option (or on what they created)."""
        if self._is_admin(caller):
            return
        names = lf.principal_names(caller)
        kind = lf.resource_kind(resource)
        body = resource[kind]
        if kind in ("Table", "TableWithColumns"):
            facts = self._facts(body["DatabaseName"], body.get("Name", ""), with_columns=False)
            creator = self.state["creators"].get(f"{facts.database}/{facts.name}")
        elif kind == "Database":
            creator = self.state["creators"].get(body["Name"])
        else:
            creator = None
        if creator and creator in names:
            return
        grantable = {p for g in self.state["grants"].values()
                     if lf.grant_names(g["Principal"]["DataLakePrincipalIdentifier"]) in names and g["Resource"] == resource
                     for p in g["PermissionsWithGrantOption"]}
        if not set(permissions) <= grantable and "ALL" not in grantable:
            raise LakeFormationError("AccessDeniedException", "Resource does not exist or requester is not authorized to access requested permissions.")

    def _check_exists(self, resource: dict) -> None:
        kind = lf.resource_kind(resource)
        body = resource[kind]
        glue = self.own_client("glue")
        try:
            if kind == "Database":
                glue.get_database(Name=body["Name"])
            elif kind in ("Table", "TableWithColumns") and body.get("Name"):
                glue.get_table(DatabaseName=body["DatabaseName"], Name=body["Name"])
            elif kind in ("Table", "TableWithColumns"):
                glue.get_database(Name=body["DatabaseName"])
        except glue.exceptions.EntityNotFoundException as error:
            raise LakeFormationError("EntityNotFoundException", error.response["Error"]["Message"]) from None
        if kind == "LFTag" and body.get("TagKey") not in self.state["tags"]:
            raise LakeFormationError("EntityNotFoundException", f"Tag key {body.get('TagKey')} does not exist")
        if kind == "DataCellsFilter":
            self._cell_filter(body["DatabaseName"], body["TableName"], body.get("Name", ""))

    def op_GrantPermissions(self, params: dict, caller: str | None) -> dict:
        self._grant(params.get("Principal"), params.get("Resource") or {}, params.get("Permissions") or [],
                    params.get("PermissionsWithGrantOption") or [], caller)
        self._save()
        return {}

    def op_RevokePermissions(self, params: dict, caller: str | None) -> dict:
        self._revoke(params.get("Principal"), params.get("Resource") or {}, params.get("Permissions") or [],
                     params.get("PermissionsWithGrantOption") or [], caller)
        self._save()
        return {}

    def _batch(self, params: dict, caller: str | None, action) -> dict:
        failures = []
        for entry in params.get("Entries") or []:
            try:
                action(entry.get("Principal"), entry.get("Resource") or {}, entry.get("Permissions") or [],
                       entry.get("PermissionsWithGrantOption") or [], caller)
            except (lf.InvalidInput, LakeFormationError) as error:
                code = error.code if isinstance(error, LakeFormationError) else "InvalidInputException"
                failures.append({"RequestEntry": entry, "Error": {"ErrorCode": code, "ErrorMessage": str(error)}})
        self._save()
        return {"Failures": failures}

    def op_BatchGrantPermissions(self, params: dict, caller: str | None) -> dict:
        return self._batch(params, caller, self._grant)

    def op_BatchRevokePermissions(self, params: dict, caller: str | None) -> dict:
        return self._batch(params, caller, self._revoke)

    def op_ListPermissions(self, params: dict, caller: str | None) -> dict:
        principal = (params.get("Principal") or {}).get("DataLakePrincipalIdentifier")
        resource = lf.normalized(params["Resource"], ACCOUNT_ID) if params.get("Resource") else None
        grants = [g for g in self.state["grants"].values() if lf.listed(g, principal, resource, params.get("ResourceType"))]
        return paging.page("PrincipalResourcePermissions", grants, params, default=100,
                           invalid_token=lambda token: lf.InvalidInput(f"Invalid NextToken: {token}"))

    # ---- LF-tags ---------------------------------------------------------------------------------------------------
    def op_CreateLFTag(self, params: dict, caller: str | None) -> dict:
        key, values = params.get("TagKey"), params.get("TagValues") or []
        if not key or not values:
            raise lf.InvalidInput("TagKey and TagValues are required")
        if key in self.state["tags"]:
            raise LakeFormationError("AlreadyExistsException", f"Tag key {key} already exists")
        self.state["tags"][key] = sorted(set(values))
        self._save()
        return {}

    def _tag(self, key: str) -> list[str]:
        if key not in self.state["tags"]:
            raise LakeFormationError("EntityNotFoundException", f"Tag key {key} does not exist")
        return self.state["tags"][key]

    def op_GetLFTag(self, params: dict, caller: str | None) -> dict:
        return {"CatalogId": ACCOUNT_ID, "TagKey": params.get("TagKey"), "TagValues": self._tag(params.get("TagKey", ""))}

    def op_UpdateLFTag(self, params: dict, caller: str | None) -> dict:
        values = set(self._tag(params.get("TagKey", "")))
        values = (values | set(params.get("TagValuesToAdd") or [])) - set(params.get("TagValuesToDelete") or [])
        self.state["tags"][params["TagKey"]] = sorted(values)
        self._save()
        return {}

    def op_DeleteLFTag(self, params: dict, caller: str | None) -> dict:
        self._tag(params.get("TagKey", ""))
        del self.state["tags"][params["TagKey"]]
        for tags in self.state["resource_tags"].values():
            tags.pop(params["TagKey"], None)
        self._save()
        return {}

    def op_ListLFTags(self, params: dict, caller: str | None) -> dict:
        return {"LFTags": [{"CatalogId": ACCOUNT_ID, "TagKey": k, "TagValues": v} for k, v in sorted(self.state["tags"].items())]}

    @staticmethod
    def _tagged_keys(resource: dict) -> list[str]:
        """The resource_tags keys a resource names: 'db', 'db/table' or one 'db/table/column' per column."""
        if "Database" in resource:
            return [resource["Database"]["Name"].lower()]
        if "Table" in resource:
            return [f"{resource['Table']['DatabaseName']}/{resource['Table']['Name']}".lower()]
        if "TableWithColumns" in resource:
            body = resource["TableWithColumns"]
            return [f"{body['DatabaseName']}/{body['Name']}/{column}".lower() for column in body.get("ColumnNames") or []]
        raise lf.InvalidInput("LF-tags are assigned to a Database, Table or TableWithColumns")

    def op_AddLFTagsToResource(self, params: dict, caller: str | None) -> dict:
        failures = []
        keys = self._tagged_keys(params.get("Resource") or {})
        self._check_exists(lf.normalized(params["Resource"], ACCOUNT_ID))
        for pair in params.get("LFTags") or []:
            allowed = self.state["tags"].get(pair.get("TagKey"))
            if allowed is None or not set(pair.get("TagValues") or []) <= set(allowed) or len(pair.get("TagValues") or []) != 1:
                failures.append({"LFTag": pair, "Error": {"ErrorCode": "InvalidInputException",
                                                          "ErrorMessage": "Tag key or value does not exist, or more than one value given"}})
                continue
            for key in keys:
                self.state["resource_tags"].setdefault(key, {})[pair["TagKey"]] = list(pair["TagValues"])
        self._save()
        return {"Failures": failures}

    def op_RemoveLFTagsFromResource(self, params: dict, caller: str | None) -> dict:
        for key in self._tagged_keys(params.get("Resource") or {}):
            for pair in params.get("LFTags") or []:
                self.state["resource_tags"].get(key, {}).pop(pair.get("TagKey"), None)
        self._save()
        return {"Failures": []}

    def op_GetResourceLFTags(self, params: dict, caller: str | None) -> dict:
        resource = params.get("Resource") or {}
        def listed(tags: dict) -> list[dict]:
            return [{"CatalogId": ACCOUNT_ID, "TagKey": k, "TagValues": v} for k, v in sorted(tags.items())]
        if "Database" in resource:
            return {"LFTagOnDatabase": listed(self._tags_of(resource["Database"]["Name"].lower()))}
        body = resource.get("Table") or resource.get("TableWithColumns") or {}
        facts = self._facts(body.get("DatabaseName", ""), body.get("Name", ""))
        table_tags = lf.effective_tags(facts.database_tags, facts.table_tags)
        return {"LFTagOnDatabase": listed(facts.database_tags), "LFTagsOnTable": listed(table_tags),
                "LFTagsOnColumns": [{"Name": c, "LFTags": listed(lf.effective_tags(table_tags, None, facts.column_tags.get(c)))}
                                    for c in facts.columns]}

    def _tags_of(self, key: str) -> dict:
        return self.state["resource_tags"].get(key, {})

    # ---- data cells filters -----------------------------------------------------------------------------------------
    def _cell_filter(self, database: str, table: str, name: str) -> dict:
        found = self.state["cell_filters"].get(f"{database}/{table}/{name}".lower())
        if found is None:
            raise LakeFormationError("EntityNotFoundException", f"Data cells filter {name} on {database}.{table} does not exist")
        return found

    def _filter_data(self, data: dict) -> dict:
        data = dict(data or {})
        if not data.get("Name") or not data.get("DatabaseName") or not data.get("TableName"):
            raise lf.InvalidInput("TableData needs Name, DatabaseName and TableName")
        row_filter = data.get("RowFilter") or {}
        if "AllRowsWildcard" not in row_filter and not str(row_filter.get("FilterExpression", "")).strip():
            raise lf.InvalidInput("RowFilter needs a FilterExpression or AllRowsWildcard")
        if not data.get("ColumnNames") and "ColumnWildcard" not in data:
            raise lf.InvalidInput("TableData needs ColumnNames or ColumnWildcard")
        data["DatabaseName"], data["TableName"] = data["DatabaseName"].lower(), data["TableName"].lower()
        data["TableCatalogId"] = data.get("TableCatalogId") or ACCOUNT_ID
        self._check_exists({"Table": {"DatabaseName": data["DatabaseName"], "Name": data["TableName"]}})
        return data

    def op_CreateDataCellsFilter(self, params: dict, caller: str | None) -> dict:
        data = self._filter_data(params.get("TableData"))
        key = f"{data['DatabaseName']}/{data['TableName']}/{data['Name']}".lower()
        if key in self.state["cell_filters"]:
            raise LakeFormationError("AlreadyExistsException", f"Data cells filter {data['Name']} already exists")
        self._check_grantor(caller, {"Table": {"DatabaseName": data["DatabaseName"], "Name": data["TableName"], "CatalogId": ACCOUNT_ID}}, ["SELECT"])
        self.state["cell_filters"][key] = data
        self._save()
        return {}

    def op_UpdateDataCellsFilter(self, params: dict, caller: str | None) -> dict:
        data = self._filter_data(params.get("TableData"))
        self._cell_filter(data["DatabaseName"], data["TableName"], data["Name"])
        self.state["cell_filters"][f"{data['DatabaseName']}/{data['TableName']}/{data['Name']}".lower()] = data
        self._save()
        return {}

    def op_GetDataCellsFilter(self, params: dict, caller: str | None) -> dict:
        return {"DataCellsFilter": self._cell_filter(params.get("DatabaseName", ""), params.get("TableName", ""), params.get("Name", ""))}

    def op_DeleteDataCellsFilter(self, params: dict, caller: str | None) -> dict:
        found = self._cell_filter(params.get("DatabaseName", ""), params.get("TableName", ""), params.get("Name", ""))
        del self.state["cell_filters"][f"{found['DatabaseName']}/{found['TableName']}/{found['Name']}".lower()]
        for key, grant in list(self.state["grants"].items()):
            body = grant["Resource"].get("DataCellsFilter")
            if body and (body["DatabaseName"], body["TableName"], body.get("Name")) == (found["DatabaseName"], found["TableName"], found["Name"]):
                del self.state["grants"][key]
        self._save()
        return {}

    def op_ListDataCellsFilter(self, params: dict, caller: str | None) -> dict:
        table = params.get("Table") or {}
        prefix = f"{table.get('DatabaseName', '')}/{table.get('Name', '')}/".lower() if table else ""
        return {"DataCellsFilters": [f for key, f in sorted(self.state["cell_filters"].items()) if key.startswith(prefix)]}

    def _filters_of(self, facts: lf.TableFacts) -> dict:
        prefix = f"{facts.database}/{facts.name}/"
        return {f["Name"]: f for key, f in self.state["cell_filters"].items() if key.startswith(prefix)}

    # ---- tables as the evaluation sees them --------------------------------------------------------------------
    def _facts(self, database: str, name: str, table: dict | None = None, with_columns: bool = True) -> lf.TableFacts:
        database, name = database.lower(), name.lower()
        if table is None and with_columns:
            glue = self.own_client("glue")
            try:
                table = glue.get_table(DatabaseName=database, Name=name)["Table"]
            except glue.exceptions.EntityNotFoundException as error:
                raise LakeFormationError("EntityNotFoundException", error.response["Error"]["Message"]) from None
        columns = tuple(c["Name"] for c in ((table or {}).get("StorageDescriptor") or {}).get("Columns", []) + (table or {}).get("PartitionKeys", []))
        return lf.TableFacts(database, name, columns, self._tags_of(database), self._tags_of(f"{database}/{name}"),
                             {c: self._tags_of(f"{database}/{name}/{c.lower()}") for c in columns})

    def access(self, caller_arn: str | None, facts: lf.TableFacts) -> lf.TableAccess | None:
        """What the caller may do with the table; None when Lake Formation does not restrict it (the root, or a
        table IAMAllowedPrincipals still holds)."""
        grants = list(self.state["grants"].values())
        if not self._governs(caller_arn) or not lf.governed(grants, facts):
            return None
        names = lf.principal_names(caller_arn)
        if self.state["creators"].get(f"{facts.database}/{facts.name}") in names:
            return None
        found = lf.table_access(grants, names, facts, self._filters_of(facts))
        if not found.sees and self._is_admin(caller_arn):  # admins have an implicit DESCRIBE on every table
            return lf.TableAccess(True, (), frozenset({"DESCRIBE"}))
        return found

    def _filtered(self, caller_arn: str | None, table: dict) -> dict | None:
        """The table as GetTable shows it to the caller: None when hidden, else only the columns it may read."""
        facts = self._facts(table.get("DatabaseName", ""), table["Name"], table)
        with self._lock:
            found = self.access(caller_arn, facts)
        if found is None:
            return table
        if not found.sees:
            return None
        if found.permissions - {"SELECT"}:  # DESCRIBE (or more) on the table itself: its whole metadata
            return table
        shown = copy.deepcopy(table)
        readable = set(found.columns)
        descriptor = shown.get("StorageDescriptor") or {}
        if "Columns" in descriptor:
            descriptor["Columns"] = [c for c in descriptor["Columns"] if c["Name"] in readable]
        shown["PartitionKeys"] = [c for c in shown.get("PartitionKeys", []) if c["Name"] in readable]
        return shown

    # ---- Glue, as a governed principal sees it -----------------------------------------------------------------
    def _get_table(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200 or not self._governs(request.caller_arn):
            return response
        table = json.loads(response.read())["Table"]
        shown = self._filtered(request.caller_arn, table)
        if shown is None:
            return AwsResponse.json_error("AccessDeniedException", f"Insufficient Lake Formation permission(s) on {table['Name']} "
                                          f"(Database name: {table.get('DatabaseName', '')})")
        return AwsResponse.json({"Table": shown})

    def _get_tables(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200 or not self._governs(request.caller_arn):
            return response
        answer = json.loads(response.read())
        answer["TableList"] = [shown for shown in (self._filtered(request.caller_arn, t) for t in answer.get("TableList", []))
                               if shown is not None]
        return AwsResponse.json(answer)

    def _sees_database(self, caller_arn: str, database: str) -> bool:
        """Whether a principal sees a database: it is not governed (IAMAllowedPrincipals holds a grant on it), or
        the principal is an admin or its creator, or holds something on it or on a table in it."""
        database = database.lower()
        tags = self._tags_of(database)
        names = lf.principal_names(caller_arn)
        with self._lock:
            grants = list(self.state["grants"].values())
            if lf.database_access(grants, {lf.IAM_ALLOWED_PRINCIPALS}, database, tags) or self._is_admin(caller_arn):
                return True
            if self.state["creators"].get(database) in names or lf.database_access(grants, names, database, tags):
                return True
        for grant in grants:
            if lf.grant_names(grant["Principal"]["DataLakePrincipalIdentifier"]) not in names:
                continue
            resource = grant["Resource"]
            body = resource.get("Table") or resource.get("TableWithColumns") or resource.get("DataCellsFilter")
            if body is not None and body.get("DatabaseName") == database:
                return True
            policy = resource.get("LFTagPolicy")
            if policy is not None and policy["ResourceType"] == "TABLE" and lf.matches(policy["Expression"], tags):
                return True
        return False

    def _get_database(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200 or not self._governs(request.caller_arn):
            return response
        name = json.loads(response.read())["Database"]["Name"]
        if not self._sees_database(request.caller_arn, name):
            return AwsResponse.json_error("AccessDeniedException", f"Insufficient Lake Formation permission(s) on {name}")
        return response

    def _get_databases(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200 or not self._governs(request.caller_arn):
            return response
        answer = json.loads(response.read())
        answer["DatabaseList"] = [d for d in answer.get("DatabaseList", []) if self._sees_database(request.caller_arn, d["Name"])]
        return AwsResponse.json(answer)

    def _unfiltered_table(self, request: AwsRequest) -> AwsResponse:
        """glue:GetUnfilteredTableMetadata: the whole table, and what the caller may read of it. An engine asking
        for a query's principal names it in QuerySessionContext.AdditionalContext."""
        params = request.json
        caller = request.caller_arn
        if request.headers.get(ENGINE_HEADER):
            caller = ((params.get("QuerySessionContext") or {}).get("AdditionalContext") or {}).get(PRINCIPAL_CONTEXT_KEY)
        glue = self.own_client("glue")
        try:
            table = glue.get_table(DatabaseName=params.get("DatabaseName", ""), Name=params.get("Name", ""))["Table"]
        except glue.exceptions.EntityNotFoundException as error:
            return AwsResponse.json_error("EntityNotFoundException", error.response["Error"]["Message"])
        facts = self._facts(table.get("DatabaseName", ""), table["Name"], table)
        with self._lock:
            found = self.access(caller, facts)
        location = (table.get("StorageDescriptor") or {}).get("Location", "")
        if found is not None and not found.sees:
            return AwsResponse.json_error("AccessDeniedException", f"Insufficient Lake Formation permission(s) on {table['Name']}")
        row_filter = found.row_filter if found is not None else None
        if row_filter and "CELL_FILTER_PERMISSION" not in (params.get("SupportedPermissionTypes") or []):
            # the asking engine cannot apply the filter: it may not read the table at all
            return AwsResponse.json_error("AccessDeniedException", f"Insufficient Lake Formation permission(s) on {table['Name']}: "
                                          "a data cells filter applies and CELL_FILTER_PERMISSION is not supported by the caller")
        columns = list(facts.columns if found is None else found.columns)
        answer = {
            "Table": table,
            "AuthorizedColumns": columns,
            "IsRegisteredWithLakeFormation": self.is_registered(location) if location else False,
            "CellFilters": [{"ColumnName": c, "RowFilterExpression": row_filter} for c in columns] if row_filter else [],
            "Permissions": ["ALL"] if found is None else sorted(found.permissions),
            "ResourceArn": f"arn:aws:glue:{request.region}:{ACCOUNT_ID}:table/{facts.database}/{facts.name}",
        }
        if row_filter:
            answer["RowFilter"] = row_filter
        return AwsResponse.json(answer)

    # ---- Glue catalog changes: default grants, creators, forgetting what was deleted ---------------------------------
    def _catalog_change(self, request: AwsRequest) -> AwsResponse:
        params, operation = request.json, request.operation
        refusal = self._create_refusal(request.caller_arn, operation, params)
        if refusal is not None:
            return AwsResponse.json_error("AccessDeniedException", refusal)
        response = request.send_on()
        if response.status != 200:
            return response
        with self._lock:
            if operation == "CreateDatabase":
                database_input = params.get("DatabaseInput") or {}
                name = database_input.get("Name", "").lower()
                self._default_grants(self.state["settings"]["CreateDatabaseDefaultPermissions"], {"Database": {"Name": name}})
                # a database keeps the table defaults it was made with: later settings changes do not reach it
                defaults = database_input.get("CreateTableDefaultPermissions", self.state["settings"]["CreateTableDefaultPermissions"])
                self.state["table_defaults"][name] = defaults
                self._note_creator(request, name)
            elif operation == "UpdateDatabase" and "CreateTableDefaultPermissions" in (params.get("DatabaseInput") or {}):
                self.state["table_defaults"][params.get("Name", "").lower()] = params["DatabaseInput"]["CreateTableDefaultPermissions"]
            elif operation == "CreateTable":
                database = params.get("DatabaseName", "").lower()
                name = ((params.get("TableInput") or {}).get("Name") or params.get("Name") or "").lower()
                defaults = self.state["table_defaults"].get(database, self.state["settings"]["CreateTableDefaultPermissions"])
                self._default_grants(defaults, {"Table": {"DatabaseName": database, "Name": name}})
                self._note_creator(request, f"{database}/{name}")
            elif operation == "DeleteDatabase":
                self._forget(params.get("Name", "").lower(), None)
            elif operation in ("DeleteTable", "BatchDeleteTable"):
                for name in params.get("TablesToDelete") or [params.get("Name", "")]:
                    self._forget(params.get("DatabaseName", "").lower(), name.lower())
            else:
                return response
            self._save()
        return response

    def _create_refusal(self, caller_arn: str | None, operation: str, params: dict) -> str | None:
        """Why Lake Formation refuses a principal's CreateDatabase (CREATE_DATABASE on the catalog) or CreateTable
        (CREATE_TABLE on the database), or None. IAMAllowedPrincipals' grants count for everyone, as on AWS."""
        if operation not in ("CreateDatabase", "CreateTable") or self._is_admin(caller_arn):
            return None
        names = lf.principal_names(caller_arn) | {lf.IAM_ALLOWED_PRINCIPALS}
        with self._lock:
            grants = list(self.state["grants"].values())
            if operation == "CreateDatabase":
                held = lf.catalog_access(grants, names)
                return None if held & {"CREATE_DATABASE", "ALL"} else "Insufficient Lake Formation permission(s): Required Create Database on Catalog"
            database = params.get("DatabaseName", "").lower()
            if self.state["creators"].get(database) in names:
                return None
            held = lf.database_access(grants, names, database, self._tags_of(database))
        return None if held & {"CREATE_TABLE", "ALL"} else f"Insufficient Lake Formation permission(s): Required Create Table on {database}"

    def _default_grants(self, defaults: list[dict], resource: dict) -> None:
        resource = lf.normalized(resource, ACCOUNT_ID)
        for default in defaults:
            identifier = default["Principal"]["DataLakePrincipalIdentifier"]
            key = lf.grant_key(identifier, resource)
            self.state["grants"][key] = lf.merged(self.state["grants"].get(key), identifier, copy.deepcopy(resource),
                                                  list(default.get("Permissions") or []), [])

    def _note_creator(self, request: AwsRequest, key: str) -> None:
        if self._governs(request.caller_arn):
            self.state["creators"][key] = lf.identity(request.caller_arn)

    def _forget(self, database: str, table: str | None) -> None:
        """Drops grants, tags and creators of a deleted table (or of a deleted database and all its tables)."""
        def gone(body: dict) -> bool:
            if table is None:
                return body.get("Name") == database if "DatabaseName" not in body else body["DatabaseName"] == database
            return body.get("DatabaseName") == database and body.get("TableName", body.get("Name")) == table
        for key, grant in list(self.state["grants"].items()):
            kind = lf.resource_kind(grant["Resource"])
            if (kind in ("Database", "Table", "TableWithColumns", "DataCellsFilter") and (kind != "Database" or table is None)
                    and gone(grant["Resource"][kind])):
                del self.state["grants"][key]
        prefix = database if table is None else f"{database}/{table}"
        for store in ("resource_tags", "creators", "cell_filters"):
            for key in [k for k in self.state[store] if k == prefix or k.startswith(prefix + "/")]:
                del self.state[store][key]
        if table is None:
            self.state["table_defaults"].pop(database, None)
