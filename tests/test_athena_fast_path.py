"""Athena's direct read path and result encryption: queries read S3 through the gateway in-process (no HTTP)
and DataScannedInBytes is what the HTTP path counts for the same queries; the bytes cutoff still cancels; a
bucket policy's Deny on the data fails the query; results honour the work group's and the query's
EncryptionConfiguration, and a bucket policy requiring SSE-KMS fails a query whose results would not be."""

from __future__ import annotations

import datetime
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from dealab.engines.athena.execution import READ_PATH_ENV
from dealab.stack import control
from tests.conftest import admin_headers, client, make_settings
from tests.test_athena import Athena, lake, unique  # noqa: F401  (lake is a fixture)
from tests.test_cloudtrail import make_trail, trail_records
from tests.test_lifecycle_engine import admin, advance

DAYS = ("2024-01-01", "2024-01-02", "2024-01-03")
# (name, query over {db}, the Parquet columns it reads): both read paths give the same rows and count the same
# CSV bytes; Parquet reads are the footer and the column chunks of the columns read
SCANS = [
    ("csv one partition", "SELECT count(*), sum(price) FROM {db}.sales_csv WHERE dt = '2024-01-02'", None),
    ("csv all partitions", "SELECT item, count(*) FROM {db}.sales_csv GROUP BY item ORDER BY item", None),
    ("parquet one column, one partition", "SELECT sum(price) FROM {db}.sales_parquet WHERE dt = '2024-01-02'", ("price",)),
    ("parquet two columns, all partitions", "SELECT item, sum(price) FROM {db}.sales_parquet GROUP BY item ORDER BY item",
     ("item", "price")),
    ("parquet every column", "SELECT * FROM {db}.sales_parquet ORDER BY id", ("id", "item", "price", "note")),
]
FOOTER_READ = 16_384  # DuckDB's first read of a Parquet file: its last 16 KiB (these footers fit in it)


def reads(settings) -> dict:
    answer = requests.get(f"http://127.0.0.1:{settings.port}/_dealab/athena/reads", headers=admin_headers(settings), timeout=10)
    answer.raise_for_status()
    return answer.json()


def parquet_day(number: int) -> bytes:
    ids = list(range(number * 20_000, (number + 1) * 20_000))
    table = pa.table({"id": ids, "item": [f"item{i % 13}" for i in ids], "price": [i * 0.25 for i in ids],
                      "note": [f"a note long enough to weigh something {i}" for i in ids]})
    body = io.BytesIO()
    pq.write_table(table, body, row_group_size=5_000)
    return body.getvalue()


def column_chunk_bytes(body: bytes, columns: tuple[str, ...]) -> int:
    """What reading these columns of every row group needs, each byte once: the footer read (the file's last
    FOOTER_READ bytes, which may hold the last chunks) and each chunk, from the file's metadata."""
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    assert metadata.serialized_size + 8 < FOOTER_READ
    covered = set(range(max(0, len(body) - FOOTER_READ), len(body)))
    for group in range(metadata.num_row_groups):
        for position in range(metadata.num_columns):
            chunk = metadata.row_group(group).column(position)
            if chunk.path_in_schema in columns:
                start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
                covered.update(range(start, start + chunk.total_compressed_size))
    return len(covered)


def load_sales(settings, bucket: str, results: str, database: str) -> Athena:
    """The same bytes in every stack: three days of CSV and of Parquet (several columns, several row groups)."""
    s3 = client(settings, "s3")
    for name in (bucket, results):
        s3.create_bucket(Bucket=name)
    client(settings, "glue").create_database(DatabaseInput={"Name": database})
    for number, day in enumerate(DAYS):
        ids = list(range(number * 20_000, (number + 1) * 20_000))
        s3.put_object(Bucket=bucket, Key=f"parquet/dt={day}/part-0.parquet", Body=parquet_day(number))
        csv = "".join(f"{i},item{i % 13},{i * 0.25},note {i}\n" for i in ids).encode()
        s3.put_object(Bucket=bucket, Key=f"csv/dt={day}/part-0.csv", Body=csv)
    athena = Athena(settings, f"s3://{results}/out/")
    columns = "id bigint, item string, price double, note string"
    for ddl in (f"CREATE EXTERNAL TABLE {database}.sales_csv ({columns}) PARTITIONED BY (dt string) "
                f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/csv/'",
                f"CREATE EXTERNAL TABLE {database}.sales_parquet ({columns}) PARTITIONED BY (dt string) "
                f"STORED AS PARQUET LOCATION 's3://{bucket}/parquet/'",
                f"MSCK REPAIR TABLE {database}.sales_csv", f"MSCK REPAIR TABLE {database}.sales_parquet"):
        athena.run(ddl, database)
    return athena


def one_file_sales(settings, s3, bucket_prefix: str, day: int) -> tuple[Athena, str, str]:
    """A bucket holding one Parquet file of sales, a results bucket, a Glue database and the table over the file:
    (the Athena driver, the data bucket, the database)."""
    bucket, results, database = unique(bucket_prefix), unique("results-"), unique("db_")
    for name in (bucket, results):
        s3.create_bucket(Bucket=name)
    client(settings, "glue").create_database(DatabaseInput={"Name": database})
    s3.put_object(Bucket=bucket, Key="sales/part-0.parquet", Body=parquet_day(day))
    athena = Athena(settings, f"s3://{results}/out/")
    athena.run(f"CREATE EXTERNAL TABLE {database}.sales (id bigint, item string, price double, note string) STORED AS PARQUET "
               f"LOCATION 's3://{bucket}/sales/'", database)
    return athena, bucket, database


def scanned(athena: Athena, database: str) -> dict[str, tuple[int, list]]:
    counts = {}
    for name, sql, _ in SCANS:
        execution = athena.run(sql.format(db=database), database)
        counts[name] = (execution["Statistics"]["DataScannedInBytes"], athena.rows(execution))
    return counts


def test_direct_path_counts_what_the_http_path_counts(aws_env, tmp_path, monkeypatch):
    names = (unique("fast-"), unique("fast-results-"), unique("fast_"))
    before = reads(aws_env)["queries"].get("direct", 0)
    direct = scanned(load_sales(aws_env, *names), names[2])
    after = reads(aws_env)
    assert after["read_path"] == "direct" and after["queries"]["direct"] >= before + len(SCANS)
    assert after["queries"]["http"] == 0

    monkeypatch.setenv(READ_PATH_ENV, "http")
    settings = make_settings(tmp_path / "http-state")
    control.up(settings)
    try:
        over_http = scanned(load_sales(settings, *names), names[2])
        assert reads(settings)["queries"]["http"] >= len(SCANS)
    finally:
        control.down(settings)
    csv_sizes = [o["Size"] for o in client(aws_env, "s3").list_objects_v2(Bucket=names[0], Prefix="csv/")["Contents"]]
    days = [parquet_day(number) for number in range(len(DAYS))]
    for name, _, columns in SCANS:
        assert direct[name][1] == over_http[name][1], name  # the same rows
        if columns is None:
            assert direct[name][0] == over_http[name][0], name
            continue
        # The HTTP path reads the same chunks, plus (with DuckDB's external file cache) at times the gap between
        # a file's last chunk read and its already-read footer: never less than the direct path.
        read = [days[1]] if "one partition" in name else days
        assert direct[name][0] == sum(column_chunk_bytes(body, columns) for body in read), name
        assert direct[name][0] <= over_http[name][0], name
    assert direct["csv all partitions"][0] == sum(csv_sizes) and direct["csv one partition"][0] == csv_sizes[1]
    assert direct["parquet one column, one partition"][0] < len(days[1]) / 2  # column chunks, not the whole file


def test_bytes_cutoff_cancels_on_the_direct_path(lake):
    athena, db = lake.athena, lake.db
    group = unique("wg-")
    athena.athena.create_work_group(Name=group, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://{lake.results}/wg/"}, "BytesScannedCutoffPerQuery": 10_000_000})
    line_block = ("y" * 999 + "\n").encode() * 4_000
    for number in range(8):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"wide/part-{number}.txt", Body=line_block)
    athena.run(f"CREATE EXTERNAL TABLE {db}.wide (line string) LOCATION 's3://{lake.bucket}/wide/'")
    over = athena.run(f"SELECT count(*) FROM {db}.wide", WorkGroup=group, expect="CANCELLED")
    assert over["Status"]["StateChangeReason"] == "Bytes scanned limit was exceeded"
    assert 10_000_000 < over["Statistics"]["DataScannedInBytes"] < 8 * len(line_block)
    assert reads(lake.settings)["read_path"] == "direct"


def deny(bucket: str, action: str, condition: dict | None = None) -> str:
    statement = {"Effect": "Deny", "Principal": "*", "Action": action, "Resource": f"arn:aws:s3:::{bucket}/*"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_a_bucket_policy_deny_on_the_data_fails_the_query(lake):
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="locked/part-0.csv", Body=b"1,a\n2,b\n")
    athena.run(f"CREATE EXTERNAL TABLE {db}.locked (id int, name string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
               f"LOCATION 's3://{lake.bucket}/locked/'")
    assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.locked")) == [["_col0"], ["2"]]
    lake.s3.put_bucket_policy(Bucket=lake.bucket, Policy=deny(lake.bucket, "s3:GetObject"))
    try:
        failed = athena.run(f"SELECT count(*) FROM {db}.locked", expect="FAILED")
    finally:
        lake.s3.delete_bucket_policy(Bucket=lake.bucket)
    reason = failed["Status"]["StateChangeReason"]
    assert f"Permission denied on S3 path: s3://{lake.bucket}/locked/part-0.csv" in reason, reason
    assert failed["Status"]["AthenaError"]["ErrorCategory"] == 2


def test_sse_kms_objects_are_read_and_counted(lake):
    """An SSE-KMS object reads as any other for the account's root (dealab evaluates no IAM or key policy for
    root, so a missing kms:Decrypt cannot be shown here); its bytes are counted like a plain object's."""
    athena, db = lake.athena, lake.db
    key_id = client(lake.settings, "kms").create_key()["KeyMetadata"]["KeyId"]
    body = b"".join(f"{i},kms\n".encode() for i in range(500))
    lake.s3.put_object(Bucket=lake.bucket, Key="kms/part-0.csv", Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    athena.run(f"CREATE EXTERNAL TABLE {db}.kms (id int, tag string) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' "
               f"LOCATION 's3://{lake.bucket}/kms/'")
    execution = athena.run(f"SELECT count(*) FROM {db}.kms")
    assert athena.rows(execution) == [["_col0"], ["500"]]
    assert execution["Statistics"]["DataScannedInBytes"] == len(body)


@pytest.fixture
def kms_only_results(lake):
    """The results bucket's policy denies PutObject unless it is SSE-KMS encrypted, as many labs require."""
    lake.s3.put_bucket_policy(Bucket=lake.results, Policy=deny(
        lake.results, "s3:PutObject", {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}))
    yield client(lake.settings, "kms").create_key()["KeyMetadata"]["Arn"]
    lake.s3.delete_bucket_policy(Bucket=lake.results)


def result_encryption(lake, execution: dict) -> tuple[str | None, str | None]:
    bucket, _, key = execution["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").partition("/")
    head = lake.s3.head_object(Bucket=bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def test_results_into_a_bucket_requiring_sse_kms(lake, kms_only_results):
    athena = lake.athena
    plain = athena.run("SELECT 1 AS one", expect="FAILED")
    status = plain["Status"]
    assert status["StateChangeReason"].startswith(f"Access denied when writing output to url: s3://{lake.results}/out/"), status
    assert status["AthenaError"]["ErrorCategory"] == 2
    sse_s3 = athena.run("SELECT 1 AS one", expect="FAILED", ResultConfiguration={
        "OutputLocation": athena.output, "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}})
    assert sse_s3["Status"]["StateChangeReason"].startswith("Access denied when writing output")
    encrypted = athena.run("SELECT 1 AS one", ResultConfiguration={
        "OutputLocation": athena.output, "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": kms_only_results}})
    assert athena.rows(encrypted) == [["one"], ["1"]]
    assert encrypted["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    algorithm, key = result_encryption(lake, encrypted)
    assert algorithm == "aws:kms" and key.endswith(kms_only_results.rsplit("/", 1)[-1])


def test_an_enforcing_work_group_encrypts_results_whatever_the_query_asks(lake, kms_only_results):
    athena = lake.athena
    group = unique("wg-")
    athena.athena.create_work_group(Name=group, Configuration={"EnforceWorkGroupConfiguration": True, "ResultConfiguration": {
        "OutputLocation": f"s3://{lake.results}/enforced/",
        "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": kms_only_results}}})
    execution = athena.run("SELECT 2 AS two", WorkGroup=group, ResultConfiguration={
        "OutputLocation": athena.output, "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}})
    assert athena.rows(execution) == [["two"], ["2"]]
    assert result_encryption(lake, execution)[0] == "aws:kms"
    athena.athena.update_work_group(WorkGroup=group, ConfigurationUpdates={"EnforceWorkGroupConfiguration": False})
    overridden = athena.run("SELECT 3 AS three", WorkGroup=group, expect="FAILED", ResultConfiguration={
        "OutputLocation": athena.output, "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}})
    assert overridden["Status"]["StateChangeReason"].startswith("Access denied when writing output")
    defaulted = athena.run("SELECT 4 AS four", WorkGroup=group)  # no setting of its own: the group's applies
    assert result_encryption(lake, defaulted)[0] == "aws:kms"


def test_sse_s3_results_and_cse_kms_refused(lake):
    athena = lake.athena
    execution = athena.run("SELECT 5 AS five", ResultConfiguration={
        "OutputLocation": athena.output, "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}})
    assert result_encryption(lake, execution)[0] == "AES256"
    with pytest.raises(athena.athena.exceptions.InvalidRequestException, match="CSE_KMS"):
        athena.start("SELECT 6", ResultConfiguration={"OutputLocation": athena.output,
                                                      "EncryptionConfiguration": {"EncryptionOption": "CSE_KMS", "KmsKey": "alias/x"}})


def test_repeated_queries_count_the_same_bytes_and_see_replaced_objects(lake):
    """Footers and small reads are kept across queries by ETag: a second run counts what the first counted,
    and an object replaced under the same key is read anew (its new rows, its new size)."""
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="kept/part-0.parquet", Body=parquet_day(0))
    athena.run(f"CREATE EXTERNAL TABLE {db}.kept (id bigint, item string, price double, note string) STORED AS PARQUET "
               f"LOCATION 's3://{lake.bucket}/kept/'")
    sql = f"SELECT count(*), sum(price) FROM {db}.kept"
    first, second = athena.run(sql), athena.run(sql)
    assert athena.rows(first) == athena.rows(second)
    assert first["Statistics"]["DataScannedInBytes"] == second["Statistics"]["DataScannedInBytes"] == \
        column_chunk_bytes(parquet_day(0), ("price",))
    small = pa.table({"id": [1, 2], "item": ["a", "b"], "price": [1.5, 2.5], "note": ["x", "y"]})
    body = io.BytesIO()
    pq.write_table(small, body)
    lake.s3.put_object(Bucket=lake.bucket, Key="kept/part-0.parquet", Body=body.getvalue())
    assert athena.rows(athena.run(sql))[1] == ["2", "4.0"]


def test_a_deny_after_a_cached_read_still_fails_the_query(lake):
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="warm/part-0.parquet", Body=parquet_day(1))
    athena.run(f"CREATE EXTERNAL TABLE {db}.warm (id bigint, item string, price double, note string) STORED AS PARQUET "
               f"LOCATION 's3://{lake.bucket}/warm/'")
    assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.warm")) == [["_col0"], ["20000"]]  # footer now cached
    lake.s3.put_bucket_policy(Bucket=lake.bucket, Policy=deny(lake.bucket, "s3:GetObject"))
    try:
        failed = athena.run(f"SELECT count(*) FROM {db}.warm", expect="FAILED")
    finally:
        lake.s3.delete_bucket_policy(Bucket=lake.bucket)
    assert f"Permission denied on S3 path: s3://{lake.bucket}/warm/part-0.parquet" in failed["Status"]["StateChangeReason"]


def test_a_deny_that_reads_the_moment_is_judged_again_at_each_query(clean_stack):
    """IAM keeps the decision on a cached object's read between queries, but not one that read aws:CurrentTime: a
    policy denying reads from tomorrow on lets today's query pass and fails the one after the clock moves."""
    s3 = client(clean_stack, "s3")
    athena, bucket, db = one_file_sales(clean_stack, s3, "timed-", 1)
    tomorrow = datetime.datetime.fromisoformat(admin(clean_stack, "clock")["now"]) + datetime.timedelta(days=1)
    s3.put_bucket_policy(Bucket=bucket, Policy=deny(bucket, "s3:GetObject", {
        "DateGreaterThan": {"aws:CurrentTime": tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
    sql = f"SELECT count(*) FROM {db}.sales"
    for _ in range(2):  # the second reads the footer from the cache, judged by IAM's evaluator alone
        assert athena.rows(athena.run(sql, db)) == [["_col0"], ["20000"]]
    advance(clean_stack, "2d")
    failed = athena.run(sql, db, expect="FAILED")
    assert f"Permission denied on S3 path: s3://{bucket}/sales/part-0.parquet" in failed["Status"]["StateChangeReason"]


def test_a_deny_on_object_tags_sees_tags_set_between_queries(lake):
    """Tagging an object is not a policy change, so IAM keeps no decision that read an object's tags: a policy
    denying reads of objects tagged secret fails the first query after the tag is set, cached bytes or not."""
    athena, db = lake.athena, lake.db
    lake.s3.put_object(Bucket=lake.bucket, Key="tagged/part-0.parquet", Body=parquet_day(1))
    athena.run(f"CREATE EXTERNAL TABLE {db}.tagged (id bigint, item string, price double, note string) STORED AS PARQUET "
               f"LOCATION 's3://{lake.bucket}/tagged/'")
    lake.s3.put_bucket_policy(Bucket=lake.bucket, Policy=deny(lake.bucket, "s3:GetObject", {
        "StringEquals": {"s3:ExistingObjectTag/classification": "secret"}}))
    try:
        for _ in range(2):
            assert athena.rows(athena.run(f"SELECT count(*) FROM {db}.tagged")) == [["_col0"], ["20000"]]
        lake.s3.put_object_tagging(Bucket=lake.bucket, Key="tagged/part-0.parquet",
                                   Tagging={"TagSet": [{"Key": "classification", "Value": "secret"}]})
        failed = athena.run(f"SELECT count(*) FROM {db}.tagged", expect="FAILED")
    finally:
        lake.s3.delete_bucket_policy(Bucket=lake.bucket)
    assert f"Permission denied on S3 path: s3://{lake.bucket}/tagged/part-0.parquet" in failed["Status"]["StateChangeReason"]


def test_glue_writes_by_any_caller_reach_the_next_query(lake):
    """Tables, partitions and databases are kept between queries; a Glue write through the stack (here the
    learner's own boto3 calls, as crawlers and jobs make them) is seen by the next query."""
    athena, db = lake.athena, lake.db
    glue = client(lake.settings, "glue")
    for day in ("2024-01-01", "2024-01-02"):
        lake.s3.put_object(Bucket=lake.bucket, Key=f"cat/dt={day}/part-0.csv", Body=b"1\n2\n")
    athena.run(f"CREATE EXTERNAL TABLE {db}.cat (n int) PARTITIONED BY (dt string) LOCATION 's3://{lake.bucket}/cat/'")
    sql = f"SELECT count(*) FROM {db}.cat"
    assert athena.rows(athena.run(sql)) == [["_col0"], ["0"]]  # no partition registered yet
    table = glue.get_table(DatabaseName=db, Name="cat")["Table"]
    descriptor = {**table["StorageDescriptor"], "Location": f"s3://{lake.bucket}/cat/dt=2024-01-01/"}
    glue.batch_create_partition(DatabaseName=db, TableName="cat", PartitionInputList=[
        {"Values": ["2024-01-01"], "StorageDescriptor": descriptor}])
    assert athena.rows(athena.run(sql)) == [["_col0"], ["2"]]
    glue.create_partition(DatabaseName=db, TableName="cat", PartitionInput={
        "Values": ["2024-01-02"], "StorageDescriptor": {**descriptor, "Location": f"s3://{lake.bucket}/cat/dt=2024-01-02/"}})
    assert athena.rows(athena.run(sql)) == [["_col0"], ["4"]]
    glue.delete_partition(DatabaseName=db, TableName="cat", PartitionValues=["2024-01-01"])
    assert athena.rows(athena.run(sql)) == [["_col0"], ["2"]]
    columns = [*table["StorageDescriptor"]["Columns"], {"Name": "extra", "Type": "string"}]
    glue.update_table(DatabaseName=db, TableInput={"Name": "cat", "PartitionKeys": table["PartitionKeys"],
                                                   "StorageDescriptor": {**table["StorageDescriptor"], "Columns": columns}})
    assert athena.rows(athena.run(f"SELECT count(extra) FROM {db}.cat")) == [["_col0"], ["0"]]
    glue.delete_table(DatabaseName=db, Name="cat")
    missing = athena.run(sql, expect="FAILED")
    assert "TABLE_NOT_FOUND" in missing["Status"]["StateChangeReason"]


def test_a_cached_read_records_the_data_events_an_uncached_read_records(clean_stack):
    """A trail logging the data bucket's object reads records the same GetObject data events for a query whose
    reads the cache serves as for the first, uncached run of it: the cache is invisible to the audit trail."""
    s3, cloudtrail = make_trail(clean_stack)
    athena, bucket, db = one_file_sales(clean_stack, s3, "trailed-", 2)
    cloudtrail.put_event_selectors(TrailName="audit", EventSelectors=[{
        "ReadWriteType": "ReadOnly", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bucket}/"]}]}])

    def reads_recorded_by(sql: str) -> list[dict]:
        before = len(trail_records(s3, "audit-logs")[1])
        assert athena.rows(athena.run(sql, db))[1:]
        advance(clean_stack, "10m")
        return [r for r in trail_records(s3, "audit-logs")[1][before:] if r["eventName"] == "GetObject"]

    sql = f"SELECT item, sum(price) FROM {db}.sales GROUP BY item"
    uncached, cached = reads_recorded_by(sql), reads_recorded_by(sql)
    assert uncached and len(cached) == len(uncached)
    assert {r["requestParameters"]["key"] for r in cached} == {"sales/part-0.parquet"}
    assert all(r["eventCategory"] == "Data" and r["userIdentity"]["type"] == "Root" for r in cached)
