"""Redshift audit logging: EnableLogging refused without the bucket policy Redshift needs; with it, the connection,
user and user activity logs reach S3 in Redshift's key layout and line formats on the lab clock (wire and Data API
connections both logged); Serverless logExports reach CloudWatch Logs. VACUUM and ANALYZE move SVV_TABLE_INFO."""

from __future__ import annotations

import gzip
import json

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.conftest import client
from tests.test_glue_api import _advance_clock
from tests.test_redshift import ok, rows
from tests.test_redshift_streaming import _serverless

ACCOUNT = "123456789012"


def _policy(bucket: str, actions=("s3:PutObject", "s3:GetBucketAcl")) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": action,
         "Resource": f"arn:aws:s3:::{bucket}" if action == "s3:GetBucketAcl" else f"arn:aws:s3:::{bucket}/*"} for action in actions]})


def test_cluster_audit_logs_reach_s3_in_redshifts_layout(clean_stack):
    redshift, s3, data = client(clean_stack, "redshift"), client(clean_stack, "s3"), client(clean_stack, "redshift-data")
    redshift.create_cluster(ClusterIdentifier="audited", NodeType="dc2.large", MasterUsername="admin", MasterUserPassword="Passw0rd1",
                            DBName="dev", ClusterType="single-node")
    target = {"ClusterIdentifier": "audited", "DbUser": "admin"}
    with pytest.raises(ClientError) as missing:
        redshift.enable_logging(ClusterIdentifier="audited", BucketName="no-such-bucket")
    assert missing.value.response["Error"]["Code"] == "BucketNotFoundFault"
    s3.create_bucket(Bucket="audit-logs")
    with pytest.raises(ClientError) as no_policy:
        redshift.enable_logging(ClusterIdentifier="audited", BucketName="audit-logs")
    assert no_policy.value.response["Error"]["Code"] == "InsufficientS3BucketPolicyFault"
    assert "Cannot read ACLs of bucket audit-logs" in no_policy.value.response["Error"]["Message"]
    s3.put_bucket_policy(Bucket="audit-logs", Policy=_policy("audit-logs", actions=("s3:GetBucketAcl",)))
    with pytest.raises(ClientError) as no_put:
        redshift.enable_logging(ClusterIdentifier="audited", BucketName="audit-logs")
    assert "Cannot write to bucket audit-logs" in no_put.value.response["Error"]["Message"]
    s3.put_bucket_policy(Bucket="audit-logs", Policy=_policy("audit-logs"))
    redshift.enable_logging(ClusterIdentifier="audited", BucketName="audit-logs", S3KeyPrefix="warehouse")
    assert redshift.describe_logging_status(ClusterIdentifier="audited")["LoggingEnabled"] is True

    ok(data, "CREATE USER analyst PASSWORD 'Analyst1pass'", **target)
    ok(data, "SELECT 42", **target)
    port = next(cluster for cluster in redshift.describe_clusters()["Clusters"] if cluster["ClusterIdentifier"] == "audited")["Endpoint"]["Port"]
    with psycopg.connect(host="127.0.0.1", port=port, user="analyst", password="Analyst1pass", dbname="dev", connect_timeout=10) as wire:
        wire.execute("SELECT 1").fetchall()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="analyst", password="wrong", dbname="dev", connect_timeout=10)
    assert s3.list_objects_v2(Bucket="audit-logs", Prefix="warehouse/").get("KeyCount") == 0  # delivered hourly, not yet
    _advance_clock(clean_stack, "61m")
    keys = [found["Key"] for found in s3.list_objects_v2(Bucket="audit-logs", Prefix="warehouse/")["Contents"]]
    logs = {key.rsplit("_", 2)[-2]: gzip.decompress(s3.get_object(Bucket="audit-logs", Key=key)["Body"].read()).decode() for key in keys}
    assert set(logs) == {"connectionlog", "userlog", "useractivitylog"}
    assert all(key.startswith(f"warehouse/AWSLogs/{ACCOUNT}/redshift/us-east-1/") and f"{ACCOUNT}_redshift_us-east-1_audited_" in key
               and key.endswith(".gz") for key in keys)
    connections = [line.split("|") for line in logs["connectionlog"].splitlines()]
    analyst = [fields[0].strip() for fields in connections if fields[6].strip() == "analyst"]  # on the wire
    assert analyst[:2] == ["authenticated", "disconnecting"] and set(analyst[2:]) == {"authentication failure"}  # psycopg tries TLS, then plain
    assert any(fields[15] == "Data API" for fields in connections)
    assert "|analyst||create|" in logs["userlog"]
    assert any(line.endswith("LOG: SELECT 42") and "user=admin" in line and line.startswith("'") for line in logs["useractivitylog"].splitlines())

    redshift.disable_logging(ClusterIdentifier="audited")
    assert redshift.describe_logging_status(ClusterIdentifier="audited")["LoggingEnabled"] is False


def test_serverless_log_exports_reach_cloudwatch_logs(clean_stack):
    target = _serverless(clean_stack)
    data, logs = client(clean_stack, "redshift-data"), client(clean_stack, "logs")
    client(clean_stack, "redshift-serverless").update_namespace(namespaceName="lab", logExports=["useractivitylog", "connectionlog"])
    ok(data, "SELECT 'audited' AS word", **target)
    _advance_clock(clean_stack, "2m")
    events = logs.get_log_events(logGroupName="/aws/redshift/lab/useractivitylog", logStreamName="serverless")["events"]
    assert any(event["message"].endswith("LOG: SELECT 'audited' AS word") for event in events)
    assert logs.get_log_events(logGroupName="/aws/redshift/lab/connectionlog", logStreamName="serverless")["events"]
    audited = clean_stack.state_dir / "redshift" / "audited.json"
    assert json.loads(audited.read_text()) == ["namespace-lab"]  # opened at the next start, to deliver what waits
    serverless = client(clean_stack, "redshift-serverless")
    serverless.delete_workgroup(workgroupName="lab-wg")
    serverless.delete_namespace(namespaceName="lab")
    assert json.loads(audited.read_text()) == []


def test_vacuum_and_analyze_move_svv_table_info(clean_stack):
    target = _serverless(clean_stack)
    data = client(clean_stack, "redshift-data")
    ok(data, "CREATE TABLE events (id INT, day DATE) SORTKEY(day)", **target)
    ok(data, "INSERT INTO events VALUES (1, '2024-01-02'), (2, '2024-01-01')", **target)
    assert rows(data, "SELECT unsorted, stats_off FROM svv_table_info WHERE \"table\" = 'events'", **target) == [["100.00", "100.00"]]
    ok(data, "ANALYZE events", **target)
    assert rows(data, "SELECT stats_off FROM svv_table_info WHERE \"table\" = 'events'", **target) == [["0.00"]]
    ok(data, "VACUUM events", **target)
    assert rows(data, "SELECT unsorted FROM svv_table_info WHERE \"table\" = 'events'", **target) == [["0.00"]]
    ok(data, "INSERT INTO events VALUES (3, '2024-01-03'), (4, '2024-01-04')", **target)
    assert rows(data, "SELECT unsorted, stats_off FROM svv_table_info WHERE \"table\" = 'events'", **target) == [["50.00", "50.00"]]
    ok(data, "VACUUM FULL", **target)
    ok(data, "ANALYZE", **target)
    assert rows(data, "SELECT unsorted, stats_off FROM svv_table_info WHERE \"table\" = 'events'", **target) == [["0.00", "0.00"]]
