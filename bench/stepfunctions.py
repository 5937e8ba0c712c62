"""Bench: a 20-state Step Functions execution against the same 20 calls made directly. Goal (issue 15): the
execution's overhead over the direct calls ≤ 1.5×.

A real stack process (`dealab up` on a temporary state folder and free ports). The state machine is 20 Task
states, each a `dynamodb:putItem` of its own item; the direct baseline is the same 20 PutItem calls from
boto3 in this process, one after another. Each round times both, alternating; the figure kept is the median
round. The execution is timed two ways: end to end as a client sees it (StartExecution, then DescribeExecution
every 5 ms until it is no longer RUNNING) and inside the stack (ExecutionStarted to ExecutionSucceeded in its
history, millisecond stamps).

    python bench/stepfunctions.py [--rounds 7] [--states 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import Settings  # noqa: E402
from dealab.stack import control  # noqa: E402
from tests.conftest import service_role  # noqa: E402

TABLE = "bench-steps"


def client(settings: Settings, service: str):
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id="test", aws_secret_access_key="test")


def definition(states: int) -> str:
    names = [f"Put{index:02d}" for index in range(states)]
    machine = {"StartAt": names[0], "States": {}}
    for index, name in enumerate(names):
        state = {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "ResultPath": None,
                 "Parameters": {"TableName": TABLE, "Item": {"pk": {"S.$": f"States.Format('{{}}-{index}', $.round)"}, "n": {"N": str(index)}}}}
        state.update({"Next": names[index + 1]} if index + 1 < states else {"End": True})
        machine["States"][name] = state
    return json.dumps(machine)


def direct(ddb, round_number: int, states: int) -> float:
    started = time.perf_counter()
    for index in range(states):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": f"direct{round_number}-{index}"}, "n": {"N": str(index)}})
    return time.perf_counter() - started


def executed(sfn, machine_arn: str, round_number: int) -> tuple[float, float]:
    started = time.perf_counter()
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps({"round": f"sfn{round_number}"}))["executionArn"]
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        time.sleep(0.005)
    wall = time.perf_counter() - started
    assert status == "SUCCEEDED", status
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    inside = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds()
    return wall, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--states", type=int, default=20)
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dealab-bench-sfn-"))
    port = control.free_port_pair()
    settings = Settings(state_dir=folder / "state", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
    control.up(settings)
    try:
        ddb, sfn = client(settings, "dynamodb"), client(settings, "stepfunctions")
        ddb.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        machine_arn = sfn.create_state_machine(name="bench", definition=definition(options.states), roleArn=service_role(sfn, "states", "states"))["stateMachineArn"]
        direct(ddb, -1, options.states)  # warm both paths: the interpreter loads on first use
        executed(sfn, machine_arn, -1)
        directs, walls, insides = [], [], []
        for round_number in range(options.rounds):
            directs.append(direct(ddb, round_number, options.states))
            wall, inside = executed(sfn, machine_arn, round_number)
            walls.append(wall)
            insides.append(inside)
        base, wall, inside = statistics.median(directs), statistics.median(walls), statistics.median(insides)
        print(f"{options.states} direct PutItem calls: {base * 1000:.0f} ms (median of {options.rounds})")
        print(f"{options.states}-state execution, client's view: {wall * 1000:.0f} ms  ratio {wall / base:.2f}")
        print(f"{options.states}-state execution, in its history: {inside * 1000:.0f} ms  ratio {inside / base:.2f}  (goal ≤ 1.5)")
    finally:
        control.down(settings)


if __name__ == "__main__":
    main()
