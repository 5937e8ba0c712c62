"""Lab 10 — deploy the nightly batch pipeline with boto3 (starter: TODOs 1-5).

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
NIGHTLY = "TODO 5"  # 02:00 UTC every day, as an EventBridge cron expression

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
    # TODO 1: crawler CRAWLER over s3://dea-pipeline-raw/sales/ into DATABASE (create it, or update it if it exists)
    raise NotImplementedError("TODO 1: the crawler")
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
    # TODO 2: Glue job JOB running jobs/clean_sales.py. Which kind of job fits a few hundred rows a night, and
    # which DefaultArguments does the script read (see clean_sales.py)? Create it, or update it if it exists.
    raise NotImplementedError("TODO 2: the Glue job")


def topic_to_queue(topic: str, queue: str) -> str:
    """A topic whose messages reach the queue (the queue's policy lets the topic send); the topic's ARN."""
    topic_arn = sns.create_topic(Name=topic)["TopicArn"]
    queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # TODO 3: let the topic send to the queue (the queue's policy), subscribe the queue to the topic
    raise NotImplementedError("TODO 3: the topic's subscription")


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
    # TODO 5: a rule firing at 02:00 UTC every night, targeting the state machine; the execution's input must
    # carry the moment the schedule fired ({"time": "..."}), which the machine turns into the night's date
    raise NotImplementedError("TODO 5: the nightly schedule")


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
