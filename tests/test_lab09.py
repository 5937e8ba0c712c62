"""Lab 09 proves its grader: the solution gets full marks, the starter does not, each realistic mistake of a
learner (a mutant of the solution) fails exactly the checks it should, and other correct ways of writing the
solution (variants) still get full marks."""

import pytest

from tests.labkit import FAIL, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, starter_report

DEPLOY, VALIDATOR, LOADER = "deploy.py", "validator.py", "loader.py"
WILDCARD = '"object": {"key": [{"wildcard": "landing/*.jsonl"}]}'
REPORTED = 'FunctionResponseTypes=["ReportBatchItemFailures"]'

MUTANTS = {
    # the loader answers batchItemFailures, but the mapping never reads them: the batch counts as done, poison is deleted
    "mapping without ReportBatchItemFailures": ({"L09-06"}, {DEPLOY: [(", " + REPORTED + ")\nelse", ")\nelse"),
                                                                      (",\n                                          " + REPORTED + ")", ")")]}),
    # the whole batch fails with its poison: valid records beside it are retried and dead-lettered too
    "loader fails the whole batch": ({"L09-07"}, {LOADER: [('    return {"batchItemFailures": failures}',
                                                            '    if failures:\n        raise RuntimeError(f"{len(failures)} records failed")')]}),
    "rule on the whole bucket": ({"L09-02"}, {DEPLOY: [(", " + WILDCARD, "")]}),
    "rule on the prefix only": ({"L09-02"}, {DEPLOY: [(WILDCARD, '"object": {"key": [{"prefix": "landing/"}]}')]}),
    "unconditional put": ({"L09-05"}, {LOADER: [(', ConditionExpression="attribute_not_exists(record_id)"', "")]}),
    "conditional check failure counted as a failure": ({"L09-05"}, {LOADER: [(
        '            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":\n'
        '                continue  # an earlier delivery loaded it: done\n', "")]}),
    "no redrive policy": ({"L09-06", "L09-10"}, {DEPLOY: [(',\n                             RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})', "")]}),
    # a record without its fields crashes the loader's whole batch: the valid records beside it are dead-lettered
    "validator queues every line that parses": ({"L09-03", "L09-04", "L09-07"}, {VALIDATOR: [("            reason = problem_of(record)\n", "            reason = None\n")]}),
    "no subscription to the topic": ({"L09-08", "L09-09"}, {DEPLOY: [("sns.subscribe(TopicArn=topic_arn, Protocol=\"sqs\", Endpoint=ops_arn)\n", "")]}),
    "no on-failure destination": ({"L09-09"}, {DEPLOY: [(',\n                                           DestinationConfig={"OnFailure": {"Destination": topic_arn}}', "")]}),
    "visibility timeout equal to the loader's timeout": ({"L09-10"}, {DEPLOY: [("VisibilityTimeout=str(6 * LOADER_TIMEOUT)", "VisibilityTimeout=str(LOADER_TIMEOUT)")]}),
}

VARIANTS = {
    "prefix in the rule, suffix checked by the validator": {
        DEPLOY: [(WILDCARD, '"object": {"key": [{"prefix": "landing/"}]}')],
        VALIDATOR: [('    bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]\n',
                     '    bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]\n'
                     '    if not key.endswith(".jsonl"):\n        return {"skipped": key}\n')]},
    "raw message delivery to the ops queue": {DEPLOY: [('Protocol="sqs", Endpoint=ops_arn)', 'Protocol="sqs", Endpoint=ops_arn, Attributes={"RawMessageDelivery": "true"})')]},
    "loader through the DynamoDB resource with Decimal": {LOADER: [
        ('import json\n', 'import json\nfrom decimal import Decimal\n'),
        ('dynamodb = boto3.client("dynamodb")\n', 'table = boto3.resource("dynamodb").Table(os.environ["TABLE"])\n'),
        ('        record = json.loads(message["body"])\n', '        record = json.loads(message["body"], parse_float=Decimal)\n'),
        ('            dynamodb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(record_id)")',
         '            table.put_item(Item={**record}, ConditionExpression="attribute_not_exists(record_id)")'),
        # the resource's serializer refuses an out-of-range Decimal itself, before any call
        ("        except ClientError as error:\n", "        except (ClientError, ArithmeticError) as error:\n"),
        ('            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":',
         '            if getattr(error, "response", {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException":'),
    ]},
}


def test_solution_gets_full_marks_and_runs_again(aws_env):
    lab = fresh_lab(9, aws_env)
    run_solution(lab, aws_env)
    run_solution(lab, aws_env)  # deploying again changes nothing and the same batches land again
    report = grade_lab(lab, aws_env)
    assert report.full_marks, explain(report)


def test_untouched_starter_fails_every_check(aws_env):
    report = starter_report(fresh_lab(9, aws_env), aws_env)
    assert report.score == 0, explain(report)
    assert all(result.status == FAIL for result in report.results), explain(report)


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(9, aws_env), aws_env, tmp_path, check_ids, edits)


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(9, aws_env), aws_env, tmp_path, VARIANTS[name])
