"""moto's ASL interpreter (moto/stepfunctions/parser, a port of LocalStack's), run by this engine with dealab's
seams put into it once, on first use.

The interpreter is kept whole: its parser, states, JSONPath/JSONata evaluation, Retry/Catch, Map, Parallel,
callbacks and service integrations are moto's. What changes, and why:
- `boto_client_for` (every task call) answers with a client at the gateway signed with a session of the
  execution's role (the state machine's roleArn, or a Task's Credentials.RoleArn), so dealab's Glue, Athena and
  other engines answer the tasks and the role's policies bind them; moto's own sends them straight into its
  backends with fixed keys, where a Glue job would never run.
- A Wait and a Retry's interval sleep in lab time through `dealab.wire.timers` (moto sleeps in wall time), so
  `dealab clock advance 1d` releases a one-day Wait at once, in order.
- `StateTaskServiceCallback._eval_integration_pattern` is moto's, with one fix: it called `interrupt_all()` on
  a callback endpoint that `.sync`-only integrations never have, so every `glue:startJobRun.sync` failed.
- Request and response normalisation between ASL's PascalCase and the SDK's shapes (LocalStack's, which moto's
  port left empty, so `states:startExecution` sent `StateMachineArn` where botocore wants `stateMachineArn`)
  is done against botocore's service models.
- `athena:startQueryExecution(.sync)` gets an integration of its own (moto forwards Athena calls without .sync).
- JSONata expressions evaluate with jsonata-python (moto's hook is a JVM bridge left unset, so JSONata failed).
- The engine hears when an execution enters a top-level state (to keep its record for restarts and redrives).
- Distributed Map's ItemReader listing and ResultWriter are finished (distributed_map.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from dealab.engines.stepfunctions import distributed_map

_installed = False
_install_lock = threading.Lock()
_retrying = threading.local()  # the Retrier being evaluated on this thread: its sleep needs its execution


class Host(Protocol):
    """What the interpreter asks of the engine."""

    def task_client(self, service: str, region: str, role_arn: str | None = None): ...

    def sleep(self, env, seconds: float, wait_state: str | None) -> None: ...

    def entering(self, env, state_name: str, state_input: Any) -> None: ...


def install(host: Host) -> None:
    """Puts the seams into moto's interpreter (once per process; the last engine built is the host)."""
    global _installed
    with _install_lock:
        _host_ref[0] = host
        if _installed:
            return
        _route_task_calls()
        _sleep_in_lab_time()
        _fix_sync_integrations()
        _normalise_by_service_models()
        _add_athena_integration()
        _evaluate_jsonata()
        _hear_top_level_states()
        distributed_map.install()
        _installed = True


_host_ref: list[Host | None] = [None]


def _host() -> Host:
    return _host_ref[0]


def _route_task_calls() -> None:
    import sys

    import moto.stepfunctions.parser.asl.parse.asl_parser  # noqa: F401  (loads every integration module)
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def boto_client_for(region: str, service: str, state_credentials: Any = None):
        return _host().task_client(service, region, getattr(state_credentials, "role_arn", None))

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for


def _sleep_in_lab_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def wait_interval(self, env, wait_seconds: int) -> None:
        name = env.states.context_object.context_object_data.get("State", {}).get("Name")
        _host().sleep(env, wait_seconds, wait_state=name)

    WaitFunction._wait_interval = wait_interval

    evaluate_retrier = retrier_decl.RetrierDecl._eval_body

    def eval_retrier(self, env) -> None:
        _retrying.env = env
        try:
            evaluate_retrier(self, env)
        finally:
            _retrying.env = None

    retrier_decl.RetrierDecl._eval_body = eval_retrier
    retrier_decl.time = _TimeWithLabSleep(retrier_decl.time)


class _TimeWithLabSleep:
    """`time` as moto's Retrier sees it: its one sleep (the retry interval) passes in lab time."""

    def __init__(self, module):
        self._module = module

    def sleep(self, seconds: float) -> None:
        _host().sleep(_retrying.env, seconds, wait_state=None)

    def __getattr__(self, name):
        return getattr(self._module, name)


def _fix_sync_integrations() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback as callback
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

    def eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials) -> None:
        task_output = env.stack.pop()
        callback_endpoint = None
        if ResourceCondition.WaitForTaskToken in self._supported_integration_patterns:
            callback_id = env.states.context_object.context_object_data["Task"]["Token"]
            callback_endpoint = env.callback_pool_manager.get(callback_id)
        self.timeout.eval(env=env)
        timeout_seconds = env.stack.pop()
        heartbeat_endpoint = None
        if self.heartbeat:
            self.heartbeat.eval(env=env)
            heartbeat_endpoint = callback_endpoint.setup_heartbeat_endpoint(heartbeat_seconds=env.stack.pop())
        try:
            if self.resource.condition == ResourceCondition.WaitForTaskToken:
                outcome = self._eval_wait_for_task_token(
                    env=env, timeout_seconds=timeout_seconds, callback_endpoint=callback_endpoint, heartbeat_endpoint=heartbeat_endpoint
                )
            else:
                env.stack.append(task_output)
                build = self._build_sync_resolver if self.resource.condition == ResourceCondition.Sync else self._build_sync2_resolver
                sync_resolver = build(
                    env=env, resource_runtime_part=resource_runtime_part,
                    normalised_parameters=normalised_parameters, state_credentials=state_credentials,
                )
                outcome = self._eval_sync(
                    env=env, timeout_seconds=timeout_seconds, callback_endpoint=callback_endpoint,
                    heartbeat_endpoint=heartbeat_endpoint, sync_resolver=sync_resolver,
                )
        except Exception as integration_exception:
            outcome = integration_exception
        finally:
            if callback_endpoint is not None:  # the fix: .sync-only integrations have none
                callback_endpoint.interrupt_all()
        if isinstance(outcome, callback.CallbackOutcomeTimedOut):
            raise callback.CallbackTimeoutError()
        if isinstance(outcome, callback.HeartbeatTimedOut):
            raise callback.HeartbeatTimeoutError()
        if isinstance(outcome, callback.CallbackOutcomeFailure):
            raise callback.CallbackOutcomeFailureError(callback_outcome_failure=outcome)
        if isinstance(outcome, callback.CallbackOutcomeSuccess):
            env.stack.append(json.loads(outcome.output))
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            env.stack.append(outcome)

    callback.StateTaskServiceCallback._eval_integration_pattern = eval_integration_pattern
    # moto polls a .sync job every 0.5 s of real time; a lab's jobs and queries are short, so look more often
    callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = 0.1


def _normalise_by_service_models() -> None:
    import functools

    import botocore.session
    from botocore import xform_name
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import StateTaskService

    session = botocore.session.get_session()
    models_lock = threading.Lock()

    @functools.cache
    def operation_model(service: str, action: str):
        with models_lock:
            model = session.get_service_model(service)
        names = {xform_name(name): name for name in model.operation_names}
        return model.operation_model(names[action]) if action in names else None

    def operation(task, boto_service_name, service_action_name):
        return operation_model(task._get_boto_service_name(boto_service_name), task._get_boto_service_action(service_action_name))

    def normalise_parameters(self, parameters: dict, boto_service_name=None, service_action_name=None) -> None:
        model = operation(self, boto_service_name, service_action_name)
        if model is not None and model.input_shape is not None:
            self._to_boto_request(parameters, model.input_shape)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None) -> None:
        model = operation(self, boto_service_name, service_action_name)
        if model is not None and model.output_shape is not None:
            self._from_boto_response(response, model.output_shape)

    StateTaskService._normalise_parameters = normalise_parameters
    StateTaskService._normalise_response = normalise_response


def _add_athena_integration() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    from dealab.engines.stepfunctions.athena_task import StateTaskServiceAthena

    moto_factory = state_task_factory.state_task_service_for

    def state_task_service_for(service_name: str):
        return StateTaskServiceAthena() if service_name == "athena" else moto_factory(service_name)

    state_task_factory.state_task_service_for = state_task_service_for


def _evaluate_jsonata() -> None:
    import jsonata
    from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata

    def evaluate(expression: str) -> Any:
        try:
            return jsonata.Jsonata(expression).evaluate(None)
        except Exception as error:  # jsonata-python's own errors: AWS names them so
            raise moto_jsonata.JSONataException("States.QueryEvaluationError", str(error)) from error

    moto_jsonata._eval_jsonata = evaluate


def _hear_top_level_states() -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    evaluate_state: Callable = CommonStateField._eval_body

    def eval_state(self, env) -> None:
        if not env.is_frame():
            _host().entering(env, self.name, env.states.get_input())
        evaluate_state(self, env)

    CommonStateField._eval_body = eval_state
