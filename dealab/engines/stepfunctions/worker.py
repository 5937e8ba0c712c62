"""moto's ExecutionWorker, started from any state of the definition with that state's input (a resumed Wait, a
redrive), and telling the engine when the program has ended."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

from moto.stepfunctions.parser.asl.eval.evaluation_details import (
    AWSExecutionDetails,
    EvaluationDetails,
    ExecutionDetails,
    StateMachineDetails,
)
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.backend.execution_worker_comm import ExecutionWorkerCommunication

from dealab.engines.stepfunctions.definition import parsed_program

# the state input of a run started from its StartAt: the execution's own input
FROM_THE_START = object()


class _Ended(ExecutionWorkerCommunication):
    def __init__(self, worker: ExecutionWorker, on_end: Callable):
        self.worker, self.on_end = worker, on_end

    def terminated(self) -> None:
        self.on_end(self.worker.env)


class ResumableWorker(ExecutionWorker):
    def __init__(self, details: EvaluationDetails, state_input, on_end: Callable):
        super().__init__(evaluation_details=details, exec_comm=None, cloud_watch_logging_session=None, activity_store={})
        self._execution_communication = _Ended(self, on_end)
        self._state_input = state_input

    def _get_evaluation_entrypoint(self):
        return parsed_program(self._evaluation_details.state_machine_details.definition)

    def _get_evaluation_environment(self):
        env = super()._get_evaluation_environment()
        if self._state_input is not FROM_THE_START:
            env.states.reset(input_value=self._state_input)
        return env


def build_worker(run, definition: str, state_input, on_end: Callable) -> ResumableWorker:
    record = run.record
    arn_parts = record["executionArn"].split(":")
    details = EvaluationDetails(
        aws_execution_details=AWSExecutionDetails(account=arn_parts[4], region=arn_parts[3], role_arn=record["roleArn"]),
        execution_details=ExecutionDetails(
            arn=record["executionArn"], name=record["name"], role_arn=record["roleArn"], inpt=json.loads(record["input"]),
            start_time=datetime.datetime.fromtimestamp(record["startDate"], datetime.timezone.utc),
        ),
        state_machine_details=StateMachineDetails(
            arn=record["stateMachineArn"], name=record["stateMachineArn"].rpartition(":")[2], typ=record["type"], definition=definition
        ),
    )
    return ResumableWorker(details, state_input, on_end)
