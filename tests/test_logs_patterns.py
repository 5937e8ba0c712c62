"""Filter patterns, table-driven with the examples of AWS's "Filter pattern syntax" page: each kind matches
what it should, extracts what metric values and dimensions name, and refuses what AWS refuses."""

from __future__ import annotations

import pytest

from dealab.engines.logs.patterns import PatternError, compile_pattern, selected_value

APACHE = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'
APACHE_503 = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 503 2048'
CLOUDTRAIL = '{"eventType": "UpdateTrail", "sourceIPAddress": "10.0.0.1", "arrayKey": ["value", "another value"], "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}], "SomeObject": null, "cluster.name": "c", "ThisFlag": true, "latency": 150, "level": "ERROR"}'

CASES = [
    # terms
    ("ERROR", "[ERROR] Failed to connect", True),
    ("ERROR", "INFO all good", False),
    ("ERROR ARGUMENTS", "ERROR: wrong ARGUMENTS given", True),
    ("ERROR ARGUMENTS", "ERROR: wrong input", False),
    ('"Failed to connect"', "[ERROR] Failed to connect", True),
    ('"Failed to connect"', "[ERROR] Failed connect to", False),
    ("?ERROR ?WARN", "WARN low disk", True),
    ("?ERROR ?WARN", "INFO fine", False),
    ("ERROR -Exiting", "ERROR Exiting now", False),
    ("ERROR -Exiting", "ERROR timeout", True),
    ("%ERR[0-9]+%", "code ERR42 seen", True),
    ("", "anything at all", True),
    # JSON
    ('{ $.eventType = "UpdateTrail" }', CLOUDTRAIL, True),
    ('{ $.eventType = "Update*" }', CLOUDTRAIL, True),
    ('{ $.eventType != "UpdateTrail" }', CLOUDTRAIL, False),
    ('{ $.sourceIPAddress != 123.123.* }', CLOUDTRAIL, True),
    ('{ $.arrayKey[0] = "value" }', CLOUDTRAIL, True),
    ('{ $.objectList[1].id = 2 }', CLOUDTRAIL, True),
    ('{ $.SomeObject IS NULL }', CLOUDTRAIL, True),
    ('{ $.SomeOtherObject NOT EXISTS }', CLOUDTRAIL, True),
    ('{ $.ThisFlag IS TRUE }', CLOUDTRAIL, True),
    ('{ $.ThisFlag IS FALSE }', CLOUDTRAIL, False),
    ('{ $.level = "ERROR" && $.latency > 100 }', CLOUDTRAIL, True),
    ('{ $.level = "ERROR" && $.latency > 200 }', CLOUDTRAIL, False),
    ('{ ($.latency < 10 || $.latency >= 150) && $.level = ERROR }', CLOUDTRAIL, True),
    ('{ $.eventType = %Update[A-Z]% }', CLOUDTRAIL, True),
    ('{ $.latency = 150 }', "not json at all", False),
    # space-delimited
    ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE, True),
    ("[ip, user, username, timestamp, request, status_code, bytes]", "too few words", False),
    ("[ip, user, ..., status_code=5*, bytes>1000]", APACHE_503, True),
    ("[ip, user, ..., status_code=5*, bytes>1000]", APACHE, False),
    ("[..., status_code = 4* || status_code = 5*, bytes]", APACHE_503, True),
    ("[..., status_code != 200, bytes]", APACHE, False),
    ('[ip, user, username, timestamp, request = "*html*", status_code, bytes]', APACHE_503, True),
    ('[ip, user, username, timestamp, request = "*html*", status_code, bytes]', APACHE, False),
]


@pytest.mark.parametrize("pattern, message, matches", CASES)
def test_patterns_match_as_aws_documents(pattern, message, matches):
    assert (compile_pattern(pattern).match(message) is not None) is matches


def test_space_delimited_patterns_extract_named_words():
    extracted = compile_pattern("[ip, user, username, timestamp, request, status_code, bytes]").match(APACHE)
    assert extracted == {"$ip": "127.0.0.1", "$user": "-", "$username": "frank", "$timestamp": "10/Oct/2000:13:25:15 -0700",
                         "$request": "GET /apache_pb.gif HTTP/1.0", "$status_code": "200", "$bytes": "1534"}
    assert selected_value("$bytes", APACHE, extracted) == "1534"


def test_json_patterns_extract_the_selectors_and_metric_values_read_json():
    extracted = compile_pattern('{ $.latency > 100 }').match(CLOUDTRAIL)
    assert extracted == {"$.latency": "150"}
    assert selected_value("$.latency", CLOUDTRAIL, extracted) == 150
    assert selected_value("1", CLOUDTRAIL, extracted) == "1"


@pytest.mark.parametrize("pattern", ['{ $.latency > "abc" }', "{ $.latency = }", "{ $.a = 1 ", "[a, b", "{ latency = 1 }", "{ $.a IS MAYBE }"])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(PatternError):
        compile_pattern(pattern)
