"""A lab's life: start (generate the learner's data, seed AWS), solve (run the reference solution), reset."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable

import boto3
from botocore.exceptions import ClientError

from dealab.classroom import client as classroom
from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings
from dealab.datasets import learner_seed
from dealab.labs import Lab, ScriptRun, empty_bucket, run_scripts
from dealab.wire.admintoken import admin_headers
from dealab.wire.store import JsonFile
from grader.core import LabContext
from grader.runner import forget_score


def clock_admin(settings: Settings, payload: dict | None = None) -> dict:
    """GET (or POST) the stack's clock admin endpoint, which keeps each lab's start time."""
    request = urllib.request.Request(
        f"{settings.endpoint_url}/_dealab/clock", data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json", **admin_headers(settings.state_dir)},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def started_labs(settings: Settings) -> dict[str, dict]:
    """Lab number → {"started": lab time, "moved_days": ...} for each lab started on this stack."""
    return clock_admin(settings).get("labs") or {}


def client(settings: Settings, service: str):
    return boto3.client(
        service, endpoint_url=settings.endpoint_url, region_name=settings.region,
        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY,
    )


def start(lab: Lab, settings: Settings) -> dict:
    """Writes the learner's dataset to labs/NN-slug/data/ and seeds any AWS resources the lab starts with."""
    seed = learner_seed(settings)
    summary: dict = {}
    generator = lab.generator()
    if generator is not None:
        if lab.data_dir.exists():
            shutil.rmtree(lab.data_dir)
        summary = generator(seed, lab.data_dir, **lab.dataset.get("params", {}))
    clock_admin(settings, {"action": "lab-start", "lab": str(lab.number)})
    setup = lab.setup()
    if setup is not None:
        setup(LabContext(lab, settings, seed))
    return summary


def solve(lab: Lab, settings: Settings) -> list[ScriptRun]:
    if classroom.in_classroom():  # before the first call it makes: every score after it is the reference's
        classroom.tell(settings, "reference-run", {"lab": lab.number})
    return run_scripts(lab, lab.solution_dir, settings)


def _delete_bucket(settings: Settings, name: str) -> None:
    s3 = client(settings, "s3")
    empty_bucket(s3, name)
    s3.delete_bucket(Bucket=name)


def _delete_kms_alias(settings: Settings, alias: str) -> None:
    kms = client(settings, "kms")
    key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    kms.delete_alias(AliasName=alias)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def _delete_glue_database(settings: Settings, name: str) -> None:
    client(settings, "glue").delete_database(Name=name)


def _delete_lambda_function(settings: Settings, name: str) -> None:
    """The function and its event source mappings (a mapping outlives its function otherwise, polling for nothing)."""
    awslambda = client(settings, "lambda")
    for mapping in awslambda.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
        awslambda.delete_event_source_mapping(UUID=mapping["UUID"])
    awslambda.delete_function(FunctionName=name)


def _delete_event_rule(settings: Settings, name: str) -> None:
    events = client(settings, "events")
    targets = [target["Id"] for target in events.list_targets_by_rule(Rule=name)["Targets"]]
    if targets:
        events.remove_targets(Rule=name, Ids=targets)
    events.delete_rule(Name=name)


def _delete_sns_topic(settings: Settings, name: str) -> None:
    account = client(settings, "sts").get_caller_identity()["Account"]
    client(settings, "sns").delete_topic(TopicArn=f"arn:aws:sns:{settings.region}:{account}:{name}")


def _delete_state_machine(settings: Settings, name: str) -> None:
    account = client(settings, "sts").get_caller_identity()["Account"]
    client(settings, "stepfunctions").delete_state_machine(stateMachineArn=f"arn:aws:states:{settings.region}:{account}:stateMachine:{name}")


def _delete_iam_role(settings: Settings, name: str) -> None:
    """IAM refuses to delete a role that still has policies (DeleteConflict): its inline and attached ones go first."""
    iam = client(settings, "iam")
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    iam.delete_role(RoleName=name)


def _delete_named_query(settings: Settings, name: str) -> None:
    """Athena keeps saved queries by id, and a name may be saved twice: every one of that name goes."""
    athena = client(settings, "athena")
    for page in athena.get_paginator("list_named_queries").paginate():
        if page["NamedQueryIds"]:
            for query in athena.batch_get_named_query(NamedQueryIds=page["NamedQueryIds"])["NamedQueries"]:
                if query["Name"] == name:
                    athena.delete_named_query(NamedQueryId=query["NamedQueryId"])


def _delete_redshift_workgroup(settings: Settings, name: str) -> None:
    """A namespace cannot be deleted while a workgroup is on it: the workgroup goes first (listed first in lab.toml)."""
    client(settings, "redshift-serverless").delete_workgroup(workgroupName=name)


# resource kind in lab.toml [resources] → how to remove one through AWS APIs
DELETERS: dict[str, Callable[[Settings, str], None]] = {
    "buckets": _delete_bucket,
    "kms_aliases": _delete_kms_alias,
    "glue_databases": _delete_glue_database,
    "glue_jobs": lambda s, name: client(s, "glue").delete_job(JobName=name),
    "glue_crawlers": lambda s, name: client(s, "glue").delete_crawler(Name=name),
    "athena_workgroups": lambda s, name: client(s, "athena").delete_work_group(WorkGroup=name, RecursiveDeleteOption=True),
    "kinesis_streams": lambda s, name: client(s, "kinesis").delete_stream(StreamName=name, EnforceConsumerDeletion=True),
    "firehose_streams": lambda s, name: client(s, "firehose").delete_delivery_stream(DeliveryStreamName=name),
    "dynamodb_tables": lambda s, name: client(s, "dynamodb").delete_table(TableName=name),
    "sqs_queues": lambda s, name: client(s, "sqs").delete_queue(QueueUrl=client(s, "sqs").get_queue_url(QueueName=name)["QueueUrl"]),
    "sns_topics": _delete_sns_topic,
    "log_groups": lambda s, name: client(s, "logs").delete_log_group(logGroupName=name),
    "iam_roles": _delete_iam_role,
    "lambda_functions": _delete_lambda_function,
    "event_rules": _delete_event_rule,
    "state_machines": _delete_state_machine,
    "dq_rulesets": lambda s, name: client(s, "glue").delete_data_quality_ruleset(Name=name),
    "metric_alarms": lambda s, name: client(s, "cloudwatch").delete_alarms(AlarmNames=[name]),
    "trails": lambda s, name: client(s, "cloudtrail").delete_trail(Name=name),
    "named_queries": _delete_named_query,
    "secrets": lambda s, name: client(s, "secretsmanager").delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True),
    "redshift_workgroups": _delete_redshift_workgroup,
    "redshift_namespaces": lambda s, name: client(s, "redshift-serverless").delete_namespace(namespaceName=name),
    "redshift_clusters": lambda s, name: client(s, "redshift").delete_cluster(ClusterIdentifier=name, SkipFinalClusterSnapshot=True),
}

NOT_FOUND_CODES = frozenset({
    "NoSuchBucket", "NotFoundException", "EntityNotFoundException", "ResourceNotFoundException",
    "InvalidRequestException", "AWS.SimpleQueueService.NonExistentQueue", "NoSuchEntity", "NotFound", "StateMachineDoesNotExist",
    "TrailNotFoundException", "ClusterNotFound",
})


def _singular(kind: str) -> str:
    """'kms_aliases' → 'kms alias', 'buckets' → 'bucket': how a removed resource is named to the learner."""
    return kind.replace("_", " ").removesuffix("es" if kind.endswith("aliases") else "s")


def reset(lab: Lab, settings: Settings) -> list[str]:
    """Deletes the lab's resources named in its manifest (and its generated data); returns what went."""
    unknown = set(lab.resources) - DELETERS.keys()
    if unknown:
        raise ValueError(f"lab {lab.number} lists resource kinds dealab cannot delete: {sorted(unknown)}")
    removed = []
    for kind, names in lab.resources.items():
        for name in names:
            try:
                DELETERS[kind](settings, name)
                removed.append(f"{_singular(kind)} {name}")
            except ClientError as error:
                if error.response["Error"]["Code"] not in NOT_FOUND_CODES:
                    raise
    if lab.data_dir.exists():
        shutil.rmtree(lab.data_dir)
        removed.append(f"generated data {lab.data_dir}")
    clock_admin(settings, {"action": "lab-reset", "lab": str(lab.number)})
    forget_progress(lab, settings)
    return removed


HINTS_FILE = "hints.json"


def forget_progress(lab: Lab, settings: Settings) -> None:
    """A reset lab starts over: its hint levels and its last score go with its resources."""
    hints = JsonFile(settings.state_dir / HINTS_FILE)
    seen = hints.load({})
    if seen.pop(str(lab.number), None) is not None:
        hints.save(seen)
    forget_score(settings, lab.number)
