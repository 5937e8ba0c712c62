"""Lab time is safe for every engine: with the clock far ahead of real time, what the engines log and record
is stamped in lab time, so CloudWatch Logs (which keeps only events near its "now", the lab clock) keeps it."""

import datetime
import json
import urllib.request

from tests.conftest import admin_headers, client, service_role
from tests.gluekit import create_job, log_lines, run_job, upload_script, wait_for_crawler

BUCKET = "lab-time-test"
AHEAD_DAYS = 700


def advance(settings, by: str) -> dict:
    request = urllib.request.Request(f"{settings.endpoint_url}/_dealab/clock", data=json.dumps({"action": "advance", "by": by}).encode(),
                                     method="POST", headers={"Content-Type": "application/json", **admin_headers(settings)})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def test_glue_job_and_crawler_logs_survive_a_clock_700_days_ahead(clean_stack):
    s3, glue, logs = client(clean_stack, "s3"), client(clean_stack, "glue"), client(clean_stack, "logs")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="raw/orders/part-0.json", Body=b'{"order_id": 1, "amount": 2.5}\n')
    glue.create_database(DatabaseInput={"Name": "time_db"})
    lab_now = datetime.datetime.fromisoformat(advance(clean_stack, f"{AHEAD_DAYS}d")["now"])

    create_job(clean_stack, "fails-late", upload_script(clean_stack, BUCKET, "scripts/fails.py", 'print("before the failure")\nraise ValueError("late failure")\n'))
    run = run_job(clean_stack, "fails-late")
    assert run["JobRunState"] == "FAILED"
    assert abs((run["StartedOn"] - lab_now).total_seconds()) < 3600, "the run is dated on the lab clock"
    assert log_lines(clean_stack, "/aws-glue/jobs/output", run["Id"]) == ["before the failure"]
    assert log_lines(clean_stack, "/aws-glue/jobs/error", run["Id"])[-1] == "ValueError: late failure"

    glue.create_crawler(Name="late-crawler", Role=service_role(clean_stack, "crawler", "glue"), DatabaseName="time_db",
                        Targets={"S3Targets": [{"Path": f"s3://{BUCKET}/raw/"}]})
    glue.start_crawler(Name="late-crawler")
    crawler = wait_for_crawler(clean_stack, "late-crawler")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    events = logs.get_log_events(logGroupName="/aws-glue/crawlers", logStreamName="late-crawler", startFromHead=True)["events"]
    assert events, "the crawler's log lines were dropped"
    stamped = datetime.datetime.fromtimestamp(events[0]["timestamp"] / 1000, datetime.timezone.utc)
    assert abs((stamped - lab_now).total_seconds()) < 3600
