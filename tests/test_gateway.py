"""The seam: a registered engine receives its operation; everything else reaches the backend untouched."""

import hashlib
import os
import threading

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from werkzeug.serving import make_server

from dealab.wire.engine import Engine, EngineContext
from dealab.stack.backend import EmbeddedMoto
from dealab.stack.gateway import Gateway
from dealab.stack.journal import Journal
from dealab.wire.messages import AwsResponse
from dealab.stack.control import free_port_pair


class RecordingEngine(Engine):
    """Answers Glue GetJobRuns itself and watches (but passes on) every S3 PutObject."""

    name = "recording"
    operations = {("glue", "GetJobRuns"): "_record", ("s3", "PutObject"): "_record"}

    def __init__(self, context):
        super().__init__(context)
        self.seen = []

    def _record(self, request):
        self.seen.append((request.service, request.operation, request.region, len(request.body)))
        if request.operation == "GetJobRuns":
            return AwsResponse.json({"JobRuns": [{"Id": "jr_from_engine", "JobName": request.json["JobName"]}]})
        return request.send_on()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    port = free_port_pair()
    state = tmp_path_factory.mktemp("gateway")
    engine = RecordingEngine(EngineContext(f"http://127.0.0.1:{port}", "us-east-1", state))
    gw = Gateway(EmbeddedMoto(Journal(state / "journal")), [engine])
    server = make_server("127.0.0.1", port, gw, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield gw, engine, f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(5)


def make_client(endpoint, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="t", aws_secret_access_key="t")


def test_registered_handler_receives_its_operation(gateway):
    _, engine, endpoint = gateway
    runs = make_client(endpoint, "glue", "eu-central-1").get_job_runs(JobName="nightly")
    assert runs["JobRuns"][0]["Id"] == "jr_from_engine"
    assert ("glue", "GetJobRuns", "eu-central-1", engine.seen[-1][3]) == engine.seen[-1]


def test_other_operations_reach_the_backend(gateway):
    _, engine, endpoint = gateway
    before = len(engine.seen)
    glue = make_client(endpoint, "glue")
    glue.create_database(DatabaseInput={"Name": "seam_db"})
    assert glue.get_database(Name="seam_db")["Database"]["Name"] == "seam_db"
    assert len(engine.seen) == before


def test_streaming_bodies_pass_untouched_both_ways(gateway, tmp_path):
    _, engine, endpoint = gateway
    s3 = make_client(endpoint, "s3")
    s3.create_bucket(Bucket="seam-bucket")
    payload = os.urandom(12 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    # Multipart (8 MiB parts) and a chunked, checksummed single PUT both go through unchanged.
    s3.upload_file(str(source), "seam-bucket", "multi.bin", Config=TransferConfig(multipart_threshold=8 * 1024 * 1024))
    s3.put_object(Bucket="seam-bucket", Key="single.bin", Body=payload[:3_000_000], ChecksumAlgorithm="SHA256")
    multi = s3.get_object(Bucket="seam-bucket", Key="multi.bin")["Body"].read()
    assert hashlib.sha256(multi).digest() == hashlib.sha256(payload).digest()
    ranged = s3.get_object(Bucket="seam-bucket", Key="single.bin", Range="bytes=100-199")["Body"].read()
    assert ranged == payload[100:200]
    assert ("s3", "PutObject") in {(svc, op) for svc, op, _, _ in engine.seen}


def test_engine_failure_is_an_aws_error_not_a_dropped_connection(gateway):
    gw, engine, endpoint = gateway
    original = engine.handle
    engine.handle = lambda request: (_ for _ in ()).throw(RuntimeError("boom"))
    try:
        with pytest.raises(Exception) as raised:
            make_client(endpoint, "glue").get_job_runs(JobName="x")
        assert "InternalFailure" in str(raised.value) and "boom" in str(raised.value)
    finally:
        engine.handle = original


def test_unknown_admin_endpoint_lists_the_known_ones(gateway):
    import json
    import urllib.error
    import urllib.request

    _, _, endpoint = gateway
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{endpoint}/_dealab/nope")
    assert raised.value.code == 404
    assert "health" in json.loads(raised.value.read())["message"]
