"""The Lambda engine: Python functions run for real, without Docker, in warm worker processes.

The backend keeps functions, versions, aliases, layers, concurrency and event invoke configs (so they are
journaled); this engine keeps what it needs to run them (their code, unpacked by digest: code.py), runs
invocations (workers.py, runner.py), queues asynchronous ones (asynchronous.py), and answers what the backend
gets wrong: Invoke (it needs Docker there), a function's DeadLetterConfig (dropped there), and a second
PutFunctionEventInvokeConfig (kept behind the first there).

Code runs on the stack's own Python (3.11) whatever Python runtime a function declares; a function declaring
another version gets a warning in its log. Its AWS calls reach the stack through AWS_ENDPOINT_URL with a session
of the function's execution role (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, session named after
the function, as on AWS): one session per worker (execution environment), renewed on the lab clock while the
worker lives (dealab.wire.rolesessions), so the role's policies decide what the function may do. CreateFunction
and UpdateFunctionConfiguration refuse a role Lambda cannot assume, in Lambda's words.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import botocore.session
from botocore.exceptions import ClientError

from dealab.engines.awslambda.asynchronous import AsyncInvocations, Attempt, qualified_arn
from dealab.engines.awslambda.code import CodeError, CodeStore
from dealab.engines.awslambda.workers import FunctionSpec, Outcome, WorkerPool
from dealab.wire import metrics, rolesessions
from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.readcache import ReadCache
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.lambda")

STACK_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Python runtimes Lambda offers (botocore's Runtime enum, from 3.9 on); older ones it refuses to create.
PYTHON_RUNTIMES = tuple(
    runtime for runtime in botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum
    if re.fullmatch(r"python3\.(9|[1-9]\d)", runtime)
)
RETIRED_PYTHON_RUNTIMES = ("python2.7", "python3.6", "python3.7", "python3.8")
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
ROLE_REFUSAL = "The role defined for the function cannot be assumed by Lambda."
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
IDLE_SECONDS = float(os.environ.get("DEALAB_LAMBDA_IDLE_SECONDS", "300"))
MAX_WORKERS = int(os.environ.get("DEALAB_LAMBDA_MAX_WORKERS", "10"))
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
# Lambda calls whose answer the engine caches (reading them changes nothing); any other call empties the cache.
READ_METHODS = ("GET", "HEAD")


class LambdaError(Exception):
    """An AWS error to send back."""

    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra or {}


@dataclass(frozen=True)
class Target:
    """A function version ready to run: what its worker needs and how it was named."""

    spec: FunctionSpec
    invoked_arn: str
    qualifier: str | None
    reserved_concurrency: int | None
    environment: dict
    sys_path: list
    runtime_warning: str | None
    role: str  # the execution role: each worker runs with a session of it
    function_arn: str


class LambdaEngine(Engine):
    name = "lambda"
    operations = {
        ("lambda", "Invoke"): "_invoke",
        ("lambda", "InvokeAsync"): "_invoke_async",
        ("lambda", "CreateFunction"): "_create_function",
        ("lambda", "UpdateFunctionCode"): "_update_function_code",
        ("lambda", "UpdateFunctionConfiguration"): "_update_function_configuration",
        ("lambda", "PublishLayerVersion"): "_publish_layer_version",
        ("lambda", "DeleteFunction"): "_delete_function",
        ("lambda", "GetFunction"): "_with_dead_letter_config",
        ("lambda", "GetFunctionConfiguration"): "_with_dead_letter_config",
        ("lambda", "PutFunctionEventInvokeConfig"): "_put_event_invoke_config",
        ("lambda", ANY_OPERATION): "_pass_on",
    }

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.folder = context.state_dir / self.name
        self.code = CodeStore(self.folder)
        self._dead_letter = JsonFile(self.folder / "dead-letter-configs.json")  # function name → target ARN
        self._lock = threading.Lock()
        # what invocations read of functions, concurrency and layers, and the Targets made of them; any write to
        # Lambda forgets it all
        self._reads: ReadCache[dict | Target] = ReadCache()
        self._in_flight: dict[str, int] = {}
        self._logs = LogSender(lambda: self.own_client("logs"))
        self.pool = WorkerPool(self._logs.send, IDLE_SECONDS, MAX_WORKERS)
        self.roles = rolesessions.RoleSessions(context, LAMBDA_PRINCIPAL)
        self.async_events = AsyncInvocations(self.folder, self._attempt_async, self._async_settings, self._deliver, self._send_to_dead_letter)

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except LambdaError as error:
            return _error(error.code, error.message, error.status, error.extra)
        except CodeError as error:
            return _error(error.code, error.message, error.status)

    # ---- control plane: the backend does it, the engine keeps the code ------------------------------------
    def _create_function(self, request: AwsRequest) -> AwsResponse:
        self._refuse_retired_runtime(request.json.get("Runtime"))
        self._refuse_role(request.json.get("Role"))
        self._keep_code(request.json.get("Code") or {})
        response = self._pass_on(request)
        if response.status < 300:
            self._remember_dead_letter(request.json)
        return response

    def _update_function_code(self, request: AwsRequest) -> AwsResponse:
        if not request.json.get("DryRun"):
            self._keep_code(request.json)
        response = self._pass_on(request)
        if response.status < 300:
            self.pool.retire(_function_in_path(request.path)[0], "$LATEST")
        return response

    def _update_function_configuration(self, request: AwsRequest) -> AwsResponse:
        self._refuse_retired_runtime(request.json.get("Runtime"))
        self._refuse_role(request.json.get("Role"))
        response = self._pass_on(request)
        if response.status < 300:
            name = _function_in_path(request.path)[0]
            self.pool.retire(name, "$LATEST")
            self._remember_dead_letter({**request.json, "FunctionName": name})
        return response

    def _publish_layer_version(self, request: AwsRequest) -> AwsResponse:
        content = request.json.get("Content") or {}
        zip_bytes = self._zip_of(content)
        if zip_bytes is not None:
            self.code.add_layer(zip_bytes)
        return self._pass_on(request)

    def _delete_function(self, request: AwsRequest) -> AwsResponse:
        response = self._pass_on(request)
        name, qualifier = _function_in_path(request.path)
        qualifier = request.query.get("Qualifier", [qualifier])[0]
        if response.status < 300:
            self.pool.retire(name, qualifier)
            if qualifier is None:
                with self._lock:
                    configs = self._dead_letter.load({})
                    configs.pop(name, None)
                    self._dead_letter.save(configs)
        return response

    def _with_dead_letter_config(self, request: AwsRequest) -> AwsResponse:
        """The backend drops DeadLetterConfig; the engine keeps it and adds it to the function's configuration."""
        response = request.send_on()
        if response.status != 200:
            return response
        body = json.loads(response.read())
        configuration = body.get("Configuration", body)
        target = self._dead_letter.load({}).get(configuration.get("FunctionName", ""))
        if not target:
            return response
        configuration["DeadLetterConfig"] = {"TargetArn": target}
        return AwsResponse(200, [(k, v) for k, v in response.headers if k.lower() != "content-length"], json.dumps(body).encode())

    def _put_event_invoke_config(self, request: AwsRequest) -> AwsResponse:
        """A second Put replaces the first on AWS; the backend keeps answering with the first, so it goes first."""
        name, _ = _function_in_path(request.path)
        lam = self.own_client("lambda")
        try:
            lam.delete_function_event_invoke_config(FunctionName=name)
        except ClientError:  # none yet
            pass
        return self._pass_on(request)

    def _pass_on(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        if request.method not in READ_METHODS:
            self._reads.forget_all()
        return response

    def _refuse_retired_runtime(self, runtime: str | None) -> None:
        if runtime in RETIRED_PYTHON_RUNTIMES:
            raise LambdaError("InvalidParameterValueException",
                              f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda functions. "
                              f"We recommend you use a supported runtime while creating or updating functions.")

    def _refuse_role(self, role) -> None:
        """Lambda checks that it can assume the execution role when a function is created or its role changes."""
        if not isinstance(role, str) or not role:
            return  # the backend answers a missing Role in its own words
        try:
            self.roles.check(role)
        except rolesessions.Refused:
            raise LambdaError("InvalidParameterValueException", ROLE_REFUSAL) from None

    def _keep_code(self, code: dict) -> None:
        zip_bytes = self._zip_of(code)
        if zip_bytes is not None:
            self.code.add_function_code(zip_bytes)

    def _zip_of(self, code: dict) -> bytes | None:
        """The .zip a Code or Content member carries (ZipFile, or S3Bucket/S3Key); None when it names none or
        the object cannot be read (the backend then answers with its own error)."""
        if code.get("ZipFile"):
            return base64.b64decode(code["ZipFile"])
        if code.get("S3Bucket") and code.get("S3Key"):
            s3 = self.own_client("s3")
            extra = {"VersionId": code["S3ObjectVersion"]} if code.get("S3ObjectVersion") else {}
            try:
                return s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"], **extra)["Body"].read()
            except ClientError:
                return None
        return None

    def _remember_dead_letter(self, spec: dict) -> None:
        if "DeadLetterConfig" not in spec:
            return
        with self._lock:
            configs = self._dead_letter.load({})
            target = (spec["DeadLetterConfig"] or {}).get("TargetArn")
            if target:
                configs[spec["FunctionName"]] = target
            else:
                configs.pop(spec["FunctionName"], None)
            self._dead_letter.save(configs)

    # ---- Invoke --------------------------------------------------------------------------------------------
    def _invoke(self, request: AwsRequest) -> AwsResponse:
        name, qualifier = _function_in_path(request.path)
        qualifier = request.query.get("Qualifier", [qualifier])[0] or qualifier
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise LambdaError("InvalidParameterValueException", f"Invalid InvocationType: {invocation_type}")
        limit = MAX_ASYNC_PAYLOAD_BYTES if invocation_type == "Event" else MAX_SYNC_PAYLOAD_BYTES
        if len(request.body) > limit:
            raise LambdaError("RequestTooLargeException", f"Request must be smaller than {limit} bytes for the InvokeFunction operation", 413)
        _check_json(request.body)
        target = self._target(name, qualifier)
        if invocation_type == "DryRun":
            return AwsResponse(204, [("x-amzn-RequestId", str(uuid.uuid4()))], b"")
        if invocation_type == "Event":
            request_id = self.async_events.accept(target.spec.name, qualifier, target.invoked_arn, request.body)
            return AwsResponse(202, [("x-amzn-RequestId", request_id)], b"")
        request_id = str(uuid.uuid4())
        client_context = request.headers.get("X-Amz-Client-Context")
        outcome = self.run(target, request.body, request_id, client_context)
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id), ("X-Amz-Executed-Version", target.spec.version)]
        if outcome.function_error:
            headers.append(("X-Amz-Function-Error", outcome.function_error))
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers.append(("X-Amz-Log-Result", base64.b64encode(bytes(outcome.log.tail)).decode()))
        return AwsResponse(200, headers, outcome.payload)

    def _invoke_async(self, request: AwsRequest) -> AwsResponse:
        """The deprecated InvokeAsync: an Event invocation answered 202 {"Status": 202}."""
        name, qualifier = _function_in_path(request.path)
        _check_json(request.body)
        target = self._target(name, qualifier)
        request_id = self.async_events.accept(target.spec.name, qualifier, target.invoked_arn, request.body)
        return AwsResponse(202, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)], b'{"Status": 202}')

    def run(self, target: Target, payload: bytes, request_id: str, client_context: str | None) -> Outcome:
        """Runs one invocation in a warm worker (or a new one); raises LambdaError 429 when throttled."""
        name = target.spec.name
        with self._lock:
            running = self._in_flight.get(name, 0)
            if target.reserved_concurrency is not None and running >= target.reserved_concurrency:
                metrics.put("AWS/Lambda", "Throttles", {"FunctionName": name}, 1)
                raise LambdaError("TooManyRequestsException", "Rate Exceeded.", 429,
                                  {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "retryAfterSeconds": "1"})
            self._in_flight[name] = running + 1
        try:
            worker = self.pool.acquire(target.spec, target.environment, target.sys_path, lambda: self._role_session(target))
            if worker is None:
                metrics.put("AWS/Lambda", "Throttles", {"FunctionName": name}, 1)
                raise LambdaError("TooManyRequestsException", f"Rate Exceeded. (this stack runs at most {MAX_WORKERS} Lambda workers at once: DEALAB_LAMBDA_MAX_WORKERS)",
                                  429, {"Reason": "ConcurrentInvocationLimitExceeded", "retryAfterSeconds": "1"})
            started = time.monotonic()
            try:
                init_error = None if worker.ready else worker.initialize(target.runtime_warning)
                if init_error is not None:
                    outcome = worker.init_failure(request_id, init_error)
                else:
                    outcome = worker.invoke(request_id, payload, target.invoked_arn, client_context)
                    if len(outcome.payload) > MAX_RESPONSE_BYTES:
                        outcome.payload = json.dumps({"errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                                                      "errorType": "Function.ResponseSizeTooLarge"}).encode()
                        outcome.function_error = "Unhandled"
                worker.flush_logs(outcome.log)
            finally:
                self.pool.release(worker)
            for metric, value, unit in (("Invocations", 1, "Count"), ("Errors", int(bool(outcome.function_error)), "Count"),
                                        ("Duration", (time.monotonic() - started) * 1000, "Milliseconds"), ("ConcurrentExecutions", running + 1, "Count")):
                metrics.put("AWS/Lambda", metric, {"FunctionName": name}, value, unit)
            return outcome
        finally:
            with self._lock:
                self._in_flight[name] -= 1

    def _role_session(self, target: Target) -> rolesessions.Lease:
        """A new worker's session of the execution role, named after the function as on AWS."""
        try:
            return self.roles.lease(target.role, target.spec.name, source_arn=target.function_arn)
        except rolesessions.Refused:
            raise LambdaError("InvalidParameterValueException", ROLE_REFUSAL) from None

    def _target(self, function_name: str, qualifier: str | None) -> Target:
        """The function version `qualifier` names, ready to run; kept with the reads it is made of (any write to
        Lambda forgets it), so a busy mapping's invocations do not check its code folder and build its
        environment each time."""
        return self._reads.get(("Target", function_name, qualifier), lambda: self._new_target(function_name, qualifier))

    def _new_target(self, function_name: str, qualifier: str | None) -> Target:
        function = self._cached(("GetFunction", function_name, qualifier),
                                lambda lam: lam.get_function(FunctionName=function_name, **({"Qualifier": qualifier} if qualifier else {})))
        configuration = function["Configuration"]
        name = configuration["FunctionName"]
        runtime = configuration.get("Runtime") or ""
        if configuration.get("PackageType") == "Image":
            raise LambdaError("InvalidRuntimeException", f"Function {name} is a container image (PackageType Image): dealab runs no containers "
                                                          f"(no Docker), only .zip functions with a Python runtime", 502)
        if not runtime.startswith("python3."):
            raise LambdaError("InvalidRuntimeException", f"Function {name} has runtime {runtime or 'none'}: dealab runs Python runtimes only "
                                                          f"({', '.join(PYTHON_RUNTIMES)})", 502)
        code_folder = self.code.function_folder(configuration["CodeSha256"])
        if code_folder is None:
            raise LambdaError("ResourceNotFoundException", f"The code of function {name} (CodeSha256 {configuration['CodeSha256']}) is not in this "
                                                            f"stack's store: upload it again with UpdateFunctionCode", 404)
        layer_shas = [self._layer_code_sha(layer["Arn"]) for layer in configuration.get("Layers") or []]
        opt_folder = self.code.opt_folder(layer_shas)
        concurrency = self._cached(("GetFunctionConcurrency", name), lambda lam: lam.get_function_concurrency(FunctionName=name))
        version = configuration.get("Version", "$LATEST")
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        spec = FunctionSpec(
            name=name, version=version, handler=configuration.get("Handler") or "", runtime=runtime,
            memory_mb=int(configuration.get("MemorySize") or 128), timeout_s=float(configuration.get("Timeout") or 3),
            code_folder=str(code_folder), opt_folder=str(opt_folder or ""), environment=tuple(sorted(variables.items())),
            code_sha=configuration["CodeSha256"],
        )
        unqualified = configuration["FunctionArn"].split(":function:")[0] + f":function:{name}"
        return Target(
            spec=spec, invoked_arn=f"{unqualified}:{qualifier}" if qualifier else unqualified, qualifier=qualifier,
            reserved_concurrency=concurrency.get("ReservedConcurrentExecutions"),
            environment=self._environment(spec, variables), sys_path=_sys_path(code_folder, opt_folder),
            runtime_warning=None if runtime == STACK_PYTHON else
            f"[WARNING] dealab runs this {runtime} function on the stack's own Python {sys.version.split()[0]}: "
            f"what {runtime} adds to the language and its standard library is not there",
            role=configuration.get("Role") or "", function_arn=unqualified,
        )

    def _layer_code_sha(self, layer_version_arn: str) -> str:
        """arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION → its CodeSha256 (the backend has no
        GetLayerVersionByArn; a layer version never changes, so the answer is kept)."""
        layer_name, version = layer_version_arn.split(":")[6:8]
        return self._cached(("GetLayerVersion", layer_version_arn),
                            lambda lam: lam.get_layer_version(LayerName=layer_name, VersionNumber=int(version)))["Content"]["CodeSha256"]

    def _environment(self, spec: FunctionSpec, variables: dict) -> dict:
        """The variables AWS sets in a Python function's environment, over the function's own; AWS calls reach
        this stack, never the host's AWS config, with the keys each worker gets of its role session."""
        no_config = str(self.folder / "no-aws-config")
        return {
            **variables,
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",  # a handler's prints reach its log even when it is killed mid-way
            "LAMBDA_TASK_ROOT": spec.code_folder,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(sys.executable),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.context.region,
            "AWS_DEFAULT_REGION": self.context.region,
            "AWS_ENDPOINT_URL": self.context.endpoint_url,
            "AWS_CONFIG_FILE": no_config,
            "AWS_SHARED_CREDENTIALS_FILE": no_config,
        }

    def _cached(self, key: tuple, fetch: Callable) -> dict:
        def read() -> dict:
            try:
                return fetch(self.own_client("lambda"))
            except ClientError as error:
                details = error.response.get("Error", {})
                raise LambdaError(details.get("Code", "ServiceException"), details.get("Message", str(error)),
                                  error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)) from None
        return self._reads.get(key, read)

    # ---- asynchronous invocation ---------------------------------------------------------------------------
    def _attempt_async(self, event: dict) -> Attempt:
        try:
            target = self._target(event["function"], event["qualifier"])
            outcome = self.run(target, event["payload"].encode(), event["id"], None)
        except LambdaError as error:
            if error.status == 429:
                return Attempt(b"", None, "", throttled=True)
            # the function or its code is gone: a failure like any other, recorded with its reason
            return Attempt(json.dumps({"errorType": error.code, "errorMessage": error.message}).encode(), "Unhandled", "$LATEST")
        return Attempt(outcome.payload, outcome.function_error, target.spec.version)

    def _async_settings(self, event: dict) -> dict:
        lam = self.own_client("lambda")
        settings = {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 21600}
        try:
            settings.update(lam.get_function_event_invoke_config(FunctionName=event["function"]))
        except ClientError:  # none configured: Lambda's defaults
            pass
        settings["DeadLetterTarget"] = self._dead_letter.load({}).get(event["function"])
        return settings

    def _deliver(self, destination: str, record: dict, event: dict) -> None:
        service = destination.split(":")[2]
        body = json.dumps(record)
        if service == "sqs":
            self.own_client("sqs").send_message(QueueUrl=self._queue_url(destination), MessageBody=body)
        elif service == "sns":
            self.own_client("sns").publish(TopicArn=destination, Message=body)
        elif service == "events":
            condition = record["requestContext"]["condition"]
            detail_type = "Lambda Function Invocation Result - " + ("Success" if condition == "Success" else "Failure")
            self.own_client("events").put_events(Entries=[{"Source": "lambda", "DetailType": detail_type, "Detail": body,
                                                        "Resources": [qualified_arn(event["invoked_arn"])], "EventBusName": destination}])
        elif service == "lambda":
            target_name = destination.split(":")[6]
            qualifier = destination.split(":")[7] if destination.count(":") > 6 else None
            target = self._target(target_name, qualifier)
            self.async_events.accept(target.spec.name, qualifier, target.invoked_arn, body.encode())
        else:
            log.warning("destination %s of %s is not a service Lambda delivers to", destination, event["function"])

    def _send_to_dead_letter(self, target_arn: str, event: dict, attempt: Attempt | None) -> None:
        error = {}
        if attempt is not None:
            try:
                error = json.loads(attempt.payload)
            except ValueError:
                error = {}
        message = str(error.get("errorMessage", "the event could not be processed"))
        if target_arn.split(":")[2] == "sqs":
            attributes = {"RequestID": {"DataType": "String", "StringValue": event["id"]},
                          "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                          "ErrorMessage": {"DataType": "String", "StringValue": message[:1024]}}
            self.own_client("sqs").send_message(QueueUrl=self._queue_url(target_arn), MessageBody=event["payload"] or "{}", MessageAttributes=attributes)
        else:
            attributes = {"RequestID": {"DataType": "String", "StringValue": event["id"]},
                          "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                          "ErrorMessage": {"DataType": "String", "StringValue": message[:1024]}}
            self.own_client("sns").publish(TopicArn=target_arn, Message=event["payload"] or "{}", MessageAttributes=attributes)

    def _queue_url(self, queue_arn: str) -> str:
        _, _, _, _, account, queue_name = queue_arn.split(":")
        return self.own_client("sqs").get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    # ---- lifetime ------------------------------------------------------------------------------------------
    def admin_routes(self):
        return {"lambda/workers": self._workers_report}

    def _workers_report(self, request: AwsRequest) -> AwsResponse:
        workers = [{"function": w.spec.name, "version": w.spec.version, "pid": w.process.pid, "pss_mb": round(w.pss_mb(), 1)}
                   for w in self.pool.workers() if w.alive()]
        return AwsResponse(200, [("Content-Type", "application/json")], json.dumps({"workers": workers, "pending_async": len(self.async_events.pending())}).encode())

    def reset(self) -> None:
        self.pool.close()
        self.roles.forget()
        self.async_events.forget_all()
        self.code.forget_all()
        self._dead_letter.remove()
        self._reads.forget_all()
        self.pool = WorkerPool(self._logs.send, IDLE_SECONDS, MAX_WORKERS)

    def close(self) -> None:
        self.pool.close()
        self._logs.close()


class LogSender:
    """Sends log events to CloudWatch Logs from one thread, in order, creating groups and streams on first use,
    so an invocation's answer never waits for its log."""

    def __init__(self, client: Callable[[], object]):
        self._client = client
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._known: set[tuple[str, str]] = set()
        self._thread = threading.Thread(target=self._serve, name="lambda-logs", daemon=True)
        self._thread.start()

    def send(self, group: str, stream: str, events: list[dict]) -> None:
        self._queue.put((group, stream, events))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            group, stream, events = item
            try:
                self._put(group, stream, events)
            except Exception:  # a lost log line must never stop the next ones
                log.exception("could not send %d log events to %s %s", len(events), group, stream)

    def _put(self, group: str, stream: str, events: list[dict]) -> None:
        logs = self._client()
        if (group, stream) not in self._known:
            for create, arguments in ((logs.create_log_group, {"logGroupName": group}),
                                      (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
                try:
                    create(**arguments)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
            self._known.add((group, stream))
        batch, size = [], 0
        for event in events:
            event_size = len(event["message"].encode()) + 26  # PutLogEvents counts 26 bytes per event
            if batch and (len(batch) == 10_000 or size + event_size > 1_000_000):
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                batch, size = [], 0
            batch.append(event)
            size += event_size
        if batch:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def _function_in_path(path: str) -> tuple[str, str | None]:
    """The function named in a Lambda path (/2015-03-31/functions/NAME/...), and a qualifier written into the
    name (NAME:QUALIFIER, or an ARN ending in one)."""
    segments = path.split("/")
    name = unquote(segments[segments.index("functions") + 1]) if "functions" in segments else ""
    parts = name.split(":")
    if name.startswith("arn:"):
        return parts[6] if len(parts) > 6 else name, parts[7] if len(parts) > 7 else None
    if len(parts) >= 3 and parts[1] == "function":  # ACCOUNT:function:NAME[:QUALIFIER]
        return parts[2], parts[3] if len(parts) > 3 else None
    return parts[0], parts[1] if len(parts) > 1 else None


def _check_json(body: bytes) -> None:
    if not body:
        return
    try:
        json.loads(body)
    except ValueError as error:
        raise LambdaError("InvalidRequestContentException", f"Could not parse request body into json: {error}")


def _sys_path(code_folder, opt_folder) -> list[str]:
    """/var/task, then the layers' /opt/python/lib/pythonX.Y/site-packages and /opt/python, as on AWS."""
    paths = [str(code_folder)]
    if opt_folder is not None:
        paths += [str(opt_folder / "python" / "lib" / STACK_PYTHON / "site-packages"), str(opt_folder / "python")]
    return paths


def _error(code: str, message: str, status: int, extra: dict | None = None) -> AwsResponse:
    """Lambda's error shape: Type and message in the body, the code in x-amzn-ErrorType."""
    body = {"Type": "User", "message": message, **(extra or {})}
    return AwsResponse(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], json.dumps(body).encode())
