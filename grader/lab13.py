"""Lab 13 checks: a least-privilege lake, judged by acting as each principal. The grader makes an IAM user of its own
(`dealab-grader-l13`, allowed sts:AssumeRole and, for the "unrelated principal" checks, s3:*, kms:*,
secretsmanager:*, glue:*, athena:* and lakeformation:* on everything), assumes the learner's roles with STS, and
expects exactly the allowed calls to succeed and the others to be refused: a policy that is too broad fails as
surely as one too narrow. The Lake Formation trap is probed by creating a table of the grader's own in the
database and reading what it was given; the rotation by moving the lab clock past the secret's next rotation.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from dealab.datasets import privacy_lake as data
from grader.core import Fail, LabContext, check

INGEST, ANALYST, STEWARD = "dea-gov-ingest", "dea-gov-analyst", "dea-gov-steward"
KEY_ALIAS = "alias/dea-gov-lake"
WORKGROUP = "dea-gov-analysts"
SECRET = "dea-gov/warehouse"
SCAN_JOB = "dea-gov-pii-scan"
GRADER_USER = "dealab-grader-l13"
EVERYONE = "IAM_ALLOWED_PRINCIPALS"
MAX_ROTATION_DAYS = 30
QUERY_WAIT_SECONDS = 60
ROTATION_WAIT_SECONDS = 10  # a clock move waits for the rotation it starts: this is only a grace
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "Forbidden", "403"})
IAM_DOCS = "https://docs.aws.amazon.com/IAM/latest/UserGuide"
LF_DOCS = "https://docs.aws.amazon.com/lake-formation/latest/dg"
GRADER_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:*", "kms:*", "secretsmanager:*", "glue:*", "athena:*", "lakeformation:*"], "Resource": "*"},
]}


# ---------------------------------------------------------------- principals

def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _message(error: ClientError) -> str:
    return " ".join(str(error.response.get("Error", {}).get("Message", "")).split())[:200]


def _grader_credentials(ctx: LabContext) -> dict:
    """The grader's own IAM user and a fresh access key of it (made once per grading)."""
    if "grader_credentials" not in ctx.__dict__:
        iam = ctx.client("iam")
        try:
            iam.create_user(UserName=GRADER_USER)
        except iam.exceptions.EntityAlreadyExistsException:
            for key in iam.list_access_keys(UserName=GRADER_USER)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=GRADER_USER, AccessKeyId=key["AccessKeyId"])
        iam.put_user_policy(UserName=GRADER_USER, PolicyName="grader", PolicyDocument=json.dumps(GRADER_POLICY))
        key = iam.create_access_key(UserName=GRADER_USER)["AccessKey"]
        ctx.__dict__["grader_credentials"] = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    return ctx.__dict__["grader_credentials"]


class Principal:
    """Clients signed as one principal, at the stack."""

    def __init__(self, ctx: LabContext, name: str, credentials: dict):
        self.ctx, self.name, self.credentials = ctx, name, credentials

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.ctx.settings.endpoint_url, region_name=self.ctx.settings.region,
                            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60), **self.credentials)


def _outsider(ctx: LabContext) -> Principal:
    return Principal(ctx, f"IAM user {GRADER_USER} (s3:*, kms:*, secretsmanager:* on * in its own policy)", _grader_credentials(ctx))


def _account(ctx: LabContext) -> str:
    return ctx.client("sts").get_caller_identity()["Account"]


def _as_role(ctx: LabContext, role: str) -> Principal:
    """A fresh session of the learner's role, assumed by the grader's user (sessions end when the lab clock moves)."""
    sts = _outsider(ctx).client("sts")
    arn = f"arn:aws:iam::{_account(ctx)}:role/{role}"
    for attempt in range(2):
        try:
            credentials = sts.assume_role(RoleArn=arn, RoleSessionName=f"dealab-grader-{uuid.uuid4().hex[:8]}")["Credentials"]
            break
        except ClientError as error:
            if _code(error) == "InvalidClientTokenId" and attempt == 0:
                time.sleep(0.5)  # a key just made: try once more
                continue
            try:
                ctx.client("iam").get_role(RoleName=role)
            except ClientError:
                raise Fail(f"role {role} does not exist") from None
            raise Fail(f"role {role} cannot be assumed by IAM user {GRADER_USER} of this account: {_code(error)}: {_message(error)}") from None
    return Principal(ctx, f"role {role}", {"aws_access_key_id": credentials["AccessKeyId"],
                                           "aws_secret_access_key": credentials["SecretAccessKey"],
                                           "aws_session_token": credentials["SessionToken"]})


def _refused(call) -> str | None:
    """None when the call was refused for want of permission; otherwise what happened instead."""
    try:
        call()
    except ClientError as error:
        return None if _code(error) in DENIED else f"failed with {_code(error)} ({_message(error)}), not for want of permission"
    return "succeeded"


def _allowed(call) -> str | None:
    """None when the call succeeded; otherwise why not."""
    try:
        call()
    except ClientError as error:
        return f"{_code(error)}: {_message(error)}"
    return None


def _probe_key(prefix: str) -> str:
    return f"{prefix}_dealab_probe_{uuid.uuid4().hex[:12]}.csv"


def _remove(ctx: LabContext, key: str) -> None:
    try:
        ctx.client("s3").delete_object(Bucket=data.LAKE_BUCKET, Key=key)
    except ClientError:
        pass


def _key_arn(ctx: LabContext) -> str:
    try:
        return ctx.client("kms").describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["Arn"]
    except ClientError as error:
        if _code(error) == "NotFoundException":
            raise Fail(f"there is no KMS key behind {KEY_ALIAS}") from None
        raise Fail(f"key {KEY_ALIAS} cannot be described by the account's root: {_code(error)}: {_message(error)}") from None


# ---------------------------------------------------------------- Athena as a principal

def _query(principal: Principal, sql: str) -> tuple[list[str], list[list[str]]]:
    """Runs `sql` in the analysts' work group as `principal`: (columns, rows), or Fail naming the refusal."""
    athena = principal.client("athena")
    try:
        query_id = athena.start_query_execution(QueryString=sql, WorkGroup=WORKGROUP,
                                                QueryExecutionContext={"Database": data.DATABASE})["QueryExecutionId"]
    except ClientError as error:
        raise Fail(f"{principal.name} could not start `{sql}` in work group {WORKGROUP}: {_code(error)}: {_message(error)}") from None
    deadline = time.monotonic() + QUERY_WAIT_SECONDS
    while (status := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        if time.monotonic() > deadline:
            raise Fail(f"`{sql}` run by {principal.name} did not finish in {QUERY_WAIT_SECONDS} s")
        time.sleep(0.1)
    if status["State"] != "SUCCEEDED":
        raise QueryFailed(" ".join(str(status.get("StateChangeReason", status["State"])).split())[:240])
    rows = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        rows += [[cell.get("VarCharValue", "") for cell in row["Data"]] for row in page["ResultSet"]["Rows"]]
    return (rows[0], rows[1:]) if rows else ([], [])


class QueryFailed(Fail):
    """The query ended FAILED; the message is Athena's reason."""


def _read_as_analyst(ctx: LabContext, table: str) -> tuple[list[str], list[list[str]]]:
    analyst = _as_role(ctx, ANALYST)
    try:
        return _query(analyst, f"SELECT * FROM {table}")
    except QueryFailed as failed:
        raise Fail(f"`SELECT * FROM {table}` run by role {ANALYST} in work group {WORKGROUP} failed: {failed}") from None


def _eu(ctx: LabContext) -> set[str]:
    return set(ctx.dataset["eu_ids"])


def _ids_differ(ctx: LabContext, found: list[str], table: str) -> None:
    expected = _eu(ctx)
    regions = {row["customer_id"]: row["region"] for row in ctx.dataset["customers"]}
    extra = sorted(set(found) - expected)
    missing = sorted(expected - set(found))
    if extra:
        raise Fail(f"role {ANALYST} sees {len(extra)} customers of {table} outside the EU (e.g. {extra[0]}, region {regions.get(extra[0], 'unknown')}); "
                   f"it should see the {len(expected)} EU customers only")
    if missing:
        raise Fail(f"role {ANALYST} does not see {len(missing)} of the {len(expected)} EU customers in {table} (e.g. {missing[0]})")
    if len(found) != len(set(found)):
        raise Fail(f"role {ANALYST} sees some EU customers of {table} more than once ({len(found)} rows for {len(set(found))} customers)")


# ---------------------------------------------------------------- Lake Formation

def _everyone_grants(ctx: LabContext, resource: dict) -> list[str]:
    lakeformation = ctx.client("lakeformation")
    found = []
    token = None
    while True:
        page = lakeformation.list_permissions(Principal={"DataLakePrincipalIdentifier": EVERYONE}, Resource=resource,
                                              **({"NextToken": token} if token else {}))
        found += [permission for grant in page.get("PrincipalResourcePermissions", []) for permission in grant.get("Permissions", [])]
        token = page.get("NextToken")
        if not token:
            return sorted(set(found))


# ---------------------------------------------------------------- checks

@check("L13-01", "The ingest, analyst and steward roles can be assumed by principals of the account", points=1, task="4.1",
       hints=("A role is an identity without long-term keys: people and services assume it with STS and get temporary credentials. Its trust policy says who may assume it; trusting the account (arn:aws:iam::<account>:root) hands the decision to each principal's own IAM policy.",
              "IAM CreateRole with an AssumeRolePolicyDocument whose Principal is {'AWS': 'arn:aws:iam::<account>:root'} and Action sts:AssumeRole; the account id comes from sts.get_caller_identity().",
              "iam.create_role(RoleName='dea-gov-analyst', AssumeRolePolicyDocument=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'sts:AssumeRole'}]}))"),
       docs=f"{IAM_DOCS}/id_roles_create_for-user.html")
def roles_assumable(ctx: LabContext) -> str:
    for role in (INGEST, ANALYST, STEWARD):
        identity = _as_role(ctx, role).client("sts").get_caller_identity()["Arn"]
        if f":assumed-role/{role}/" not in identity:
            raise Fail(f"a session of role {role} calls itself {identity}")
    return f"roles {INGEST}, {ANALYST} and {STEWARD} were each assumed by IAM user {GRADER_USER} of the account"


@check("L13-02", "The ingest role lands files in raw/ and can neither read the lake nor write elsewhere in it", points=2, task="4.2",
       hints=("Least privilege: a loader needs to write where extracts land, and nothing more. Reading customers back, or writing into zones other jobs own, is power an attacker with its credentials would get too.",
              "The role's identity policy allows s3:PutObject on arn:aws:s3:::dea-gov-lake/raw/* only; with SSE-KMS by default, it also needs the key to let it generate data keys (the key policy can name it).",
              "{'Effect': 'Allow', 'Action': 's3:PutObject', 'Resource': 'arn:aws:s3:::dea-gov-lake/raw/*'} in the ingest role's policy, and in the key policy {'Principal': {'AWS': ingest_role_arn}, 'Action': ['kms:GenerateDataKey', 'kms:Encrypt'], ...}"),
       docs=f"{IAM_DOCS}/best-practices.html#grant-least-privilege")
def ingest_least_privilege(ctx: LabContext) -> str:
    s3 = _as_role(ctx, INGEST).client("s3")
    landed = _probe_key(data.RAW_PREFIX)
    try:
        problem = _allowed(lambda: s3.put_object(Bucket=data.LAKE_BUCKET, Key=landed, Body=b"customer_id\n"))
        if problem:
            raise Fail(f"role {INGEST} cannot land a file at s3://{data.LAKE_BUCKET}/{landed}: {problem}")
    finally:
        _remove(ctx, landed)
    outcome = _refused(lambda: s3.get_object(Bucket=data.LAKE_BUCKET, Key=data.RAW_KEY))
    if outcome:
        raise Fail(f"role {INGEST}'s GetObject of s3://{data.LAKE_BUCKET}/{data.RAW_KEY} {outcome}: a loader can read every customer's personal data")
    elsewhere = _probe_key(data.MASKED_PREFIX)
    try:
        outcome = _refused(lambda: s3.put_object(Bucket=data.LAKE_BUCKET, Key=elsewhere, Body=b"customer_id\n"))
    finally:
        _remove(ctx, elsewhere)
    if outcome:
        raise Fail(f"role {INGEST}'s PutObject to s3://{data.LAKE_BUCKET}/{data.MASKED_PREFIX} {outcome}: it can overwrite what analysts read")
    return f"role {INGEST} landed a file in s3://{data.LAKE_BUCKET}/{data.RAW_PREFIX}; its read of the extract and its write to {data.MASKED_PREFIX} were refused"


@check("L13-03", "The analyst sees only EU customers, without personal columns, through Athena", points=3, task="4.2",
       hints=("Lake Formation data cells filters combine a row filter and a column list: granting SELECT on a filter gives exactly those cells, whatever the query asks (SELECT * returns only the granted columns).",
              "Lake Formation CreateDataCellsFilter on gov_lake.customers with RowFilter {'FilterExpression': \"region = 'EU'\"} and ColumnWildcard {'ExcludedColumnNames': [the personal columns]}; GrantPermissions SELECT on {'DataCellsFilter': ...} to the analyst role. Grants restrict nothing while IAM_ALLOWED_PRINCIPALS holds ALL on the table.",
              "lakeformation.grant_permissions(Principal={'DataLakePrincipalIdentifier': analyst_arn}, Resource={'DataCellsFilter': {'TableCatalogId': account, 'DatabaseName': 'gov_lake', 'TableName': 'customers', 'Name': 'analysts_eu_no_pii'}}, Permissions=['SELECT'])"),
       docs=f"{LF_DOCS}/data-filters-about.html")
def analyst_eu_without_pii(ctx: LabContext) -> str:
    columns, rows = _read_as_analyst(ctx, f"{data.DATABASE}.{data.TABLE}")
    personal = [column for column in columns if column in data.PII_COLUMNS]
    if personal:
        raise Fail(f"`SELECT * FROM {data.DATABASE}.{data.TABLE}` run by role {ANALYST} returns personal columns {personal}")
    if "customer_id" not in columns:
        raise Fail(f"`SELECT * FROM {data.DATABASE}.{data.TABLE}` run by role {ANALYST} returns no customer_id column (columns {columns})")
    ids = [row[columns.index("customer_id")] for row in rows]
    _ids_differ(ctx, ids, f"{data.DATABASE}.{data.TABLE}")
    return f"role {ANALYST} reads the {len(ids)} EU customers of {data.DATABASE}.{data.TABLE} with columns {', '.join(columns)}"


@check("L13-04", "The analyst cannot reach personal data around the grants: a named PII column and the raw object are refused", points=2, task="4.2",
       hints=("A grant that hides columns is only as good as the paths around it: an analyst who may read the table's S3 objects, or who names a column outright, must still be refused.",
              "Give the analyst no S3 permission on the lake bucket at all: Athena reads a registered location with the credentials Lake Formation vends (lakeformation:GetDataAccess), and the query results bucket is the only bucket the analyst writes.",
              "In the analyst's policy: Athena actions on the work group, glue:Get* on the catalog, lakeformation:GetDataAccess, s3:GetObject/PutObject on arn:aws:s3:::dea-gov-athena-results/analysts/* — and no statement on arn:aws:s3:::dea-gov-lake"),
       docs=f"{LF_DOCS}/access-control-underlying-data.html")
def analyst_no_bypass(ctx: LabContext) -> str:
    analyst = _as_role(ctx, ANALYST)
    try:
        _query(analyst, f"SELECT email FROM {data.DATABASE}.{data.TABLE} LIMIT 1")
    except QueryFailed:
        pass
    else:
        raise Fail(f"`SELECT email FROM {data.DATABASE}.{data.TABLE}` run by role {ANALYST} succeeded: the email column is not hidden from analysts")
    s3 = analyst.client("s3")
    outcome = _refused(lambda: s3.get_object(Bucket=data.LAKE_BUCKET, Key=data.RAW_KEY))
    if outcome:
        raise Fail(f"role {ANALYST}'s GetObject of s3://{data.LAKE_BUCKET}/{data.RAW_KEY} {outcome}: analysts can read the raw extract around Lake Formation")
    return f"role {ANALYST}: naming the email column fails the query, and the raw extract's GetObject is refused"


@check("L13-05", "New databases are no longer handed to IAM_ALLOWED_PRINCIPALS", points=1, task="4.2",
       hints=("A fresh account's Lake Formation settings give ALL on every new database and table to IAM_ALLOWED_PRINCIPALS: IAM alone decides and grants restrict nothing. Lake Formation governs only once those defaults are gone.",
              "Lake Formation PutDataLakeSettings with CreateDatabaseDefaultPermissions and CreateTableDefaultPermissions empty (and the steward among DataLakeAdmins); read the settings first, the call replaces the whole document.",
              "settings = lakeformation.get_data_lake_settings()['DataLakeSettings']; settings.update(CreateDatabaseDefaultPermissions=[], CreateTableDefaultPermissions=[]); lakeformation.put_data_lake_settings(DataLakeSettings=settings)"),
       docs=f"{LF_DOCS}/change-settings.html")
def account_defaults(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    name = f"dealab_probe_{uuid.uuid4().hex[:8]}"
    glue.create_database(DatabaseInput={"Name": name})
    try:
        given = _everyone_grants(ctx, {"Database": {"Name": name}})
    finally:
        glue.delete_database(Name=name)
    if given:
        raise Fail(f"a database created now gets {given} for {EVERYONE}: the account's default permissions still hand new databases to every IAM principal")
    return f"a database created now gets nothing for {EVERYONE}"


@check("L13-06", "Database gov_lake, made before the defaults changed, hands nothing to IAM_ALLOWED_PRINCIPALS, not even a new table", points=2, task="4.2",
       hints=("Changing Lake Formation's default settings revokes nothing: a database made before keeps ALL for IAM_ALLOWED_PRINCIPALS, its tables keep theirs, and the database keeps handing its new tables to IAM_ALLOWED_PRINCIPALS through its own CreateTableDefaultPermissions.",
              "Glue UpdateDatabase of gov_lake with CreateTableDefaultPermissions [] in the DatabaseInput; Lake Formation RevokePermissions of ALL for IAM_ALLOWED_PRINCIPALS on the database and on each of its tables (ListPermissions shows what is left).",
              "glue.update_database(Name='gov_lake', DatabaseInput={'Name': 'gov_lake', 'CreateTableDefaultPermissions': []}); lakeformation.revoke_permissions(Principal={'DataLakePrincipalIdentifier': 'IAM_ALLOWED_PRINCIPALS'}, Resource={'Table': {'DatabaseName': 'gov_lake', 'Name': 'customers'}}, Permissions=['ALL'])"),
       docs=f"{LF_DOCS}/upgrade-glue-lake-formation-background.html")
def database_trap(ctx: LabContext) -> str:
    glue = ctx.client("glue")
    try:
        tables = [table["Name"] for page in glue.get_paginator("get_tables").paginate(DatabaseName=data.DATABASE) for table in page["TableList"]]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"database {data.DATABASE} does not exist") from None
    on_database = _everyone_grants(ctx, {"Database": {"Name": data.DATABASE}})
    if on_database:
        raise Fail(f"database {data.DATABASE} still grants {on_database} to {EVERYONE}")
    for table in tables:
        if not table.startswith("dealab_probe_") and (given := _everyone_grants(ctx, {"Table": {"DatabaseName": data.DATABASE, "Name": table}})):
            raise Fail(f"table {data.DATABASE}.{table} still grants {given} to {EVERYONE}: Lake Formation's grants restrict nothing on it")
    probe = f"dealab_probe_{uuid.uuid4().hex[:8]}"
    glue.create_table(DatabaseName=data.DATABASE, TableInput=data.table_input(probe, f"s3://{data.LAKE_BUCKET}/{probe}/", ("customer_id",)))
    try:
        given = _everyone_grants(ctx, {"Table": {"DatabaseName": data.DATABASE, "Name": probe}})
    finally:
        glue.delete_table(DatabaseName=data.DATABASE, Name=probe)
    if given:
        raise Fail(f"a table created now in {data.DATABASE} gets {given} for {EVERYONE}: the database's own default permissions still hand its new tables to every IAM principal")
    return f"neither {data.DATABASE} nor its {len(tables)} tables grant anything to {EVERYONE}, and a table created now gets nothing"


@check("L13-07", "An unrelated principal with s3:* on * is refused by the lake's bucket", points=2, task="4.2",
       hints=("Within one account an identity policy's Allow is enough to reach a bucket, unless the bucket's policy explicitly denies. A bucket that admits only named roles denies everyone else.",
              "S3 PutBucketPolicy with a Deny for Principal '*' on the bucket and its objects, with a condition that exempts the lake's roles (and the account's administrator): ArnNotEquals (or StringNotLike) on aws:PrincipalArn.",
              "{'Effect': 'Deny', 'Principal': '*', 'Action': 's3:*', 'Resource': ['arn:aws:s3:::dea-gov-lake', 'arn:aws:s3:::dea-gov-lake/*'], 'Condition': {'ArnNotEquals': {'aws:PrincipalArn': [f'arn:aws:iam::{account}:root', ingest_arn, analyst_arn, steward_arn]}}}"),
       docs="https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html")
def bucket_refuses_outsider(ctx: LabContext) -> str:
    outsider = _outsider(ctx)
    s3 = outsider.client("s3")
    probe = _probe_key(data.RAW_PREFIX)
    attempts = {
        f"GetObject of s3://{data.LAKE_BUCKET}/{data.RAW_KEY}": lambda: s3.get_object(Bucket=data.LAKE_BUCKET, Key=data.RAW_KEY),
        f"ListObjectsV2 of {data.LAKE_BUCKET}": lambda: s3.list_objects_v2(Bucket=data.LAKE_BUCKET),
        f"PutObject to s3://{data.LAKE_BUCKET}/{data.RAW_PREFIX}": lambda: s3.put_object(Bucket=data.LAKE_BUCKET, Key=probe, Body=b"x"),
    }
    try:
        for what, call in attempts.items():
            outcome = _refused(call)
            if outcome:
                raise Fail(f"{outsider.name}: its {what} {outcome}; the bucket admits principals other than the lake's roles")
    finally:
        _remove(ctx, probe)
    return f"{outsider.name} was refused GetObject, ListObjectsV2 and PutObject on {data.LAKE_BUCKET}"


@check("L13-08", "The lake's KMS key is refused to an unrelated principal with kms:* on *, and serves the steward", points=2, task="4.3",
       hints=("A key policy is the key's primary control: the usual 'Enable IAM policies' statement (the account root with kms:*) lets any principal whose identity policy allows kms:* use the key. A key that admits only named roles names them in the key policy instead.",
              "KMS PutKeyPolicy (or CreateKey Policy) with statements naming the roles (Principal {'AWS': role_arn}) and the actions each needs; keep the administrator able to manage the key, but only the root user itself (a condition on aws:PrincipalArn), not every principal IAM would let in.",
              "{'Sid': 'AdministratorOnly', 'Effect': 'Allow', 'Principal': {'AWS': f'arn:aws:iam::{account}:root'}, 'Action': 'kms:*', 'Resource': '*', 'Condition': {'ArnEquals': {'aws:PrincipalArn': f'arn:aws:iam::{account}:root'}}} plus one statement per role"),
       docs="https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html")
def key_refuses_outsider(ctx: LabContext) -> str:
    key_arn = _key_arn(ctx)
    steward = _as_role(ctx, STEWARD).client("kms")
    try:
        ciphertext = steward.encrypt(KeyId=key_arn, Plaintext=b"dealab probe")["CiphertextBlob"]
    except ClientError as error:
        raise Fail(f"role {STEWARD} cannot use key {KEY_ALIAS}: {_code(error)}: {_message(error)}") from None
    outsider = _outsider(ctx)
    kms = outsider.client("kms")
    attempts = {
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256"),
        "Encrypt": lambda: kms.encrypt(KeyId=key_arn, Plaintext=b"x"),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=ciphertext),
    }
    for action, call in attempts.items():
        outcome = _refused(call)
        if outcome:
            raise Fail(f"{outsider.name}: its kms:{action} on key {KEY_ALIAS} {outcome}; the key policy lets IAM policies alone admit principals")
    return f"role {STEWARD} uses key {KEY_ALIAS}; {outsider.name} was refused GenerateDataKey, Encrypt and Decrypt"


@check("L13-09", "Every object in the lake, old and new, is encrypted with the lake's key", points=2, task="4.3",
       hints=("Default bucket encryption applies to objects written after it is set: the extract that landed before is still unencrypted until it is written again.",
              "S3 PutBucketEncryption with SSEAlgorithm aws:kms and KMSMasterKeyID the lake key; then CopyObject each existing object onto itself with ServerSideEncryption aws:kms and SSEKMSKeyId the key.",
              "s3.copy_object(Bucket='dea-gov-lake', Key=key, CopySource={'Bucket': 'dea-gov-lake', 'Key': key}, ServerSideEncryption='aws:kms', SSEKMSKeyId=key_arn)"),
       docs="https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-bucket-encryption.html")
def lake_encrypted(ctx: LabContext) -> str:
    key_arn = _key_arn(ctx)
    s3 = ctx.client("s3")
    key_id = key_arn.rsplit("/", 1)[-1]
    probe = _probe_key(data.RAW_PREFIX)
    try:
        s3.put_object(Bucket=data.LAKE_BUCKET, Key=probe, Body=b"customer_id\n")
        written = s3.head_object(Bucket=data.LAKE_BUCKET, Key=probe)
    except ClientError as error:
        raise Fail(f"the account's root cannot write and read back s3://{data.LAKE_BUCKET}/{probe}: {_code(error)}: {_message(error)}") from None
    finally:
        _remove(ctx, probe)
    if written.get("ServerSideEncryption") != "aws:kms" or not str(written.get("SSEKMSKeyId", "")).endswith(key_id):
        raise Fail(f"an object written to {data.LAKE_BUCKET} without encryption headers is stored with {written.get('ServerSideEncryption', 'no encryption')}"
                   f"{' under ' + str(written.get('SSEKMSKeyId')) if written.get('SSEKMSKeyId') else ''}, not SSE-KMS under {KEY_ALIAS}")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=data.LAKE_BUCKET):
        for item in page.get("Contents", []):
            head = s3.head_object(Bucket=data.LAKE_BUCKET, Key=item["Key"])
            if head.get("ServerSideEncryption") != "aws:kms" or not str(head.get("SSEKMSKeyId", "")).endswith(key_id):
                raise Fail(f"s3://{data.LAKE_BUCKET}/{item['Key']} is stored with {head.get('ServerSideEncryption', 'no encryption')}, not SSE-KMS under {KEY_ALIAS}")
            count += 1
    return f"all {count} objects of {data.LAKE_BUCKET}, and a new one written without headers, are SSE-KMS under {KEY_ALIAS}"


@check("L13-10", "The warehouse password is readable by the ingest role only: refused to the analyst and to an unrelated principal", points=2, task="4.1",
       hints=("A secret replaces a password in code or configuration: the loader fetches it at run time with its own role. Who may read it is its own access question: identity policies, and the secret's resource policy for everyone else.",
              "Secrets Manager CreateSecret; the ingest role's policy allows secretsmanager:GetSecretValue on the secret's ARN; PutResourcePolicy denies every other principal (aws:PrincipalArn) — the rotation function's role and the steward among the exempted.",
              "secretsmanager.put_resource_policy(SecretId='dea-gov/warehouse', ResourcePolicy=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Deny', 'Principal': '*', 'Action': 'secretsmanager:*', 'Resource': '*', 'Condition': {'ArnNotEquals': {'aws:PrincipalArn': [root_arn, ingest_arn, steward_arn, rotation_role_arn]}}}]}))"),
       docs="https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_resource-policies.html")
def secret_access(ctx: LabContext) -> str:
    try:
        ctx.client("secretsmanager").describe_secret(SecretId=SECRET)
    except ClientError as error:
        raise Fail(f"secret {SECRET} does not exist" if _code(error) == "ResourceNotFoundException" else f"secret {SECRET}: {_code(error)}: {_message(error)}") from None
    problem = _allowed(lambda: _as_role(ctx, INGEST).client("secretsmanager").get_secret_value(SecretId=SECRET))
    if problem:
        raise Fail(f"role {INGEST} cannot read secret {SECRET}: {problem}")
    for who in (_as_role(ctx, ANALYST), _outsider(ctx)):
        outcome = _refused(lambda: who.client("secretsmanager").get_secret_value(SecretId=SECRET))
        if outcome:
            raise Fail(f"{who.name}: its GetSecretValue of {SECRET} {outcome}")
    return f"role {INGEST} reads secret {SECRET}; role {ANALYST} and IAM user {GRADER_USER} are refused"


def _latest_scan(ctx: LabContext) -> dict:
    macie = ctx.client("macie2")
    jobs = []
    token = None
    while True:
        try:
            page = macie.list_classification_jobs(**({"nextToken": token} if token else {}))
        except ClientError as error:
            if "not enabled" in _message(error):
                raise Fail(f"Macie is not enabled in {ctx.settings.region}, so no classification job {SCAN_JOB} has run") from None
            raise
        jobs += [job for job in page.get("items", []) if job["name"] == SCAN_JOB]
        token = page.get("nextToken")
        if not token:
            break
    if not jobs:
        raise Fail(f"there is no Macie classification job named {SCAN_JOB}")
    job = max(jobs, key=lambda job: job["createdAt"])
    deadline = time.monotonic() + 60
    while (described := macie.describe_classification_job(jobId=job["jobId"]))["jobStatus"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
    return described


@check("L13-11", "Macie's scan dea-gov-pii-scan found every kind of identifier seeded in the raw extract", points=2, task="4.5",
       hints=("Amazon Macie's classification jobs read objects and report sensitive data by type (card numbers, Social Security numbers, bank account numbers, phone numbers) with how many of each it saw, so you know what must be protected before anyone shares it.",
              "Macie EnableMacie, then CreateClassificationJob (ONE_TIME) whose s3JobDefinition names bucket dea-gov-lake (scoping may keep it to raw/), with the managed identifiers (RECOMMENDED or ALL); ListFindings with classificationDetails.jobId and GetFindings show what it found.",
              "macie.create_classification_job(name='dea-gov-pii-scan', jobType='ONE_TIME', managedDataIdentifierSelector='ALL', clientToken=..., s3JobDefinition={'bucketDefinitions': [{'accountId': account, 'buckets': ['dea-gov-lake']}]})"),
       docs="https://docs.aws.amazon.com/macie/latest/user/discovery-jobs.html")
def pii_scan(ctx: LabContext) -> str:
    job = _latest_scan(ctx)
    if job["jobStatus"] != "COMPLETE" or (job.get("lastRunErrorStatus") or {}).get("code") == "ERROR":
        raise Fail(f"Macie job {SCAN_JOB} ({job['jobId'][:12]}…) is {job['jobStatus']}" + (f": {job.get('errorMessage')}" if job.get("errorMessage") else ""))
    macie = ctx.client("macie2")
    ids = macie.list_findings(findingCriteria={"criterion": {"classificationDetails.jobId": {"eq": [job["jobId"]]},
                                                             "resourcesAffected.s3Object.key": {"eq": [data.RAW_KEY]}}})["findingIds"]
    detected: dict[str, int] = {}
    for finding in macie.get_findings(findingIds=ids)["findings"] if ids else []:
        for category in (finding.get("classificationDetails", {}).get("result") or {}).get("sensitiveData", []):
            for detection in category.get("detections", []):
                detected[detection["type"]] = detected.get(detection["type"], 0) + int(detection.get("count", 0))
    expected = data.expected_detections(ctx.dataset["customers"])
    short = {kind: (detected.get(kind, 0), count) for kind, count in expected.items() if detected.get(kind, 0) < count}
    if short:
        kind, (found, count) = next(iter(sorted(short.items())))
        raise Fail(f"Macie job {SCAN_JOB}'s findings for s3://{data.LAKE_BUCKET}/{data.RAW_KEY} report {found} {kind} of the {count} seeded"
                   + (f" ({len(short)} kinds short)" if len(short) > 1 else ""))
    return f"Macie job {SCAN_JOB} found in the raw extract: " + ", ".join(f"{kind} ×{detected[kind]}" for kind in sorted(expected))


@check("L13-12", "Analysts read a masked copy of the EU customers in which no seeded identifier appears", points=2, task="4.5",
       hints=("Masking keeps data useful while hiding who it is about: a token (a keyed hash) in place of an email, the last four digits of a card. Analysts get the masked copy; the originals stay with the steward.",
              "Write the masked rows under s3://dea-gov-lake/masked/customers/, describe them as table gov_lake.customers_masked in the Glue catalog, and grant the analyst role SELECT on it with Lake Formation.",
              "lakeformation.grant_permissions(Principal={'DataLakePrincipalIdentifier': analyst_arn}, Resource={'Table': {'DatabaseName': 'gov_lake', 'Name': 'customers_masked'}}, Permissions=['SELECT'])"),
       docs="https://docs.aws.amazon.com/glue/latest/dg/detect-PII.html")
def masked_copy(ctx: LabContext) -> str:
    table = f"{data.DATABASE}.{data.MASKED_TABLE}"
    columns, rows = _read_as_analyst(ctx, table)
    if "customer_id" not in columns:
        raise Fail(f"`SELECT * FROM {table}` run by role {ANALYST} returns no customer_id column (columns {columns})")
    ids = [row[columns.index("customer_id")] for row in rows]
    _ids_differ(ctx, ids, table)
    seeded = {(column, value) for column, values in data.identifiers(ctx.dataset["customers"]).items() for value in values}
    seeded |= {("full_name", row["full_name"]) for row in ctx.dataset["customers"]}
    normalized = {("".join(char for char in value.lower() if char.isalnum()), column) for column, value in seeded}
    for row in rows:
        for column, cell in zip(columns, row):
            flat = "".join(char for char in cell.lower() if char.isalnum())
            leaked = next((kind for value, kind in normalized if value and value in flat), None)
            if leaked:
                raise Fail(f"{table}, read by role {ANALYST}: column {column} of customer {row[columns.index('customer_id')]} shows a seeded {leaked} in full")
    return f"role {ANALYST} reads the {len(ids)} EU customers of {table} ({', '.join(columns)}) and none of their identifiers"


@check("L13-13", "The steward is a data lake administrator and can read the raw extract", points=1, task="4.2",
       hints=("Someone must still govern: the data steward administers Lake Formation and may read the personal data the others may not. A bucket or key policy that shuts out everyone shuts out the steward too.",
              "Lake Formation PutDataLakeSettings with the steward role in DataLakeAdmins; the bucket policy's exemption and the key policy name the steward.",
              "settings['DataLakeAdmins'] = [{'DataLakePrincipalIdentifier': steward_arn}]; key policy statement {'Principal': {'AWS': steward_arn}, 'Action': 'kms:*', 'Resource': '*'}"),
       docs=f"{LF_DOCS}/getting-started-setup.html#create-data-lake-admin")
def steward_governs(ctx: LabContext) -> str:
    steward_arn = f"arn:aws:iam::{_account(ctx)}:role/{STEWARD}"
    admins = [a["DataLakePrincipalIdentifier"] for a in ctx.client("lakeformation").get_data_lake_settings()["DataLakeSettings"].get("DataLakeAdmins", [])]
    if steward_arn not in admins:
        raise Fail(f"role {STEWARD} is not among the data lake administrators ({', '.join(admins) or 'none'})")
    s3 = _as_role(ctx, STEWARD).client("s3")
    try:
        body = s3.get_object(Bucket=data.LAKE_BUCKET, Key=data.RAW_KEY)["Body"].read()
    except ClientError as error:
        raise Fail(f"role {STEWARD} cannot read s3://{data.LAKE_BUCKET}/{data.RAW_KEY}: {_code(error)}: {_message(error)}") from None
    header = next(csv.reader(io.StringIO(body.decode(errors="replace"))), [])
    return f"role {STEWARD} administers Lake Formation and reads the raw extract ({len(header)} columns)"


def _stages(ctx: LabContext) -> dict[str, list[str]]:
    return ctx.client("secretsmanager").describe_secret(SecretId=SECRET).get("VersionIdsToStages", {})


def _secret_value(ctx: LabContext, when: str = "") -> dict:
    """The secret's AWSCURRENT value, read by the account's administrator, as a JSON document."""
    try:
        value = json.loads(ctx.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"])
    except ClientError as error:
        raise Fail(f"{when}the account's root cannot read secret {SECRET}: {_code(error)}: {_message(error)}") from None
    except (KeyError, ValueError):
        raise Fail(f"{when}secret {SECRET}'s AWSCURRENT value is not a JSON document") from None
    if not isinstance(value, dict):
        raise Fail(f"{when}secret {SECRET}'s AWSCURRENT value is not a JSON object")
    return value


def _current(stages: dict[str, list[str]]) -> str | None:
    return next((version for version, labels in stages.items() if "AWSCURRENT" in labels), None)


@check("L13-14", "The warehouse password rotates at least every 30 days: past the schedule, a new password is AWSCURRENT and the old one AWSPREVIOUS", points=3, task="4.1",
       timeout=240,
       hints=("Secrets Manager rotates a secret by calling a Lambda function four times (createSecret, setSecret, testSecret, finishSecret) on a schedule; finishSecret moves AWSCURRENT to the new version, and the old one becomes AWSPREVIOUS so readers mid-flight still work.",
              "Lambda CreateFunction with the rotation code and an execution role allowed secretsmanager:DescribeSecret, GetSecretValue, PutSecretValue, UpdateSecretVersionStage and GetRandomPassword on the secret; AddPermission for secretsmanager.amazonaws.com; RotateSecret with RotationLambdaARN and RotationRules of 30 days or fewer.",
              "secretsmanager.rotate_secret(SecretId='dea-gov/warehouse', RotationLambdaARN=function_arn, RotationRules={'AutomaticallyAfterDays': 30}); in finishSecret: update_secret_version_stage(SecretId=arn, VersionStage='AWSCURRENT', MoveToVersionId=token, RemoveFromVersionId=current_version)"),
       docs="https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html")
def secret_rotates(ctx: LabContext) -> str:
    secrets = ctx.client("secretsmanager")
    try:
        described = secrets.describe_secret(SecretId=SECRET)
    except ClientError as error:
        raise Fail(f"secret {SECRET} does not exist" if _code(error) == "ResourceNotFoundException" else f"secret {SECRET}: {_code(error)}: {_message(error)}") from None
    if not described.get("RotationEnabled") or not described.get("NextRotationDate"):
        raise Fail(f"secret {SECRET} has no rotation configured")
    now = datetime.datetime.fromisoformat(ctx.admin("clock")["now"]).replace(tzinfo=datetime.timezone.utc)
    due = described["NextRotationDate"].astimezone(datetime.timezone.utc)
    if due - now > datetime.timedelta(days=MAX_ROTATION_DAYS + 1):
        raise Fail(f"secret {SECRET} next rotates on {due:%Y-%m-%d}, {(due - now).days} days from now: its schedule is longer than {MAX_ROTATION_DAYS} days "
                   f"({described.get('RotationRules')})")
    before = _current(described.get("VersionIdsToStages", {}))
    old_value = _secret_value(ctx)
    hours = max(1, int((due - now).total_seconds() // 3600) + 2)
    ctx.admin("clock", {"action": "advance", "by": f"{hours}h"})
    deadline = time.monotonic() + ROTATION_WAIT_SECONDS
    while (after := _current(stages := _stages(ctx))) == before and time.monotonic() < deadline:
        time.sleep(0.5)
    if after == before:
        failure = secrets.describe_secret(SecretId=SECRET)
        raise Fail(f"the lab clock moved {hours} h, past secret {SECRET}'s NextRotationDate {due:%Y-%m-%d %H:%M}, and AWSCURRENT did not move"
                   + (" (a version is left AWSPENDING: a step of the rotation function failed, see its log group)" if any("AWSPENDING" in s and "AWSCURRENT" not in s for s in stages.values()) else "")
                   + ("" if failure.get("RotationEnabled") else " (rotation is no longer enabled)"))
    if "AWSPREVIOUS" not in stages.get(before, []):
        raise Fail(f"after secret {SECRET}'s rotation the version that was AWSCURRENT is labelled {stages.get(before)}, not AWSPREVIOUS")
    new = _secret_value(ctx, "after rotation ")
    if new.get("password") in (None, "", old_value.get("password")):
        raise Fail(f"after rotation secret {SECRET}'s AWSCURRENT value has the same (or no) password")
    lost = sorted(key for key in old_value if key != "password" and new.get(key) != old_value[key])
    if lost:
        raise Fail(f"after rotation secret {SECRET}'s AWSCURRENT value changed or lost {lost}: a rotation changes the password only")
    return f"past its schedule, secret {SECRET} rotated: a new password is AWSCURRENT, the previous version AWSPREVIOUS"
