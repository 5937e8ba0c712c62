"""The IAM role a COPY, an UNLOAD or an external schema names (IAM_ROLE), as Redshift uses it: the role must be
associated with the cluster or namespace (IamRoles, or DefaultIamRoleArn for `IAM_ROLE default`) and trust
redshift.amazonaws.com; Redshift then assumes it and makes the statement's S3 and Glue requests with the session.

dealab does the same through the stack's role sessions (dealab.wire.rolesessions): the session is minted by the IAM
engine, and COPY's and UNLOAD's S3 requests (ListBucket, GetObject, PutObject, DeleteObject) and Spectrum's Glue
requests are sent through the gateway signed with it, so the role's policies, its permissions boundary, the
bucket's policy and an SSE-KMS object's key policy decide each of them, and CloudTrail names the session. Spectrum's
object reads go through Athena's reader, which reads as the account; each file it reads is first judged for the
role's session by the IAM engine's evaluator in this process (dealab.wire.access), as a GetObject of it would be.
Refusals are worded as Redshift words them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import botocore.exceptions
from werkzeug.datastructures import Headers

from dealab.engines.redshift.errors import RedshiftError
from dealab.wire import access, rolesessions
from dealab.wire.messages import AwsRequest

SERVICE_PRINCIPAL = "redshift.amazonaws.com"
SESSION_NAME = "RedshiftIamRoleSession"
ACCOUNT_ID = rolesessions.ACCOUNT_ID
# Redshift's error code for a failed assumption and for an S3 request refused to the role
CREDENTIALS_ERROR_CODE = 8001
S3_ACCESS_DENIED = "S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid dealab,ExtRid dealab,CanRetry 1"


@dataclass(frozen=True)
class Association:
    """What a statement's role is checked against: the cluster's or workgroup's name and admin (the dbuser ARN
    Redshift's refusal names), the roles associated with it and its default role."""

    name: str
    region: str
    admin: str
    roles: tuple[str, ...]
    default_role: str | None = None


def refusal(message: str, context: str, query_id: int | None = None) -> RedshiftError:
    """Redshift's ERROR line with the DETAIL block it prints under a credentials or S3 failure."""
    detail = (f"\n  DETAIL:\n  -----------------------------------------------\n  error:  {message}\n"
              f"  code:      {CREDENTIALS_ERROR_CODE}\n  context:   {context}\n"
              + (f"  query:     {query_id}\n" if query_id else "") + "  -----------------------------------------------")
    return RedshiftError(message + detail)


def named_role(options: dict[str, str | None]) -> str | None:
    """The role a COPY's or UNLOAD's options name: IAM_ROLE, or the older CREDENTIALS 'aws_iam_role=<arn>'."""
    if options.get("IAM_ROLE"):
        return options["IAM_ROLE"]
    credentials = dict(part.partition("=")[::2] for part in (options.get("CREDENTIALS") or "").split(";") if "=" in part)
    return credentials.get("aws_iam_role")


@dataclass
class RoleSession:
    """The role a statement acts as: clients signed with its session, and its access key (None when the stack acts
    as the account root: no IAM engine)."""

    role_arn: str
    s3: object
    glue: object
    access_key: str | None
    session_arn: str | None = None  # arn:aws:sts::…:assumed-role/<role>/<session>: whom Lake Formation judges


class RoleAccess:
    """Assumes the role a statement names, as Redshift does."""

    def __init__(self, sessions: rolesessions.RoleSessions, association: Callable[[], Association], loopback):
        self._sessions, self._association, self._loopback = sessions, association, loopback
        self._clients: dict[tuple[str, str], object] = {}  # (service, role) → its client (building one costs ~0.1 s)
        self._lock = threading.Lock()

    def assume(self, named: str | None, user: str | None) -> RoleSession:
        """The session of the role IAM_ROLE names ('default' for the default role): refused in Redshift's words when
        the role is not associated with the cluster or namespace, does not exist, or does not trust Redshift."""
        association = self._association()
        if not named:
            raise RedshiftError("IAM_ROLE is required: name a role associated with the cluster or namespace, or IAM_ROLE default "
                                "(dealab does not take access keys in CREDENTIALS or ACCESS_KEY_ID yet)")
        if "," in named:
            raise RedshiftError("dealab does not offer chained IAM roles (IAM_ROLE 'arn1,arn2') yet (a later part of issue 18)")
        if named.lower() == "default":
            if not association.default_role:
                raise RedshiftError("Default IAM role is not set for this cluster or namespace; associate one "
                                    "(DefaultIamRoleArn / defaultIamRoleArn) or name the role's ARN")
            named = association.default_role
        database_user = f"arn:aws:redshift:{association.region}:{ACCOUNT_ID}:dbuser:{association.name}/{user or association.admin}"
        refused = refusal(f"User {database_user} is not authorized to assume IAM Role {named}", f"IAM Role={named}")
        if named not in association.roles and named != association.default_role:
            raise refused
        try:
            credentials = self._sessions.credentials(named, SESSION_NAME)
        except rolesessions.Refused:
            raise refused from None
        return RoleSession(named, self._client("s3", named, refused), self._client("glue", named, refused),
                           credentials.access_key if credentials else None, credentials.arn if credentials else None)

    def _client(self, service: str, role: str, refused: RedshiftError):
        with self._lock:
            if (service, role) not in self._clients:
                self._clients[(service, role)] = self._sessions.client(service, role, SESSION_NAME, on_refusal=lambda _: refused,
                                                                       engine="redshift")
            return self._clients[(service, role)]

    def may_read(self, session: RoleSession, bucket: str, key: str) -> None:
        """Raises Redshift's S3 refusal unless IAM lets the role's session GetObject the object, decided by the IAM
        engine's evaluator in this process (Spectrum reads through Athena's reader, which reads as the account)."""
        judge = access.judge(self._loopback)
        if judge is None or session.access_key is None:
            return
        request = AwsRequest("GET", f"/{bucket}/{quote(key, safe='/~')}", "", Headers(), b"", service="s3", operation="GetObject",
                             region=self._sessions.region, caller_key=session.access_key)
        if judge(request) is not None:
            raise refusal(S3_ACCESS_DENIED, f"S3 key being read : s3://{bucket}/{key}")

    def may_write_catalog(self, session: RoleSession, operation: str, params: dict) -> None:
        """Raises Glue's refusal, as Spectrum passes it on, unless IAM lets the role's session make this Glue call
        (the catalog write itself goes through Athena's DDL rules, as the account)."""
        judge = access.judge(self._loopback)
        if judge is None or session.access_key is None:
            return
        request = AwsRequest("POST", "/", "", Headers({"X-Amz-Target": f"AWSGlue.{operation}", "Content-Type": "application/x-amz-json-1.1"}),
                             json.dumps(params).encode(), service="glue", operation=operation, region=self._sessions.region,
                             caller_key=session.access_key)
        refused = judge(request)
        if refused is not None:
            raise glue_denied(json.loads(refused.read() or b"{}").get("message", "AccessDeniedException"))


def glue_denied(message: str) -> RedshiftError:
    """Glue refusing a catalog request Spectrum made as the role, as Redshift passes it on."""
    return RedshiftError(f"{message} (Service: AWSGlue; Status Code: 400; Error Code: AccessDeniedException; Request ID: dealab)")


def catalog_call(call, **arguments):
    """A Glue request made as the role (its client); Glue's refusal in Redshift's words."""
    try:
        return call(**arguments)
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") != "AccessDeniedException":
            raise
        raise glue_denied(error.response["Error"].get("Message", "")) from None


def s3_denied(error, context: str, query_id: int | None = None) -> RedshiftError | None:
    """Redshift's words for S3 refusing a request made as the role (botocore's ClientError), or None for another error."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    if code not in ("AccessDenied", "KMS.AccessDeniedException", "AccessDeniedException"):
        return None
    message = getattr(error, "response", {}).get("Error", {}).get("Message", "")
    if "kms:" in message:  # an SSE-KMS object whose key the role may not use: S3 passes KMS's refusal on
        return refusal(f"S3ServiceException:{message},Status 403,Error AccessDenied,Rid dealab,CanRetry 1", context, query_id)
    return refusal(S3_ACCESS_DENIED, context, query_id)
