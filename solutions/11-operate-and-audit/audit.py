"""Lab 11 reference solution, part 3: a trail that records who touches the curated data, delivered to an audit
bucket with log file validation, and the Athena table and saved query that answer "who deleted it, and when?"."""

import json
import time

import boto3

TRAIL, AUDIT_BUCKET, CURATED_BUCKET = "dea-ops-audit", "dea-ops-audit", "dea-ops-curated"
DATABASE, RESULTS = "audit", "s3://dea-ops-athena/audit/"
NAMED_QUERY = "who-deleted-curated"

s3, cloudtrail, athena = boto3.client("s3"), boto3.client("cloudtrail"), boto3.client("athena")
account = boto3.client("sts").get_caller_identity()["Account"]
region = s3.meta.region_name

# The audit bucket, with the policy CloudTrail needs to deliver into it.
try:
    s3.create_bucket(Bucket=AUDIT_BUCKET, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
trail_arn = f"arn:aws:cloudtrail:{region}:{account}:trail/{TRAIL}"
s3.put_bucket_policy(Bucket=AUDIT_BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
     "Resource": f"arn:aws:s3:::{AUDIT_BUCKET}", "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
    {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
     "Resource": f"arn:aws:s3:::{AUDIT_BUCKET}/AWSLogs/{account}/*",
     "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}}]}))

# The trail: management events plus the object-level (data) events of the curated bucket, with digests.
try:
    cloudtrail.create_trail(Name=TRAIL, S3BucketName=AUDIT_BUCKET, EnableLogFileValidation=True, IsMultiRegionTrail=False)
except cloudtrail.exceptions.TrailAlreadyExistsException:
    cloudtrail.update_trail(Name=TRAIL, S3BucketName=AUDIT_BUCKET, EnableLogFileValidation=True)
cloudtrail.put_event_selectors(TrailName=TRAIL, EventSelectors=[{
    "ReadWriteType": "All", "IncludeManagementEvents": True,
    "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{CURATED_BUCKET}/"]}]}])
cloudtrail.start_logging(Name=TRAIL)


def run(sql: str, database: str = DATABASE) -> str:
    query_id = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": database},
                                            ResultConfiguration={"OutputLocation": RESULTS})["QueryExecutionId"]
    while (status := athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"])["State"] in ("QUEUED", "RUNNING"):
        time.sleep(0.3)
    if status["State"] != "SUCCEEDED":
        raise SystemExit(f"{sql.split()[0]} failed: {status.get('StateChangeReason')}")
    return query_id


run(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", database="default")
# The table from "Querying AWS CloudTrail logs" (Athena user guide), over this trail's files.
run(f"""CREATE EXTERNAL TABLE IF NOT EXISTS cloudtrail_logs (
    eventversion STRING,
    useridentity STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING, invokedby: STRING, accesskeyid: STRING,
        username: STRING, onbehalfof: STRUCT<userid: STRING, identitystorearn: STRING>,
        sessioncontext: STRUCT<attributes: STRUCT<mfaauthenticated: STRING, creationdate: STRING>,
            sessionissuer: STRUCT<type: STRING, principalid: STRING, arn: STRING, accountid: STRING, username: STRING>,
            ec2roledelivery: STRING, webidfederationdata: STRUCT<federatedprovider: STRING, attributes: MAP<STRING, STRING>>>>,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    readonly STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    vpcendpointaccountid STRING,
    eventcategory STRING,
    addendum STRUCT<reason: STRING, updatedfields: STRING, originalrequestid: STRING, originaleventid: STRING>,
    sessioncredentialfromconsole STRING,
    edgedevicedetails STRING,
    tlsdetails STRUCT<tlsversion: STRING, ciphersuite: STRING, clientprovidedhostheader: STRING>)
COMMENT 'CloudTrail table for the {AUDIT_BUCKET} bucket'
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://{AUDIT_BUCKET}/AWSLogs/{account}/CloudTrail/'
TBLPROPERTIES ('classification'='cloudtrail')""")

# The runbook's question, saved so anyone can run it when curated data goes missing.
WHO_DELETED = f"""SELECT useridentity.username AS who, useridentity.arn AS principal, eventtime AS deleted_at,
       json_extract_scalar(requestparameters, '$.key') AS object_key
FROM cloudtrail_logs
WHERE eventsource = 's3.amazonaws.com'
  AND eventname IN ('DeleteObject', 'DeleteObjects')
  AND json_extract_scalar(requestparameters, '$.bucketName') = '{CURATED_BUCKET}'
ORDER BY eventtime"""
for page in athena.get_paginator("list_named_queries").paginate():
    for named in athena.batch_get_named_query(NamedQueryIds=page["NamedQueryIds"])["NamedQueries"] if page["NamedQueryIds"] else []:
        if named["Name"] == NAMED_QUERY:
            athena.delete_named_query(NamedQueryId=named["NamedQueryId"])
athena.create_named_query(Name=NAMED_QUERY, Database=DATABASE, QueryString=WHO_DELETED,
                          Description=f"who deleted objects of {CURATED_BUCKET}, and when")
print(f"trail {TRAIL} logging to {AUDIT_BUCKET}; saved query {NAMED_QUERY} in {DATABASE}")
