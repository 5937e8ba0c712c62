"""CloudWatch alarms benchmark, in one run, on an in-process gateway (embedded moto + the cloudwatch engine):

- One lab minute of 1,000 alarms: a PutMetricData of 1,000 datapoints (one per alarm's metric) evaluates every
  alarm once; then the clock crosses the period boundary and the lab timers evaluate them again (the
  missing-data path). Goal: each pass of 1,000 evaluations ≤ 0.5 s. Baseline in the same run: the same
  PutMetricData through the gateway without the engine's evaluation (moto storing the datapoints).
- A two-year clock move with 100 alarms: evaluations and seconds, for D and 2·D datapoints per alarm, so the
  cost is seen to follow datapoints, not the 1,051,200 minutes moved.

Run: `.venv/bin/python bench/alarms.py [--alarms 1000] [--long-alarms 100]`.
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from dealab.engines.cloudwatch import CloudWatchEngine  # noqa: E402
from dealab.engines.cloudwatch import engine as cloudwatch_engine  # noqa: E402
from dealab.stack.backend import EmbeddedMoto  # noqa: E402
from dealab.stack.control import free_port_pair  # noqa: E402
from dealab.stack.gateway import Gateway  # noqa: E402
from dealab.stack.journal import Journal  # noqa: E402
from dealab.stack.server import _listener  # noqa: E402
from dealab.wire import labtime  # noqa: E402
from dealab.wire.engine import EngineContext  # noqa: E402
from dealab.wire.timers import timers  # noqa: E402


class Harness:
    """A gateway with the cloudwatch engine on a free port, and a counter of alarm evaluations."""

    def __init__(self, with_engine: bool = True):
        port = free_port_pair()
        self.state = Path(tempfile.mkdtemp(prefix="dealab-bench-alarms-"))
        context = EngineContext(f"http://127.0.0.1:{port}", "us-east-1", self.state)
        self.engine = CloudWatchEngine(context) if with_engine else None
        self.gateway = Gateway(EmbeddedMoto(Journal(self.state / "journal")), [self.engine] if self.engine else [])
        context.loopback.attach(_listener(self.gateway, secure=True))  # the engine's own calls without a socket, as in the stack
        self.server = make_server("127.0.0.1", port, self.gateway, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                       aws_access_key_id="test", aws_secret_access_key="test")
        self.evaluations = 0
        self.evaluating = 0.0
        original = cloudwatch_engine.evaluate

        def counted(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.evaluations += 1
                self.evaluating += time.perf_counter() - started

        cloudwatch_engine.evaluate = counted

    def alarms(self, count: int, evaluation_periods: int = 3) -> None:
        for n in range(count):
            self.cloudwatch.put_metric_alarm(AlarmName=f"a{n}", Namespace="Bench", MetricName="latency", Dimensions=[{"Name": "Id", "Value": str(n)}],
                                             Statistic="Average", Period=60, EvaluationPeriods=evaluation_periods, DatapointsToAlarm=2,
                                             Threshold=50.0, ComparisonOperator="GreaterThanThreshold")

    def datapoints(self, count: int, value: float) -> float:
        data = [{"MetricName": "latency", "Dimensions": [{"Name": "Id", "Value": str(n)}], "Value": value} for n in range(count)]
        started = time.perf_counter()
        self.cloudwatch.put_metric_data(Namespace="Bench", MetricData=data)
        return time.perf_counter() - started

    def move(self, by: datetime.timedelta) -> float:
        """Moves the lab clock as `dealab clock advance` does: each due moment in order, its timers fired."""
        target = labtime.live_now() + by
        timers.moving_to(target)
        started = time.perf_counter()
        try:
            while (due := timers.next_due()) is not None and due <= target:
                labtime.set_offset(labtime.offset() + max(datetime.timedelta(0), due - labtime.live_now()))
                timers.fire_due(due)
            labtime.set_offset(labtime.offset() + (target - labtime.live_now()))
        finally:
            timers.moving_to(None)
        return time.perf_counter() - started

    def close(self) -> None:
        if self.engine:
            self.engine.close()
        self.server.shutdown()
        shutil.rmtree(self.state, ignore_errors=True)


def one_minute(count: int) -> None:
    baseline = Harness(with_engine=False)
    moto_seconds = baseline.datapoints(count, 80.0)
    baseline.close()
    harness = Harness()
    harness.alarms(count)
    harness.evaluations, harness.evaluating = 0, 0.0
    put_seconds = harness.datapoints(count, 80.0)
    on_data = (harness.evaluations, harness.evaluating)
    harness.evaluations, harness.evaluating = 0, 0.0
    harness.move(datetime.timedelta(seconds=60))
    on_clock = (harness.evaluations, harness.evaluating)
    harness.close()
    print(f"{count} alarms, one lab minute:")
    print(f"  on the datapoints: {on_data[0]} evaluations in {on_data[1]:.3f} s (PutMetricData of {count} datapoints: {put_seconds:.3f} s; "
          f"without the engine {moto_seconds:.3f} s)")
    print(f"  as the clock crosses the period: {on_clock[0]} evaluations in {on_clock[1]:.3f} s (goal ≤ 0.5 s)")


def long_move(count: int) -> None:
    for minutes_of_data in (5, 10):
        harness = Harness()
        harness.alarms(count)
        for minute in range(minutes_of_data):
            harness.datapoints(count, 80.0 if minute % 2 else 20.0)
            harness.move(datetime.timedelta(seconds=60))
        harness.evaluations, harness.evaluating = 0, 0.0
        seconds = harness.move(datetime.timedelta(days=730))
        names = [f"a{n}" for n in range(count)]
        states = {alarm["StateValue"] for start in range(0, count, 100)
                  for alarm in harness.cloudwatch.describe_alarms(AlarmNames=names[start:start + 100])["MetricAlarms"]}
        harness.close()
        print(f"{count} alarms with {minutes_of_data} minutes of data, then a 730-day move: {harness.evaluations} evaluations, "
              f"{seconds:.2f} s; states after: {sorted(states)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alarms", type=int, default=1000)
    parser.add_argument("--long-alarms", type=int, default=100)
    arguments = parser.parse_args()
    one_minute(arguments.alarms)
    long_move(arguments.long_alarms)


if __name__ == "__main__":
    main()
