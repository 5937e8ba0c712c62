"""The validating Lambda: invoked by the EventBridge rule for each object landing under landing/, it reads
the object's JSON lines, sends each valid record to the records queue and quarantines the rest with their
line number and reason, then alerts the operators through the SNS topic."""

import json
import os

import boto3

s3 = boto3.client("s3")
sqs = boto3.client("sqs")
sns = boto3.client("sns")
QUEUE_URL, QUARANTINE_BUCKET, TOPIC_ARN = os.environ["QUEUE_URL"], os.environ["QUARANTINE_BUCKET"], os.environ["TOPIC_ARN"]
REQUIRED = {"record_id": str, "customer_id": str, "amount": (int, float), "created_at": str}


def problem_of(record) -> str | None:
    """Why a parsed line is not a valid record, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for field, kind in REQUIRED.items():
        if field not in record:
            return f"missing field {field}"
        if not isinstance(record[field], kind) or isinstance(record[field], bool):
            return f"field {field} is {type(record[field]).__name__}"
    return None


def handler(event, context):
    bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    valid, quarantined = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            reason = problem_of(record)
        except ValueError as error:
            reason = f"not JSON: {error}"
        if reason:
            quarantined.append({"source": f"s3://{bucket}/{key}", "line": number, "reason": reason, "text": line})
        else:
            valid.append(record)
    for start in range(0, len(valid), 10):
        entries = [{"Id": str(index), "MessageBody": json.dumps(record)} for index, record in enumerate(valid[start:start + 10])]
        failed = sqs.send_message_batch(QueueUrl=QUEUE_URL, Entries=entries).get("Failed")
        if failed:
            raise RuntimeError(f"{len(failed)} records of s3://{bucket}/{key} were not queued: {failed[0]}")
    if quarantined:
        s3.put_object(Bucket=QUARANTINE_BUCKET, Key=key, Body="".join(json.dumps(entry) + "\n" for entry in quarantined).encode())
        sns.publish(TopicArn=TOPIC_ARN, Subject="dea-ingest: records quarantined", Message=json.dumps(
            {"source": f"s3://{bucket}/{key}", "quarantined": len(quarantined), "quarantine": f"s3://{QUARANTINE_BUCKET}/{key}"}))
    print(f"s3://{bucket}/{key}: {len(valid)} queued, {len(quarantined)} quarantined")
    return {"queued": len(valid), "quarantined": len(quarantined)}
