"""S3 Access Points: requests through an alias (path style, virtual host) or an access point ARN reach the bucket, and
are authorized as AWS authorizes them (the access point policy and the bucket policy, with the s3:DataAccessPoint*
keys); S3 Control's access point calls where the backend falls short."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.config import Config
from werkzeug.datastructures import Headers

from dealab.engines.iam.accesspoints import AccessPoints
from dealab.stack import control
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.operations import identify
from tests.conftest import client, kill_hard
from tests.test_iam import as_keys, code, message, new_user

ACCOUNT = "123456789012"
AP_ARN = f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/sales-ap"
LISTED = [{"Name": "sales-ap", "AccessPointArn": AP_ARN, "Alias": "sales-ap-0123456789abcdef-s3alias", "Bucket": "lake", "NetworkOrigin": "Internet"},
          {"Name": "vpc-ap", "AccessPointArn": f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/vpc-ap", "Alias": "vpc-ap-fedcba-s3alias",
           "Bucket": "lake", "NetworkOrigin": "VPC"}]


class FakeS3Control:
    exceptions = type("Exceptions", (), {"ClientError": Exception})

    def __init__(self):
        self.listings = 0

    def list_access_points(self, AccountId):
        self.listings += 1
        return {"AccessPointList": LISTED}


def s3_request(method: str, path: str, host: str = "127.0.0.1:4566", query: str = "") -> AwsRequest:
    headers = Headers({"Host": host, "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request"})
    request = AwsRequest(method, path, query, headers, b"")
    operation = identify(method, path, request.query, headers, {})
    request.service, request.operation = operation.service, operation.name
    return request


@pytest.fixture
def access_points():
    fake = FakeS3Control()
    return AccessPoints(lambda service: fake), fake


@pytest.mark.parametrize("method, path, host, query, operation, bucket_path", [
    ("GET", "/sales-ap-0123456789abcdef-s3alias/sales/a.csv", "127.0.0.1:4566", "", "GetObject", "/lake/sales/a.csv"),  # alias, path style
    ("GET", "/sales-ap-0123456789abcdef-s3alias", "127.0.0.1:4566", "list-type=2&prefix=sales/", "ListObjectsV2", "/lake"),
    ("GET", "/", "sales-ap-0123456789abcdef-s3alias.localhost:4566", "list-type=2", "ListObjectsV2", "/lake"),  # alias, virtual host
    ("PUT", "/sales/b.csv", f"sales-ap-{ACCOUNT}.localhost:4566", "", "PutObject", "/lake/sales/b.csv"),  # what boto3 makes of the ARN
    ("HEAD", "/sales/a.csv", "sales-ap-0123456789abcdef-s3alias.s3.localhost:4566", "", "HeadObject", "/lake/sales/a.csv"),
    ("GET", "/sales/a.csv", f"sales-ap-{ACCOUNT}.127.0.0.1:4566", "", "GetObject", "/lake/sales/a.csv"),
])
def test_requests_through_an_access_point_reach_its_bucket(access_points, method, path, host, query, operation, bucket_path):
    routes, _ = access_points
    request = s3_request(method, path, host, query)
    access_point = routes.route(request)
    assert access_point is not None and access_point.arn == AP_ARN
    assert (request.operation, request.path) == (operation, bucket_path)
    assert request.headers["Host"].split(":")[0] in ("127.0.0.1", "localhost")  # the backend sees path style
    assert access_point.resource("arn:aws:s3:::lake/sales/a.csv") == f"{AP_ARN}/object/sales/a.csv"
    assert access_point.resource("arn:aws:s3:::lake") == AP_ARN
    assert access_point.condition_keys()["s3:dataaccesspointaccount"] == [ACCOUNT]


def test_what_is_not_an_access_point(access_points):
    routes, fake = access_points
    plain = s3_request("GET", "/lake/k")
    assert routes.route(plain) is None and plain.path == "/lake/k"
    assert fake.listings == 0  # a bucket's request needs no listing of access points
    named_like_arn_host = s3_request("GET", f"/sales-ap-{ACCOUNT}/k")  # in a path, a bucket's name
    assert routes.route(named_like_arn_host) is None and named_like_arn_host.path == f"/sales-ap-{ACCOUNT}/k"
    virtual = s3_request("GET", "/", "lake.localhost:4566", "list-type=2")  # a bucket's virtual host, named as its listing
    assert routes.route(virtual) is None and (virtual.path, virtual.operation) == ("/lake", "ListObjectsV2")
    endpoint = s3_request("GET", "/lake/k", "s3.localhost:4566")
    assert routes.route(endpoint) is None and endpoint.path == "/lake/k"
    unknown = routes.route(s3_request("GET", "/nope-0a1b2c-s3alias/k"))
    assert isinstance(unknown, AwsResponse) and unknown.status == 404 and b"NoSuchBucket" in unknown.body
    vpc = routes.route(s3_request("GET", "/vpc-ap-fedcba-s3alias/k"))
    assert isinstance(vpc, AwsResponse) and vpc.status == 403 and b"only from its VPC" in vpc.body
    configuration = routes.route(s3_request("PUT", "/sales-ap-0123456789abcdef-s3alias", query="policy"))
    assert isinstance(configuration, AwsResponse) and b"not supported through an access point" in configuration.body
    assert fake.listings == 1  # read once, kept until an access point changes
    routes.observe("s3control", "CreateAccessPoint")
    routes.route(s3_request("GET", "/sales-ap-0123456789abcdef-s3alias/k"))
    assert fake.listings == 2


def test_s3control_is_told_from_s3():
    headers = Headers({"Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request", "x-amz-account-id": ACCOUNT})
    assert identify("GET", "/v20180820/accesspoint/sales-ap", {}, headers, {}).service == "s3control"
    assert identify("GET", "/v20180820/accesspoint/sales-ap", {}, headers, {}).name == "GetAccessPoint"
    del headers["x-amz-account-id"]
    assert identify("GET", "/v20180820/accesspoint", {}, headers, {}).service == "s3"  # a bucket named v20180820


def through_proxy(settings, service: str, keys: dict | None = None):
    """S3 Control puts the account id in front of the endpoint's host (123456789012.127.0.0.1), and boto3 makes an access
    point ARN a host <name>-<account>.127.0.0.1: names nothing resolves, so the client sends through the gateway as its
    HTTP proxy, which needs no name resolved."""
    keys = keys or {"AccessKeyId": "test", "SecretAccessKey": "test"}
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region, aws_access_key_id=keys["AccessKeyId"],
                        aws_secret_access_key=keys["SecretAccessKey"], aws_session_token=keys.get("SessionToken"),
                        config=Config(proxies={"http": settings.endpoint_url}))


def query(athena, sql: str) -> list[list[str]]:
    """Runs a query to its end and returns its rows, header first."""
    query_id = athena.start_query_execution(QueryString=sql, ResultConfiguration={"OutputLocation": "s3://lake-results/"})["QueryExecutionId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.05)
    assert status["State"] == "SUCCEEDED", status.get("StateChangeReason")
    return [[cell.get("VarCharValue") for cell in row["Data"]] for row in athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]]


def document(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_access_point_policies_and_delegation_end_to_end(clean_stack):
    s3, iam, control = client(clean_stack, "s3"), client(clean_stack, "iam"), through_proxy(clean_stack, "s3control")
    s3.create_bucket(Bucket="lake")
    for key in ("sales/a.csv", "hr/salaries.csv"):
        s3.put_object(Bucket="lake", Key=key, Body=key.encode())
    created = control.create_access_point(AccountId=ACCOUNT, Name="sales-ap", Bucket="lake")
    alias = created["Alias"]
    assert created["AccessPointArn"] == AP_ARN and alias.startswith("sales-ap-") and alias.endswith("-s3alias")
    got = control.get_access_point(AccountId=ACCOUNT, Name="sales-ap")
    assert (got["Bucket"], got["NetworkOrigin"], got["Alias"]) == ("lake", "Internet", alias)
    assert got["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    listed = control.list_access_points(AccountId=ACCOUNT, Bucket="lake")["AccessPointList"]
    assert [(a["Name"], a["Alias"], a["AccessPointArn"], a["Bucket"]) for a in listed] == [("sales-ap", alias, AP_ARN, "lake")]
    assert code(lambda: control.create_access_point(AccountId=ACCOUNT, Name="sales-ap", Bucket="lake")) == "AccessPointAlreadyOwnedByYou"
    assert code(lambda: control.create_access_point(AccountId=ACCOUNT, Name="other-ap", Bucket="no-such-lake")) == "NoSuchBucket"
    assert code(lambda: control.delete_access_point(AccountId=ACCOUNT, Name="never-made")) == "NoSuchAccessPoint"
    for name in ("Sales", "-leading", "two--hyphens", "x-s3alias"):
        assert code(lambda: control.create_access_point(AccountId=ACCOUNT, Name=name, Bucket="lake")) == "InvalidAccessPoint", name
    public = document({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{AP_ARN}/object/*"})
    assert code(lambda: control.put_access_point_policy(AccountId=ACCOUNT, Name="sales-ap", Policy=public)) == "AccessDenied"

    # a role (IAM, assumed through STS) granted read on sales/ by the access point policy
    role = iam.create_role(RoleName="sales-reader", AssumeRolePolicyDocument=document(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/analyst"}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    control.put_access_point_policy(AccountId=ACCOUNT, Name="sales-ap", Policy=document(
        {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "s3:GetObject", "Resource": f"{AP_ARN}/object/sales/*"},
        {"Effect": "Allow", "Principal": {"AWS": role}, "Action": "s3:ListBucket", "Resource": AP_ARN,
         "Condition": {"StringLike": {"s3:prefix": "sales/*"}}}))
    assert control.get_access_point_policy_status(AccountId=ACCOUNT, Name="sales-ap")["PolicyStatus"]["IsPublic"] is False
    delegation = document({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*", "Resource": ["arn:aws:s3:::lake", "arn:aws:s3:::lake/*"],
                           "Condition": {"StringEquals": {"s3:DataAccessPointAccount": ACCOUNT}, "ArnLike": {"s3:DataAccessPointArn": f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/*"}}})
    s3.put_bucket_policy(Bucket="lake", Policy=delegation)
    analyst = as_keys(clean_stack, "sts", new_user(clean_stack, "analyst", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}))
    reader = as_keys(clean_stack, "s3", analyst.assume_role(RoleArn=role, RoleSessionName="r1")["Credentials"])

    assert reader.get_object(Bucket=alias, Key="sales/a.csv")["Body"].read() == b"sales/a.csv"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=alias, Prefix="sales/")["Contents"]] == ["sales/a.csv"]
    assert message(lambda: reader.get_object(Bucket=alias, Key="hr/salaries.csv")) == (
        f'User: arn:aws:sts::{ACCOUNT}:assumed-role/sales-reader/r1 is not authorized to perform: s3:GetObject on resource: '
        f'"{AP_ARN}/object/hr/salaries.csv" because no identity-based policy allows the s3:GetObject action')
    assert code(lambda: reader.list_objects_v2(Bucket=alias, Prefix="hr/")) == "AccessDenied"
    assert code(lambda: reader.get_object(Bucket="lake", Key="sales/a.csv")) == "AccessDenied"  # the bucket itself: no access point keys
    # through the access point's ARN (boto3 sends <name>-<account>.localhost: through the gateway as a proxy)
    by_arn = through_proxy(clean_stack, "s3", analyst.assume_role(RoleArn=role, RoleSessionName="r2")["Credentials"])
    assert by_arn.get_object(Bucket=AP_ARN, Key="sales/a.csv")["Body"].read() == b"sales/a.csv"
    assert code(lambda: by_arn.get_object(Bucket=AP_ARN, Key="hr/salaries.csv")) == "AccessDenied"

    # a bucket policy that does not delegate: the access point's grant alone is not enough
    s3.delete_bucket_policy(Bucket="lake")
    assert message(lambda: reader.get_object(Bucket=alias, Key="sales/a.csv")).endswith(
        '"arn:aws:s3:::lake/sales/a.csv" because no identity-based policy allows the s3:GetObject action')
    # the root: identity policies do not apply, a resource policy's deny does; direct access unaffected
    assert s3.get_object(Bucket=alias, Key="hr/salaries.csv")["Body"].read() == b"hr/salaries.csv"
    assert s3.get_object(Bucket="lake", Key="hr/salaries.csv")["Body"].read() == b"hr/salaries.csv"
    s3.put_bucket_policy(Bucket="lake", Policy=document({"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lake/*",
                                                         "Condition": {"StringEquals": {"s3:AccessPointNetworkOrigin": "Internet"}}}))
    assert "explicit deny in a resource-based policy" in message(lambda: s3.get_object(Bucket=alias, Key="sales/a.csv"))
    assert s3.get_object(Bucket="lake", Key="sales/a.csv")["Body"].read() == b"sales/a.csv"
    assert code(lambda: s3.get_object(Bucket="nope-0a1b2c3d-s3alias", Key="k")) == "NoSuchBucket"
    # Athena reads a table located at the alias (its listing and reads are engine calls through the access point)
    s3.create_bucket(Bucket="lake-results")
    s3.put_object(Bucket="lake", Key="sales/table/rows.csv", Body=b"1,a\n2,b\n")
    s3.delete_bucket_policy(Bucket="lake")
    athena = client(clean_stack, "athena")
    query(athena, "CREATE DATABASE ap_db")
    query(athena, f"CREATE EXTERNAL TABLE ap_db.sales (id int, v string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{alias}/sales/table/'")
    assert query(athena, "SELECT id, v FROM ap_db.sales ORDER BY id") == [["id", "v"], ["1", "a"], ["2", "b"]]
    control.delete_access_point(AccountId=ACCOUNT, Name="sales-ap")
    assert code(lambda: s3.list_objects_v2(Bucket=alias)) == "NoSuchBucket"


def test_access_points_survive_kill_9(private_stack):
    s3, control_plane = client(private_stack, "s3"), through_proxy(private_stack, "s3control")
    s3.create_bucket(Bucket="lake")
    alias = control_plane.create_access_point(AccountId=ACCOUNT, Name="sales-ap", Bucket="lake")["Alias"]
    control_plane.put_access_point_policy(AccountId=ACCOUNT, Name="sales-ap", Policy=document(
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{AP_ARN}/object/secret/*"}))
    s3.put_object(Bucket=alias, Key="secret/k", Body=b"kept")
    kill_hard(private_stack)
    control.up(private_stack)
    assert control_plane.get_access_point(AccountId=ACCOUNT, Name="sales-ap")["Alias"] == alias  # the same alias after replay
    assert s3.get_object(Bucket="lake", Key="secret/k")["Body"].read() == b"kept"
    assert "explicit deny in a resource-based policy" in message(lambda: s3.get_object(Bucket=alias, Key="secret/k"))
