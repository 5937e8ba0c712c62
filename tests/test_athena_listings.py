"""Athena keeps a folder's listing between queries while nothing that could change it has passed the gateway
(dealab.wire.s3changes): a write into the bucket, by any caller or engine, a request of a service whose backend may
write S3 itself, an admin call (a clock move) drops it, and the next query lists again and reads what is there now.
A listing made across such a request is not kept."""

from __future__ import annotations

import datetime
import threading
import time
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import Headers

from dealab.engines.athena.catalog import MAX_KEPT_LISTING_OBJECTS, GlueCatalog
from dealab.wire import labtime, s3changes
from dealab.wire.messages import AwsRequest
from tests.test_athena import put_sales_csv
from tests.test_athena import lake  # noqa: F401  (a fixture)
from tests.test_lifecycle_engine import advance


def request(service: str, operation: str, path: str = "/", host: str = "127.0.0.1:4566") -> AwsRequest:
    return AwsRequest("PUT", path, "", Headers({"Host": host}), b"", service=service, operation=operation)


@pytest.mark.parametrize("changed, kept, moved", [
    (request("s3", "PutObject", "/sales/raw/part-1.csv"), "other", "sales"),
    (request("s3", "DeleteObjects", "/sales"), "other", "sales"),
    (request("s3", "PutObject", "/raw/part-1.csv", host="sales.localhost:4566"), "other", "sales"),
])
def test_an_s3_write_moves_only_its_buckets_mark(changed, kept, moved):
    before = {name: s3changes.mark(name) for name in (kept, moved)}
    s3changes.changing(changed)
    assert s3changes.mark(kept) == before[kept]
    assert s3changes.mark(moved) != before[moved]


@pytest.mark.parametrize("changed", [
    request("s3", "PutObject", "/sales-ap-abcdefghijklmnopqrstuvwxyz0123-s3alias/raw/part-1.csv"),  # an access point's alias
    request("s3", "PutObject", "/arn:aws:s3:us-east-1:123456789012:accesspoint/sales/raw/part-1.csv"),
    request("s3", "PutObject", "/mfzwi23gnjvgw.mrap/raw/part-1.csv"),  # a Multi-Region Access Point's alias
    request("s3", "PutObject", "/raw/part-1.csv", host="sales-123456789012.s3-accesspoint.us-east-1.amazonaws.com"),
    request("s3", "PutObject", "/sales/raw/part-1.csv", host="s3.localhost:4566"),  # an endpoint's name, not a bucket's
    request("dynamodb", "ExportTableToPointInTime"),  # the backend writes the export's objects itself
    request("logs", "CreateExportTask"),
    request("glue", "StartJobRun"),
])
def test_a_write_whose_bucket_is_not_plain_to_see_moves_every_buckets_mark(changed):
    before = s3changes.mark("sales")
    s3changes.changing(changed)
    assert s3changes.mark("sales") != before


@pytest.mark.parametrize("service, operation", [("athena", "StartQueryExecution"), ("cloudwatch", "PutMetricData")])
def test_services_that_write_s3_only_through_s3_requests_move_no_mark(service, operation):
    before = s3changes.mark("sales")
    s3changes.changing(request(service, operation))
    assert s3changes.mark("sales") == before


def test_a_move_of_the_lab_clock_moves_every_mark():
    before, offset = s3changes.mark("sales"), labtime.offset()
    try:
        labtime.set_offset(offset + datetime.timedelta(days=1))
        assert s3changes.mark("sales") != before
    finally:
        labtime.set_offset(offset)


class CountingLister:
    """A folder's listing, counted; `during` runs while a listing is under way (a request racing it)."""

    def __init__(self, objects: int = 3):
        self.calls = 0
        self.objects = objects
        self.during = lambda: None

    def __call__(self, bucket: str, prefix: str):
        self.calls += 1
        self.during()
        yield [{"Key": f"{prefix}part-{n}.csv", "Size": 10, "ETag": f'"{self.calls}-{n}"', "StorageClass": "STANDARD"}
               for n in range(self.objects)]


def catalog(lister: CountingLister, keep_listings: bool = True) -> GlueCatalog:
    glue = SimpleNamespace(meta=SimpleNamespace(events=SimpleNamespace(register=lambda *_: None)))  # no Glue call is made
    return GlueCatalog(glue, s3=None, lister=lister, keep_listings=keep_listings)


def test_a_kept_listing_serves_until_its_bucket_changes():
    lister = CountingLister()
    glue = catalog(lister)
    first = glue.list_files("s3://sales/raw/")
    assert glue.list_files("s3://sales/raw/") == first and lister.calls == 1
    s3changes.changing(request("s3", "PutObject", "/other/x.csv"))
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 1  # another bucket's write
    s3changes.changing(request("s3", "PutObject", "/sales/raw/part-9.csv"))
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 2


def test_a_kept_listing_counts_as_made_now_for_the_reads_that_trust_it():
    """A query's reads trust a listing made since the query began (s3reads.ListedObjects); a kept one is recorded
    again when it serves, as nothing that could change it has passed since it was made."""
    glue = catalog(CountingLister())
    glue.list_files("s3://sales/raw/")
    began = time.monotonic()
    glue.list_files("s3://sales/raw/")
    assert glue.listed.since("sales/raw/part-0.csv", began) is not None


def test_a_listing_made_across_a_write_is_not_kept():
    lister = CountingLister()
    lister.during = lambda: s3changes.changing(request("s3", "PutObject", "/sales/raw/part-9.csv"))
    glue = catalog(lister)
    glue.list_files("s3://sales/raw/")
    lister.during = lambda: None
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 2


def test_a_listing_made_while_another_thread_writes_is_not_kept():
    lister, listing, written = CountingLister(), threading.Event(), threading.Event()

    def race():
        listing.set()
        assert written.wait(10)
    lister.during = race
    glue = catalog(lister)
    reader = threading.Thread(target=glue.list_files, args=("s3://sales/raw/",))
    reader.start()
    assert listing.wait(10)
    s3changes.changing(request("s3", "DeleteObjects", "/sales"))
    written.set()
    reader.join(10)
    lister.during = lambda: None
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 2


def test_a_large_folder_is_listed_at_each_query():
    lister = CountingLister(objects=MAX_KEPT_LISTING_OBJECTS + 1)
    glue = catalog(lister)
    glue.list_files("s3://sales/raw/")
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 2


def test_without_keeping_every_query_lists():
    lister = CountingLister()
    glue = catalog(lister, keep_listings=False)
    glue.list_files("s3://sales/raw/")
    glue.list_files("s3://sales/raw/")
    assert lister.calls == 2


def count(lake, table: str) -> str:
    return lake.athena.rows(lake.athena.run(f"SELECT count(*) FROM {lake.db}.{table}"))[1][0]


def test_every_kind_of_write_into_the_folder_reaches_the_next_query(lake):
    put_sales_csv(lake, days=1, rows_per_day=10)
    lake.athena.run(f"CREATE EXTERNAL TABLE {lake.db}.flat (id bigint, item string, price double) "
                    f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{lake.bucket}/flat/'")
    lake.s3.put_object(Bucket=lake.bucket, Key="flat/a.csv", Body=b"1,a,1.0\n2,b,2.0\n")
    assert count(lake, "flat") == count(lake, "flat") == "2"
    lake.s3.put_object(Bucket=lake.bucket, Key="flat/b.csv", Body=b"3,c,3.0\n")
    assert count(lake, "flat") == "3"
    lake.s3.copy_object(Bucket=lake.bucket, Key="flat/c.csv", CopySource={"Bucket": lake.bucket, "Key": "flat/a.csv"})
    assert count(lake, "flat") == "5"
    upload = lake.s3.create_multipart_upload(Bucket=lake.bucket, Key="flat/d.csv")["UploadId"]
    part = lake.s3.upload_part(Bucket=lake.bucket, Key="flat/d.csv", UploadId=upload, PartNumber=1, Body=b"4,d,4.0\n")
    lake.s3.complete_multipart_upload(Bucket=lake.bucket, Key="flat/d.csv", UploadId=upload,
                                      MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    assert count(lake, "flat") == "6"
    lake.s3.delete_objects(Bucket=lake.bucket, Delete={"Objects": [{"Key": "flat/a.csv"}, {"Key": "flat/c.csv"}]})
    assert count(lake, "flat") == "2"
    lake.s3.delete_object(Bucket=lake.bucket, Key="flat/b.csv")
    assert count(lake, "flat") == "1"


def test_objects_a_clock_move_expires_are_gone_from_the_next_query(clean_stack):
    from tests.conftest import client
    from tests.test_athena import Athena, unique

    s3, bucket, results, db = client(clean_stack, "s3"), unique("lake-"), unique("results-"), unique("db_")
    for name in (bucket, results):
        s3.create_bucket(Bucket=name)
    client(clean_stack, "glue").create_database(DatabaseInput={"Name": db})
    s3.put_object(Bucket=bucket, Key="flat/a.csv", Body=b"1,a,1.0\n2,b,2.0\n")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "flat/"}, "Expiration": {"Days": 1}}]})
    athena = Athena(clean_stack, f"s3://{results}/out/")
    athena.run(f"CREATE EXTERNAL TABLE {db}.flat (id bigint, item string, price double) "
               f"ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://{bucket}/flat/'")
    sql = f"SELECT count(*) FROM {db}.flat"
    assert athena.rows(athena.run(sql))[1][0] == athena.rows(athena.run(sql))[1][0] == "2"
    advance(clean_stack, "3d")
    assert athena.rows(athena.run(sql))[1][0] == "0"
