"""The warehouse password's rotation function: Secrets Manager calls it four times per rotation, one step each.

createSecret puts a new password as the AWSPENDING version; setSecret would set it on the database (the lab's
warehouse is not a real one: the step logs what it would do); testSecret checks the new value is usable;
finishSecret makes it AWSCURRENT, which leaves the old version AWSPREVIOUS.
"""

import json

import boto3

secrets = boto3.client("secretsmanager")


def handler(event, context):
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    versions = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if token not in versions:
        raise ValueError(f"version {token} is not a version of {arn}")
    if "AWSCURRENT" in versions[token] and step != "testSecret":
        return  # this version is already current: nothing to do
    if step == "createSecret":
        current = json.loads(secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
        try:
            secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except secrets.exceptions.ResourceNotFoundException:
            password = secrets.get_random_password(PasswordLength=32, ExcludeCharacters="\"'@/\\ ")["RandomPassword"]
            secrets.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps({**current, "password": password}),
                                     VersionStages=["AWSPENDING"])
    elif step == "setSecret":
        pending = json.loads(secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
        print(f"ALTER USER {pending['username']} PASSWORD '****' on {pending['host']}")
    elif step == "testSecret":
        pending = json.loads(secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
        if len(pending.get("password", "")) < 32:
            raise ValueError("the pending password is too short")
    elif step == "finishSecret":
        current = next(version for version, stages in versions.items() if "AWSCURRENT" in stages)
        secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current)
    else:
        raise ValueError(f"unknown step {step}")
