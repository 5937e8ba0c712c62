"""The Athena service integration moto's interpreter lacks: `arn:aws:states:::athena:<action>` for the
actions Step Functions optimises, and `startQueryExecution.sync`, whose output is GetQueryExecution's response
once the query has ended (a FAILED or CANCELLED query fails the task with States.TaskFailed, its cause the
GetQueryExecution JSON), as https://docs.aws.amazon.com/step-functions/latest/dg/connect-athena.html says.
Built on moto's `StateTaskServiceCallback` as its Glue integration is.
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent, FailureEventException
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import StateTaskServiceCallback
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

# The Athena actions Step Functions integrates, with the request fields each takes (Step Functions' docs).
SUPPORTED_PARAMETERS = {
    "startqueryexecution": {"QueryString", "ClientRequestToken", "QueryExecutionContext", "ResultConfiguration", "WorkGroup",
                            "ExecutionParameters", "ResultReuseConfiguration"},
    "stopqueryexecution": {"QueryExecutionId"},
    "getqueryexecution": {"QueryExecutionId"},
    "getqueryresults": {"QueryExecutionId", "NextToken", "MaxResults"},
}
FAILED_STATES = {"FAILED", "CANCELLED"}


class StateTaskServiceAthena(StateTaskServiceCallback):
    def __init__(self):
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def _get_supported_parameters(self) -> set[str] | None:
        return SUPPORTED_PARAMETERS.get(self.resource.api_action.lower())

    def _client(self, resource_runtime_part, state_credentials):
        return boto_client.boto_client_for(region=resource_runtime_part.region, service="athena", state_credentials=state_credentials)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        action = self._get_boto_service_action()
        response = getattr(self._client(resource_runtime_part, state_credentials), action)(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            error_name = f"Athena.{ex.response['Error']['Code']}"
            return FailureEvent(
                env=env, error_name=CustomErrorName(error_name), event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                    error=error_name, cause=ex.response["Error"]["Message"],
                    resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type(),
                )),
            )
        return super()._from_error(env=env, ex=ex)

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() != "start_query_execution":
            return super()._build_sync_resolver(env, resource_runtime_part, normalised_parameters, state_credentials)
        query_execution_id = env.stack.pop()["QueryExecutionId"]
        athena = self._client(resource_runtime_part, state_credentials)

        def resolve():
            response = athena.get_query_execution(QueryExecutionId=query_execution_id)
            response.pop("ResponseMetadata", None)
            state = response["QueryExecution"]["Status"]["State"]
            if state not in FAILED_STATES | {"SUCCEEDED"}:
                return None
            if state == "SUCCEEDED":
                return response
            raise FailureEventException(FailureEvent(
                env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                    resource=self._get_sfn_resource(), resourceType=self._get_sfn_resource_type(),
                    error=StatesErrorNameType.StatesTaskFailed.to_name(), cause=to_json_str(response),
                )),
            ))

        return resolve
