"""Lab 01 proves its grader: the solution gets full marks, the starter does not, each realistic mistake (a
mutant of the solution) fails the matching check and only it, and other correct spellings get full marks."""

import pytest

from tests.labkit import explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, solution_report, starter_report

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


TLS_RESOURCES = '"Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],'
KMS_STATEMENT_RESOURCE = '"Resource": f"arn:aws:s3:::{bucket}/*",'
KMS_CONDITION = '{"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}'
DEFAULT_KEY = '{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}'

# Realistic mistakes, each with the check(s) it must fail and only those.
MUTANTS = {
    "versioning left off": ({"L01-02"}, {SCRIPT: [('    s3.put_bucket_versioning(Bucket=BUCKETS["raw"], VersioningConfiguration={"Status": "Enabled"})\n', "")]}),
    "versioning on the curated bucket instead of raw": ({"L01-02"}, {SCRIPT: [
        ('s3.put_bucket_versioning(Bucket=BUCKETS["raw"]', 's3.put_bucket_versioning(Bucket=BUCKETS["curated"]')]}),
    "no key rotation": ({"L01-03"}, {SCRIPT: [("    kms.enable_key_rotation(KeyId=key_arn)\n", "")]}),
    "default encryption with AES256": ({"L01-04"}, {SCRIPT: [(DEFAULT_KEY, '{"SSEAlgorithm": "AES256"}')]}),
    "default encryption with the AWS-managed key": ({"L01-04"}, {SCRIPT: [(DEFAULT_KEY, '{"SSEAlgorithm": "aws:kms"}')]}),
    "TLS condition value misspelt": ({"L01-05"}, {SCRIPT: [
        ('"Condition": {"Bool": {"aws:SecureTransport": "false"}}', '"Condition": {"Bool": {"aws:SecureTransport": "nonsense"}}')]}),
    # found case L01-05: a TLS-only Deny on the bucket ARN alone leaves object reads and writes open over plain HTTP
    "TLS deny on the bucket ARN only": ({"L01-05"}, {SCRIPT: [(TLS_RESOURCES, '"Resource": f"arn:aws:s3:::{bucket}",')]}),
    "TLS deny on the objects only": ({"L01-05"}, {SCRIPT: [(TLS_RESOURCES, '"Resource": f"arn:aws:s3:::{bucket}/*",')]}),
    "TLS rule covers only object reads and writes": ({"L01-05"}, {SCRIPT: [
        ('"Action": "s3:*",', '"Action": ["s3:GetObject", "s3:PutObject"],')]}),
    "SSE-KMS statement on another action": ({"L01-06"}, {SCRIPT: [('"Action": "s3:PutObject",', '"Action": "s3:PutObjectTagging",')]}),
    "bucket policy only on the raw bucket": ({"L01-05", "L01-06"}, {SCRIPT: [
        ("    s3.put_bucket_policy(Bucket=bucket, Policy=tls_and_kms_only_policy(bucket))\n",
         '    if zone == "raw":\n        s3.put_bucket_policy(Bucket=bucket, Policy=tls_and_kms_only_policy(bucket))\n')]}),
    "SSE-KMS statement only refuses a missing header, so SSE-S3 passes": ({"L01-06"}, {SCRIPT: [
        (KMS_CONDITION, '{"Null": {"s3:x-amz-server-side-encryption": "true"}}')]}),
    "public ACLs not blocked": ({"L01-07"}, {SCRIPT: [('"BlockPublicAcls": True,', '"BlockPublicAcls": False,')]}),
    "RestrictPublicBuckets forgotten": ({"L01-07"}, {SCRIPT: [('            "RestrictPublicBuckets": True,\n', "")]}),
    "zone tag wrong": ({"L01-08"}, {SCRIPT: [('{"Key": "zone", "Value": zone}', '{"Key": "zone", "Value": "lake"}')]}),
    "tag key capitalised": ({"L01-08"}, {SCRIPT: [('{"Key": "project", "Value": PROJECT}', '{"Key": "Project", "Value": PROJECT}')]}),
    "one source skipped": ({"L01-09"}, {SCRIPT: [
        ('for path in sorted(DATA.rglob("*.csv")):', 'for path in sorted(p for p in DATA.rglob("*.csv") if "source=web" not in str(p)):')]}),
    "partition folders flattened into the file name": ({"L01-09"}, {SCRIPT: [
        ('key = RAW_PREFIX + path.relative_to(DATA).as_posix()', 'key = RAW_PREFIX + path.relative_to(DATA).as_posix().replace("/", "_", 1)')]}),
    "uploaded with the AWS-managed key": ({"L01-10"}, {SCRIPT: [
        ("SSEKMSKeyId=key_arn)", "SSEKMSKeyId=kms.describe_key(KeyId='alias/aws/s3')['KeyMetadata']['Arn'])")]}),
    "extracts re-encoded on the way": ({"L01-10"}, {SCRIPT: [("Body=path.read_bytes()", "Body=path.read_text().strip().encode()")]}),
}

# Other correct ways to write the solution: each gets full marks.
VARIANTS = {
    "policy statements in the other order and Resource as a list": {SCRIPT: [
        ('"Statement": [\n            {\n                "Sid": "DenyInsecureTransport",', '"Statement": list(reversed([\n            {\n                "Sid": "DenyInsecureTransport",'),
        ("            },\n        ],\n    })", "            },\n        ])),\n    })"),
        (KMS_STATEMENT_RESOURCE, '"Resource": [f"arn:aws:s3:::{bucket}/*"],')]},
    "TLS rule as two statements, bucket and objects, with Principal AWS *": {SCRIPT: [
        ('                "Principal": "*",\n                "Action": "s3:*",\n                ' + TLS_RESOURCES,
         '                "Principal": {"AWS": "*"},\n                "Action": ["s3:*"],\n                "Resource": f"arn:aws:s3:::{bucket}",\n'
         '                "Condition": {"Bool": {"aws:SecureTransport": "false"}},\n            },\n            {\n'
         '                "Sid": "DenyInsecureObjectAccess",\n                "Effect": "Deny",\n                "Principal": "*",\n'
         '                "Action": "s3:*",\n                "Resource": f"arn:aws:s3:::{bucket}/*",')]},
    "key named by its alias ARN in default encryption and uploads": {SCRIPT: [
        ("    return key_arn\n", '    return key_arn.split(":key/")[0] + ":" + KEY_ALIAS\n')]},
    "key named by its key id, bucket key off, uploads by upload_file": {SCRIPT: [
        ("    return key_arn\n", '    return key_arn.split("/")[-1]\n'),
        ('                "BucketKeyEnabled": True,\n', ""),
        ('s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)',
         's3.upload_file(str(path), bucket, key, ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_arn})')]},
}


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_its_check_and_only_it(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(1, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(1, aws_env), aws_env, tmp_path, VARIANTS[name])
