"""The classroom (issue 19): `dealab class`, the front door's routing by access key, isolation between learners,
integrity of scores, a crashed learner stack started again, and the instructor page in a real headless browser.

One class for the module: three learners enrolled, two of whom (ana, ben) get a real stack on first request;
cleo's progress is written to her record directly, so the page shows three learners at different progress.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from dealab.classroom import records
from dealab.classroom.roster import RosterError, read_roster
from dealab.stack import control
from dealab.wire.admintoken import LEARNER_HEADER, TOKEN_HEADER, learner_token

DEALAB = str(Path(sys.executable).with_name("dealab"))


def run_cli(home: Path, *arguments: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DEALAB_", "AWS_"))}
    env.update(DEALAB_HOME=str(home), **(extra_env or {}))
    return subprocess.run([DEALAB, *arguments], capture_output=True, text=True, env=env, timeout=300)


class Class:
    def __init__(self, home: Path, port: int, keys: dict, token: str):
        self.home, self.port, self.keys, self.token = home, port, keys, token
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self, learner: str, service: str, **options):
        key = self.keys[learner]
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                            aws_secret_access_key=key["secret_access_key"], config=Config(retries={"max_attempts": 1}, **options))

    def admin(self, learner: str, path: str, payload: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
        key = self.keys[learner]
        headers = {"Content-Type": "application/json", LEARNER_HEADER: key["access_key_id"],
                   TOKEN_HEADER: token if token is not None else learner_token(key["secret_access_key"])}
        return http(f"{self.endpoint}/_dealab/{path}", payload, headers)

    def instructor(self, path: str, token: str | None = None, payload: dict | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", **({TOKEN_HEADER: token} if token is not None else {})}
        return http(f"{self.endpoint}/_dealab/class/{path}", payload, headers)

    def status(self) -> dict:
        code, body = self.instructor("status", self.token)
        assert code == 200, body
        return {entry["learner"]: entry for entry in json.loads(body)["learners"]}


def http(url: str, payload: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=None if payload is None else json.dumps(payload).encode(),
                                     method="GET" if payload is None else "POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classroom")
    roster = folder / "roster.csv"
    roster.write_text("learner,name,email\nana,Ana,ana@example.org\nben,Ben,\ncleo,Cleo,\n")
    home = folder / "home"
    port = control.free_port_pair()
    started = run_cli(home, "class", "up", "--roster", str(roster), "--port", str(port))
    assert started.returncode == 0, started.stdout + started.stderr
    token = started.stdout.split("instructor token: ")[1].split()[0]
    listed = run_cli(home, "class", "credentials", "--csv")
    keys = {row["learner"]: row for row in csv.DictReader(io.StringIO(listed.stdout))}
    yield Class(home, port, keys, token)
    stopped = run_cli(home, "class", "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


# ---- the roster and the CLI surface ---------------------------------------------------------------------
@pytest.mark.parametrize("text, line, says", [
    ("learner\nana\nana\n", 3, "already on line 2"),
    ("learner,name\nana,A\n../etc,B\n", 3, "not valid"),
    ("name\nana\n", 1, "'learner' column"),
    ("learner,phone\nana,1\n", 1, "unknown column"),
])
def test_a_bad_roster_is_refused_naming_the_line(tmp_path, text, line, says):
    roster = tmp_path / "roster.csv"
    roster.write_text(text)
    with pytest.raises(RosterError, match=f"line {line}: .*{says}"):
        read_roster(roster)


def test_class_up_refuses_a_bad_roster_in_one_line(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("learner\nana\nAna Smith\n")
    refused = run_cli(tmp_path / "home", "class", "up", "--roster", str(roster), "--port", str(control.free_port_pair()))
    assert refused.returncode == 2
    assert "line 3" in refused.stdout and "'Ana Smith'" in refused.stdout and "Traceback" not in refused.stdout + refused.stderr


def test_credentials_csv_lists_each_learner_once_and_keys_are_private(classroom):
    listed = run_cli(classroom.home, "class", "credentials", "--csv")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert list(rows[0]) == ["learner", "access_key_id", "secret_access_key", "endpoint"]
    assert [row["learner"] for row in rows] == ["ana", "ben", "cleo"]
    assert len({row["access_key_id"] for row in rows}) == 3 and all(row["endpoint"] == classroom.endpoint for row in rows)
    keys_file = classroom.home / "class" / ".door" / "learners.json"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((classroom.home / "class" / ".door" / "instructor-token").stat().st_mode) == 0o600


# ---- routing and isolation ----------------------------------------------------------------------------
def test_a_learner_reaches_their_stacks_admin_endpoints_but_not_the_instructors(classroom):
    code, body = classroom.admin("ben", "clock")  # ben's first request: it starts his stack, then reaches its admin endpoint
    assert code == 200 and "now" in json.loads(body)
    assert classroom.admin("ana", "clock", token=learner_token(classroom.keys["ben"]["secret_access_key"]))[0] == 403
    # the learner's own CLI, pointed at the classroom with ben's keys (as `dealab class credentials` prints them)
    key = classroom.keys["ben"]
    shown = run_cli(classroom.home / "bens-laptop", "clock", "show", extra_env={
        "DEALAB_ENDPOINT_URL": classroom.endpoint, "DEALAB_ACCESS_KEY_ID": key["access_key_id"], "DEALAB_SECRET_ACCESS_KEY": key["secret_access_key"]})
    assert shown.returncode == 0 and "lab clock" in shown.stdout, shown.stdout + shown.stderr
    assert classroom.admin("ana", "class/status")[0] == 403  # the learner's token is not the instructor's
    assert classroom.instructor("status")[0] == 401
    assert classroom.instructor("status", token="not-the-token")[0] == 403
    assert classroom.instructor("scores.csv", token=classroom.keys["ana"]["secret_access_key"])[0] == 403


def test_each_learner_reaches_only_their_own_stack(classroom):
    ana, ben = classroom.client("ana", "s3"), classroom.client("ben", "s3")
    ana.create_bucket(Bucket="ana-bucket")
    ana.put_object(Bucket="ana-bucket", Key="notes.txt", Body=b"ana's notes")
    assert [bucket["Name"] for bucket in ben.list_buckets()["Buckets"]] == []
    with pytest.raises(ClientError) as refused:
        ben.put_object(Bucket="ana-bucket", Key="x", Body=b"ben was here")
    assert refused.value.response["Error"]["Code"] == "NoSuchBucket"  # ben's own stack: ana's bucket is not in it
    assert ana.get_object(Bucket="ana-bucket", Key="notes.txt")["Body"].read() == b"ana's notes"
    state = classroom.status()
    assert state["ana"]["port"] != state["ben"]["port"] and state["cleo"]["state"] == "stopped"
    assert (classroom.home / "class" / "ana" / "journal").is_dir()


def test_presigned_urls_route_by_the_key_they_name(classroom):
    ana = classroom.client("ana", "s3")
    ana.put_object(Bucket="ana-bucket", Key="shared.txt", Body=b"presigned")
    v4 = classroom.client("ana", "s3", signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": "ana-bucket", "Key": "shared.txt"})
    assert "X-Amz-Credential=" + classroom.keys["ana"]["access_key_id"] + "%2F" in v4
    assert http(v4) == (200, b"presigned")
    v2 = classroom.client("ana", "s3", signature_version="s3").generate_presigned_url("get_object", Params={"Bucket": "ana-bucket", "Key": "shared.txt"})
    assert "AWSAccessKeyId=" + classroom.keys["ana"]["access_key_id"] in v2 and http(v2) == (200, b"presigned")
    # ben's key id with a signature made from ana's secret goes to ben's stack, which cannot verify it
    for presigned in (v4, v2):
        forged = presigned.replace(classroom.keys["ana"]["access_key_id"], classroom.keys["ben"]["access_key_id"])
        code, body = http(forged)
        assert code == 403 and b"SignatureDoesNotMatch" in body and b"presigned" not in body


def test_the_plain_http_twin_routes_to_the_learners_own_twin(classroom):
    ana = classroom.client("ana", "s3")
    ana.create_bucket(Bucket="ana-tls-only")
    ana.put_bucket_policy(Bucket="ana-tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::ana-tls-only", "arn:aws:s3:::ana-tls-only/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    key = classroom.keys["ana"]
    plain = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{classroom.port + 1}", region_name="us-east-1", aws_access_key_id=key["access_key_id"],
                         aws_secret_access_key=key["secret_access_key"], config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        plain.put_object(Bucket="ana-tls-only", Key="k", Body=b"x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    ana.put_object(Bucket="ana-tls-only", Key="k", Body=b"x")


def test_a_post_policy_form_routes_by_its_credential(classroom):
    form = classroom.client("ana", "s3").generate_presigned_post("ana-bucket", "form.txt")
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("form.txt", b"from a form")}, timeout=60)
    assert posted.status_code == 204, posted.text
    assert classroom.client("ana", "s3").get_object(Bucket="ana-bucket", Key="form.txt")["Body"].read() == b"from a form"


def test_a_request_without_credentials_is_never_routed(classroom):
    classroom.client("ana", "s3").put_object_acl(Bucket="ana-bucket", Key="notes.txt", ACL="public-read")
    code, body = http(f"{classroom.endpoint}/ana-bucket/notes.txt")
    assert code == 403 and b"AccessDenied" in body and b"ana's notes" not in body


@pytest.mark.parametrize("service, call, code", [
    ("s3", lambda client: client.list_buckets(), "InvalidAccessKeyId"),
    ("sqs", lambda client: client.list_queues(), "UnrecognizedClientException"),
    ("dynamodb", lambda client: client.list_tables(), "UnrecognizedClientException"),
    ("sts", lambda client: client.get_caller_identity(), "InvalidClientTokenId"),
])
def test_unknown_keys_get_the_protocols_error(classroom, service, call, code):
    stranger = boto3.client(service, endpoint_url=classroom.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        call(stranger)
    assert refused.value.response["Error"]["Code"] == code


def test_session_keys_a_stack_mints_route_back_to_it(classroom):
    classroom.client("ana", "s3").create_bucket(Bucket="ana-session")
    session = classroom.client("ana", "sts").get_session_token()["Credentials"]
    s3 = boto3.client("s3", endpoint_url=classroom.endpoint, region_name="us-east-1", aws_access_key_id=session["AccessKeyId"],
                      aws_secret_access_key=session["SecretAccessKey"], aws_session_token=session["SessionToken"])
    assert "ana-session" in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


# ---- integrity ----------------------------------------------------------------------------------------
def test_counted_self_reported_and_reference_scores_stay_apart(classroom):
    for learner in ("ana", "ben"):
        assert classroom.admin(learner, "clock", {"action": "lab-start", "lab": "1"})[0] == 200
    assert classroom.admin("ben", "reference-run", {"lab": 1})[0] == 200
    assert classroom.admin("ana", "reported-score", {"lab": 1, "score": 22, "total": 22})[0] == 200
    graded = run_cli(classroom.home, "class", "grade", "--lab", "1", "--learner", "ben")  # one learner (every one is the default)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert "ben: lab 01" in graded.stdout and "(reference solution)" in graded.stdout and "ana" not in graded.stdout
    code, body = classroom.instructor("grade", classroom.token, {"lab": 1, "learner": "ana"})
    assert code == 200 and json.loads(body)["graded"][0]["by_reference"] is False
    assert classroom.instructor("grade", classroom.token, {"lab": 1, "learner": "../ana"})[0] == 400
    rows = {row["learner"]: row for row in json.loads(run_cli(classroom.home, "class", "scores", "--json").stdout)}
    assert set(rows) == {"ana", "ben"}
    assert rows["ana"]["attempts"] == 1 and rows["ana"]["best_score"] < rows["ana"]["total"]  # 22/22 was only reported
    assert rows["ana"]["self_reported_last"] == 22 and rows["ana"]["by_reference"] is False
    assert rows["ben"]["by_reference"] is True and rows["ben"]["first_full_marks_real_time"] is None
    exported = list(csv.DictReader(io.StringIO(run_cli(classroom.home, "class", "scores", "--csv").stdout)))
    assert exported[0].keys() >= {"learner", "lab", "best_score", "last_score", "total", "attempts", "by_reference",
                                  "first_full_marks_lab_time", "first_full_marks_real_time"}
    assert {row["learner"]: row["by_reference"] for row in exported} == {"ana": "false", "ben": "true"}


def test_a_learners_solve_and_own_grading_are_told_to_the_front_door(classroom, tmp_path, monkeypatch):
    """The learner's CLI paths themselves (make solve-N, make grade-N), in classroom mode with cleo's keys."""
    import dataclasses

    from dealab import labrun
    from dealab.config import settings
    from dealab.labs import get_lab
    from grader.runner import Report, record_score

    key = classroom.keys["cleo"]
    for name, value in {"DEALAB_HOME": str(tmp_path / "cleos-laptop"), "DEALAB_ENDPOINT_URL": classroom.endpoint,
                        "DEALAB_ACCESS_KEY_ID": key["access_key_id"], "DEALAB_SECRET_ACCESS_KEY": key["secret_access_key"]}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "solution").mkdir()
    (tmp_path / "solution" / "noop.py").write_text("print('the reference solution ran')\n")
    lab = dataclasses.replace(get_lab("5"), solution_dir=tmp_path / "solution", entrypoints=("noop.py",))
    assert all(run.ok for run in labrun.solve(lab, settings()))
    record_score(settings(), Report(5, lab.slug, lab.title, "cleo", []))
    record = records.load(classroom.home, "cleo")
    reported = record["reported"][-1]
    assert "5" in record["reference_runs"] and (reported["lab"], reported["score"], reported["total"]) == ("5", 0, 0)
    assert classroom.status()["cleo"]["state"] == "stopped"  # told to the front door: cleo's stack was not needed


def test_server_side_grading_reads_the_data_generated_for_the_learners_seed(tmp_path):
    from dealab.classroom.grading import with_learners_data
    from dealab.labs import get_lab

    lab = get_lab("1")
    ana, ben = with_learners_data(lab, "ana", tmp_path / "ana"), with_learners_data(lab, "ben", tmp_path / "ben")
    assert ana.path != lab.path and ana.starter_dir.is_dir() and ana.number == lab.number
    contents = [{path.relative_to(copy.data_dir): path.read_bytes() for path in copy.data_dir.rglob("*") if path.is_file()} for copy in (ana, ben)]
    assert contents[0] and contents[0] != contents[1]  # each learner's own dataset, not this machine's


def test_a_crashed_learner_stack_starts_again_with_its_state(classroom):
    before = classroom.status()["ana"]
    os.kill(before["pid"], signal.SIGKILL)
    assert classroom.client("ana", "s3").get_object(Bucket="ana-bucket", Key="notes.txt")["Body"].read() == b"ana's notes"
    after = classroom.status()["ana"]
    assert after["crashes"] == 1 and after["state"] == "running" and after["pid"] != before["pid"]



def test_learner_stacks_are_forked_from_one_zygote_and_hold_their_own_keys(classroom):
    """Each stack is forked from the zygote (sharing its libraries), yet knows its learner's key pair, which it
    read after the fork: a stack holding the zygote's would refuse the learner's signatures."""
    for learner in ("ana", "ben"):
        classroom.client(learner, "s3").list_buckets()
    state = classroom.status()
    parents = {learner: int(Path(f"/proc/{state[learner]['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1]) for learner in ("ana", "ben")}
    zygote = parents["ana"]
    assert parents["ben"] == zygote and b"dealab.classroom.zygote" in Path(f"/proc/{zygote}/cmdline").read_bytes()
    assert classroom.client("ben", "sts").get_caller_identity()["Arn"].endswith(":root")


def test_the_zygote_loads_no_module_that_reads_a_learners_keys_and_starts_no_thread():
    code = ("import sys, threading\nfrom dealab.classroom.zygote import preload\npreload()\n"
            "print(sorted(name for name in sys.modules if name == 'dealab.config'), threading.active_count())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert run.stdout.split() == ["[]", "1"]


def test_a_zygote_found_dead_is_started_again(tmp_path):
    from dealab.classroom.zygote import Zygote

    log, env = tmp_path / "stack.log", {name: value for name, value in os.environ.items() if not name.startswith(("DEALAB_", "AWS_"))}
    zygote = Zygote(tmp_path / "zygote.log", env)
    try:
        zygote.fork(["--help"], env, log)  # a stack that prints its usage and exits
        zygote._process.kill()
        zygote._process.wait()
        zygote.fork(["--help"], env, log)
    finally:
        zygote.close()
    deadline = time.monotonic() + 60  # each forked stack runs on its own: the second may not have printed yet
    while log.read_text().count("usage: dealab-server") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.read_text().count("usage: dealab-server") == 2

# ---- the instructor page in a real browser --------------------------------------------------------------
@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("chromium or chromium-driver is missing; .ci/run installs Debian's")
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def test_the_instructor_page_shows_three_learners_at_different_progress(classroom, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    report = {"lab": 1, "score": 22, "total": 22, "results": []}
    records.add_graded(classroom.home, "cleo", report, "2026-12-06T12:00:00+00:00")
    browser.get(f"{classroom.endpoint}/_dealab/class/")
    assert "instructor token" in browser.find_element(By.TAG_NAME, "body").text  # no token: refused
    browser.get(f"{classroom.endpoint}/_dealab/class/?token={classroom.token}")
    assert "token=" not in browser.current_url  # moved into a cookie
    WebDriverWait(browser, 20).until(lambda page: page.find_element(By.ID, "updated").text != "now")
    cell = {learner: browser.find_element(By.CSS_SELECTOR, f"td[data-cell='{learner}-1']") for learner in ("ana", "ben", "cleo")}
    assert cell["cleo"].get_attribute("class") == "full" and cell["cleo"].text.startswith("22/22")
    assert "ref" in cell["ben"].get_attribute("class").split() and "ref" in cell["ben"].text
    assert cell["ana"].get_attribute("class") in ("zero", "partial") and "self-reported 22/22" in cell["ana"].text
    assert browser.find_element(By.CSS_SELECTOR, "td[data-cell='cleo-2']").text == "—"
    # refreshed without a reload: a grading recorded now shows up in the open page
    records.add_graded(classroom.home, "cleo", {**report, "lab": 2, "score": 3, "total": 10}, "2026-12-06T12:05:00+00:00")
    WebDriverWait(browser, 20).until(lambda page: page.find_element(By.CSS_SELECTOR, "td[data-cell='cleo-2']").text.startswith("3/10"))
    assert browser.find_element(By.CSS_SELECTOR, "td[data-cell='cleo-2']").get_attribute("class") == "partial"
    assert "running (restarted after 1 crash(es))" in browser.find_element(By.ID, "state-ana").text  # the kill -9 above
    assert browser.find_element(By.LINK_TEXT, "Download CSV").get_attribute("href").endswith("/_dealab/class/scores.csv")
    browser.find_element(By.LINK_TEXT, "ben").click()
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "lab 01" in text and "(reference solution)" in text and "L01-" in text and "last activity" in text


# ---- the supervisor, on stand-in processes ----------------------------------------------------------------
def test_an_idle_stack_is_stopped_and_a_dead_one_started_again(tmp_path, monkeypatch):
    from dealab.classroom.frontdoor import Classroom
    from dealab.classroom.roster import enrol
    from dealab.config import Settings

    enrol(tmp_path, [{"learner": "ana", "name": "", "email": ""}, {"learner": "ben", "name": "", "email": ""}])
    port = control.free_port_pair()
    classroom = Classroom(tmp_path, port, port + 1)
    started = []

    def stand_in(learner):  # a process in place of a stack: the supervisor only looks at pids and pid files
        settings = Settings(tmp_path / "class" / learner.id, 0, 0, "us-east-1", None)
        process = subprocess.Popen(["sleep", "60"], start_new_session=True)
        control.pid_file(settings).write_text(str(process.pid))
        started.append(process)
        return settings, process.pid

    monkeypatch.setattr(classroom, "_start", stand_in)
    ana, ben = classroom.stacks["ana"], classroom.stacks["ben"]
    try:
        classroom.ensure(ana)
        classroom.ensure(ben)
        ana.last_used -= 120  # ana has been idle for two minutes
        started[1].kill()
        started[1].wait()  # ben's stack died
        for restart in classroom.look_after_stacks(idle_seconds=60):
            restart.join()
        assert ana.pid is None and started[0].wait(timeout=10) is not None  # stopped, with SIGTERM
        assert ben.pid == started[2].pid and ben.status()["crashes"] == 1 and ben.starts == 2
        assert classroom.look_after_stacks(idle_seconds=60) == [] and ben.pid == started[2].pid  # just started: not idle
    finally:
        for process in started:
            process.kill()
            process.wait()
