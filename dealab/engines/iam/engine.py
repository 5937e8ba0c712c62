"""The IAM engine: every request from the network is authorized here as AWS authorizes it, and STS answers.

Callers: the account root (the stack's test/test key, and engines' own engine-marked calls), IAM users (the
access keys CreateAccessKey returned through the gateway, recorded here), STS sessions issued here
(AssumeRole, GetSessionToken, and the execution-role sessions engines act with: servicesessions.py), and
anonymous S3 requests the door let in. For each request the operation's
rule (actions.py) names the IAM action(s) and resource ARNs; the caller's identity policies, permissions
boundary and session policies and the resource's own policy (S3 bucket, SQS queue, SNS topic, KMS key,
Lambda function, Secrets Manager secret, Glue catalog; an AssumeRole's trust policy) are combined by
policy.decide. Parsed policies are cached by text; what a principal or a resource holds is cached until a
call that changes it succeeds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import timezone
from urllib.parse import unquote

from botocore.exceptions import ClientError, ParamValidationError

from dealab.engines.iam import accesspoints, kms
from dealab.engines.iam import requests as req
from dealab.engines.iam.actions import PASSED_ROLES, passed_roles, rule_for
from dealab.engines.iam.servicesessions import ServiceSessions
from dealab.engines.iam.sts import IAM_ANSWERS, STS_ANSWERS, iso
from dealab.engines.iam.policy import (ACCOUNT_ID, ROOT, Caller, NamedPolicy, Policies, PolicyError, RequestContext, decide,
                                       parse, parse_identity)
from dealab.wire import access, labtime, rolesessions
from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.iam")

ANONYMOUS = Caller("anonymous", "anonymous", frozenset())
GONE_PRINCIPAL = "The security token included in the request is invalid: its principal no longer exists"
# Calls after which the policies a principal holds may differ (any successful IAM write).
IAM_READ_PREFIXES = ("Get", "List", "Simulate", "Generate")
# service → operations after which its resource policies may differ
RESOURCE_POLICY_WRITES = {
    "s3": {"PutBucketPolicy", "DeleteBucketPolicy", "DeleteBucket"},
    "sqs": {"SetQueueAttributes", "AddPermission", "RemovePermission", "DeleteQueue", "CreateQueue"},
    "sns": {"SetTopicAttributes", "AddPermission", "RemovePermission", "DeleteTopic", "CreateTopic"},
    "kms": {"PutKeyPolicy", "CreateKey"},
    "lambda": {"AddPermission", "RemovePermission", "DeleteFunction", "CreateFunction"},
    "secretsmanager": {"PutResourcePolicy", "DeleteResourcePolicy", "DeleteSecret", "CreateSecret"},
    "glue": {"PutResourcePolicy", "DeleteResourcePolicy"},
}
# Judged requests are kept (IamEngine.refusal) until any call that may change a decision succeeds: every call but reads
# (these prefixes) and the data calls below, which add or take records and objects, never policies or principals. An
# object's tags are data too: a decision that read them is never kept.
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "BatchGet", "Select", "Query", "Scan", "Receive",
                 "Filter", "Simulate", "Generate")
DATA_CALLS = {
    "s3": {"PutObject", "CopyObject", "UploadPart", "UploadPartCopy", "CreateMultipartUpload", "CompleteMultipartUpload",
           "AbortMultipartUpload", "DeleteObject", "DeleteObjects", "PutObjectTagging", "DeleteObjectTagging", "RestoreObject"},
    "athena": {"StartQueryExecution", "StopQueryExecution"},
    "cloudwatch": {"PutMetricData"},
    "events": {"PutEvents"},
    "logs": {"PutLogEvents", "CreateLogStream"},
    "sqs": {"SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility",
            "ChangeMessageVisibilityBatch"},
    "kinesis": {"PutRecord", "PutRecords"},
    "firehose": {"PutRecord", "PutRecordBatch"},
    "dynamodb": {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"},
    "lambda": {"Invoke"},
}
# How many judged decisions are kept at most (each ~0.5 KB).
DECISIONS_KEPT = 100_000
# Condition keys whose value is the moment of asking, not the request's: a decision that read one is never kept.
MOMENT_KEYS = frozenset({"aws:currenttime", "aws:epochtime", "aws:multifactorauthage"})
# Condition key prefixes an S3 object's request resolves from the object's tags, when a policy asks for them.
OBJECT_TAG_KEYS = ("s3:existingobjecttag/", "aws:resourcetag/")


@dataclass(frozen=True)
class ServiceUse:
    """A call after which an AWS service uses a resource itself, allowed only by that resource's policy naming the
    service principal (AWS checks it when the call configures the use)."""
    principal: str
    action: str
    parameter: str  # the request parameter naming the resource
    refusal: str


SERVICE_USES = {
    ("secretsmanager", "RotateSecret"): ServiceUse(
        "secretsmanager.amazonaws.com", "lambda:InvokeFunction", "RotationLambdaARN",
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal "
        "secretsmanager.amazonaws.com."),
}


@dataclass(frozen=True)
class IssuedKey:
    """What the door needs of a key this engine knows (dealab.stack.signatures.with_issued_keys)."""
    secret_key: str
    principal_arn: str
    session_token: str = ""
    expires_at: float | None = None


@dataclass
class Principal:
    caller: Caller
    policies: Policies
    context: dict  # the principal's own condition keys (aws:username, aws:PrincipalTag/…)
    user_id: str
    session: dict | None = None


def _in_account(arn: str) -> str:
    """An IAM ARN as STS names this account's principals: a backend that keeps another account id (ministack's
    000000000000) would otherwise give a role's sessions an aws:PrincipalArn no learner's policy names."""
    parts = arn.split(":", 5)
    return ":".join(parts[:4] + [ACCOUNT_ID, parts[5]]) if len(parts) == 6 and parts[2] == "iam" else arn


class IamEngine(Engine):
    name = "iam"
    operations = {(ANY_OPERATION, ANY_OPERATION): "_authorize"}
    passes_engine_calls = True  # engines' own (marked) calls act as the account root; work done as a role is unmarked

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.keys_file = JsonFile(context.state_dir / self.name / "credentials.json")
        stored = self.keys_file.load({"user_keys": {}, "sessions": {}})
        self.user_keys: dict[str, dict] = stored["user_keys"]  # access key → {secret, user, status}
        self.sessions: dict[str, dict] = stored["sessions"]  # access key → the session STS issued
        self._principals: ReadCache[Principal] = ReadCache()  # access key → who it is, with their policies
        self._resource_policies: ReadCache[str | None] = ReadCache()  # (service, the fetcher's key) → its policy
        # a judged request (dealab.wire.access) → IAM's answer, and whether it may be kept (refusal); one per object a
        # query read, for each caller, until a policy may have changed: bounded, so a stack that only reads stays small
        self._decisions: ReadCache[tuple[AwsResponse | None, bool]] = ReadCache(limit=DECISIONS_KEPT)
        self._lock = threading.Lock()
        self.keys = kms.KeyLookups(self.own_client)
        self.access_points = accesspoints.AccessPoints(self.own_client)
        self._query_work_groups: dict[str, str] = {}  # Athena query id → its work group (a query never changes group)
        access.offer(context.loopback, self.refusal)
        access.offer_sessions(context.loopback, self.service_session)
        self.service_sessions = ServiceSessions(self)  # held here: the floor holds it weakly
        rolesessions.offer(context.loopback, self.service_sessions)

    # ---- the door's question ----------------------------------------------------------------------------------
    def issued_credential(self, access_key: str) -> IssuedKey | None:
        key = self.user_keys.get(access_key)
        if key is not None:
            return IssuedKey(key["secret"], f"arn:aws:iam::{ACCOUNT_ID}:user/{key['user']}") if key["status"] == "Active" else None
        session = self.sessions.get(access_key)
        if session is not None:
            return IssuedKey(session["secret"], session["arn"], session["token"], session["expires"])
        return None

    def service_session(self, role_arn: str, service: str, session_name: str, policy: str | None, duration: int) -> dict | str:
        """Credentials of `role_arn` for a service that acts with it (dealab.wire.access.offer_sessions), as STS
        answers them, or why the service may not assume the role: minted by the same ServiceSessions as the
        execution roles engines act with (dealab.wire.rolesessions)."""
        try:
            found = self.service_sessions.assume(role_arn, service, session_name, duration, policy=policy)
        except rolesessions.Refused as refusal:
            return refusal.message
        return {"AccessKeyId": found.access_key, "SecretAccessKey": found.secret_key, "SessionToken": found.token,
                "Expiration": iso(found.expires)}

    # ---- every request -------------------------------------------------------------------------------------
    def _authorize(self, request: AwsRequest) -> AwsResponse:
        principal = self._principal(request)
        if principal is None:
            return req.refusal(request, GONE_PRINCIPAL)
        access_point = self.access_points.route(request)  # the request now names the access point's bucket
        if isinstance(access_point, AwsResponse):
            return access_point
        refusal = self.authorization_refusal(request, principal, access_point)
        if refusal is not None:
            return refusal
        answer = STS_ANSWERS.get((request.service, request.operation)) or IAM_ANSWERS.get((request.service, request.operation))
        if answer is not None:
            return answer(self, request, principal)
        response = self.pass_on(request)
        return self._key_in_answer_refusal(request, principal, response) or response

    def refusal(self, request: AwsRequest) -> AwsResponse | None:
        """What _authorize would answer `request` instead of passing it on (None: it would pass), decided without
        sending it: for engines acting for the caller on many resources at once (dealab.wire.access).

        A request with no headers, query or body (Athena's read of each object of a table, again at each query) is
        decided by its caller, method, path and region alone, so an answer that passes it is kept until a call that
        may change a decision succeeds (_observe), unless it read the moment (aws:CurrentTime) or the object's tags."""
        principal = self._principal(request)
        if principal is None:
            return req.refusal(request, GONE_PRINCIPAL)
        access_point = self.access_points.route(request)  # a table's location may be an access point alias
        if isinstance(access_point, AwsResponse):
            return access_point
        if request.headers or request.query_string or request.body:
            return self.authorization_refusal(request, principal, access_point)

        def decide_once() -> tuple[AwsResponse | None, bool]:
            consulted: set[str] = set()
            refusal = self.authorization_refusal(request, principal, access_point, consulted)
            lasting = refusal is None and not any(key in MOMENT_KEYS or key.startswith(OBJECT_TAG_KEYS) for key in consulted)
            return refusal, lasting
        key = (request.caller_key, request.service, request.operation, request.method, request.path, request.region,
               request.source_ip, request.secure_transport)
        return self._decisions.get(key, decide_once, keep=lambda decided: decided[1])[0]

    def pass_on(self, request: AwsRequest) -> AwsResponse:
        # engines' calls too: a policy or key an engine changes must reach the caches, and a call through an access
        # point alias (a table located at s3://<alias>/) must reach its bucket (routed already when authorized)
        access_point = self.access_points.route(request)
        if isinstance(access_point, AwsResponse):
            return access_point
        response = request.send_on()
        self._observe(request, response)
        return response

    def authorization_refusal(self, request: AwsRequest, principal: Principal, access_point: accesspoints.AccessPoint | None = None,
                              consulted: set[str] | None = None) -> AwsResponse | None:
        """IAM's refusal of `request` (None: it passes); the condition keys its policies asked for go into `consulted`."""
        operation = req.operation_of(request)
        rule = rule_for(request.service, operation)
        if rule is None:
            if principal.caller.is_root and request.service != "s3":
                return None  # nothing to evaluate for root but resource policies, which need the rule
            line = f"dealab cannot authorize {request.service}:{operation or request.method}: the operation has no row in dealab/engines/iam/actions.py"
            log.warning("denied: %s (caller %s)", line, principal.caller.arn)
            return req.refusal(request, line)
        if rule.always_allowed:
            return None
        params = req.parameters(request)
        if request.service == "kms":
            self._resolve_aliases(request.region, params)
            if request.operation in kms.KEY_FROM_ANSWER and not params.get("KeyId"):
                return None  # the ciphertext names the key: authorized on the key the answer names
        if request.service == "athena" and not principal.caller.is_root:
            self._resolve_work_group(request.region, params)
        context = self._context(request, principal, params, consulted)
        actions = rule.actions + (("sts:TagSession",) if request.operation == "AssumeRole" and req.request_tags(request, params) else ())
        # a resource named by the ARN a backend answered with is this account's, as its policies read (BACKEND_ACCOUNTS)
        checks = [(action, _in_this_account(resource)) for action in actions for resource in req.resources(rule, request, params)]
        if access_point is not None:  # AWS: the access point and its bucket must both permit the request
            checks = [(action, access_point.resource(resource)) for action, resource in checks] + checks
            context.update(access_point.condition_keys())
        if request.operation in ("CopyObject", "UploadPartCopy"):
            source = unquote_copy_source(request.headers.get("x-amz-copy-source", ""))
            if source:
                checks.append(("s3:GetObject", f"arn:aws:s3:::{source}"))
        for action, resource in checks:
            try:
                policies = self._policies_for(request, principal, action, resource, params)
                decision = decide(principal.caller, action, resource, context, policies)
            except PolicyError as error:
                log.warning("denied %s on %s: a policy cannot be evaluated: %s", action, resource, error)
                return req.refusal(request, f"a policy that applies to {action} on {resource} cannot be evaluated: {error}", resource)
            if decision.decision == "implicitDeny" and (principal.caller.kind == "anonymous" or rule.unless_denied):
                continue  # anonymous: the door admitted it on a public ACL or policy; only an explicit deny refuses it
            if decision.decision == "implicitDeny" and action.startswith("kms:") and self._granted(principal, action, resource, params):
                continue
            if not decision.allowed:
                return req.denial(request, principal.caller.arn, action, resource, decision.reason)
        passing = PASSED_ROLES.get((request.service, operation))
        if passing is not None and not principal.caller.is_root:
            refusal = self._pass_role_refusal(request, principal, context, params, *passing)
            if refusal is not None:
                return refusal
        use = SERVICE_USES.get((request.service, operation))
        if use is not None and isinstance(params.get(use.parameter), str):
            refusal = self._service_use_refusal(request, use, params[use.parameter], checks[0][1] if checks else "*")
            if refusal is not None:
                return refusal
        if request.service == "kms" and request.operation in ("CreateKey", "PutKeyPolicy"):
            return self._lockout_refusal(request, principal, context, params)
        if request.service == "s3" and operation in kms.S3_WRITES_WITH_KEY:
            reference = kms.written_key(request.headers)
            if reference is None:
                reference = self.keys.bucket_key(request.region, params["bucket"])
            return self._key_use_refusal(request, principal, context, kms.S3_WRITES_WITH_KEY[operation], reference, params)
        return None

    def _pass_role_refusal(self, request: AwsRequest, principal: Principal, context: RequestContext, params: dict,
                           paths: tuple[str, ...], service: str) -> AwsResponse | None:
        """AWS's iam:PassRole check on each role the call gives a service (the service named by iam:PassedToService)."""
        passing = RequestContext({**context, "iam:passedtoservice": [service]}, context.lazy, context.consulted)
        for role in passed_roles(paths, params):
            try:
                decision = decide(principal.caller, "iam:PassRole", role, passing, self._policies_for(request, principal, "iam:PassRole", role, params))
            except PolicyError as error:
                return req.refusal(request, f"a policy that applies to iam:PassRole on {role} cannot be evaluated: {error}", role)
            if not decision.allowed:
                return req.denial(request, principal.caller.arn, "iam:PassRole", role, decision.reason)
        return None

    def _service_use_refusal(self, request: AwsRequest, use: ServiceUse, resource: str, source_arn: str) -> AwsResponse | None:
        service = use.action.partition(":")[0]
        document = self._resource_policy(service, resource, {})
        caller = Caller(use.principal, "service", frozenset({use.principal}))
        context = {"aws:sourcearn": [source_arn], "aws:sourceaccount": [ACCOUNT_ID]}
        try:
            allowed = document is not None and decide(caller, use.action, resource, context,
                                                      Policies(resource=[NamedPolicy("resource policy", parse(document))], resource_required=True)).allowed
        except PolicyError:
            allowed = False
        return None if allowed else req.refusal(request, use.refusal)

    def _resolve_work_group(self, region: str, params: dict) -> None:
        """GetQueryExecution, GetQueryResults and StopQueryExecution name a query: AWS authorizes them on the query's
        work group, which the query keeps (asked of Athena once per query)."""
        query_id = params.get("QueryExecutionId")
        if not isinstance(query_id, str) or params.get("WorkGroup"):
            return
        found = self._query_work_groups.get(query_id)
        if found is None:
            try:
                execution = self.own_client("athena", region).get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            except ClientError:
                return  # no such query: authorized on the primary work group, and Athena answers that it does not exist
            found = execution.get("WorkGroup") or "primary"
            if len(self._query_work_groups) > 10000:
                self._query_work_groups.clear()
            self._query_work_groups[query_id] = found
        params["WorkGroup"] = found

    # ---- KMS keys: the key a request uses, for the caller (kms.py) ---------------------------------------------------
    def _resolve_aliases(self, region: str, params: dict) -> None:
        for name in ("KeyId", "DestinationKeyId"):
            if isinstance(params.get(name), str) and kms.is_alias(params[name]):
                params[name] = self.keys.key_id(region, params[name]) or params[name]

    def _key_use_refusal(self, request: AwsRequest, principal: Principal, context: RequestContext, action: str,
                         reference: str | None, params: dict) -> AwsResponse | None:
        """S3 using an object's KMS key on the caller's behalf (kms:ViaService): the caller must be allowed the action."""
        key_id = self.keys.key_id(request.region, reference) if reference else None
        if key_id is None:
            return None  # no SSE-KMS, the AWS managed key (its policy admits the account through S3), or no such key
        resource = kms.key_arn(request.region, key_id)
        object_arn = f"arn:aws:s3:::{params['bucket']}/{params['key']}"
        via = RequestContext({**context, "kms:viaservice": [kms.via_service("s3", request.region)], "kms:calleraccount": [ACCOUNT_ID],
                              "kms:encryptioncontext:aws:s3:arn": [object_arn], "kms:encryptioncontextkeys": ["aws:s3:arn"]}, context.lazy,
                             context.consulted)
        try:
            decision = decide(principal.caller, action, resource, via, self._policies_for(request, principal, action, resource, {}))
        except PolicyError as error:
            return req.refusal(request, f"the key policy of {resource} cannot be evaluated: {error}", resource)
        if decision.allowed or decision.decision == "implicitDeny" and self._granted(principal, action, resource, {"EncryptionContext": {"aws:s3:arn": object_arn}}):
            return None
        return req.denial(request, principal.caller.arn, action, resource, decision.reason)

    def _key_in_answer_refusal(self, request: AwsRequest, principal: Principal, response: AwsResponse) -> AwsResponse | None:
        """Checks that need the answer to know the key: an SSE-KMS object's GetObject, a Decrypt without KeyId (both
        read-only, so answering first changes nothing)."""
        if response.status >= 300 or principal.caller.kind == "anonymous":
            return None
        if request.service == "s3" and request.operation in kms.S3_READS_WITH_KEY and response.header("x-amz-server-side-encryption") == kms.SSE_KMS:
            params = req.parameters(request)
            return self._key_use_refusal(request, principal, self._context(request, principal, params), kms.S3_READS_WITH_KEY[request.operation],
                                         response.header("x-amz-server-side-encryption-aws-kms-key-id"), params)
        if request.service == "kms" and request.operation in kms.KEY_FROM_ANSWER and not request.json.get("KeyId"):
            key_id = self.keys.key_id(request.region, json.loads(response.read()).get("KeyId", ""))
            if key_id is None:
                return None
            params = {**req.parameters(request), "KeyId": key_id}
            context = self._context(request, principal, params)
            action, resource = f"kms:{request.operation}", kms.key_arn(request.region, key_id)
            try:
                decision = decide(principal.caller, action, resource, context, self._policies_for(request, principal, action, resource, params))
            except PolicyError as error:
                return req.refusal(request, f"the key policy of {resource} cannot be evaluated: {error}", resource)
            if decision.allowed or decision.decision == "implicitDeny" and self._granted(principal, action, resource, params):
                return None
            return req.denial(request, principal.caller.arn, action, resource, decision.reason)
        return None

    def _granted(self, principal: Principal, action: str, resource: str, params: dict) -> bool:
        if ":key/" not in resource or principal.caller.kind == "anonymous":
            return False
        region, key_id = resource.split(":")[3], resource.rsplit("/", 1)[-1]
        context = params.get("EncryptionContext") if isinstance(params.get("EncryptionContext"), dict) else {}
        return kms.grant_allows(self.keys.grants(region, key_id), principal.caller, action, context)

    def _lockout_refusal(self, request: AwsRequest, principal: Principal, context: RequestContext, params: dict) -> AwsResponse | None:
        """KMS's lockout safety check: a key policy that would not let the caller change it again is refused."""
        document = params.get("Policy")
        if not document or params.get("BypassPolicyLockoutSafetyCheck"):
            return None
        resource = kms.key_arn(request.region, params.get("KeyId") or "*")
        try:
            new_policy = [NamedPolicy("the new key policy", parse(document))]
        except PolicyError as error:
            return AwsResponse.json_error("MalformedPolicyDocumentException", str(error))
        policies = principal.policies
        decision = decide(principal.caller, "kms:PutKeyPolicy", resource, context,
                          Policies(policies.identity, new_policy, policies.boundary, policies.session, resource_required=True))
        return None if decision.allowed else AwsResponse.json_error("MalformedPolicyDocumentException", kms.LOCKOUT)

    # ---- who is asking -----------------------------------------------------------------------------------------
    def _principal(self, request: AwsRequest) -> Principal | None:
        key = request.caller_key
        if key is None or key not in self.user_keys and key not in self.sessions:
            caller = ANONYMOUS if key == "" else ROOT
            return Principal(caller, Policies(), {}, ACCOUNT_ID if caller is ROOT else "")
        try:
            return self._principals.get(key, lambda: self._resolve(key))
        except self._iam().exceptions.NoSuchEntityException:
            return None

    def _resolve(self, access_key: str) -> Principal:
        session = self.sessions.get(access_key)
        if session is None or session["kind"] == "user-session":
            user = self.user_keys[access_key]["user"] if session is None else session["user"]
            if user is None:  # GetSessionToken as the root: the session is the root's
                return Principal(ROOT, Policies(), {}, ACCOUNT_ID, session)
            details = self._iam().get_user(UserName=user)["User"]
            arn, tags = _in_account(details["Arn"]), {t["Key"]: t["Value"] for t in details.get("Tags", [])}
            policies = Policies(identity=self._user_policies(user), boundary=self._boundary(details))
            caller = Caller(arn, "user", frozenset({arn}))
            context = {"aws:username": [user], "aws:userid": [details["UserId"]], "aws:principaltype": ["User"], "aws:principalarn": [arn]}
            user_id = details["UserId"]
        else:
            role = self._iam().get_role(RoleName=session["role_name"])["Role"]
            tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])} | session["tags"]
            sessions_policies = [NamedPolicy(f"session policy {i + 1}", parse_identity(doc)) for i, doc in enumerate(session["policies"])]
            policies = Policies(identity=self._role_policies(session["role_name"]), boundary=self._boundary(role),
                                session=sessions_policies or None)
            role_arn = _in_account(role["Arn"])
            caller = Caller(session["arn"], "assumed-role", frozenset({session["arn"], role_arn}))
            user_id = f"{role['RoleId']}:{session['session_name']}"
            context = {"aws:userid": [user_id], "aws:principaltype": ["AssumedRole"], "aws:principalarn": [role_arn],
                       "aws:rolesessionname": [session["session_name"]]}
        for name, value in tags.items():
            context[f"aws:principaltag/{name.lower()}"] = [value]
        if session is not None:
            context["aws:multifactorauthpresent"] = ["true" if session.get("mfa") else "false"]
            context["aws:tokenissuetime"] = [iso(session["issued"])]
        return Principal(caller, policies, context, user_id, session)

    def _user_policies(self, user: str) -> list[NamedPolicy]:
        iam = self._iam()
        found = [NamedPolicy(name, parse_identity(_document(iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"])))
                 for name in iam.list_user_policies(UserName=user)["PolicyNames"]]
        found += [self._managed(p["PolicyArn"]) for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]]
        for group in iam.list_groups_for_user(UserName=user)["Groups"]:
            name = group["GroupName"]
            found += [NamedPolicy(policy, parse_identity(_document(iam.get_group_policy(GroupName=name, PolicyName=policy)["PolicyDocument"])))
                      for policy in iam.list_group_policies(GroupName=name)["PolicyNames"]]
            found += [self._managed(p["PolicyArn"]) for p in iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"]]
        return found

    def _role_policies(self, role: str) -> list[NamedPolicy]:
        iam = self._iam()
        found = [NamedPolicy(name, parse_identity(_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])))
                 for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        return found + [self._managed(p["PolicyArn"]) for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]

    def _boundary(self, entity: dict) -> list[NamedPolicy] | None:
        arn = entity.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
        return [self._managed(arn)] if arn else None

    def _managed(self, arn: str) -> NamedPolicy:
        iam = self._iam()
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        return NamedPolicy(arn, parse_identity(_document(document)))

    # ---- the request's condition keys --------------------------------------------------------------------------
    def _context(self, request: AwsRequest, principal: Principal, params: dict, consulted: set[str] | None = None) -> RequestContext:
        moment = labtime.now()
        values = {
            "aws:securetransport": ["true" if request.secure_transport else "false"],
            "aws:sourceip": [request.source_ip],
            "aws:currenttime": [iso(moment.replace(tzinfo=timezone.utc).timestamp())],
            "aws:epochtime": [str(int(moment.replace(tzinfo=timezone.utc).timestamp()))],
            "aws:requestedregion": [request.region],
            "aws:principalaccount": [ACCOUNT_ID],
            "aws:principalarn": [principal.caller.arn],
            "aws:userid": [principal.user_id],
        }
        if principal.caller.is_root:
            values["aws:principaltype"] = ["Account"]
        values.update(principal.context)
        tags = req.request_tags(request, params)
        for name, value in tags.items():
            values[f"aws:requesttag/{name.lower()}"] = [value]
        if tags:
            values["aws:tagkeys"] = list(tags)
        values.update(req.service_keys(request, params))
        lazy = {}
        if request.service == "s3" and params.get("key"):
            lazy = dict.fromkeys(OBJECT_TAG_KEYS, lambda tag: self._object_tag(params["bucket"], params["key"], tag))
        return RequestContext(values, lazy, consulted)

    def _object_tag(self, bucket: str, key: str, tag: str) -> list[str] | None:
        s3 = self.own_client("s3")
        try:
            tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        except s3.exceptions.ClientError:
            return None
        return next(([t["Value"]] for t in tags if t["Key"].lower() == tag), None)

    # ---- the resource's own policy -------------------------------------------------------------------------------
    def _policies_for(self, request: AwsRequest, principal: Principal, action: str, resource: str, params: dict) -> Policies:
        policies = principal.policies
        service = action.partition(":")[0]
        document = None
        if action == "sts:AssumeRole" or action == "sts:TagSession":
            document = self._trust_policy(resource)
        elif resource.startswith(accesspoints.ARN_PREFIX) and ":accesspoint/" in resource:
            document = self.access_points.policy(resource)
        elif service in RESOURCE_POLICY_FETCHERS and (service != "s3" or resource.startswith("arn:aws:s3:::")):
            document = self._resource_policy(service, resource, params)
        resource_policies = [NamedPolicy("resource policy", parse(document))] if document else []
        # a KMS key's policy must allow (for the root too: its default statement names the account); AssumeRole's trust
        return Policies(policies.identity, resource_policies, policies.boundary, policies.session,
                        resource_required=service == "kms" and document is not None or action in ("sts:AssumeRole", "sts:TagSession"))

    def _resource_policy(self, service: str, resource: str, params: dict) -> str | None:
        fetch, cache_key = RESOURCE_POLICY_FETCHERS[service](resource, params)
        if fetch is None:
            return None

        def read() -> str | None:
            client = self.own_client(service)
            try:
                return fetch(client)
            except (client.exceptions.ClientError, ParamValidationError):
                # no policy to read: the resource does not exist, or its name is one no API accepts (the request
                # goes on, and the service refuses it in its own words)
                return None
        return self._resource_policies.get((service, cache_key), read)

    def _trust_policy(self, role_arn: str) -> str | None:
        role = self._role(role_arn)
        return _document(role["AssumeRolePolicyDocument"]) if role else None

    def _role(self, role_arn: str) -> dict | None:
        iam = self._iam()
        try:
            return iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
        except iam.exceptions.NoSuchEntityException:
            return None

    # ---- what changed --------------------------------------------------------------------------------------------
    def _observe(self, request: AwsRequest, response: AwsResponse) -> None:
        if response.status >= 300:
            return
        self.keys.observe(request.service, request.operation)
        self.access_points.observe(request.service, request.operation)
        if request.service == "iam" and not request.operation.startswith(IAM_READ_PREFIXES):
            self._access_keys_changed(request, response)
            self._principals.forget_all()
        if request.operation in RESOURCE_POLICY_WRITES.get(request.service, ()):
            self._resource_policies.forget_where(lambda cached: cached[0] == request.service)
        if not (request.operation.startswith(READ_PREFIXES) or request.operation in DATA_CALLS.get(request.service, ())):
            self._decisions.forget_all()

    def _access_keys_changed(self, request: AwsRequest, response: AwsResponse) -> None:
        params = {name: values[0] for name, values in request.form.items()}
        if request.operation == "CreateAccessKey":
            body = response.read().decode("utf-8", "replace")
            fields = {name: _xml_value(body, name) for name in ("UserName", "AccessKeyId", "SecretAccessKey", "Status")}
            if fields["AccessKeyId"] and fields["SecretAccessKey"]:
                self.user_keys[fields["AccessKeyId"]] = {"secret": fields["SecretAccessKey"], "user": fields["UserName"],
                                                         "status": fields["Status"] or "Active"}
        elif request.operation == "DeleteAccessKey":
            self.user_keys.pop(params.get("AccessKeyId", ""), None)
        elif request.operation == "UpdateAccessKey" and params.get("AccessKeyId") in self.user_keys:
            self.user_keys[params["AccessKeyId"]]["status"] = params.get("Status", "Active")
        elif request.operation == "DeleteUser":
            for key in [k for k, v in self.user_keys.items() if v["user"] == params.get("UserName")]:
                del self.user_keys[key]
        else:
            return
        self._save()

    def _save(self) -> None:
        # copies: engines' role sessions are minted and renewed on their own threads (servicesessions.py)
        self.keys_file.save({"user_keys": dict(self.user_keys), "sessions": dict(self.sessions)})

    def _iam(self):
        return self.own_client("iam")

    def reset(self) -> None:
        with self._lock:
            self.user_keys.clear()
            self.sessions.clear()
        self._principals.forget_all()
        self._resource_policies.forget_all()
        self._decisions.forget_all()
        self.keys.forget_all()
        self.access_points.forget_all()
        self._save()


# ---- resource policies: how each service's is read -------------------------------------------------------------
def _s3_policy(resource: str, params: dict):
    bucket = resource[len("arn:aws:s3:::"):].partition("/")[0]
    return (lambda s3: s3.get_bucket_policy(Bucket=bucket)["Policy"]), bucket


def _sqs_policy(resource: str, params: dict):
    url = params.get("QueueUrl")
    return ((lambda sqs: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")), url) \
        if url else (None, None)


def _sns_policy(resource: str, params: dict):
    return ((lambda sns: sns.get_topic_attributes(TopicArn=resource)["Attributes"].get("Policy")), resource) \
        if resource.startswith("arn:aws:sns:") else (None, None)


def _kms_policy(resource: str, params: dict):
    key = resource.rsplit("/", 1)[-1]

    def fetch(kms) -> str:
        policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        metadata = kms.describe_key(KeyId=key)["KeyMetadata"]  # ministack's has no AWSAccountId: its ARN names it
        return _policy_in_account(policy, metadata.get("AWSAccountId") or metadata["Arn"].split(":")[4])
    return (fetch, key) if ":key/" in resource and key != "*" else (None, None)


def _policy_in_account(document: str, backend_account: str) -> str:
    """A key policy as this account's: a backend that keeps another account id (ministack's 000000000000) writes
    its default key policy for that account's root, which would shut the root out of every key it made."""
    if backend_account == ACCOUNT_ID:
        return document
    return document.replace(f"arn:aws:iam::{backend_account}:", f"arn:aws:iam::{ACCOUNT_ID}:").replace(f'"{backend_account}"', f'"{ACCOUNT_ID}"')


def _lambda_policy(resource: str, params: dict):
    name = resource.split(":")[6] if resource.count(":") >= 6 else ""
    return ((lambda aws_lambda: aws_lambda.get_policy(FunctionName=name).get("Policy")), name) if name and name != "*" else (None, None)


def _secret_policy(resource: str, params: dict):
    secret = params.get("SecretId")
    return ((lambda sm: sm.get_resource_policy(SecretId=secret).get("ResourcePolicy")), secret) if secret else (None, None)


def _glue_policy(resource: str, params: dict):
    return (lambda glue: glue.get_resource_policy().get("PolicyInJson")), "catalog"


RESOURCE_POLICY_FETCHERS = {"s3": _s3_policy, "sqs": _sqs_policy, "sns": _sns_policy, "kms": _kms_policy, "lambda": _lambda_policy,
                            "secretsmanager": _secret_policy, "glue": _glue_policy}


# The account id a backend other than moto keeps its resources under (ministack's): a learner's policy names the
# ARNs the backend answered with (a queue's, a stream's), which the evaluator must read as this account's, as it
# builds every request's resource ARN with this account.
BACKEND_ACCOUNTS = ("000000000000",)
_BACKEND_ARN_ACCOUNT = re.compile(r"(arn:aws[\w-]*:[\w-]+:[\w-]*:)(?:" + "|".join(BACKEND_ACCOUNTS) + r")(?=:)")


def _in_this_account(text: str) -> str:
    return _BACKEND_ARN_ACCOUNT.sub(rf"\g<1>{ACCOUNT_ID}", text)


def _document(document) -> str:
    """Policy documents come back from boto3 decoded (a dict) or as text; the parse cache keys on text. ARNs in a
    backend's own account are read as this account's (BACKEND_ACCOUNTS)."""
    return _in_this_account(document if isinstance(document, str) else json.dumps(document, sort_keys=True))


def _xml_value(body: str, name: str) -> str:
    match = re.search(rf"<{name}>([^<]*)</{name}>", body)
    return match.group(1) if match else ""


def unquote_copy_source(header: str) -> str:
    return unquote(header.partition("?")[0]).lstrip("/")


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))

