"""Event source mapping benchmark: SQS messages through a mapping to a Lambda function, against the same work
done by a client of the same stack in the same run.

Each round fills a fresh queue with N messages for each side, then times:
- direct: received (10 a call, long polling as a real consumer does) and deleted (DeleteMessageBatch);
- by hand: the mapping's work in one client thread: receive 10 with every attribute, a synchronous Invoke with
  the SQS records, DeleteMessageBatch;
- mapping: an SQS mapping (BatchSize 10, ReportBatchItemFailures) on the same warm function, from
  CreateEventSourceMapping until the queue is empty (visible and in flight). Goal >= 300 messages/s.
Rounds alternate; medians are compared. Run: `.venv/bin/python bench/event_sources.py [--messages 500] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
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

READ_QUEUES = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], "Resource": "*"}]})


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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = control.free_port_pair()
        settings = Settings(state_dir=Path(folder), port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
        control.up(settings)
        try:
            run(settings, args.messages, args.rounds)
        finally:
            control.down(settings)


def records_of(batch: list[dict], arn: str) -> list[dict]:
    """The SQS event records a mapping would build (the fields the function gets)."""
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": m.get("Attributes", {}),
             "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"}
            for m in batch]


def run(settings: Settings, messages: int, rounds: int) -> None:
    def aws(service):
        return boto3.client(service, endpoint_url=settings.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)

    sqs, lam, iam = aws("sqs"), aws("lambda"), aws("iam")
    role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
    iam.put_role_policy(RoleName="bench-role", PolicyName="read-queues", PolicyDocument=READ_QUEUES)  # the mapping polls as the role
    lam.create_function(FunctionName="bench", Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": zip_of(HANDLER)})
    lam.invoke(FunctionName="bench", Payload=b"{}")  # warm, as a busy mapping's function is

    def filled(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        fill(sqs, url, messages)
        return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def direct(url: str, arn: str) -> None:
        handled = 0
        while handled < messages:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=20).get("Messages", [])
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
            handled += len(batch)

    def by_hand(url: str, arn: str) -> None:
        handled = 0
        while handled < messages:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=20, AttributeNames=["All"],
                                        MessageAttributeNames=["All"]).get("Messages", [])
            answer = lam.invoke(FunctionName="bench", Payload=json.dumps({"Records": records_of(batch, arn)}).encode())
            assert "FunctionError" not in answer, answer["Payload"].read()
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)])
            handled += len(batch)

    def mapping(url: str, arn: str) -> None:
        uuid = lam.create_event_source_mapping(FunctionName="bench", EventSourceArn=arn, BatchSize=10,
                                               FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
        while remaining(sqs, url):
            time.sleep(0.05)
        lam.delete_event_source_mapping(UUID=uuid)  # outside the time: the queue is empty

    sides = {"direct": direct, "by hand": by_hand, "mapping": mapping}
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(rounds):
        for side, work in sides.items():
            url, arn = filled(f"{side.replace(' ', '-')}-{number}")
            started = time.perf_counter()
            work(url, arn)
            rates[side].append(messages / (time.perf_counter() - started))
    median = {side: statistics.median(values) for side, values in rates.items()}
    print(f"{messages} messages a side, median of {rounds} alternating rounds (load {Path('/proc/loadavg').read_text().split()[0]})")
    for side, values in rates.items():
        print(f"  {side:<8} {median[side]:6,.0f} messages/s   rounds: {', '.join(f'{value:,.0f}' for value in values)}")
    print(f"through an SQS mapping: {median['mapping']:,.0f} messages/s (goal >= 300); "
          f"ratio mapping / by hand {median['mapping'] / median['by hand']:.2f}, mapping / direct {median['mapping'] / median['direct']:.2f}")


if __name__ == "__main__":
    main()
