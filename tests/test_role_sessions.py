"""Engines act with their execution role, as AWS services do (dealab/wire/rolesessions.py): a Lambda function, a
Glue job (Python shell and Spark), a crawler, a Data Quality run, a state machine's tasks and a Firehose delivery
call the stack with a session of the role the resource names, so the role's trust policy decides whether the
service may use it and its policies decide what the run may do; CloudTrail names the session."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from types import SimpleNamespace

import pytest

from dealab.config import TEST_ACCESS_KEY
from dealab.wire import labtime, rolesessions
from dealab.wire.loopback import Loopback
from dealab.wire.timers import timers
from tests.conftest import client, make_settings
from tests.gluekit import log_lines, run_job, upload_script, wait_for_crawler
from tests.test_events import lab_now
from tests.test_lambda import zip_of
from tests.test_lifecycle_engine import advance

ACCOUNT = "123456789012"
DATA = "role-data"


def trust(*services: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}]})


def role(settings, name: str, service: str, *statements: dict) -> str:
    iam = client(settings, "iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(service))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return arn


def allow(actions, resource="*") -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


@pytest.fixture
def data(clean_stack):
    s3 = client(clean_stack, "s3")
    s3.create_bucket(Bucket=DATA)
    s3.put_object(Bucket=DATA, Key="in/orders.json", Body=b'{"id": 1, "amount": 2.5}\n{"id": 2, "amount": 4.0}\n')
    return clean_stack


# ---- Lambda ------------------------------------------------------------------------------------------------
READER = """
import os, boto3
def handler(event, context):
    who = boto3.client("sts").get_caller_identity()["Arn"]
    try:
        body = boto3.client("s3").get_object(Bucket="role-data", Key="in/orders.json")["Body"].read().decode()
    except Exception as error:
        body = f"{type(error).__name__}: {error}"
    return {"who": who, "body": body, "token": bool(os.environ.get("AWS_SESSION_TOKEN")), "key": os.environ["AWS_ACCESS_KEY_ID"],
            "pid": os.getpid()}
"""


def function(settings, name: str, role_arn: str, source: str = READER) -> str:
    client(settings, "lambda").create_function(FunctionName=name, Runtime="python3.11", Role=role_arn, Handler="app.handler", Timeout=30,
                                               Code={"ZipFile": zip_of({"app.py": source})})
    return name


def invoke(settings, name: str) -> dict:
    response = client(settings, "lambda").invoke(FunctionName=name, Payload=b"{}")
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_a_function_runs_as_its_role_and_its_s3_read_is_judged_by_the_roles_policy(data):
    reader = role(data, "fn-reader", "lambda.amazonaws.com", allow("s3:GetObject", f"arn:aws:s3:::{DATA}/*"))
    blind = role(data, "fn-blind", "lambda.amazonaws.com", allow("s3:ListBucket", f"arn:aws:s3:::{DATA}"))
    allowed = invoke(data, function(data, "orders-reader", reader))
    assert allowed["who"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-reader/orders-reader"  # session named after the function
    assert allowed["token"] and allowed["key"].startswith("ASIA") and allowed["key"] != TEST_ACCESS_KEY
    assert allowed["body"].startswith('{"id": 1')
    denied = invoke(data, function(data, "orders-blind", blind))
    assert denied["who"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-blind/orders-blind"
    assert denied["body"] == (f"AccessDenied: An error occurred (AccessDenied) when calling the GetObject operation: User: "
                              f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-blind/orders-blind is not authorized to perform: s3:GetObject on resource: "
                              f'"arn:aws:s3:::{DATA}/in/orders.json" because no identity-based policy allows the s3:GetObject action')


def test_lambda_refuses_a_role_that_does_not_trust_it(data):
    glue_role = role(data, "for-glue", "glue.amazonaws.com", allow("s3:*"))
    lam = client(data, "lambda")
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="The role defined for the function cannot be assumed by Lambda."):
        function(data, "untrusted", glue_role)
    reader = role(data, "fn-ok", "lambda.amazonaws.com", allow("s3:GetObject"))
    function(data, "retargeted", reader)
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="cannot be assumed by Lambda"):
        lam.update_function_configuration(FunctionName="retargeted", Role=glue_role)


def test_a_warm_workers_session_is_renewed_on_the_lab_clock(data):
    reader = role(data, "fn-long", "lambda.amazonaws.com", allow("s3:GetObject"))
    first = invoke(data, function(data, "long-lived", reader))
    advance(data, "5h")  # five times the session's hour: renewed before it ends, the clock move covered at once
    later = invoke(data, "long-lived")
    assert later["pid"] == first["pid"] and later["key"] == first["key"], "the same warm worker, with the same session"
    assert later["body"].startswith('{"id": 1'), later["body"]


def test_cloudtrail_names_the_session_an_engine_acted_with(data):
    creator = role(data, "fn-creator", "lambda.amazonaws.com", allow("sqs:CreateQueue"))
    source = "import boto3\ndef handler(event, context):\n    boto3.client('sqs').create_queue(QueueName='made-by-role')\n    return {}\n"
    invoke(data, function(data, "queue-maker", creator, source))
    trail = client(data, "cloudtrail")
    deadline = time.monotonic() + 20
    while not (found := trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateQueue"}])["Events"]):
        assert time.monotonic() < deadline, "no CreateQueue event"
        time.sleep(0.2)
    identity = json.loads(found[0]["CloudTrailEvent"])["userIdentity"]
    role_id = client(data, "iam").get_role(RoleName="fn-creator")["Role"]["RoleId"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-creator/queue-maker"
    assert identity["principalId"] == f"{role_id}:queue-maker"
    assert identity["sessionContext"]["sessionIssuer"] == {"type": "Role", "principalId": role_id, "arn": creator,
                                                           "accountId": ACCOUNT, "userName": "fn-creator"}
    assert "invokedBy" not in identity  # the function's code made the call, not Lambda


def test_cloudtrail_says_which_service_made_a_call_with_its_role(data):
    """A call a service makes itself with the role it was given (here a schedule's universal target) carries
    userIdentity.invokedBy, the service's principal, as AWS records it."""
    caller = role(data, "sched-queue-maker", "scheduler.amazonaws.com", allow("sqs:CreateQueue"))
    now = lab_now(data)
    client(data, "scheduler").create_schedule(
        Name="make-queue", ScheduleExpression=f"at({(now + datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%S')})",
        FlexibleTimeWindow={"Mode": "OFF"}, Target={"Arn": "arn:aws:scheduler:::aws-sdk:sqs:createQueue", "RoleArn": caller,
                                                    "Input": json.dumps({"QueueName": "made-by-scheduler"})})
    advance(data, "2h")
    trail = client(data, "cloudtrail")
    deadline = time.monotonic() + 20
    while not (found := [e for e in trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateQueue"}])["Events"]
                         if "sched-queue-maker" in e["CloudTrailEvent"]]):
        assert time.monotonic() < deadline, "no CreateQueue event"
        time.sleep(0.2)
    event = json.loads(found[0]["CloudTrailEvent"])
    assert event["userIdentity"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/sched-queue-maker/scheduler-make-queue"
    assert event["userIdentity"]["invokedBy"] == event["sourceIPAddress"] == event["userAgent"] == "scheduler.amazonaws.com"


# ---- Glue jobs -------------------------------------------------------------------------------------------------
SHELL_SCRIPT = """
import boto3
print(boto3.client("sts").get_caller_identity()["Arn"])
print(boto3.client("s3").get_object(Bucket="role-data", Key="in/orders.json")["Body"].read().decode().count("id"))
"""
SPARK_SCRIPT = """
from awsglue.context import GlueContext
from pyspark.context import SparkContext

glue_context = GlueContext(SparkContext.getOrCreate())
frame = glue_context.create_dynamic_frame.from_options("s3", {"paths": ["s3://role-data/in/"]}, "json")
print(frame.count())
"""
SCRIPTS = allow("s3:GetObject", f"arn:aws:s3:::{DATA}/scripts/*")


def glue_job(settings, name: str, role_arn: str, script: str, kind: str = "pythonshell") -> None:
    location = upload_script(settings, DATA, f"scripts/{name}.py", script)
    command = {"Name": kind, "ScriptLocation": location, "PythonVersion": "3.9" if kind == "pythonshell" else "3"}
    client(settings, "glue").create_job(Name=name, Role=role_arn, Command=command, **({"MaxCapacity": 0.0625} if kind == "pythonshell" else {}))


def test_a_python_shell_job_runs_as_its_role(data):
    reader = role(data, "job-reader", "glue.amazonaws.com", SCRIPTS, allow("s3:GetObject", f"arn:aws:s3:::{DATA}/in/*"))
    blind = role(data, "job-blind", "glue.amazonaws.com", SCRIPTS)
    glue_job(data, "shell-reader", reader, SHELL_SCRIPT)
    glue_job(data, "shell-blind", blind, SHELL_SCRIPT)
    succeeded = run_job(data, "shell-reader", timeout=120)
    assert succeeded["JobRunState"] == "SUCCEEDED", succeeded.get("ErrorMessage")
    assert log_lines(data, "/aws-glue/jobs/output", succeeded["Id"]) == [f"arn:aws:sts::{ACCOUNT}:assumed-role/job-reader/GlueJobRunnerSession", "2"]
    failed = run_job(data, "shell-blind", timeout=120)
    assert failed["JobRunState"] == "FAILED"
    assert failed["ErrorMessage"] == (f"AccessDenied: An error occurred (AccessDenied) when calling the GetObject operation: User: "
                                      f"arn:aws:sts::{ACCOUNT}:assumed-role/job-blind/GlueJobRunnerSession is not authorized to perform: "
                                      f's3:GetObject on resource: "arn:aws:s3:::{DATA}/in/orders.json" because no identity-based policy allows '
                                      "the s3:GetObject action")


def test_a_job_whose_role_does_not_trust_glue_fails_in_glues_words(data):
    lambda_role = role(data, "not-for-glue", "lambda.amazonaws.com", allow("*"))
    glue_job(data, "untrusting", lambda_role, SHELL_SCRIPT)
    run = run_job(data, "untrusting", timeout=60)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == (f"JobName:untrusting and JobRunId:{run['Id']} failed to execute with exception Role {lambda_role} "
                                   "should be given assume role permissions for Glue Service.")


def test_a_job_cannot_fetch_a_script_its_role_may_not_read(data):
    glue_job(data, "no-script", role(data, "job-no-script", "glue.amazonaws.com", allow("s3:GetObject", f"arn:aws:s3:::{DATA}/in/*")), SHELL_SCRIPT)
    run = run_job(data, "no-script", timeout=60)
    assert run["JobRunState"] == "FAILED" and "AccessDenied" in run["ErrorMessage"] and "scripts/no-script.py" in run["ErrorMessage"]


def test_a_spark_job_reads_s3_as_its_role(data):
    reader = role(data, "spark-reader", "glue.amazonaws.com", SCRIPTS, allow(["s3:GetObject", "s3:ListBucket"]))
    blind = role(data, "spark-blind", "glue.amazonaws.com", SCRIPTS, allow("s3:ListBucket"))
    glue_job(data, "spark-reader", reader, SPARK_SCRIPT, kind="glueetl")
    glue_job(data, "spark-blind", blind, SPARK_SCRIPT, kind="glueetl")
    succeeded = run_job(data, "spark-reader")
    assert succeeded["JobRunState"] == "SUCCEEDED", succeeded.get("ErrorMessage")
    assert log_lines(data, "/aws-glue/jobs/output", succeeded["Id"]) == ["2"]
    failed = run_job(data, "spark-blind")  # the same warm worker, another role
    assert failed["JobRunState"] == "FAILED"
    assert "AccessDenied" in failed["ErrorMessage"] and "403" in failed["ErrorMessage"], failed["ErrorMessage"][:500]
    again = run_job(data, "spark-reader")  # and back: nothing of the other run's keys is left in the worker
    assert again["JobRunState"] == "SUCCEEDED", again.get("ErrorMessage")


# ---- crawlers and Data Quality ---------------------------------------------------------------------------------
def test_a_crawler_crawls_as_its_role(data):
    glue = client(data, "glue")
    glue.create_database(DatabaseInput={"Name": "roles_db"})
    with pytest.raises(glue.exceptions.InvalidInputException, match="Service is unable to assume role .*not-for-crawlers. Please verify role's TrustPolicy"):
        glue.create_crawler(Name="untrusted", Role=role(data, "not-for-crawlers", "lambda.amazonaws.com"), DatabaseName="roles_db",
                            Targets={"S3Targets": [{"Path": f"s3://{DATA}/in/"}]})
    crawler_role = role(data, "crawler-role", "glue.amazonaws.com", allow(["s3:GetObject", "s3:ListBucket"]),
                        allow(["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
                               "glue:GetPartitions", "glue:BatchCreatePartition"]))
    blind_role = role(data, "crawler-blind", "glue.amazonaws.com", allow(["glue:*"]))
    for name, arn in (("sees", crawler_role), ("blind", blind_role)):
        glue.create_crawler(Name=name, Role=arn, DatabaseName="roles_db", Targets={"S3Targets": [{"Path": f"s3://{DATA}/in/"}]}, TablePrefix=f"{name}_")
        glue.start_crawler(Name=name)
    assert wait_for_crawler(data, "sees")["LastCrawl"]["Status"] == "SUCCEEDED"
    assert [t["Name"] for t in glue.get_tables(DatabaseName="roles_db")["TableList"]] == ["sees_in"]
    blind = wait_for_crawler(data, "blind")["LastCrawl"]
    assert blind["Status"] == "FAILED" and "s3:ListBucket" in blind["ErrorMessage"], blind


def test_a_data_quality_run_reads_as_its_role(data):
    glue = client(data, "glue")
    glue.create_database(DatabaseInput={"Name": "dq_roles"})
    glue.create_table(DatabaseName="dq_roles", TableInput={
        "Name": "orders", "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "int"}, {"Name": "amount", "Type": "double"}], "Location": f"s3://{DATA}/in/",
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}},
        "Parameters": {"classification": "json"}})
    glue.create_data_quality_ruleset(Name="two-orders", Ruleset="Rules = [ RowCount = 2 ]",
                                     TargetTable={"DatabaseName": "dq_roles", "TableName": "orders"})
    catalog = allow(["glue:GetTable", "glue:GetPartitions", "glue:GetDatabase"])
    runs = {}
    for name, statements in (("dq-reader", [catalog, allow(["s3:GetObject", "s3:ListBucket"])]), ("dq-blind", [catalog, allow("s3:ListBucket")]),
                             ("dq-untrusted", None)):
        arn = role(data, name, "lambda.amazonaws.com" if statements is None else "glue.amazonaws.com", *(statements or []))
        runs[name] = glue.start_data_quality_ruleset_evaluation_run(
            DataSource={"GlueTable": {"DatabaseName": "dq_roles", "TableName": "orders"}}, Role=arn, RulesetNames=["two-orders"])["RunId"]
    ended = {}
    deadline = time.monotonic() + 60
    while len(ended) < len(runs):
        assert time.monotonic() < deadline, ended
        for name, run_id in runs.items():
            run = glue.get_data_quality_ruleset_evaluation_run(RunId=run_id)
            if run["Status"] not in ("STARTING", "RUNNING"):
                ended[name] = run
        time.sleep(0.2)
    assert ended["dq-reader"]["Status"] == "SUCCEEDED", ended["dq-reader"]
    assert ended["dq-blind"]["Status"] == "FAILED" and "AccessDenied" in ended["dq-blind"]["ErrorString"], ended["dq-blind"]
    assert ended["dq-untrusted"]["Status"] == "FAILED"
    assert "should be given assume role permissions for Glue Service" in ended["dq-untrusted"]["ErrorString"]


# ---- Step Functions ----------------------------------------------------------------------------------------------
def machine(settings, name: str, role_arn: str) -> str:
    definition = {"StartAt": "Put", "States": {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
        "Parameters": {"Bucket": DATA, "Key.$": "$.key", "Body": "from a state machine"}, "End": True}}}
    return client(settings, "stepfunctions").create_state_machine(name=name, definition=json.dumps(definition), roleArn=role_arn)["stateMachineArn"]


def execute(settings, machine_arn: str, key: str) -> dict:
    sfn = client(settings, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps({"key": key}))["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return described


def test_a_state_machines_tasks_act_as_its_role(data):
    sfn = client(data, "stepfunctions")
    with pytest.raises(sfn.exceptions.ClientError, match="Neither the global service principal states.amazonaws.com, nor the regional one is authorized"):
        machine(data, "untrusted", role(data, "not-for-states", "lambda.amazonaws.com"))
    writer = machine(data, "writer", role(data, "states-writer", "states.amazonaws.com", allow("s3:PutObject", f"arn:aws:s3:::{DATA}/out/*")))
    assert execute(data, writer, "out/a.txt")["status"] == "SUCCEEDED"
    assert b"from a state machine" in client(data, "s3").get_object(Bucket=DATA, Key="out/a.txt")["Body"].read()
    refused = execute(data, writer, "elsewhere/b.txt")
    assert refused["status"] == "FAILED"
    assert "AccessDenied" in refused["error"] and "assumed-role/states-writer/" in refused["cause"] and "s3:PutObject" in refused["cause"], refused
    regional = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.us-east-1.amazonaws.com"},
                                                                    "Action": "sts:AssumeRole"}]})
    client(data, "iam").create_role(RoleName="states-regional", AssumeRolePolicyDocument=regional)
    machine(data, "regional", f"arn:aws:iam::{ACCOUNT}:role/states-regional")  # the regional principal is trusted too


# ---- Firehose --------------------------------------------------------------------------------------------------
def test_firehose_delivers_with_its_role(data):
    firehose = client(data, "firehose")
    writer = role(data, "firehose-writer", "firehose.amazonaws.com", allow("s3:PutObject", f"arn:aws:s3:::{DATA}/good/*"))
    for stream, prefix in (("allowed", "good/"), ("refused", "bad/")):
        firehose.create_delivery_stream(DeliveryStreamName=stream, ExtendedS3DestinationConfiguration={
            "RoleARN": writer, "BucketARN": f"arn:aws:s3:::{DATA}", "Prefix": prefix, "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}})
        firehose.put_record(DeliveryStreamName=stream, Record={"Data": b'{"n": 1}\n'})
    s3 = client(data, "s3")
    deadline = time.monotonic() + 20
    while not s3.list_objects_v2(Bucket=DATA, Prefix="good/").get("KeyCount"):
        assert time.monotonic() < deadline, "the allowed stream delivered nothing"
        time.sleep(0.2)
    time.sleep(1.5)  # several delivery ticks
    assert not s3.list_objects_v2(Bucket=DATA, Prefix="bad/").get("KeyCount"), "delivered where its role may not write"


# ---- a role that does not exist ------------------------------------------------------------------------------------
def test_a_role_that_does_not_exist_is_refused(tmp_path):
    from dealab.stack import control

    settings = make_settings(tmp_path / "state")
    control.up(settings)
    try:
        s3 = client(settings, "s3")
        s3.create_bucket(Bucket=DATA)
        glue_job(settings, "ghost", f"arn:aws:iam::{ACCOUNT}:role/never-made", SHELL_SCRIPT)
        run = run_job(settings, "ghost", timeout=60)
        glue = client(settings, "glue")
        glue.create_database(DatabaseInput={"Name": "ghosts"})
        with pytest.raises(glue.exceptions.InvalidInputException, match="Service is unable to assume role"):
            glue.create_crawler(Name="ghost", Role="never-made", DatabaseName="ghosts", Targets={"S3Targets": [{"Path": f"s3://{DATA}/"}]})
    finally:
        control.down(settings)
    assert run["JobRunState"] == "FAILED" and "should be given assume role permissions for Glue Service" in run["ErrorMessage"]


# ---- the floor, without a stack ------------------------------------------------------------------------------------
class FakeIssuer:
    def __init__(self):
        self.minted, self.renewed, self.known = 0, [], set()

    def check(self, role_arn, service, source_arn=None):
        if "missing" in role_arn:
            raise rolesessions.Refused(role_arn, service, "no such role")

    def assume(self, role_arn, service, session_name, duration, source_arn=None, invoked_by=False):
        self.check(role_arn, service)
        self.minted += 1
        key = f"ASIA{self.minted:016d}"
        self.known.add(key)
        return rolesessions.Credentials(key, "secret", "token", rolesessions.lab_epoch() + duration, f"arn:aws:sts::{ACCOUNT}:assumed-role/r/{session_name}")

    def renew(self, access_key, expires):
        self.renewed.append(expires)
        return rolesessions.Credentials(access_key, "secret", "token", expires, "arn")

    def valid(self, access_key):
        return access_key in self.known


def test_in_process_sessions_are_minted_again_before_they_expire_and_a_missing_role_is_refused():
    context = SimpleNamespace(loopback=Loopback(), region="us-east-1")
    issuer = FakeIssuer()
    rolesessions.offer(context.loopback, issuer)
    sessions = rolesessions.RoleSessions(context, "glue.amazonaws.com")
    first = sessions.credentials("arn:aws:iam::123456789012:role/r", "s")
    assert sessions.credentials("r", "s") == first and issuer.minted == 1  # a role's name means the account's role
    before = labtime.offset()
    labtime.set_offset(before + datetime.timedelta(seconds=rolesessions.SESSION_SECONDS - rolesessions.REFRESH_SECONDS + 1))
    try:
        assert sessions.credentials("r", "s") != first and issuer.minted == 2
    finally:
        labtime.set_offset(before)
    issuer.known.clear()  # a reset forgets the store's sessions
    assert sessions.credentials("r", "s").access_key not in (first.access_key,) and issuer.minted == 3
    with pytest.raises(rolesessions.Refused):
        sessions.credentials("missing", "s")
    with pytest.raises(rolesessions.Refused):
        sessions.check("missing")
    assert rolesessions.RoleSessions(SimpleNamespace(loopback=Loopback(), region="us-east-1"), "x").credentials("r", "s") is None  # no IAM engine


def test_a_lease_is_renewed_before_it_expires_and_covers_a_clock_move_at_once():
    context = SimpleNamespace(loopback=Loopback(), region="us-east-1")
    issuer = FakeIssuer()
    rolesessions.offer(context.loopback, issuer)
    lease = rolesessions.RoleSessions(context, "lambda.amazonaws.com").lease("r", f"fn-{uuid.uuid4().hex[:6]}")
    key = lease.credentials.access_key
    due = timers.due_at(rolesessions.TIMER_OWNER, key)
    assert due == labtime.EPOCH + datetime.timedelta(seconds=lease.credentials.expires - rolesessions.RENEW_BEFORE_SECONDS)
    target = due + datetime.timedelta(days=3)
    timers.moving_to(target.replace(tzinfo=datetime.timezone.utc))  # as the clock engine gives it: aware
    try:
        timers.fire_due(due)
    finally:
        timers.moving_to(None)
    assert issuer.renewed == [(target - labtime.EPOCH).total_seconds() + rolesessions.SESSION_SECONDS]
    assert lease.credentials.expires == issuer.renewed[0]
    lease.release()
    assert timers.due_at(rolesessions.TIMER_OWNER, key) is None
