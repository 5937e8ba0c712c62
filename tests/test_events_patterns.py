"""EventBridge patterns, transforms and schedules as pure functions: each operator of the pattern syntax
(table-driven, with the examples of AWS's "Event patterns" and "Content filtering" pages), refusals in
AWS's words, input transformers and the catch-up bound."""

import datetime
import json

import pytest

from dealab.engines.events import patterns, schedules, transform

# The EC2 state-change event AWS's documentation filters throughout.
EC2 = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2", "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated", "c-count": 5, "d-count": 3,
               "x-limit": 301.8, "source-ip": "10.0.0.33", "location": "eu-west-1",
               "eventName": "DeleteBucket", "filename": "image.png",
               "dimensions": [{"name": "a", "value": 1}, {"name": "b", "value": 2}],
               "tags": ["prod", "web"], "nothing": None, "flag": True},
}

# (name, pattern, matches EC2)
CASES = [
    ("exact string", {"source": ["aws.ec2"]}, True),
    ("exact string, other value", {"source": ["aws.s3"]}, False),
    ("exact is case sensitive", {"source": ["AWS.EC2"]}, False),
    ("any of several values", {"detail": {"state": ["pending", "terminated"]}}, True),
    ("number equals number", {"detail": {"c-count": [5]}}, True),
    ("number equals float form", {"detail": {"c-count": [5.0]}}, True),
    ("string never equals number", {"detail": {"c-count": ["5"]}}, False),
    ("null matches null", {"detail": {"nothing": [None]}}, True),
    ("null does not match a missing field", {"detail": {"absent": [None]}}, False),
    ("boolean", {"detail": {"flag": [True]}}, True),
    ("true is not 1", {"detail": {"c-count": [True]}}, False),
    ("array field: any element", {"detail": {"tags": ["web"]}}, True),
    ("array field: none", {"detail": {"tags": ["dev"]}}, False),
    ("all fields must match", {"source": ["aws.ec2"], "detail": {"state": ["running"]}}, False),
    ("prefix", {"time": [{"prefix": "2017-12-22"}]}, True),
    ("prefix miss", {"time": [{"prefix": "2018"}]}, False),
    ("prefix ignore case", {"detail": {"location": [{"prefix": {"equals-ignore-case": "EU-"}}]}}, True),
    ("suffix", {"detail": {"filename": [{"suffix": ".png"}]}}, True),
    ("suffix miss", {"detail": {"filename": [{"suffix": ".jpg"}]}}, False),
    ("suffix ignore case", {"detail": {"filename": [{"suffix": {"equals-ignore-case": ".PNG"}}]}}, True),
    ("equals-ignore-case", {"detail": {"state": [{"equals-ignore-case": "TERMINATED"}]}}, True),
    ("anything-but value", {"detail": {"state": [{"anything-but": "initializing"}]}}, True),
    ("anything-but value excluded", {"detail": {"state": [{"anything-but": "terminated"}]}}, False),
    ("anything-but list", {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}, True),
    ("anything-but numbers", {"detail": {"c-count": [{"anything-but": [1, 2, 5]}]}}, False),
    ("anything-but prefix", {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, True),
    ("anything-but prefix excluded", {"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}, False),
    ("anything-but suffix", {"detail": {"filename": [{"anything-but": {"suffix": ".txt"}}]}}, True),
    ("anything-but ignore case", {"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Terminated"]}}]}}, False),
    ("anything-but wildcard", {"detail": {"filename": [{"anything-but": {"wildcard": "*.png"}}]}}, False),
    ("anything-but never matches a missing field", {"detail": {"absent": [{"anything-but": "x"}]}}, False),
    ("numeric range", {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}, True),
    ("numeric range miss", {"detail": {"d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}}, True),
    ("numeric lower only", {"detail": {"c-count": [{"numeric": [">", 5]}]}}, False),
    ("numeric never matches a string", {"detail": {"state": [{"numeric": [">", 0]}]}}, False),
    ("exists true", {"detail": {"c-count": [{"exists": True}]}}, True),
    ("exists false", {"detail": {"absent": [{"exists": False}]}}, True),
    ("exists false on a present field", {"detail": {"c-count": [{"exists": False}]}}, False),
    ("exists false under a missing object", {"detail": {"missing": {"inner": [{"exists": False}]}}}, True),
    ("wildcard", {"detail": {"filename": [{"wildcard": "im*.p*g"}]}}, True),
    ("wildcard miss", {"detail": {"filename": [{"wildcard": "*.jpg"}]}}, False),
    ("wildcard escaped star", {"detail": {"filename": [{"wildcard": "image\\*.png"}]}}, False),
    ("cidr v4", {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, True),
    ("cidr v4 miss", {"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, False),
    ("$or of fields", {"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [3]}]}}, True),
    ("$or none holds", {"$or": [{"source": ["aws.s3"]}, {"detail-type": ["x"]}]}, False),
    ("nested object of an array element", {"detail": {"dimensions": {"name": ["b"], "value": [2]}}}, True),
    ("fields of one array element together", {"detail": {"dimensions": {"name": ["a"], "value": [2]}}}, False),
    ("resources array", {"resources": [{"prefix": "arn:aws:ec2:us-west-1"}]}, True),
    ("a field that is an object matched as a value", {"detail": ["x"]}, False),
]


@pytest.mark.parametrize("name, pattern, expected", CASES, ids=[case[0] for case in CASES])
def test_each_operator_matches_as_aws_documents(name, pattern, expected):
    assert patterns.parse(json.dumps(pattern))(EC2) is expected


# (pattern text, AWS's reason)
REFUSALS = [
    ('{"source": "aws.ec2"}', '"source" must be an object or an array'),
    ('{"source": []}', "Empty arrays are not allowed"),
    ('{"detail": {}}', "Empty objects are not allowed"),
    ('{"source": [{"regex": "a.*"}]}', "Unrecognized match type regex"),
    ('{"source": [{"prefix": 5}]}', "prefix match pattern must be a string"),
    ('{"source": [{"suffix": ["a"]}]}', "suffix match pattern must be a string"),
    ('{"a": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
    ('{"a": [{"numeric": 5}]}', "Value of numeric must be an array."),
    ('{"a": [{"numeric": [">", "five"]}]}', "Value of > must be numeric"),
    ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', "Bad numeric range"),
    ('{"a": [{"anything-but": []}]}', "Value of anything-but must be an array or single string/number value."),
    ('{"a": [{"wildcard": "a**b"}]}', "Consecutive wildcard characters at pos 2"),
    ('{"a": [{"cidr": "10.0.0.0/99"}]}', "Nonsensical CIDR IP: 10.0.0.0/99"),
    ('{"$or": [{"a": ["x"]}]}', "There must have at least 2 items in Or relationship."),
    ('{"a": [["nested"]]}', "Match value must be String, number, true, false, or null"),
    ('["aws.ec2"]', "Filter is not an object"),
    ('{"source": ', "Unexpected input"),
]


@pytest.mark.parametrize("source, reason", REFUSALS, ids=[reason for _, reason in REFUSALS])
def test_refused_patterns_say_why_in_aws_shape(source, reason):
    with pytest.raises(patterns.PatternError) as refused:
        patterns.parse(source)
    message = refused.value.message(source)
    assert message.startswith(f"Event pattern is not valid. Reason: {reason}")
    assert f'at [Source: (String)"{source}"; line: 1, column: ' in message


def test_input_transformer_quotes_as_aws_does():
    paths = {"instance": "$.detail.instance-id", "state": "$.detail.state", "count": "$.detail.c-count", "gone": "$.detail.absent",
             "first": "$.detail.dimensions[0].name"}
    rendered = transform.render_template(
        '{"instance": <instance>, "state": [9, <state>, true], "count": <count>, "gone": <gone>, "first": <first>,'
        ' "message": "<instance> is in state <state> (\\"<count>\\")", "rule": "<aws.events.rule-name>", "event": <aws.events.event>}',
        paths, EC2, "arn:aws:events:us-east-1:123456789012:rule/r", "r")
    document = json.loads(rendered)
    assert document["instance"] == "i-1234567890abcdef0" and document["state"] == [9, "terminated", True]
    assert document["count"] == 5 and document["gone"] is None and document["first"] == "a"
    assert document["message"] == 'i-1234567890abcdef0 is in state terminated ("5")'
    assert document["rule"] == "r" and "detail" not in document["event"] and document["event"]["id"] == EC2["id"]
    plain = transform.render_template('"<instance> is in state <state>"', paths, EC2, "arn", "r")
    assert plain == '"i-1234567890abcdef0 is in state terminated"'
    assert transform.render_template("Instance <instance> is <state>", paths, EC2, "arn", "r") == 'Instance "i-1234567890abcdef0" is "terminated"'
    assert json.loads(transform.target_input({"InputPath": "$.detail.tags"}, EC2, "arn", "r")) == ["prod", "web"]
    assert transform.target_input({"Input": '{"fixed": 1}'}, EC2, "arn", "r") == '{"fixed": 1}'
    with pytest.raises(transform.TransformError):
        transform.check_target_input({"Id": "t", "Input": "{}", "InputPath": "$.detail"})


T0 = datetime.datetime(2030, 1, 1)


def test_rate_and_cron_count_without_walking_every_run():
    minute = schedules.recurrence("rate(1 minute)", T0)
    two_years = T0 + datetime.timedelta(days=730)
    assert minute.next_after(T0) == T0 + datetime.timedelta(minutes=1)
    assert minute.count_between(T0, two_years) == 730 * 1440
    skipped, first = schedules.catch_up(minute, T0 + datetime.timedelta(minutes=1), two_years)
    assert skipped == 730 * 1440 - 100 and first == two_years - datetime.timedelta(minutes=99)
    cron = schedules.recurrence("cron(0/15 * * * ? *)", T0)
    assert cron.count_between(T0, T0 + datetime.timedelta(days=1)) == 96
    skipped, first = schedules.catch_up(cron, T0 + datetime.timedelta(minutes=15), T0 + datetime.timedelta(days=1))
    assert (skipped, first) == (0, T0 + datetime.timedelta(minutes=15))  # 96 runs in the day: all fire
    every_minute = schedules.recurrence("cron(* * * * ? *)", T0)
    skipped, first = schedules.catch_up(every_minute, T0 + datetime.timedelta(minutes=1), T0 + datetime.timedelta(days=1))
    assert (skipped, first) == (1440 - 100, T0 + datetime.timedelta(days=1) - datetime.timedelta(minutes=99))
    nightly = schedules.recurrence("cron(0 2 * * ? *)", T0, timezone="America/New_York")
    assert nightly.next_after(T0) == datetime.datetime(2030, 1, 1, 7)  # 02:00 EST is 07:00 UTC
    assert schedules.recurrence("at(2030-01-02T09:30:00)", T0, "Europe/Paris", one_time=True).next_after(T0) == datetime.datetime(2030, 1, 2, 8, 30)
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(0 2 * * * *)", "every day"):
        with pytest.raises(schedules.ScheduleError):
            schedules.recurrence(bad, T0)
