"""The Secrets Manager engine: rotation with a Lambda function, on demand and on the lab clock.

AWS's "How rotation works": RotateSecret starts a rotation and returns at once; Secrets Manager gives the new
version an id (the ClientRequestToken) labelled AWSPENDING and invokes the rotation function four times,
`{"Step": "createSecret" | "setSecret" | "testSecret" | "finishSecret", "SecretId": <ARN>, "ClientRequestToken":
<id>}`. The function puts the new value under AWSPENDING, sets and tests it, and in finishSecret moves AWSCURRENT to
it (the old version becomes AWSPREVIOUS). A step that fails stops the rotation and leaves AWSPENDING where it is.

The backend keeps the secret and its versions (PutSecretValue, UpdateSecretVersionStage, GetSecretValue all pass
on); this engine keeps the rotation configuration and runs, in its state file, and never sends RotateSecret on:
moto would invoke the function through Docker inside the request and make the new version AWSCURRENT whatever
the function did. The empty AWSPENDING version a rotation starts with exists here until createSecret puts its
value (DescribeSecret, ListSecrets and ListSecretVersionIds show it; GetSecretValue finds no value for it, as on
AWS). Scheduled rotations are lab timers at the start of each rotation window (schedule.py).
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import uuid

from botocore.exceptions import BotoCoreError, ClientError

from dealab.engines.secrets import schedule
from dealab.wire import labtime, trailevents
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile
from dealab.wire.timers import timers

log = logging.getLogger("dealab.secrets")

ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
CANNOT_INVOKE = ("Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to "
                 "the principal secretsmanager.amazonaws.com.")
INVOKE_TIMEOUT_SECONDS = 15 * 60 + 30  # Lambda's longest timeout, and a margin
# the response member that lists a secret's versions and their labels, per operation
STAGES_MEMBER = {"DescribeSecret": "VersionIdsToStages", "ListSecrets": "SecretVersionsToStages"}


class SecretsEngine(Engine):
    name = "secrets"
    operations = {
        ("secretsmanager", "RotateSecret"): "_rotate_secret",
        ("secretsmanager", "CancelRotateSecret"): "_cancel_rotate_secret",
        ("secretsmanager", "DescribeSecret"): "_describe_secret",
        ("secretsmanager", "ListSecrets"): "_list_secrets",
        ("secretsmanager", "ListSecretVersionIds"): "_list_secret_version_ids",
        ("secretsmanager", "UpdateSecretVersionStage"): "_update_secret_version_stage",
        ("secretsmanager", "DeleteSecret"): "_delete_secret",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.file = JsonFile(context.state_dir / self.name / "rotations.json")
        # secret ARN → {arn, name, region, lambda, rules, enabled, last_rotated, next, pending, failure}
        self.rotations: dict[str, dict] = self.file.load({})
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._invokers: dict[str, object] = {}
        for arn, record in self.rotations.items():
            if record.get("pending") and not record.get("failure"):
                record["failure"] = {"step": "", "message": "the stack stopped while the rotation ran", "at": record.get("started")}
            self._schedule(arn, record)
        self._save()

    # ---- RotateSecret ----------------------------------------------------------------------------------------
    def _rotate_secret(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        secret = self._backend_secret(params.get("SecretId"), request.region)
        if isinstance(secret, AwsResponse):
            return secret
        arn = secret["ARN"]
        if secret.get("DeletedDate"):
            return AwsResponse.json_error("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
        token = params.get("ClientRequestToken")
        if token is not None and not 32 <= len(str(token)) <= 64:
            return AwsResponse.json_error("InvalidParameterException", "ClientRequestToken must be 32-64 characters long.")
        with self._lock:
            record = dict(self.rotations.get(arn) or {"arn": arn, "region": request.region, "last_rotated": None, "pending": None})
            running = arn in self._running
        record["name"] = secret["Name"]
        lambda_arn = params.get("RotationLambdaARN") or record.get("lambda")
        if not lambda_arn:
            return AwsResponse.json_error("InvalidRequestException", "No Lambda rotation function ARN is associated with this secret.")
        if "RotationRules" in params:
            try:
                record["rules"] = schedule.check(params["RotationRules"] or {})
            except schedule.RulesError as error:
                return AwsResponse.json_error("InvalidParameterException", str(error))
        stages = secret.get("VersionIdsToStages", {})
        pending = record.get("pending")
        if pending in stages and (CURRENT in stages[pending] or PENDING not in stages[pending]):
            record["pending"] = None  # finished, or its label taken off by hand since: nothing left to reattempt
        stray = [version for version, labels in stages.items() if PENDING in labels and CURRENT not in labels and version != record.get("pending")]
        if running or stray:
            return AwsResponse.json_error("InvalidRequestException", IN_PROGRESS)
        if not self._function_exists(lambda_arn, request.region):
            return AwsResponse.json_error("AccessDeniedException", CANNOT_INVOKE)
        record["lambda"], record["enabled"] = lambda_arn, True
        immediately = params.get("RotateImmediately", True)
        answer = {"ARN": arn, "Name": secret["Name"]}
        if immediately:
            # a failed rotation is reattempted under its own version id, as AWS's message says
            record["pending"] = record.get("pending") or token or str(uuid.uuid4())
            answer["VersionId"] = record["pending"]
        record["started"] = labtime.unix_time()
        with self._lock:
            if arn in self._running:  # another RotateSecret started one since this one looked
                return AwsResponse.json_error("InvalidRequestException", IN_PROGRESS)
            self.rotations[arn] = record
            self._save()
            # without RotateImmediately AWS tests the configuration with the testSecret step, and rotates in the next window
            self._start(arn, ROTATION_STEPS if immediately else ("testSecret",))
        return AwsResponse.json(answer)

    def _start(self, arn: str, steps: tuple[str, ...]) -> threading.Event:
        """Starts a run of `steps` on a thread of its own; the caller holds the lock and has seen none running."""
        finished = self._running[arn] = threading.Event()
        threading.Thread(target=self._run, args=(arn, steps, finished), name=f"rotation-{arn.rsplit(':', 1)[-1]}", daemon=True).start()
        return finished

    def _run(self, arn: str, steps: tuple[str, ...], finished: threading.Event) -> None:
        try:
            with self._lock:
                record = dict(self.rotations[arn])
            rotating = steps == ROTATION_STEPS
            self._announce(record, "RotationStarted" if rotating else "TestRotationStarted")
            token = record["pending"] if rotating else str(uuid.uuid4())
            failure = self._rotate(record, token) if rotating else self._test_configuration(record, token)
            with self._lock:
                record = self.rotations.get(arn)
                if record is None:  # the secret was deleted meanwhile
                    return
                record["failure"] = failure
                if rotating and failure is None:
                    record["pending"] = None
                    record["last_rotated"] = record["started"]
                self._schedule(arn, record)
                self._save()
            self._announce(record, ("" if rotating else "Test") + ("RotationFailed" if failure else "RotationSucceeded"), failure)
        except Exception:  # a rotation's failure is the secret's, never the stack's
            log.exception("rotation of %s failed", arn)
        finally:
            with self._lock:
                self._running.pop(arn, None)
            finished.set()

    def _rotate(self, record: dict, token: str) -> dict | None:
        """Runs the four steps; the failure (step, message) or None."""
        for step in ROTATION_STEPS:
            failure = self._invoke(record, step, token)
            if failure is not None:
                return failure
        stages = self._stages(record)
        if CURRENT not in stages.get(token, []):
            return self._failure("finishSecret", f"the rotation function returned, but version {token} is not labelled AWSCURRENT")
        return None

    def _test_configuration(self, record: dict, token: str) -> dict | None:
        """RotateImmediately false: "The test creates an AWSPENDING version of the secret and then removes it."""
        sm = self.own_client("secretsmanager", record["region"])
        try:
            current = sm.get_secret_value(SecretId=record["arn"], VersionStage=CURRENT)
            value = {"SecretString": current["SecretString"]} if "SecretString" in current else {"SecretBinary": current["SecretBinary"]}
            sm.put_secret_value(SecretId=record["arn"], ClientRequestToken=token, VersionStages=[PENDING], **value)
        except (ClientError, BotoCoreError) as error:
            return self._failure("testSecret", f"the secret has no AWSCURRENT value to test with: {error}")
        try:
            return self._invoke(record, "testSecret", token)
        finally:
            sm.update_secret_version_stage(SecretId=record["arn"], VersionStage=PENDING, RemoveFromVersionId=token)

    def _invoke(self, record: dict, step: str, token: str) -> dict | None:
        payload = {"Step": step, "SecretId": record["arn"], "ClientRequestToken": token}
        try:
            response = self._invoker(record["region"]).invoke(FunctionName=record["lambda"], Payload=json.dumps(payload).encode())
        except (ClientError, BotoCoreError) as error:
            return self._failure(step, f"{CANNOT_INVOKE} ({error})")
        body = response["Payload"].read()
        if "FunctionError" not in response:
            return None
        try:
            error = json.loads(body)
            text = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        except (ValueError, AttributeError):
            text = body.decode("utf-8", "replace")
        return self._failure(step, f"the rotation function failed in step {step}: {text}")

    @staticmethod
    def _failure(step: str, message: str) -> dict:
        log.warning("rotation failed: %s", message)
        return {"step": step, "message": message, "at": labtime.unix_time()}

    def _announce(self, record: dict, event_name: str, failure: dict | None = None) -> None:
        """What AWS's CloudTrail records for a rotation (a service event, also sent to EventBridge)."""
        trailevents.record("secretsmanager.amazonaws.com", event_name, record["region"],
                           {"failureReason": failure["message"], "step": failure["step"]} if failure else None,
                           {"SecretId": record["arn"]}, [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": record["arn"]}])

    # ---- the schedule ----------------------------------------------------------------------------------------------
    def _schedule(self, arn: str, record: dict) -> None:
        """Arms the timer of the record's next rotation and notes its moment in the record (the caller saves it)."""
        timers.cancel(self.name, arn)
        rules = record.get("rules")
        if not record.get("enabled") or not rules:
            record["next"] = None
            return
        # from the last attempt, failed or not: a failed window is not tried again until the next one
        since = record.get("started") or labtime.unix_time()
        due = self._catch_up(arn, rules, schedule.next_rotation(rules, labtime.EPOCH + datetime.timedelta(seconds=since)))
        record["next"] = (due - labtime.EPOCH).total_seconds() if due else None
        if due is not None:
            timers.schedule(self.name, arn, due, lambda at: self._due(arn))

    def _catch_up(self, arn: str, rules: dict, due: datetime.datetime | None) -> datetime.datetime | None:
        """A clock move past many windows rotates in the first (already done) and the last before its target, not in
        every one between (a daily rotation over a two-year move): the skipped windows are noted in the move's summary."""
        target = timers.move_target()
        if target is not None and target.tzinfo is not None:  # the clock engine's target is aware; timers' moments naive UTC
            target = target.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        if due is None or target is None or due > target:
            return due
        skipped = 0
        while True:
            later = schedule.next_rotation(rules, due)
            if later is None or later > target:
                break
            due, skipped = later, skipped + 1
        if skipped:
            timers.note_skipped(self.name, arn, skipped)
        return due

    def _due(self, arn: str):
        with self._lock:
            record = self.rotations.get(arn)
            if record is None or not record.get("enabled") or arn in self._running:
                return None
            record["pending"] = record.get("pending") or str(uuid.uuid4())
            record["started"] = labtime.unix_time()
            self._save()
            return self._start(arn, ROTATION_STEPS).is_set

    # ---- what callers read ------------------------------------------------------------------------------------------
    def _describe_secret(self, request: AwsRequest) -> AwsResponse:
        return self._overlaid(request, lambda body: [body])

    def _list_secrets(self, request: AwsRequest) -> AwsResponse:
        return self._overlaid(request, lambda body: body.get("SecretList", []))

    def _overlaid(self, request: AwsRequest, secrets_of) -> AwsResponse:
        response = request.send_on()
        if response.status != 200:
            return response
        body = json.loads(response.read())
        member = STAGES_MEMBER[request.operation]
        with self._lock:
            for secret in secrets_of(body):
                self._overlay(secret, member)
        return AwsResponse.json(body)

    def _overlay(self, secret: dict, member: str) -> None:
        record = self.rotations.get(secret.get("ARN"))
        for name in ("RotationEnabled", "RotationLambdaARN", "RotationRules", "LastRotatedDate", "NextRotationDate"):
            secret.pop(name, None)
        if record is None:
            return
        secret["RotationEnabled"] = record["enabled"]
        secret["RotationLambdaARN"] = record["lambda"]
        if record.get("rules"):
            secret["RotationRules"] = record["rules"]
        if record.get("last_rotated"):
            secret["LastRotatedDate"] = record["last_rotated"]
        if record["enabled"] and record.get("next"):
            secret["NextRotationDate"] = record["next"]
        pending = record.get("pending")
        if pending and pending not in secret.get(member, {}):
            secret.setdefault(member, {})[pending] = [PENDING]

    def _list_secret_version_ids(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status != 200:
            return response
        body = json.loads(response.read())
        with self._lock:
            record = self.rotations.get(body.get("ARN"))
            pending = record.get("pending") if record else None
        if pending and all(version["VersionId"] != pending for version in body.get("Versions", [])):
            body.setdefault("Versions", []).append({"VersionId": pending, "VersionStages": [PENDING], "CreatedDate": record["started"]})
        return AwsResponse.json(body)

    # ---- what changes a rotation -----------------------------------------------------------------------------------
    def _update_secret_version_stage(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        secret = self._backend_secret(params.get("SecretId"), request.region)
        if isinstance(secret, AwsResponse):
            return secret
        with self._lock:
            record = self.rotations.get(secret["ARN"])
        removed = params.get("RemoveFromVersionId")
        if record and removed and removed == record.get("pending") and params.get("VersionStage") == PENDING:
            if removed not in secret.get("VersionIdsToStages", {}):  # the empty version lives here only
                self._forget_pending(secret["ARN"])
                return AwsResponse.json({"ARN": secret["ARN"], "Name": secret["Name"]})
            response = request.send_on()
            if response.status == 200:
                self._forget_pending(secret["ARN"])
            return response
        return request.send_on()

    def _forget_pending(self, arn: str) -> None:
        with self._lock:
            if arn in self.rotations:
                self.rotations[arn]["pending"] = None
                self._save()

    def _cancel_rotate_secret(self, request: AwsRequest) -> AwsResponse:
        secret = self._backend_secret(request.json.get("SecretId"), request.region)
        if isinstance(secret, AwsResponse):
            return secret
        arn = secret["ARN"]
        with self._lock:
            record = self.rotations.get(arn)
            if record is not None:
                record["enabled"], record["next"] = False, None
                self._save()
        timers.cancel(self.name, arn)
        answer = {"ARN": arn, "Name": secret["Name"]}
        if record and record.get("pending"):
            answer["VersionId"] = record["pending"]  # AWS: the partly rotated version, for the caller to clean up
        return AwsResponse.json(answer)

    def _delete_secret(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if response.status == 200:
            arn = json.loads(response.read()).get("ARN")
            with self._lock:
                if self.rotations.pop(arn, None) is not None:
                    self._save()
            timers.cancel(self.name, arn)
        return response

    # ---- the backend -------------------------------------------------------------------------------------------------
    def _backend_secret(self, secret_id, region: str) -> dict | AwsResponse:
        """DescribeSecret as the backend answers it, or its error as the caller's answer."""
        sm = self.own_client("secretsmanager", region)
        try:
            return sm.describe_secret(SecretId=secret_id)
        except ClientError as error:
            details = error.response.get("Error", {})
            return AwsResponse.json_error(details.get("Code", "InvalidRequestException"), details.get("Message", str(error)),
                                          error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        except BotoCoreError as error:
            return AwsResponse.json_error("InvalidParameterException", str(error))

    def _stages(self, record: dict) -> dict:
        secret = self._backend_secret(record["arn"], record["region"])
        return {} if isinstance(secret, AwsResponse) else secret.get("VersionIdsToStages", {})

    def _invoker(self, region: str):
        """A Lambda client that waits as long as a function may run (15 minutes) and never sends a step twice."""
        with self._lock:
            if region not in self._invokers:
                self._invokers[region] = self.context.client("lambda", engine=self.name, region=region, read_timeout=INVOKE_TIMEOUT_SECONDS,
                                                             retries={"total_max_attempts": 1})
            return self._invokers[region]

    def _function_exists(self, function: str, region: str) -> bool:
        aws_lambda = self.own_client("lambda", region)
        try:
            aws_lambda.get_function(FunctionName=function)
        except (ClientError, BotoCoreError):
            return False
        return True

    def _save(self) -> None:
        self.file.save(self.rotations)

    def admin_routes(self):
        return {"secrets/rotations": self._admin_rotations}

    def _admin_rotations(self, request: AwsRequest) -> AwsResponse:
        """Each secret's rotation as the engine holds it, with the last failure in words (`dealab` CLI, tests)."""
        with self._lock:
            return AwsResponse.json({"rotations": [{**record, "running": arn in self._running} for arn, record in self.rotations.items()]})

    def reset(self) -> None:
        timers.cancel_owner(self.name)
        with self._lock:
            self.rotations = {}
            self._save()

    def close(self) -> None:
        timers.cancel_owner(self.name)
