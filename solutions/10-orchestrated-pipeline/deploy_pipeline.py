"""Lab 10 — deploy the nightly batch pipeline with boto3 (reference solution).

Creates the curated zone, the crawler over the raw zone, the Glue Python shell job, the Athena tables, the
two SNS topics (subscribed by the operations queues), the state machine and its nightly schedule. Every step
can run again: an existing resource is updated or left as it is.
"""

import json
import time
from pathlib import Path

import boto3

RAW_BUCKET = "dea-pipeline-raw"
CURATED_BUCKET = "dea-pipeline-curated"
SCRIPTS_BUCKET = "dea-pipeline-scripts"
RESULTS_BUCKET = "dea-pipeline-athena"
DATABASE = "pipeline"
CRAWLER = "dea-raw-sales"
JOB = "dea-clean-sales"
MACHINE = "dea-nightly-pipeline"
SCHEDULE_RULE = "dea-nightly-pipeline-at-2am"
NOTICES_TOPIC, ALERTS_TOPIC = "dea-pipeline-notices", "dea-pipeline-alerts"
NOTICES_QUEUE, ALERTS_QUEUE = "dea-pipeline-notices", "dea-pipeline-alerts"
NIGHTLY = "cron(0 2 * * ? *)"  # 02:00 UTC every day

s3 = boto3.client("s3")
glue = boto3.client("glue")
athena = boto3.client("athena")
sns = boto3.client("sns")
sqs = boto3.client("sqs")
iam = boto3.client("iam")
sfn = boto3.client("stepfunctions")
events = boto3.client("events")
ACCOUNT = boto3.client("sts").get_caller_identity()["Account"]
REGION = s3.meta.region_name


def ensure_bucket(name: str) -> None:
    try:
        if REGION == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


def allow(actions: list[str], resources: list[str]) -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def ensure_role(name: str, service: str, statements: list[dict]) -> str:
    """A role `service` may assume, allowed what `statements` allow; its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName=f"{name}-access", PolicyDocument=json.dumps(policy))
    return arn


def glue_statements() -> list[dict]:
    """The crawler and the job: read the raw zone and the script, write the curated zone and the pipeline's
    tables and partitions, write their logs."""
    glue_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    return [
        allow(["s3:ListBucket"], [f"arn:aws:s3:::{bucket}" for bucket in (RAW_BUCKET, CURATED_BUCKET, SCRIPTS_BUCKET)]),
        allow(["s3:GetObject"], [f"arn:aws:s3:::{RAW_BUCKET}/sales/*", f"arn:aws:s3:::{SCRIPTS_BUCKET}/jobs/*"]),
        allow(["s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{CURATED_BUCKET}/sales/*"]),
        allow(["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartition",
               "glue:GetPartitions", "glue:CreatePartition", "glue:BatchCreatePartition", "glue:UpdatePartition"],
              [f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", f"{glue_arn}:table/{DATABASE}/*"]),
        allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/*"]),
    ]


def states_statements(topics: list[str]) -> list[dict]:
    """The state machine's task calls: run this crawler and this job, run the aggregation in Athena (which reads
    the curated tables, adds a night to daily_sales and writes its result as this role), publish to the topics."""
    glue_arn = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    return [
        allow(["glue:StartCrawler", "glue:GetCrawler"], [f"{glue_arn}:crawler/{CRAWLER}"]),
        allow(["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"], [f"{glue_arn}:job/{JOB}"]),
        allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"],
              [f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary"]),
        allow(["glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions", "glue:CreatePartition",
               "glue:BatchCreatePartition"], [f"{glue_arn}:catalog", f"{glue_arn}:database/{DATABASE}", f"{glue_arn}:table/{DATABASE}/*"]),
        allow(["s3:ListBucket", "s3:GetBucketLocation"], [f"arn:aws:s3:::{CURATED_BUCKET}", f"arn:aws:s3:::{RESULTS_BUCKET}"]),
        allow(["s3:GetObject"], [f"arn:aws:s3:::{CURATED_BUCKET}/*"]),
        allow(["s3:PutObject", "s3:AbortMultipartUpload"], [f"arn:aws:s3:::{CURATED_BUCKET}/daily_sales/*"]),
        allow(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], [f"arn:aws:s3:::{RESULTS_BUCKET}/pipeline/*"]),
        allow(["sns:Publish"], topics),
    ]


def run_query(sql: str) -> None:
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": f"s3://{RESULTS_BUCKET}/ddl/"})["QueryExecutionId"]
    while (status := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        time.sleep(0.2)
    if status["State"] != "SUCCEEDED":
        raise SystemExit(f"Athena: {sql.split('(')[0]} failed: {status.get('StateChangeReason')}")


def deploy_catalog(glue_role: str) -> None:
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE})
    except glue.exceptions.AlreadyExistsException:
        pass
    crawler = {"Role": glue_role, "DatabaseName": DATABASE, "Targets": {"S3Targets": [{"Path": f"s3://{RAW_BUCKET}/sales/"}]},
               "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"}}
    try:
        glue.create_crawler(Name=CRAWLER, **crawler)
    except glue.exceptions.AlreadyExistsException:
        glue.update_crawler(Name=CRAWLER, **crawler)
    run_query(f"""CREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.curated_sales (
        sale_id string, store string, sku string, quantity int, unit_price double, amount double)
        PARTITIONED BY (night string)
        ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
        LOCATION 's3://{CURATED_BUCKET}/sales/'""")
    run_query(f"""CREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.daily_sales (
        store string, sales bigint, units bigint, revenue double)
        PARTITIONED BY (night string)
        STORED AS PARQUET
        LOCATION 's3://{CURATED_BUCKET}/daily_sales/'""")


def deploy_job(glue_role: str) -> None:
    s3.upload_file(str(Path(__file__).with_name("clean_sales.py")), SCRIPTS_BUCKET, "jobs/clean_sales.py")
    definition = {
        "Role": glue_role,
        # a Python shell job: a night is a few hundred rows, and it starts in a second where Spark takes many
        "Command": {"Name": "pythonshell", "ScriptLocation": f"s3://{SCRIPTS_BUCKET}/jobs/clean_sales.py", "PythonVersion": "3.9"},
        "MaxCapacity": 0.0625,
        "MaxRetries": 0,
        "Timeout": 15,
        "DefaultArguments": {
            "--raw_path": f"s3://{RAW_BUCKET}/sales/",
            "--curated_path": f"s3://{CURATED_BUCKET}/sales/",
            "--database": DATABASE,
            "--table": "curated_sales",
        },
    }
    try:
        glue.create_job(Name=JOB, **definition)
    except glue.exceptions.AlreadyExistsException:
        glue.update_job(JobName=JOB, JobUpdate=definition)


def topic_to_queue(topic: str, queue: str) -> str:
    """A topic whose messages reach the queue (the queue's policy lets the topic send); the topic's ARN."""
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)  # the same subscription again is no new one
    return topic_arn


def deploy_state_machine(states_role: str, notices_topic: str, alerts_topic: str) -> str:
    definition = Path(__file__).with_name("pipeline.asl.json").read_text()
    names = {"crawler": CRAWLER, "job": JOB, "database": DATABASE, "results_bucket": RESULTS_BUCKET,
             "notices_topic": notices_topic, "alerts_topic": alerts_topic}
    for name, value in names.items():  # ${name} in the definition; JSONPath's own $ signs stay as they are
        definition = definition.replace("${" + name + "}", value)
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=states_role)
    except sfn.exceptions.StateMachineDoesNotExist:
        arn = sfn.create_state_machine(name=MACHINE, definition=definition, roleArn=states_role)["stateMachineArn"]
    return arn


def deploy_schedule(machine_arn: str, events_role: str) -> None:
    events.put_rule(Name=SCHEDULE_RULE, ScheduleExpression=NIGHTLY, State="ENABLED",
                    Description="runs dea-nightly-pipeline for the night at 02:00 UTC")
    events.put_targets(Rule=SCHEDULE_RULE, Targets=[{
        "Id": "pipeline", "Arn": machine_arn, "RoleArn": events_role,
        # the execution's input: the moment the schedule fired, so the machine knows which night it runs
        "InputTransformer": {"InputPathsMap": {"time": "$.time"}, "InputTemplate": '{"time": <time>}'},
    }])


if __name__ == "__main__":
    for bucket in (CURATED_BUCKET, SCRIPTS_BUCKET, RESULTS_BUCKET):
        ensure_bucket(bucket)
    glue_role = ensure_role("dea-pipeline-glue", "glue.amazonaws.com", glue_statements())
    deploy_catalog(glue_role)
    deploy_job(glue_role)
    notices_topic = topic_to_queue(NOTICES_TOPIC, NOTICES_QUEUE)
    alerts_topic = topic_to_queue(ALERTS_TOPIC, ALERTS_QUEUE)
    states_role = ensure_role("dea-pipeline-states", "states.amazonaws.com", states_statements([notices_topic, alerts_topic]))
    machine_arn = deploy_state_machine(states_role, notices_topic, alerts_topic)
    events_role = ensure_role("dea-pipeline-events", "events.amazonaws.com", [allow(["states:StartExecution"], [machine_arn])])
    deploy_schedule(machine_arn, events_role)
    print(f"deployed {MACHINE}, run nightly by rule {SCHEDULE_RULE} ({NIGHTLY})")
