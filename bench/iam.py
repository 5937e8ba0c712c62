"""IAM benchmark: what policy evaluation adds to a request from an IAM user holding 10 policies (5 inline,
3 managed, 2 through a group), against the same requests as the account root, in one run.

One gateway in-process (the stack's engines, embedded moto). Each side authorizes the same 2,000 S3 requests
(GetObject and PutObject of keys in a bucket with a policy) through the IAM engine's `authorization_refusal`,
the whole cost evaluation adds before a request goes on; rounds alternate and the medians per request are
compared. Parsed policies and the principal's policies are cached, as in the running stack.
Run: `.venv/bin/python bench/iam.py`.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.datastructures import Headers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dealab.engines import load_engines  # noqa: E402
from dealab.stack.backend import EmbeddedMoto  # noqa: E402
from dealab.stack.gateway import Gateway  # noqa: E402
from dealab.stack.journal import Journal  # noqa: E402
from dealab.wire.engine import EngineContext  # noqa: E402
from dealab.wire.messages import AwsRequest  # noqa: E402

REQUESTS = 2000
ROUNDS = 7
BUCKET = "bench-iam"


def document(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(action: str, resource: str, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def setup(engine) -> str:
    iam, s3 = engine._client("iam"), engine._client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=document({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/*",
                                                         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
    iam.create_user(UserName="bench")
    iam.create_group(GroupName="bench-group")
    iam.add_user_to_group(GroupName="bench-group", UserName="bench")
    for number in range(5):
        iam.put_user_policy(UserName="bench", PolicyName=f"inline-{number}", PolicyDocument=document(
            grant(f"dynamodb:Get{number}*", "*"), grant("s3:GetObject", f"arn:aws:s3:::other-{number}/*", Condition={"StringLike": {"s3:prefix": "${aws:username}/*"}})))
    for number in range(3):
        arn = iam.create_policy(PolicyName=f"managed-{number}", PolicyDocument=document(grant("glue:Get*", f"arn:aws:glue:*:*:table/db{number}/*")))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="bench", PolicyArn=arn)
    iam.put_group_policy(GroupName="bench-group", PolicyName="group-0", PolicyDocument=document(grant("s3:ListBucket", f"arn:aws:s3:::{BUCKET}")))
    arn = iam.create_policy(PolicyName="group-managed", PolicyDocument=document(
        grant(["s3:GetObject", "s3:PutObject"], f"arn:aws:s3:::{BUCKET}/*", Condition={"Bool": {"aws:SecureTransport": "true"}})))["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="bench-group", PolicyArn=arn)
    return iam.create_access_key(UserName="bench")["AccessKey"]["AccessKeyId"]  # recorded by the engine on its way back


def requests_for(caller_key: str | None) -> list[AwsRequest]:
    made = []
    for number in range(REQUESTS):
        operation, method = ("GetObject", "GET") if number % 2 else ("PutObject", "PUT")
        request = AwsRequest(method, f"/{BUCKET}/k{number % 50}", "", Headers(), b"", service="s3", operation=operation, caller_key=caller_key)
        made.append(request)
    return made


def one_round(engine, caller_key: str | None) -> float:
    batch = requests_for(caller_key)
    started = time.perf_counter()
    for request in batch:
        principal = engine._principal(request)
        if engine.authorization_refusal(request, principal) is not None:
            raise SystemExit(f"bench request refused for {caller_key or 'root'}")
    return (time.perf_counter() - started) / REQUESTS


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder)
        context = EngineContext("http://127.0.0.1:1", "us-east-1", state)
        engines = load_engines(context)
        gateway = Gateway(EmbeddedMoto(Journal(state / "journal")), engines)
        context.loopback.attach(gateway)
        engine = next(e for e in engines if e.name == "iam")
        key = setup(engine)
        root, user = [], []
        one_round(engine, None), one_round(engine, key)  # warm the caches
        for _ in range(ROUNDS):
            root.append(one_round(engine, None))
            user.append(one_round(engine, key))
        root_ms, user_ms = statistics.median(root) * 1000, statistics.median(user) * 1000
        print(f"authorization per request, median of {ROUNDS} rounds of {REQUESTS}: root {root_ms:.3f} ms, "
              f"IAM user with 10 policies {user_ms:.3f} ms, added {user_ms - root_ms:.3f} ms (target <= 0.3 ms)")
        for each in engines:
            each.close()


if __name__ == "__main__":
    main()
