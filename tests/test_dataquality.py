"""DQDL parsing and evaluation on DuckDB: every rule type against a small table with known answers (a rule that
passes and one that fails each), where clauses, thresholds, composites, row-level outcomes, DQDL errors."""

from __future__ import annotations

import datetime

import duckdb
import pytest

from dealab.engines.dataquality.dqdl import RULE_TYPES, DqdlError, parse
from dealab.engines.dataquality.recommend import recommend
from dealab.engines.dataquality.rules import DYNAMIC_METRICS, RULES, Datasets, evaluate, row_outcomes_sql

NOW = datetime.datetime(2026, 12, 6, 12, 0)
ROWS = """(1, 'alice', 'a', 10.0, DATE '2026-12-06', '7'),
          (2, 'bob',   'b', 20.0, DATE '2026-12-01', '8'),
          (3, NULL,    'a', 30.0, DATE '2026-11-01', 'x'),
          (4, 'dave',  'c', 40.0, DATE '2026-12-06', NULL)"""


@pytest.fixture
def datasets():
    connection = duckdb.connect()
    connection.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {ROWS}) v(id, name, cat, amount, day, code)")
    connection.execute("CREATE TABLE r AS SELECT * FROM (VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')) v(id, name)")
    connection.execute("CREATE TABLE same AS SELECT * FROM t")
    yield Datasets(connection, {"primary": "SELECT * FROM t", "ref": "SELECT * FROM r", "copy": "SELECT * FROM same"}, NOW)
    connection.close()


# rule type → (a rule that passes on the table, a rule that fails on it, a metric the evaluation reports)
CASES = {
    "RowCount": ('RowCount = 4', 'RowCount between 5 and 10', ("Dataset.*.RowCount", 4.0)),
    "RowCountMatch": ('RowCountMatch "copy" = 1.0', 'RowCountMatch "ref" = 1.0', ("Dataset.*.RowCountMatch", 1.0)),
    "ColumnCount": ('ColumnCount = 6', 'ColumnCount > 6', ("Dataset.*.ColumnCount", 6.0)),
    "Completeness": ('Completeness "name" >= 0.75', 'Completeness "name" > 0.8', ("Column.name.Completeness", 0.75)),
    "IsComplete": ('IsComplete "id"', 'IsComplete "name"', ("Column.id.Completeness", 1.0)),
    "ColumnDataType": ('ColumnDataType "code" = "INTEGER" with threshold >= 0.5', 'ColumnDataType "code" = "INTEGER"',
                       ("Column.code.ColumnDataType.Compliance", 0.75)),
    "ColumnNamesMatchPattern": ('ColumnNamesMatchPattern "[a-z]+"', 'ColumnNamesMatchPattern "[a-c].*"', None),
    "ColumnExists": ('ColumnExists "amount"', 'ColumnExists "price"', None),
    "ColumnCorrelation": ('ColumnCorrelation "id" "amount" > 0.99', 'ColumnCorrelation "id" "amount" < 0.5',
                          ("Multicolumn.id,amount.ColumnCorrelation", 1.0)),
    "Uniqueness": ('Uniqueness "cat" = 0.5', 'Uniqueness "cat" > 0.5', ("Column.cat.Uniqueness", 0.5)),
    "IsUnique": ('IsUnique "id"', 'IsUnique "cat"', ("Column.id.Uniqueness", 1.0)),
    "Mean": ('Mean "amount" = 25', 'Mean "amount" > 25', ("Column.amount.Mean", 25.0)),
    "Sum": ('Sum "amount" = 100', 'Sum "amount" < 100', ("Column.amount.Sum", 100.0)),
    "StandardDeviation": ('StandardDeviation "amount" between 11 and 12', 'StandardDeviation "amount" < 11',
                          ("Column.amount.StandardDeviation", 125 ** 0.5)),
    "Variance": ('Variance "amount" = 125', 'Variance "amount" != 125', ("Column.amount.Variance", 125.0)),
    "Entropy": ('Entropy "cat" > 1.0', 'Entropy "cat" > 1.1', None),
    "DistinctValuesCount": ('DistinctValuesCount "cat" = 3', 'DistinctValuesCount "cat" > 3', ("Column.cat.DistinctValuesCount", 3.0)),
    "UniqueValueRatio": ('UniqueValueRatio "cat" between 0.6 and 0.7', 'UniqueValueRatio "cat" = 1.0', ("Column.cat.UniqueValueRatio", 2 / 3)),
    "ColumnLength": ('ColumnLength "cat" = 1', 'ColumnLength "name" <= 4', ("Column.cat.ColumnLength.Compliance", 1.0)),
    "IsPrimaryKey": ('IsPrimaryKey "id"', 'IsPrimaryKey "name"', ("Column.id.Uniqueness", 1.0)),
    "ColumnValues": ('ColumnValues "cat" in ["a", "b", "c"]', 'ColumnValues "cat" in ["a", "b"]', ("Column.cat.ColumnValues.Compliance", 1.0)),
    "DataFreshness": ('DataFreshness "day" <= 40 days', 'DataFreshness "day" <= 24 hours', ("Column.day.DataFreshness.Compliance", 1.0)),
    "CustomSql": ('CustomSql "select count(*) from primary where amount > 15" = 3', 'CustomSql "select max(amount) from primary" < 40',
                  ("Dataset.*.CustomSQL", 3.0)),
    "ReferentialIntegrity": ('ReferentialIntegrity "id" "ref.id" >= 0.75', 'ReferentialIntegrity "id" "ref.id" = 1.0',
                             ("Column.ref.ReferentialIntegrity", 0.75)),
    "DatasetMatch": ('DatasetMatch "copy" "id" = 1.0', 'DatasetMatch "ref" "id" "name" = 1.0', ("Dataset.*.DatasetMatch", 1.0)),
    "SchemaMatch": ('SchemaMatch "copy" = 1.0', 'SchemaMatch "ref" = 1.0', ("Dataset.*.SchemaMatch", 1.0)),
    "AggregateMatch": ('AggregateMatch "sum(id)" "sum(copy.id)" = 1.0', 'AggregateMatch "sum(id)" "sum(ref.id)" = 1.0',
                       ("Dataset.*.AggregateMatch", 1.0)),
}
UNSUPPORTED = {"DetectAnomalies": 'DetectAnomalies "RowCount"', "FileMatch": 'FileMatch "s3://a/b" "s3://a/c"',
               "FileUniqueness": 'FileUniqueness "s3://a/" > 0.9', "FileFreshness": 'FileFreshness "s3://a/" > (now() - 3 days)',
               "FileSize": 'FileSize "s3://a/" < 5 MB'}


def test_every_rule_type_of_the_grammar_has_an_evaluator_and_a_case():
    assert set(RULES) == set(RULE_TYPES)
    assert set(CASES) | set(UNSUPPORTED) | {"AllStatistics"} == set(RULE_TYPES)
    assert set(DYNAMIC_METRICS) == {name for name, rule_type in RULE_TYPES.items() if rule_type.dynamic}


def _only(datasets, text):
    return evaluate(parse(f"Rules = [ {text} ]"), datasets).rules[0]


@pytest.mark.parametrize("rule_type", sorted(CASES))
def test_rule_type_passes_and_fails(datasets, rule_type):
    passing, failing, metric = CASES[rule_type]
    good = _only(datasets, passing)
    assert (good.outcome, good.failure_reason) == ("Passed", None), good
    bad = _only(datasets, failing)
    assert bad.outcome == "Failed" and bad.failure_reason, bad
    if metric:
        name, value = metric
        assert good.metrics[name] == pytest.approx(value)


@pytest.mark.parametrize("rule_type", sorted(UNSUPPORTED))
def test_unsupported_rules_error_with_one_clear_line(datasets, rule_type):
    result = _only(datasets, UNSUPPORTED[rule_type])
    assert result.outcome == "Error" and "not supported in dealab" in result.failure_reason


def test_failure_reason_is_worded_as_aws(datasets):
    assert _only(datasets, 'Completeness "name" > 0.8').failure_reason == "Value: 0.75 does not meet the constraint requirement!"
    assert _only(datasets, 'ColumnValues "amount" between 10 and 40').failure_reason == \
        "Value: 0.5 does not meet the constraint requirement!"  # between is exclusive, as in DQDL's library


def test_where_clause_limits_the_rows(datasets):
    result = _only(datasets, 'IsComplete "name" where "id <> 3"')
    assert result.outcome == "Passed" and result.metrics == {"Column.name.Completeness": 1.0}
    assert _only(datasets, 'RowCount = 2 where "cat = \'a\'"').outcome == "Passed"


def test_threshold(datasets):
    assert _only(datasets, 'ColumnValues "cat" in ["a", "b"] with threshold >= 0.75').outcome == "Passed"
    assert _only(datasets, 'ColumnValues "cat" in ["a", "b"] with threshold > 0.75').outcome == "Failed"


def test_dynamic_rules_compare_with_their_metric_in_earlier_evaluations(datasets):
    earlier = {"Dataset.*.RowCount": [5.0, 3.0, 10.0], "Column.name.Completeness": [0.9, 0.8], "Column.amount.Mean": []}
    asked: list[str] = []

    def history(metric):
        asked.append(metric)
        return earlier.get(metric, [])

    def judged(text):
        return evaluate(parse(f"Rules = [ {text} ]"), datasets, history).rules[0]

    assert judged("RowCount < avg(last(3))").outcome == "Passed"  # 4 < 6
    assert judged("RowCount > last()").outcome == "Failed"  # 4 > 5: the newest earlier value
    failed = judged("RowCount between min(last(2)) + 2 and max(last(3)) * 2")
    assert (failed.outcome, failed.evaluated_rule) == ("Failed", "RowCount between 5.0 and 20.0")
    assert failed.failure_reason == "Value: 4.0 does not meet the constraint requirement!"
    assert judged("RowCount between min(last(2)) - 1 and max(last(3))").outcome == "Passed"  # 2 < 4 < 10
    assert judged('Completeness "name" >= index(last(2), 1) - 0.05').outcome == "Passed"  # 0.75 >= 0.8 - 0.05
    assert judged('Completeness "name" >= median(last(2))').outcome == "Failed"  # 0.75 >= 0.85
    assert judged('Mean "amount" > avg(last(5))').outcome == "Passed"  # no history: last(k) is [0.0], as AWS documents
    out_of_range = judged("RowCount > index(last(3), 3)")
    assert out_of_range.outcome == "Error" and "there are 3" in out_of_range.failure_reason
    assert asked[:2] == ["Dataset.*.RowCount", "Dataset.*.RowCount"] and "Column.name.Completeness" in asked
    without = evaluate(parse("Rules = [ RowCount > avg(last(3)), RowCount = 4 ]"), datasets).rules
    assert [r.outcome for r in without] == ["Error", "Passed"] and "Glue ETL jobs" in without[0].failure_reason


def test_values_sets_ranges_regex_dates_and_negation(datasets):
    cases = {
        'ColumnValues "name" matches "[a-z]+" with threshold = 0.75': "Passed",
        'ColumnValues "name" in ["alice", "bob", "dave", NULL]': "Passed",
        'ColumnValues "cat" not in ["z"]': "Passed",
        'ColumnValues "id" in [1, 2, 3, 4]': "Passed",
        'ColumnValues "amount" > 5': "Passed",
        'ColumnValues "amount" <= 30': "Failed",
        'ColumnValues "day" > (now() - 10 days) with threshold = 0.75': "Passed",
        'ColumnValues "day" >= "2026-11-01"': "Passed",
        'ColumnValues "day" between "2026-11-15" and "2026-12-31"': "Failed",
    }
    assert {text: _only(datasets, text).outcome for text in cases} == cases


def test_composite_and_or(datasets):
    assert _only(datasets, '(IsComplete "id") and (IsUnique "id")').outcome == "Passed"
    assert _only(datasets, '(IsComplete "id") and (IsComplete "name")').outcome == "Failed"
    assert _only(datasets, '(IsComplete "name") or (IsUnique "id")').outcome == "Passed"
    # and binds tighter than or
    assert _only(datasets, '(IsComplete "name") and (IsUnique "id") or (RowCount = 4)').outcome == "Passed"


def test_score_analyzers_and_row_level_outcomes(datasets):
    evaluation = evaluate(parse('Rules = [ IsComplete "name", RowCount = 4, IsComplete "id" where "amount < 35", DetectAnomalies "RowCount" ] '
                                'Analyzers = [ AllStatistics "amount" ]'), datasets)
    assert [r.outcome for r in evaluation.rules] == ["Failed", "Passed", "Passed", "Error"]
    assert evaluation.score == 0.5
    assert evaluation.analyzers[0].metrics["Column.amount.Maximum"] == 40.0
    rows = datasets.connection.execute(
        f"SELECT id, DataQualityRulesPass, DataQualityRulesFail, DataQualityRulesSkip, DataQualityEvaluationResult "
        f"FROM ({row_outcomes_sql(evaluation, datasets.view('primary'))}) ORDER BY id").fetchall()
    assert rows[2] == (3, ['RowCount = 4', 'IsComplete "id" where "amount < 35"'], ['IsComplete "name"'],
                       ['DetectAnomalies "RowCount"'], "Failed")
    assert rows[3] == (4, ['IsComplete "name"', 'RowCount = 4'], [], ['IsComplete "id" where "amount < 35"', 'DetectAnomalies "RowCount"'],
                       "Passed")


def test_learner_sql_cannot_reach_the_host(datasets):
    result = _only(datasets, 'CustomSql "select count(*) from read_text(\'/etc/passwd\')" > 0')
    assert result.outcome == "Error" and "read_text" in result.failure_reason
    assert _only(datasets, 'RowCount > 0 where "getenv(\'HOME\') is not null"').outcome == "Error"
    assert "not found" in _only(datasets, 'CustomSql "select count(*) from other.t" > 0').failure_reason


def test_metadata_variables_labels_and_sections():
    ruleset = parse('Metadata = { "Version": "1.0" }\nDataSources = { "Primary": "t", "AdditionalDataSources": ["ref"] }\n'
                    'allowed = ["a", "b"]\nRules = [ ColumnValues "cat" in $allowed labels = ["team" = "x"] ]\n'
                    'Analyzers = [ RowCount ]')
    assert ruleset.metadata == {"Version": "1.0"} and ruleset.data_sources["AdditionalDataSources"] == ["ref"]
    assert ruleset.rules[0].labels == {"team": "x"} and len(ruleset.analyzers) == 1


@pytest.mark.parametrize("text, message", [
    ('Rules = [\n  RowCount > 3,\n  IsComplete "a" >\n]', "Parsing Error: line 4:0 mismatched input ']' expecting a number"),
    ('Rules = [ RowCount > 3 RowCount ]', "line 1:23 "),
    ('Rules = [ Foo "x" ]', 'Rule Type: Foo is not valid (line 1:10: Foo "x")'),
    ('Rules = [ IsComplete "x" > 0.5 ]', "Unexpected condition for rule of type IsComplete with boolean return type"),
    ('Rules = [ RowCount > 1 with threshold > 0.5 ]', "Threshold condition not supported for rule type: RowCount"),
    ('Rules = [ ColumnCount > 1 where "a > 1" ]', "Where clause is not supported for rule type: ColumnCount"),
    ('Rules = [ IsComplete ]', "Unexpected number of parameters: IsComplete"),
    ('Rules = [ ]', "No rules or analyzers provided."),
    ('Rule = [ RowCount > 1 ]', "line 1:9 mismatched input 'RowCount' expecting QUOTED_STRING"),
    ('Rules = [ RowCount > last(5) ]', "line 1:21 last(5) gives up to 5 values: reduce them with avg, median, max, min, sum or std"),
    ('Rules = [ RowCount > avg(5) ]', "mismatched input '5' expecting last(k)"),
    ('Rules = [ RowCount > avg(last(0)) ]', "last(k) takes a natural number k >= 1"),
    ('Rules = [ RowCount > mode(last(3)) ]', "'mode' is not a dynamic rule function"),
    ('Rules = [ ColumnLength "a" > avg(last(3)) ]', "Dynamic rules are not supported for rule type: ColumnLength"),
    ('Rules = [ ColumnValues "a" > 1 with threshold > avg(last(3)) ]', "Unable to parse threshold condition provided for rule type: ColumnValues"),
])
def test_syntax_errors_name_the_position_and_the_rule(text, message):
    with pytest.raises(DqdlError) as caught:
        parse(text)
    assert message in str(caught.value) and str(caught.value).startswith("Parsing Error")


def test_recommended_ruleset_passes_on_the_data_it_came_from(datasets):
    text = recommend(datasets)
    assert 'IsUnique "id"' in text and 'ColumnValues "cat" in ["a", "b", "c"]' in text and "RowCount between 3 and 5" in text
    assert 'Completeness "name" >= 0.71' in text
    assert evaluate(parse(text), datasets).score == 1.0
