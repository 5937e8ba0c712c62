"""Event source mapping benchmark: SQS messages through a mapping to a Lambda function, against the same
messages received and deleted directly through the same stack in the same run.

- Baseline: N messages sent, then received (10 a call) and deleted (DeleteMessageBatch) by this process.
- Mapping: N messages sent, then an SQS mapping (BatchSize 10) created on a function that counts them; the
  time from CreateEventSourceMapping until the queue is empty (visible and in flight). Goal >= 300 messages/s.

Run: `.venv/bin/python bench/event_sources.py [--messages 500]`.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.stack import control  # noqa: E402

HANDLER = "def handler(event, context):\n    return {'batchItemFailures': []}\n"
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def fill(sqs, url: str, messages: int) -> None:
    for start in range(0, messages, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"message {start + n}"} for n in range(min(10, messages - start))])


def remaining(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = control.free_port_pair()
        settings = Settings(state_dir=Path(folder), port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        try:
            run(settings, args.messages)
        finally:
            control.down(settings)


def run(settings: Settings, messages: int) -> None:
    def aws(service):
        return boto3.client(service, endpoint_url=settings.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)

    sqs, lam, iam = aws("sqs"), aws("lambda"), aws("iam")
    role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    lam.create_function(FunctionName="bench", Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": zip_of(HANDLER)})
    lam.invoke(FunctionName="bench", Payload=b"{}")  # warm, as a busy mapping's function is

    direct = sqs.create_queue(QueueName="direct")["QueueUrl"]
    fill(sqs, direct, messages)
    started, handled = time.perf_counter(), 0
    while handled < messages:
        batch = sqs.receive_message(QueueUrl=direct, MaxNumberOfMessages=10).get("Messages", [])
        if batch:
            sqs.delete_message_batch(QueueUrl=direct, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
        handled += len(batch)
    direct_rate = messages / (time.perf_counter() - started)

    mapped = sqs.create_queue(QueueName="mapped", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=mapped, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fill(sqs, mapped, messages)
    started = time.perf_counter()
    lam.create_event_source_mapping(FunctionName="bench", EventSourceArn=arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    while remaining(sqs, mapped):
        time.sleep(0.05)
    mapped_rate = messages / (time.perf_counter() - started)

    print(f"{messages} messages")
    print(f"received and deleted directly: {direct_rate:,.0f} messages/s")
    print(f"through an SQS mapping to Lambda: {mapped_rate:,.0f} messages/s (goal >= 300)")
    print(f"ratio mapping / direct: {mapped_rate / direct_rate:.2f}")


if __name__ == "__main__":
    main()
