"""The warehouse password's rotation function: Secrets Manager calls it with {"Step", "SecretId",
"ClientRequestToken"} four times per rotation (README, step 4)."""

import boto3

secrets = boto3.client("secretsmanager")


def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    # TODO: createSecret: put a new password (GetRandomPassword) as version `token`, staged AWSPENDING
    # TODO: setSecret: the database would get the new password here (the lab's warehouse is not real: log it)
    # TODO: testSecret: check the pending value is usable
    # TODO: finishSecret: move AWSCURRENT to version `token`
    raise NotImplementedError(f"step {step} of the rotation of {arn} is not written yet")
