"""Lab 10 proves its grader: the solution gets full marks (twice: grading moves the clock on, and the second
grading judges new nights), the starter does not, each realistic mistake of a learner (a mutant of the
solution) fails exactly the checks it should, and other correct ways of writing the pipeline (variants) still
get full marks. One stack for the file; every case starts from an empty one, as labkit does."""

import pytest

from dealab.labs import get_lab
from tests.labkit import FAIL, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, solution_report, starter_report

ASL, DEPLOY, JOB = "pipeline.asl.json", "deploy_pipeline.py", "clean_sales.py"
DEFINITION = (get_lab(10).solution_dir / ASL).read_text()
# the crawler's Wait/GetCrawler/Choice loop, as a learner who does not wait for the crawler leaves it out
CRAWLER_LOOP = DEFINITION[DEFINITION.index('    "WaitForCrawler": {'):DEFINITION.index('    "CleanNight": {')]
GLUE_RETRY = ('      "Retry": [{"ErrorEquals": ["Glue.ThrottlingException", "Glue.ConcurrentRunsExceededException", "Glue.InternalServiceException"],\n'
              '                 "IntervalSeconds": 60, "MaxAttempts": 3, "BackoffRate": 2}],\n')
GLUE_CATCH = '"MaxAttempts": 3, "BackoffRate": 2}],\n      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert"}],\n'
FAIL_STATE = DEFINITION[DEFINITION.index('    "Failed": {'):DEFINITION.rindex("  }\n}")]
AGGREGATE_GUARD = "WHERE night NOT IN (SELECT DISTINCT night FROM ${database}.daily_sales)"
TRANSFORMER = """        "InputTransformer": {"InputPathsMap": {"time": "$.time"}, "InputTemplate": '{"time": <time>}'},\n"""

MUTANTS = {
    "no Retry on the Glue task": ({"L10-04", "L10-05"}, {ASL: [(GLUE_RETRY, "")]}),
    "no Catch on the Glue task": ({"L10-09"}, {ASL: [(GLUE_CATCH, '"MaxAttempts": 3, "BackoffRate": 2}],\n')]}),
    "the alert path ends in Succeed": ({"L10-09"}, {ASL: [(FAIL_STATE, '    "Failed": {"Type": "Succeed"}\n')]}),
    # the Athena step then runs before the night is written: each night is aggregated one night late (the last one
    # by the re-run of night 1)
    "Glue task without .sync": ({"L10-07", "L10-10", "L10-11"}, {ASL: [('"arn:aws:states:::glue:startJobRun.sync"', '"arn:aws:states:::glue:startJobRun"'),
                                                             ('{"run_id.$": "$.Id", "state.$": "$.JobRunState"}', '{"run_id.$": "$.JobRunId"}')]}),
    "cron minutes and hours swapped": ({"L10-01"}, {DEPLOY: [('NIGHTLY = "cron(0 2 * * ? *)"', 'NIGHTLY = "cron(2 0 * * ? *)"')]}),
    # every night runs the date the learner tested with: the real nights are never processed nor alerted by name
    "input hard-codes a test date": ({"L10-02", "L10-06", "L10-07", "L10-08", "L10-09", "L10-10"},
                                     {DEPLOY: [("""'{"time": <time>}'""", """'{"time": "2024-06-01T02:00:00Z"}'""")]}),
    # each night aggregates the newest night: right the first time, doubled when a night runs again
    "aggregate of the newest night, unguarded": ({"L10-10"}, {ASL: [(AGGREGATE_GUARD, "WHERE night = (SELECT max(night) FROM ${database}.curated_sales)")]}),
    "aggregate of every night, unguarded": ({"L10-07", "L10-10"}, {ASL: [(AGGREGATE_GUARD + " ", "")]}),
    "notices queue not subscribed": ({"L10-08"}, {DEPLOY: [("notices_topic = topic_to_queue(NOTICES_TOPIC, NOTICES_QUEUE)",
                                                            'notices_topic = sns.create_topic(Name=NOTICES_TOPIC)["TopicArn"]')]}),
    "crawler not awaited": ({"L10-03"}, {ASL: [(CRAWLER_LOOP, ""), ('"Next": "WaitForCrawler"\n    },\n', '"Next": "CleanNight"\n    },\n')]}),
    "job keeps re-sent sales": ({"L10-06", "L10-07"}, {JOB: [('if valid(row) and row["sale_id"] not in seen:', "if valid(row):")]}),
}

JSONATA_DEFINITION = """{
  "QueryLanguage": "JSONata",
  "StartAt": "NightOf",
  "States": {
    "NightOf": {"Type": "Pass", "Assign": {"night": "{% $substring($states.input.time, 0, 10) %}"}, "Next": "StartCrawler"},
    "StartCrawler": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:startCrawler", "Arguments": {"Name": "${crawler}"},
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"error": "{% $states.errorOutput %}"}, "Next": "Alert"}], "Next": "Pause"},
    "Pause": {"Type": "Wait", "Seconds": 20, "Next": "GetCrawler"},
    "GetCrawler": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:glue:getCrawler", "Arguments": {"Name": "${crawler}"},
                   "Output": {"state": "{% $states.result.Crawler.State %}"}, "Next": "Ready?"},
    "Ready?": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.state = 'READY' %}", "Next": "CleanNight"}], "Default": "Pause"},
    "CleanNight": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                   "Arguments": {"JobName": "${job}", "Arguments": {"--night": "{% $night %}"}},
                   "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 30, "MaxAttempts": 2, "BackoffRate": 2}],
                   "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"error": "{% $states.errorOutput %}"}, "Next": "Alert"}], "Next": "Aggregate"},
    "Aggregate": {"Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
                  "Arguments": {"QueryString": "INSERT INTO ${database}.daily_sales SELECT store, count(*), sum(quantity), round(sum(amount), 2), night FROM ${database}.curated_sales WHERE night = ? AND night NOT IN (SELECT DISTINCT night FROM ${database}.daily_sales) GROUP BY store, night",
                                "ExecutionParameters": "{% [\\"'\\" & $night & \\"'\\"] %}",
                                "ResultConfiguration": {"OutputLocation": "s3://${results_bucket}/pipeline/"}},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"error": "{% $states.errorOutput %}"}, "Next": "Alert"}], "Next": "Notify"},
    "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
               "Arguments": {"TopicArn": "${notices_topic}", "Message": "{% 'night ' & $night & ' is curated and aggregated' %}"}, "End": true},
    "Alert": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
              "Arguments": {"TopicArn": "${alerts_topic}", "Message": "{% 'night ' & $night & ' failed: ' & $error.Error %}"}, "Next": "Failed"},
    "Failed": {"Type": "Fail", "Error": "NightlyPipelineFailed"}
  }
}
"""

VARIANTS = {
    "JSONata definition with a parameterised aggregate": {ASL: [(DEFINITION, JSONATA_DEFINITION)]},
    "EventBridge Scheduler instead of a rule": {DEPLOY: [
        ('ensure_role("dea-pipeline-events", "events.amazonaws.com"', 'ensure_role("dea-pipeline-events", "scheduler.amazonaws.com"'),
        ("""    events.put_rule(Name=SCHEDULE_RULE, ScheduleExpression=NIGHTLY, State="ENABLED",
                    Description="runs dea-nightly-pipeline for the night at 02:00 UTC")
    events.put_targets(Rule=SCHEDULE_RULE, Targets=[{
        "Id": "pipeline", "Arn": machine_arn, "RoleArn": events_role,
        # the execution's input: the moment the schedule fired, so the machine knows which night it runs
""" + TRANSFORMER + "    }])\n",
         """    boto3.client("scheduler").create_schedule(
        Name=SCHEDULE_RULE, ScheduleExpression=NIGHTLY, ScheduleExpressionTimezone="UTC", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": machine_arn, "RoleArn": events_role, "Input": '{"time": "<aws.scheduler.scheduled-time>"}'})
""")]},
    "the whole scheduled event as input": {DEPLOY: [(TRANSFORMER, "")]},
    "raw message delivery to the queues": {DEPLOY: [('sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)',
                                                     'sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})')]},
}


def test_solution_gets_full_marks_and_again_on_the_next_nights(aws_env):
    lab = fresh_lab(10, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    regraded = grade_lab(lab, aws_env)  # the first grading moved the clock four nights on: these are new nights
    assert regraded.full_marks, explain(regraded)


def test_untouched_starter_scores_nothing_and_names_the_missing_state_machine(aws_env):
    report = starter_report(fresh_lab(10, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert all(result.status == FAIL for result in report.results), explain(report)
    assert "state machine dea-nightly-pipeline does not exist" in report.results[0].message, report.results[0].message


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(10, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(10, aws_env), aws_env, tmp_path, VARIANTS[name])
