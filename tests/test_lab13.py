"""Lab 13 proves its grader: the solution gets full marks, the untouched starter scores nothing, each realistic
mistake — a policy too broad as much as one too narrow — fails exactly the checks that name it (a FAIL, never an
ERROR), and other correct ways of writing the lake keep full marks. A grading takes seconds, but running the
solution (roles, key, Lambda, Macie job) takes more, so mistakes judged by disjoint checks share one grading,
each check still proving its own mistake."""

import pytest

from tests.labkit import combined_mutants, explain, fresh_lab, prove_breakage, prove_variant, solution_report, starter_report

pytestmark = pytest.mark.slow
ROLES = "roles.py"
PROTECT = "protect.py"
GOVERN = "govern.py"
SECRET = "secret.py"
FUNCTION = "rotation_function.py"
PII = "pii.py"

ROOT_ONLY = ''',
         # the account's root user itself, not every principal the account's IAM policies would let in
         "Condition": {"ArnEquals": {"aws:PrincipalArn": ROOT}}},'''
BUCKET_DENY = '''        {"Sid": "OnlyTheLakesPeople", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{LAKE}", f"arn:aws:s3:::{LAKE}/*"],
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROOT, *ROLE.values()]}}},
'''
INGEST_WRITES = '''{"Sid": "LandExtracts", "Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{LAKE}/raw/*"},'''
STEWARD_KEY = '''{"Sid": "StewardManagesAndUses", "Effect": "Allow", "Principal": {"AWS": ROLE[STEWARD]}, "Action": "kms:*", "Resource": "*"},'''
ANALYST_RESULTS = '''        {"Sid": "QueryResults", "Effect": "Allow",'''
FINISH = '''        secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current)'''
EU_ONLY = '''    eu = [masked(row) for row in rows if row["region"] == "EU"]'''
MASKED_GRANT = '''Resource={"Table": {"DatabaseName": DATABASE, "Name": MASKED_TABLE}}, Permissions=["SELECT", "DESCRIBE"])'''

# mistake: (the checks it must fail, {file: [(old, new), ...]})
MUTANTS = {
    "key policy delegates to IAM (the usual root statement)": ({"L13-08"}, {PROTECT: [(ROOT_ONLY, "},")]}),
    "row filter forgotten (all rows)": ({"L13-03"}, {GOVERN: [('''"RowFilter": {"FilterExpression": "region = 'EU'"}''', '''"RowFilter": {"AllRowsWildcard": {}}''')]}),
    "rotation every 90 days": ({"L13-14"}, {SECRET: [('RotationRules={"AutomaticallyAfterDays": 30}', 'RotationRules={"AutomaticallyAfterDays": 90}')]}),
    "bucket policy without the deny": ({"L13-07"}, {PROTECT: [(BUCKET_DENY, "")]}),
    "database's own table defaults left (the trap)": ({"L13-06"}, {GOVERN: [(
        '''    glue.update_database(Name=DATABASE, DatabaseInput={"Name": DATABASE, "Description": database.get("Description", ""),
                                                       "CreateTableDefaultPermissions": []})\n''', "")]}),
    "masked copy keeps the card numbers": ({"L13-12"}, {PII: [('''"card_number": last4(row["card_number"], "**** **** **** "), ''', "")]}),
    # as if Athena needed them: S3 and the key let the analyst read the objects around Lake Formation
    "analyst may read the lake's objects": ({"L13-04"}, {
        ROLES: [(ANALYST_RESULTS, '''        {"Sid": "ReadTheLake", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{LAKE}/*"},
''' + ANALYST_RESULTS)],
        PROTECT: [(STEWARD_KEY, STEWARD_KEY + '''
        {"Sid": "AnalystDecrypts", "Effect": "Allow", "Principal": {"AWS": ROLE[ANALYST]}, "Action": "kms:Decrypt", "Resource": "*"},''')]}),
    "ingest role with s3:* on the lake": ({"L13-02"}, {ROLES: [(INGEST_WRITES, INGEST_WRITES.replace('"s3:PutObject"', '"s3:*"').replace("/raw/*", "/*"))]}),
    "Macie job scoped to the masked zone": ({"L13-11"}, {PII: [('"values": ["raw/"]', '"values": ["masked/"]')]}),
    "the extract that arrived before encryption left as it was": ({"L13-09"}, {PROTECT: [("    encrypted = encrypt_existing(key_arn)\n", "    encrypted = 0\n")]}),
    "secret without a resource policy": ({"L13-10"}, {SECRET: [("    only_its_readers(secret_arn)\n", "")]}),
    "finishSecret never moves AWSCURRENT": ({"L13-14"}, {FUNCTION: [(FINISH, "        print(f'finished {token}')")],
                                                           SECRET: [("    wait_for_rotation(secret_arn, version)\n", "")]}),
    "IAM_ALLOWED_PRINCIPALS keeps ALL on the tables": ({"L13-03", "L13-04", "L13-06"}, {GOVERN: [(
        '''        revoke_quietly(EVERYONE, {"Table": {"DatabaseName": DATABASE, "Name": table["Name"]}}, ["ALL"])''',
        "        pass")]}),
    "steward not a data lake administrator": ({"L13-13"}, {GOVERN: [('''admins + [{"DataLakePrincipalIdentifier": STEWARD_ARN}]''', "admins")]}),
    "ingest role trusts only the Glue service": ({"L13-01", "L13-02", "L13-10"}, {ROLES: [(
        "    role(INGEST, trust(), [", '    role(INGEST, trust(people=False, services=("glue.amazonaws.com",)), [')]}),
    "account defaults left as they were (only gov_lake fixed)": ({"L13-05"}, {GOVERN: [(
        "                    CreateDatabaseDefaultPermissions=[], CreateTableDefaultPermissions=[])", "                    )")]}),
}
# mistakes judged by disjoint checks, graded together (one grading costs one run of the whole solution)
MUTANT_GROUPS = (
    ("key policy delegates to IAM (the usual root statement)", "row filter forgotten (all rows)", "rotation every 90 days",
     "ingest role trusts only the Glue service"),
    ("bucket policy without the deny", "database's own table defaults left (the trap)", "masked copy keeps the card numbers"),
    ("analyst may read the lake's objects", "ingest role with s3:* on the lake", "Macie job scoped to the masked zone"),
    ("the extract that arrived before encryption left as it was", "secret without a resource policy", "finishSecret never moves AWSCURRENT"),
    ("IAM_ALLOWED_PRINCIPALS keeps ALL on the tables", "steward not a data lake administrator",
     "account defaults left as they were (only gov_lake fixed)"),
)

VARIANTS = {
    "bucket and secret policies by role-name pattern, the filter as a column list, rotation by rate(10 days)": {
        PROTECT: [('"Condition": {"ArnNotEquals": {"aws:PrincipalArn": [ROOT, *ROLE.values()]}}},',
                   '"Condition": {"ArnNotLike": {"aws:PrincipalArn": [ROOT, f"arn:aws:iam::{account}:role/dea-gov-*"]}}},')],
        SECRET: [('"Condition": {"ArnNotEquals": {"aws:PrincipalArn": READERS}}}', '"Condition": {"StringNotLike": {"aws:PrincipalArn": [ROOT, f"arn:aws:iam::{account}:role/dea-gov-*"]}}}'),
                 ('RotationRules={"AutomaticallyAfterDays": 30}', 'RotationRules={"ScheduleExpression": "rate(10 days)"}')],
        GOVERN: [('"ColumnWildcard": {"ExcludedColumnNames": PII_COLUMNS}',
                  '"ColumnNames": ["customer_id", "region", "country", "segment", "lifetime_value"]')],
    },
    "masked copy of every customer, EU rows by a second cells filter; identifiers dropped to tokens only": {
        PII: [(EU_ONLY, '    eu = [masked(row) for row in rows]'),
              (MASKED_GRANT, '''Resource={"DataCellsFilter": {"TableCatalogId": account, "DatabaseName": DATABASE, "TableName": MASKED_TABLE, "Name": "eu_masked"}},
                                    Permissions=["SELECT"])'''),
              ('''    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": f"arn:aws:iam::{account}:role/{ANALYST}"},''',
               '''    lakeformation.create_data_cells_filter(TableData={"TableCatalogId": account, "DatabaseName": DATABASE, "TableName": MASKED_TABLE,
                                                      "Name": "eu_masked", "RowFilter": {"FilterExpression": "region = 'EU'"}, "ColumnWildcard": {}})
    lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": f"arn:aws:iam::{account}:role/{ANALYST}"},'''),
              ('''"phone": last4(row["phone"], "***-***-"), "ssn": last4(row["ssn"], "***-**-"),''', '''"phone": token(row["phone"]), "ssn": token(row["ssn"]),''')],
    },
}


def test_solution_gets_full_marks(aws_env):
    report = solution_report(fresh_lab(13, aws_env), aws_env)
    assert report.full_marks, explain(report)


def test_untouched_starter_scores_nothing(aws_env):
    report = starter_report(fresh_lab(13, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert not [r for r in report.results if r.status not in ("PASS", "FAIL")], explain(report)


@pytest.mark.parametrize("group", MUTANT_GROUPS, ids=[" + ".join(group) for group in MUTANT_GROUPS])
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, group):
    prove_breakage(fresh_lab(13, aws_env), aws_env, tmp_path, *combined_mutants(MUTANTS, group))


def test_every_mutant_is_graded():
    assert sorted(name for group in MUTANT_GROUPS for name in group) == sorted(MUTANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(13, aws_env), aws_env, tmp_path, VARIANTS[name])
