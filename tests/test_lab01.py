"""Lab 01 proves its grader: the solution gets full marks, the starter does not, and each small breakage
of the solution fails the matching check and only it."""

import pytest

from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, run_solution, solution_report, starter_report

SCRIPT = "landing_zone.py"


def test_solution_gets_full_marks_and_survives_a_restart(aws_env):
    from dealab.stack import control

    lab = fresh_lab(1, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)  # rerunnable
    control.down(aws_env)
    control.up(aws_env)
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks(aws_env):
    report = starter_report(fresh_lab(1, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3
    assert {"L01-01"} <= {r.id for r in report.results if r.status == "PASS"}  # the starter creates the buckets


BREAKAGES = {
    "versioning left off": ("L01-02", [('    s3.put_bucket_versioning(Bucket=BUCKETS["raw"], VersioningConfiguration={"Status": "Enabled"})\n', "")]),
    "no key rotation": ("L01-03", [("    kms.enable_key_rotation(KeyId=key_arn)\n", "")]),
    "default encryption with AES256": ("L01-04", [('{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}', '{"SSEAlgorithm": "AES256"}')]),
    "policy without the TLS statement": ("L01-05", [('"Condition": {"Bool": {"aws:SecureTransport": "false"}}', '"Condition": {"Bool": {"aws:SecureTransport": "nonsense"}}')]),
    "policy without the SSE-KMS statement": ("L01-06", [('"Action": "s3:PutObject",', '"Action": "s3:PutObjectTagging",')]),
    "public ACLs not blocked": ("L01-07", [('"BlockPublicAcls": True,', '"BlockPublicAcls": False,')]),
    "zone tag wrong": ("L01-08", [('{"Key": "zone", "Value": zone}', '{"Key": "zone", "Value": "lake"}')]),
    "one source skipped": ("L01-09", [('for path in sorted(DATA.rglob("*.csv")):', 'for path in sorted(p for p in DATA.rglob("*.csv") if "source=web" not in str(p)):')]),
    "uploaded with the AWS-managed key": ("L01-10", [("SSEKMSKeyId=key_arn)", "SSEKMSKeyId=kms.describe_key(KeyId='alias/aws/s3')['KeyMetadata']['Arn'])")]),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_breakage_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_id, edits = BREAKAGES[name]
    prove_breakage(fresh_lab(1, aws_env), aws_env, tmp_path, {check_id}, {SCRIPT: edits})
