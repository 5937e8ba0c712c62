"""Lake Formation: grants and their merging, LF-tag expressions, the IAMAllowedPrincipals default (and that changing
the settings later revokes nothing), and enforcement for an analyst role assumed through STS — Glue GetTable/GetTables
and Athena queries refused, then restricted to two granted columns, then opened by an LF-tag grant — kept across a
restart of the stack."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from dealab.engines.lakeformation import permissions as lf
from dealab.stack import control
from tests.conftest import client

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/analyst"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/analyst/q1"
ORDERS = lf.TableFacts("shop", "orders", ("id", "customer", "email", "amount"), {}, {}, {})


def grant(principal: str, resource: dict, *permissions: str) -> dict:
    return lf.merged(None, principal, lf.normalized(resource, ACCOUNT), list(permissions), [])


# ---- the permission model, without a stack -------------------------------------------------------------------------
def test_column_grants_merge_revoke_and_wildcards():
    columns = {"TableWithColumns": {"DatabaseName": "Shop", "Name": "Orders", "ColumnNames": ["id"]}}
    held = grant(ROLE_ARN, columns, "SELECT")
    more = lf.normalized({"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnNames": ["amount"]}}, ACCOUNT)
    assert lf.grant_key(ROLE_ARN, held["Resource"]) == lf.grant_key(ROLE_ARN, more)  # one grant per principal and table
    held = lf.merged(held, ROLE_ARN, more, ["SELECT"], [])
    assert held["Resource"]["TableWithColumns"]["ColumnNames"] == ["amount", "id"]
    names = lf.principal_names(SESSION_ARN)
    assert lf.table_access([held], names, ORDERS).columns == ("id", "amount")  # in the table's order
    assert lf.table_access([held], lf.principal_names(f"arn:aws:iam::{ACCOUNT}:user/ana"), ORDERS).sees is False
    left = lf.revoked(held, lf.normalized({"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnNames": ["id"]}}, ACCOUNT),
                      ["SELECT"], [])
    assert lf.table_access([left], names, ORDERS).columns == ("amount",)
    but_email = grant(ROLE_ARN, {"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnWildcard": {"ExcludedColumnNames": ["email"]}}}, "SELECT")
    assert lf.table_access([but_email], names, ORDERS).columns == ("id", "customer", "amount")
    # a role granted by an ARN with a path is the role the session ARN names
    pathed = grant(f"arn:aws:iam::{ACCOUNT}:role/teams/analyst", {"Table": {"DatabaseName": "shop", "Name": "orders"}}, "DESCRIBE")
    assert lf.table_access([pathed], names, ORDERS) == lf.TableAccess(True, (), frozenset({"DESCRIBE"}))
    with pytest.raises(lf.InvalidInput):
        lf.check_permissions(lf.normalized(columns, ACCOUNT), ["DROP"])


def test_data_cells_filters_limit_rows_unless_a_plain_grant_reads_them_all():
    names = lf.principal_names(SESSION_ARN)
    cells = {"eu": {"Name": "eu", "RowFilter": {"FilterExpression": "region = 'EU'"}, "ColumnNames": ["id", "amount"]},
             "big": {"Name": "big", "RowFilter": {"FilterExpression": "amount > 10"}, "ColumnWildcard": {"ExcludedColumnNames": ["email"]}}}
    via = {name: grant(ROLE_ARN, {"DataCellsFilter": {"DatabaseName": "shop", "TableName": "orders", "Name": name}}, "SELECT") for name in cells}
    eu = lf.table_access([via["eu"]], names, ORDERS, cells)
    assert (eu.columns, eu.row_filter) == (("id", "amount"), "(region = 'EU')")
    both = lf.table_access([via["eu"], via["big"]], names, ORDERS, cells)
    assert (both.columns, both.row_filter) == (("id", "customer", "amount"), "(region = 'EU') OR (amount > 10)")
    plain = grant(ROLE_ARN, {"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnNames": ["id"]}}, "SELECT")
    assert lf.table_access([via["eu"], plain], names, ORDERS, cells).row_filter is None


def test_iam_allowed_principals_and_tag_expressions():
    everyone = grant(lf.IAM_ALLOWED_PRINCIPALS, {"Table": {"DatabaseName": "shop", "Name": "orders"}}, "ALL")
    assert not lf.governed([everyone], ORDERS)
    assert lf.governed([everyone], lf.TableFacts("shop", "other", ("a",), {}, {}, {}))
    hr = {"ResourceType": "TABLE", "Expression": [{"TagKey": "domain", "TagValues": ["hr"]}]}
    by_tag = grant(ROLE_ARN, {"LFTagPolicy": hr}, "SELECT")
    # a table inherits its database's tag; a column tagged otherwise is left out of the grant
    tagged = lf.TableFacts("shop", "orders", ORDERS.columns, {"domain": ["hr"]}, {}, {"email": {"domain": ["pii"]}})
    assert lf.table_access([by_tag], lf.principal_names(SESSION_ARN), tagged).columns == ("id", "customer", "amount")
    assert not lf.table_access([by_tag], lf.principal_names(SESSION_ARN), ORDERS).sees
    assert lf.matches([{"TagKey": "domain", "TagValues": ["hr", "sales"]}, {"TagKey": "level", "TagValues": ["1"]}],
                      {"domain": ["sales"], "level": ["1"]})
    assert not lf.matches([{"TagKey": "domain", "TagValues": ["hr"]}, {"TagKey": "level", "TagValues": ["1"]}], {"domain": ["hr"]})


# ---- through the stack -----------------------------------------------------------------------------------------
def raw(settings, service: str):
    return client(settings, service)


def error_of(call) -> tuple[str, str]:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"]
    return "OK", ""


def run(athena, sql: str) -> tuple[str, list[list[str]] | str]:
    """Runs a query to its end: SUCCEEDED with its rows (header first), or the state and its reason."""
    query_id = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": "shop"},
                                            ResultConfiguration={"OutputLocation": "s3://lf-results/"})["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.05)
    if status["State"] != "SUCCEEDED":
        return status["State"], status.get("StateChangeReason", "")
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    return "SUCCEEDED", [[cell.get("VarCharValue") for cell in row["Data"]] for row in rows]


def csv_table(glue, database: str, name: str, location: str, columns: list[str]) -> None:
    glue.create_table(DatabaseName=database, TableInput={"Name": name, "TableType": "EXTERNAL_TABLE", "StorageDescriptor": {
        "Columns": [{"Name": c, "Type": "bigint" if c in ("id", "amount") else "string"} for c in columns],
        "Location": location, "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", "Parameters": {"field.delim": ","}}}})


def analyst_session(settings) -> boto3.Session:
    """The analyst role, created through IAM with broad IAM permissions (Lake Formation alone restricts it), assumed
    through STS by an IAM user."""
    iam = raw(settings, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                      "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="analyst", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="analyst", PolicyName="query", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["athena:*", "glue:*", "s3:*", "lakeformation:GetDataAccess"], "Resource": "*"}]}))
    iam.create_user(UserName="ana")
    iam.put_user_policy(UserName="ana", PolicyName="assume", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}]}))
    keys = iam.create_access_key(UserName="ana")["AccessKey"]
    sts = boto3.client("sts", endpoint_url=settings.endpoint_url, region_name=settings.region,
                       aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])
    credentials = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="q1", DurationSeconds=3600)["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name=settings.region)


def principals_on(lakeformation, resource: dict) -> dict[str, list[str]]:
    listed = lakeformation.list_permissions(Resource=resource)["PrincipalResourcePermissions"]
    return {entry["Principal"]["DataLakePrincipalIdentifier"]: entry["Permissions"] for entry in listed}


def test_grants_enforced_for_an_analyst_role_and_kept_across_restart(private_stack):
    settings = private_stack
    s3, glue, lakeformation = raw(settings, "s3"), raw(settings, "glue"), raw(settings, "lakeformation")
    for bucket in ("lf-data", "lf-results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="lf-data", Key="orders/part-0.csv", Body=b"1,ann,ann@example.com,30\n2,bob,bob@example.com,12\n")
    s3.put_object(Bucket="lf-data", Key="people/part-0.csv", Body=b"7,cy,cy@example.com,1\n")
    glue.create_database(DatabaseInput={"Name": "shop"})
    csv_table(glue, "shop", "orders", "s3://lf-data/orders/", ["id", "customer", "email", "amount"])
    orders = {"Table": {"DatabaseName": "shop", "Name": "orders"}}

    # the default settings: ALL to IAMAllowedPrincipals on every new database and table
    assert principals_on(lakeformation, {"Database": {"Name": "shop"}}) == {lf.IAM_ALLOWED_PRINCIPALS: ["ALL"]}
    assert principals_on(lakeformation, orders) == {lf.IAM_ALLOWED_PRINCIPALS: ["ALL"]}
    session = analyst_session(settings)
    athena = session.client("athena", endpoint_url=settings.endpoint_url)
    analyst_glue = session.client("glue", endpoint_url=settings.endpoint_url)
    state, rows = run(athena, "SELECT * FROM orders ORDER BY id")
    assert (state, rows[0]) == ("SUCCEEDED", ["id", "customer", "email", "amount"])  # IAM alone decides: LF restricts nothing

    # revoking IAMAllowedPrincipals puts the table under Lake Formation: the analyst holds nothing on it
    lakeformation.register_resource(ResourceArn="arn:aws:s3:::lf-data/orders", UseServiceLinkedRole=True)
    lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": lf.IAM_ALLOWED_PRINCIPALS}, Resource=orders, Permissions=["ALL"])
    assert principals_on(lakeformation, orders) == {}
    state, reason = run(athena, "SELECT id FROM orders")
    assert (state, reason) == ("FAILED", "Insufficient permissions to execute the query. Insufficient Lake Formation permission(s) on orders")
    assert error_of(lambda: analyst_glue.get_table(DatabaseName="shop", Name="orders")) == (
        "AccessDeniedException", "Insufficient Lake Formation permission(s) on orders (Database name: shop)")
    assert analyst_glue.get_tables(DatabaseName="shop")["TableList"] == []
    assert glue.get_table(DatabaseName="shop", Name="orders")["Table"]["Name"] == "orders"  # the root is not governed

    # SELECT on two columns: SELECT * returns those, naming another column fails as Athena words it
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["SELECT"],
                                    Resource={"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnNames": ["id", "amount"]}})
    assert principals_on(lakeformation, orders) == {ROLE_ARN: ["SELECT"]}
    assert run(athena, "SELECT * FROM orders ORDER BY id") == ("SUCCEEDED", [["id", "amount"], ["1", "30"], ["2", "12"]])
    state, reason = run(athena, "SELECT email FROM orders")
    assert state == "FAILED" and reason.startswith("COLUMN_NOT_FOUND") and "'email' cannot be resolved or requester is not authorized" in reason
    shown = analyst_glue.get_table(DatabaseName="shop", Name="orders")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in shown] == ["id", "amount"]

    # emptying the defaults governs new databases; a database made before keeps its own table defaults (AWS's trap)
    lakeformation.put_data_lake_settings(DataLakeSettings={"DataLakeAdmins": [{"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:user/steward"}],
                                                           "CreateDatabaseDefaultPermissions": [], "CreateTableDefaultPermissions": []})
    csv_table(glue, "shop", "later", "s3://lf-data/later/", ["id"])
    assert principals_on(lakeformation, {"Table": {"DatabaseName": "shop", "Name": "later"}}) == {lf.IAM_ALLOWED_PRINCIPALS: ["ALL"]}
    glue.create_database(DatabaseInput={"Name": "hr"})
    csv_table(glue, "hr", "people", "s3://lf-data/people/", ["id", "customer", "email", "amount"])
    assert principals_on(lakeformation, {"Table": {"DatabaseName": "hr", "Name": "people"}}) == {}
    assert analyst_glue.get_tables(DatabaseName="hr")["TableList"] == []
    assert error_of(lambda: analyst_glue.get_database(Name="hr"))[0] == "AccessDeniedException"
    assert {d["Name"] for d in analyst_glue.get_databases()["DatabaseList"]} & {"shop", "hr"} == {"shop"}
    people = {"Table": {"DatabaseName": "hr", "Name": "people"}}
    # creating a table in a governed database takes CREATE_TABLE on it; its creator then holds it all
    assert error_of(lambda: csv_table(analyst_glue, "hr", "mine", "s3://lf-data/people/", ["id"])) == (
        "AccessDeniedException", "Insufficient Lake Formation permission(s): Required Create Table on hr")
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["CREATE_TABLE"], Resource={"Database": {"Name": "hr"}})
    csv_table(analyst_glue, "hr", "mine", "s3://lf-data/people/", ["id"])
    assert run(athena, "SELECT * FROM hr.mine") == ("SUCCEEDED", [["id"], ["7"]])
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["DESCRIBE"], Resource=people)
    assert len(analyst_glue.get_table(DatabaseName="hr", Name="people")["Table"]["StorageDescriptor"]["Columns"]) == 4  # metadata, whole
    assert run(athena, "SELECT id FROM hr.people")[0] == "FAILED"  # but no data

    # an LF-tag grant: every column of a table tagged domain=hr, but not a column tagged otherwise
    lakeformation.create_lf_tag(TagKey="domain", TagValues=["hr", "pii"])
    lakeformation.add_lf_tags_to_resource(Resource={"Database": {"Name": "hr"}}, LFTags=[{"TagKey": "domain", "TagValues": ["hr"]}])
    lakeformation.add_lf_tags_to_resource(Resource={"TableWithColumns": {"DatabaseName": "hr", "Name": "people", "ColumnNames": ["email"]}},
                                          LFTags=[{"TagKey": "domain", "TagValues": ["pii"]}])
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["SELECT"], Resource={"LFTagPolicy": {
        "ResourceType": "TABLE", "Expression": [{"TagKey": "domain", "TagValues": ["hr"]}]}})
    assert run(athena, "SELECT * FROM hr.people") == ("SUCCEEDED", [["id", "customer", "amount"], ["7", "cy", "1"]])

    # revoke: the column grant goes, the table is closed again
    lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["SELECT"],
                                     Resource={"TableWithColumns": {"DatabaseName": "shop", "Name": "orders", "ColumnNames": ["id", "amount"]}})
    assert run(athena, "SELECT id FROM orders")[0] == "FAILED"

    # a data cells filter: the rows its expression keeps, the columns it names
    lakeformation.create_data_cells_filter(TableData={"TableCatalogId": ACCOUNT, "DatabaseName": "shop", "TableName": "orders",
                                                      "Name": "big", "RowFilter": {"FilterExpression": "amount > 20"},
                                                      "ColumnWildcard": {"ExcludedColumnNames": ["email"]}})
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": ROLE_ARN}, Permissions=["SELECT"], Resource={"DataCellsFilter": {
        "TableCatalogId": ACCOUNT, "DatabaseName": "shop", "TableName": "orders", "Name": "big"}})
    assert run(athena, "SELECT * FROM orders") == ("SUCCEEDED", [["id", "customer", "amount"], ["1", "ann", "30"]])

    # everything survives a restart
    control.down(settings)
    control.up(settings)
    lakeformation = raw(settings, "lakeformation")
    assert lakeformation.list_resources()["ResourceInfoList"][0]["ResourceArn"] == "arn:aws:s3:::lf-data/orders"
    assert lakeformation.get_data_lake_settings()["DataLakeSettings"]["CreateTableDefaultPermissions"] == []
    assert lakeformation.list_lf_tags()["LFTags"] == [{"CatalogId": ACCOUNT, "TagKey": "domain", "TagValues": ["hr", "pii"]}]
    athena = session.client("athena", endpoint_url=settings.endpoint_url)
    assert run(athena, "SELECT * FROM hr.people")[1][0] == ["id", "customer", "amount"]
    assert run(athena, "SELECT count(*) FROM orders") == ("SUCCEEDED", [["_col0"], ["1"]])
    lakeformation.delete_data_cells_filter(TableCatalogId=ACCOUNT, DatabaseName="shop", TableName="orders", Name="big")
    assert run(athena, "SELECT id FROM orders")[0] == "FAILED"  # its grant went with it


def assumed(settings, role: str, actions: list[str]) -> boto3.Session:
    """A session of a new role trusting the account (allowed `actions` on everything), assumed by a new IAM user."""
    iam = raw(settings, "iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                      "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="use", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    iam.create_user(UserName=f"{role}-user")
    iam.put_user_policy(UserName=f"{role}-user", PolicyName="assume", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/{role}"}]}))
    keys = iam.create_access_key(UserName=f"{role}-user")["AccessKey"]
    sts = boto3.client("sts", endpoint_url=settings.endpoint_url, region_name=settings.region,
                       aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"])
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="s1")["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name=settings.region)


def test_get_data_access_vends_the_registered_roles_credentials_scoped_to_the_table(aws_env):
    settings = aws_env
    s3, glue, iam, lakeformation = raw(settings, "s3"), raw(settings, "glue"), raw(settings, "iam"), raw(settings, "lakeformation")
    s3.create_bucket(Bucket="vend-data")
    s3.put_object(Bucket="vend-data", Key="sales/part-0.csv", Body=b"1,ann,30\n")
    s3.put_object(Bucket="vend-data", Key="payroll/part-0.csv", Body=b"1,ann,9000\n")
    glue.create_database(DatabaseInput={"Name": "vend"})
    csv_table(glue, "vend", "sales", "s3://vend-data/sales/", ["id", "customer", "amount"])
    csv_table(glue, "vend", "staging", "s3://vend-data/staging/", ["id"])
    table_arn = f"arn:aws:glue:{settings.region}:{ACCOUNT}:table/vend/sales"
    # the location's role: Lake Formation may assume it, and it may use the whole bucket
    lake_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lakeformation.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="vend-lake-access", AssumeRolePolicyDocument=json.dumps(lake_trust))
    iam.put_role_policy(RoleName="vend-lake-access", PolicyName="bucket", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::vend-data", "arn:aws:s3:::vend-data/*"]}]}))
    lakeformation.register_resource(ResourceArn="arn:aws:s3:::vend-data/sales", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/vend-lake-access")
    lakeformation.revoke_permissions(Principal={"DataLakePrincipalIdentifier": lf.IAM_ALLOWED_PRINCIPALS},
                                     Resource={"Table": {"DatabaseName": "vend", "Name": "sales"}}, Permissions=["ALL"])
    engine = assumed(settings, "vend-engine", ["lakeformation:GetDataAccess"]).client("lakeformation", endpoint_url=settings.endpoint_url)

    # IAM decides first: a principal not allowed lakeformation:GetDataAccess is refused whatever it holds
    stranger = assumed(settings, "vend-stranger", ["glue:GetTable"]).client("lakeformation", endpoint_url=settings.endpoint_url)
    code, message = error_of(lambda: stranger.get_temporary_glue_table_credentials(TableArn=table_arn))
    assert code == "AccessDeniedException" and "lakeformation:GetDataAccess" in message
    # no Lake Formation permission on the table: refused
    assert error_of(lambda: engine.get_temporary_glue_table_credentials(TableArn=table_arn, Permissions=["SELECT"])) == (
        "AccessDeniedException", "Insufficient Lake Formation permission(s) on sales")

    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:role/vend-engine"},
                                    Permissions=["SELECT"], Resource={"Table": {"DatabaseName": "vend", "Name": "sales"}})
    assert error_of(lambda: engine.get_temporary_glue_table_credentials(TableArn=table_arn, Permissions=["INSERT"]))[0] == "AccessDeniedException"
    vended = engine.get_temporary_glue_table_credentials(TableArn=table_arn, Permissions=["SELECT"], DurationSeconds=900)
    assert vended["VendedS3Path"] == ["s3://vend-data/sales/"] and vended["AccessKeyId"].startswith("ASIA")
    reader = boto3.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, aws_access_key_id=vended["AccessKeyId"],
                          aws_secret_access_key=vended["SecretAccessKey"], aws_session_token=vended["SessionToken"])
    # the registered role's session, narrowed to the table's objects and to reading them
    assert reader.get_object(Bucket="vend-data", Key="sales/part-0.csv")["Body"].read() == b"1,ann,30\n"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket="vend-data", Prefix="sales/")["Contents"]] == ["sales/part-0.csv"]
    assert error_of(lambda: reader.get_object(Bucket="vend-data", Key="payroll/part-0.csv"))[0] == "AccessDenied"
    assert error_of(lambda: reader.put_object(Bucket="vend-data", Key="sales/part-1.csv", Body=b"2,bob,1\n"))[0] == "AccessDenied"

    # a table whose location is not registered has nothing to vend
    code, message = error_of(lambda: engine.get_temporary_glue_table_credentials(TableArn=table_arn.replace("sales", "staging")))
    assert code == "InvalidInputException" and "not registered" in message
    # a location registered with a role Lake Formation may not assume: nothing is vended
    iam.update_assume_role_policy(RoleName="vend-lake-access", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    code, message = error_of(lambda: engine.get_temporary_glue_table_credentials(TableArn=table_arn))
    assert code == "AccessDeniedException" and "could not assume the role" in message
