"""Lab 04 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import re

import pytest

from grader.core import LabContext
from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, prove_variant, solution_report, starter_report

SCRIPT = "lifecycle_rules.py"


# Seeds as `dealab` draws a learner's ("learner-" and 8 hex digits); each test runs on one of them. The first
# two once failed L04-08 with the reference solution: their plans have objects 0 days old, which seeding puts
# after its last clock move, and the cost "before" was read from a storage history that had no point with them.
SEEDS = ("learner-0000016e", "learner-00000159", "learner-000000a7", "learner-00000006")


def use_seed(monkeypatch, seed: str) -> None:
    monkeypatch.setenv("DEALAB_LEARNER", seed)


def test_solution_gets_full_marks_and_grading_can_be_repeated(aws_env, monkeypatch):
    use_seed(monkeypatch, SEEDS[2])
    lab = fresh_lab(4, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    assert grade_lab(lab, aws_env).full_marks  # each grading runs its own probe, whatever the clock reads


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_cost_cut_counts_objects_seeded_after_the_last_clock_move(aws_env, monkeypatch, seed):
    """Regression (issue 6): with these seeds L04-08 measured a 1% or -2% cut where the lab's rules make 13% or 23%."""
    use_seed(monkeypatch, seed)
    lab = fresh_lab(4, aws_env)
    assert any(0 in spec["versions"] for spec in LabContext(lab, aws_env, seed).dataset["objects"])  # what made the seed fail
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    cut = next(result for result in report.results if result.id == "L04-08").message
    measured, expected = re.findall(r"(-?[\d.]+)%", cut)
    assert measured == expected, cut  # the report and the lab's rules price the same objects the same way


def test_untouched_starter_does_not_get_full_marks(aws_env, monkeypatch):
    use_seed(monkeypatch, SEEDS[3])
    lab = fresh_lab(4, aws_env)
    report = starter_report(lab, aws_env)
    assert report.score == 0, explain(report)


# Realistic mistakes, each with the checks it must fail (and only those).
MUTANTS = {
    "tmp kept two weeks": ({"L04-04"}, [('"Expiration": {"Days": 7}', '"Expiration": {"Days": 14}')]),
    "one noncurrent version kept": ({"L04-05"}, [('"NewerNoncurrentVersions": 3', '"NewerNoncurrentVersions": 1')]),
    "noncurrent versions kept every one of their first 30 days, none after": ({"L04-05"}, [
        (', "NewerNoncurrentVersions": 3}', "}")]),
    "noncurrent versions kept 60 days": ({"L04-05"}, [('"NoncurrentDays": 30', '"NoncurrentDays": 60')]),
    "uploads kept a month": ({"L04-06"}, [('"DaysAfterInitiation": 7', '"DaysAfterInitiation": 30')]),
    "raw rule ignores the retention tag": ({"L04-07"}, [
        ('"Filter": {"And": {"Prefix": "raw/", "Tags": STANDARD_RETENTION}}', '"Filter": {"Prefix": "raw/"}')]),
    "tmp rule ignores the retention tag": ({"L04-07"}, [
        ('"Filter": {"And": {"Prefix": "tmp/", "Tags": STANDARD_RETENTION}}', '"Filter": {"Prefix": "tmp/"}')]),
    "raw expires at 400 days": ({"L04-03"}, [('"Expiration": {"Days": 365}', '"Expiration": {"Days": 400}')]),
    "raw goes to Glacier Flexible Retrieval, not Instant Retrieval": ({"L04-02"}, [
        ('{"Days": 90, "StorageClass": "GLACIER_IR"}', '{"Days": 90, "StorageClass": "GLACIER"}')]),
    "raw tiers at 60 days, not 30": ({"L04-02"}, [
        ('{"Days": 30, "StorageClass": "STANDARD_IA"}', '{"Days": 60, "StorageClass": "STANDARD_IA"}')]),
    # S3 does not transition small objects anyway, but a size filter also keeps them from ever expiring
    "raw rule skips objects under 128 KiB": ({"L04-03"}, [
        ('"Filter": {"And": {"Prefix": "raw/", "Tags": STANDARD_RETENTION}}',
         '"Filter": {"And": {"Prefix": "raw/", "Tags": STANDARD_RETENTION, "ObjectSizeGreaterThan": 131072}}')]),
    "raw rule left disabled": ({"L04-02", "L04-03", "L04-08"}, [
        ('"ID": "raw-tiering-and-expiry",\n        "Status": "Enabled"', '"ID": "raw-tiering-and-expiry",\n        "Status": "Disabled"')]),
}

# Other correct ways to write the same rules: full marks.
VARIANTS = {
    "rules in reverse order, whole-bucket rules with an empty filter": [
        ('LifecycleConfiguration={"Rules": rules})', 'LifecycleConfiguration={"Rules": rules[::-1]})'),
        ('"ID": "noncurrent-versions",\n        "Status": "Enabled",\n        "Filter": {"Prefix": ""}',
         '"ID": "noncurrent-versions",\n        "Status": "Enabled",\n        "Filter": {}'),
        ('"ID": "abort-incomplete-uploads",\n        "Status": "Enabled",\n        "Filter": {"Prefix": ""}',
         '"ID": "abort-incomplete-uploads",\n        "Status": "Enabled",\n        "Filter": {}')],
    "raw tiering and raw expiry as two rules, the 128 KiB default spelled out": [
        ('        "Expiration": {"Days": 365},\n    },\n',
         '    },\n    {\n        "ID": "raw-expiry",\n        "Status": "Enabled",\n'
         '        "Filter": {"And": {"Tags": STANDARD_RETENTION, "Prefix": "raw/"}},\n        "Expiration": {"Days": 365},\n    },\n'),
        ('LifecycleConfiguration={"Rules": rules})',
         'LifecycleConfiguration={"Rules": rules}, TransitionDefaultMinimumObjectSize="all_storage_classes_128K")')],
    "noncurrent expiry and upload abort in one whole-bucket rule": [
        ('        "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3},\n    },\n    {\n'
         '        "ID": "abort-incomplete-uploads",\n        "Status": "Enabled",\n        "Filter": {"Prefix": ""},\n',
         '        "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3},\n')],
}


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_its_checks_and_only_them(aws_env, tmp_path, monkeypatch, name):
    check_ids, edits = MUTANTS[name]
    use_seed(monkeypatch, SEEDS[list(MUTANTS).index(name) % len(SEEDS)])
    prove_breakage(fresh_lab(4, aws_env), aws_env, tmp_path, check_ids, {SCRIPT: edits})


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, monkeypatch, name):
    use_seed(monkeypatch, SEEDS[list(VARIANTS).index(name) % len(SEEDS)])
    prove_variant(fresh_lab(4, aws_env), aws_env, tmp_path, {SCRIPT: VARIANTS[name]})
