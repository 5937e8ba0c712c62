"""Lab 01 checks: the landing zone's buckets, key, policies and the extracts that landed in it."""

from __future__ import annotations

import hashlib
import uuid

from botocore.exceptions import ClientError

from grader.core import Fail, LabContext, check

ZONES = {"raw": "dea-lake-raw", "curated": "dea-lake-curated", "quarantine": "dea-lake-quarantine"}
KEY_ALIAS = "alias/dea-lake"
RAW_PREFIX = "sales/"
PUBLIC_ACCESS_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
S3_DOCS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide"


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _missing_buckets(ctx: LabContext) -> list[str]:
    present = {b["Name"] for b in ctx.client("s3").list_buckets().get("Buckets", [])}
    return [name for name in ZONES.values() if name not in present]


def _existing_buckets(ctx: LabContext) -> dict[str, str]:
    missing = _missing_buckets(ctx)
    if missing:
        raise Fail(f"bucket {missing[0]} does not exist yet, so this cannot be checked")
    return ZONES


def _lake_key_id(ctx: LabContext) -> str:
    try:
        return ctx.client("kms").describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["KeyId"]
    except ClientError as error:
        if _error_code(error) == "NotFoundException":
            raise Fail(f"there is no KMS key behind {KEY_ALIAS}, so nothing in the lake can be encrypted with a key you control") from None
        raise


def _key_id_of(ctx: LabContext, reference: str) -> str:
    """Resolves any way of naming a key (id, ARN, alias, alias ARN) to its key id."""
    try:
        return ctx.client("kms").describe_key(KeyId=reference)["KeyMetadata"]["KeyId"]
    except ClientError:
        return f"<unknown key {reference}>"


def _probe(ctx: LabContext, bucket: str, client=None, **put_arguments) -> str | None:
    """Tries one PutObject; returns the error code, or None when it was accepted (the probe is then removed)."""
    s3 = client or ctx.client("s3")
    key = f"_dealab_probe/{uuid.uuid4().hex}.txt"
    try:
        response = s3.put_object(Bucket=bucket, Key=key, Body=b"probe", **put_arguments)
    except ClientError as error:
        return _error_code(error)
    delete = {"VersionId": response["VersionId"]} if response.get("VersionId") else {}
    ctx.client("s3").delete_object(Bucket=bucket, Key=key, **delete)
    return None


@check("L01-01", "The three zone buckets exist", points=2, task="2.1",
       hints=("A landing zone keeps one bucket per zone (raw, curated, quarantine) so that each can have its own policy, key and lifecycle.",
              "S3 CreateBucket, once per zone; the starter's create_zone_bucket already does it: run the starter.",
              "s3.create_bucket(Bucket=name) for dea-lake-raw, dea-lake-curated and dea-lake-quarantine (outside us-east-1 add "
              "CreateBucketConfiguration={'LocationConstraint': region})."),
       docs=f"{S3_DOCS}/create-bucket-overview.html")
def zone_buckets(ctx: LabContext) -> str:
    missing = _missing_buckets(ctx)
    if missing:
        raise Fail(f"missing bucket(s): {', '.join(missing)}")
    return f"buckets {', '.join(ZONES.values())} exist"


@check("L01-02", "The raw zone keeps every version of an object", points=2, task="2.3",
       hints=("Versioning keeps every version of an object, so an overwrite or a delete in the raw zone can be undone.",
              "S3 PutBucketVersioning with Status Enabled, on the raw bucket.",
              "s3.put_bucket_versioning(Bucket='dea-lake-raw', VersioningConfiguration={'Status': 'Enabled'})"),
       docs=f"{S3_DOCS}/Versioning.html")
def raw_versioning(ctx: LabContext) -> str:
    bucket = _existing_buckets(ctx)["raw"]
    status = ctx.client("s3").get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    if status != "Enabled":
        raise Fail(f"bucket {bucket}: versioning is {status}, expected Enabled; an overwrite or delete in the raw zone cannot be undone")
    return f"bucket {bucket} has versioning Enabled"


@check("L01-03", "A customer-managed KMS key with rotation sits behind alias/dea-lake", points=2, task="4.3",
       hints=("A customer-managed KMS key gives you its key policy, its audit trail and yearly rotation; an alias is a stable name for it.",
              "KMS CreateKey, CreateAlias (alias/dea-lake) and EnableKeyRotation.",
              "key_arn = kms.create_key()['KeyMetadata']['Arn']; kms.create_alias(AliasName='alias/dea-lake', TargetKeyId=key_arn); "
              "kms.enable_key_rotation(KeyId=key_arn)"),
       docs="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html")
def lake_key(ctx: LabContext) -> str:
    kms = ctx.client("kms")
    key_id = _lake_key_id(ctx)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    if metadata.get("KeyManager") != "CUSTOMER":
        raise Fail(f"{KEY_ALIAS} points at an AWS-managed key, whose policy and rotation you cannot control")
    if metadata.get("KeyState") != "Enabled":
        raise Fail(f"key {key_id} behind {KEY_ALIAS} is {metadata.get('KeyState')}, expected Enabled")
    if not kms.get_key_rotation_status(KeyId=key_id).get("KeyRotationEnabled"):
        raise Fail(f"key {key_id} behind {KEY_ALIAS}: automatic rotation is off, so the same key material encrypts data forever")
    return f"key {key_id} behind {KEY_ALIAS} is customer-managed, enabled, rotating"


@check("L01-04", "Every zone bucket encrypts by default with the lake key", points=2, task="4.3",
       hints=("Default encryption encrypts every object stored without encryption headers; with SSE-KMS and your key, nothing lands unencrypted "
              "or under a key you do not control.",
              "S3 PutBucketEncryption with a rule ApplyServerSideEncryptionByDefault (SSEAlgorithm aws:kms, KMSMasterKeyID), on each bucket.",
              "s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={'Rules': [{'ApplyServerSideEncryptionByDefault': "
              "{'SSEAlgorithm': 'aws:kms', 'KMSMasterKeyID': key_arn}}]})"),
       docs=f"{S3_DOCS}/default-bucket-encryption.html")
def default_encryption(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    key_id = _lake_key_id(ctx)
    for bucket in _existing_buckets(ctx).values():
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as error:
            if _error_code(error) == "ServerSideEncryptionConfigurationNotFoundError":
                raise Fail(f"bucket {bucket} has no default encryption") from None
            raise
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") != "aws:kms":
            raise Fail(f"bucket {bucket}: default encryption is {default.get('SSEAlgorithm')}, expected aws:kms")
        configured = default.get("KMSMasterKeyID")
        if not configured or _key_id_of(ctx, configured) != key_id:
            raise Fail(f"bucket {bucket}: default encryption uses {configured or 'the AWS-managed aws/s3 key'}, expected the key behind {KEY_ALIAS}")
    return f"all three buckets default to SSE-KMS with the key behind {KEY_ALIAS}"


def _refused_over_plain_http(ctx: LabContext, bucket: str) -> str | None:
    """Tries what an eavesdropper's victim would send without TLS: a bucket-level List, an object-level Get and
    an object-level Put (asking for SSE-KMS with the lake key, so that only the TLS rule can refuse it).
    Returns the first request that got past the bucket policy, or None when all three were denied."""
    plain = ctx.insecure_client("s3")
    key = f"_dealab_probe/{uuid.uuid4().hex}.txt"
    attempts = {
        "ListObjectsV2 on the bucket": lambda: plain.list_objects_v2(Bucket=bucket, MaxKeys=1),
        f"GetObject of {key}": lambda: plain.get_object(Bucket=bucket, Key=key),
        f"PutObject of {key}": lambda: plain.put_object(Bucket=bucket, Key=key, Body=b"probe", ServerSideEncryption="aws:kms",
                                                        SSEKMSKeyId=_lake_key_reference(ctx)),
    }
    for action, attempt in attempts.items():
        try:
            response = attempt()
        except ClientError as error:
            if _error_code(error) == "AccessDenied":
                continue
            return f"{action} got past the policy (it failed later, with {_error_code(error)})"
        if action.startswith("PutObject"):
            ctx.client("s3").delete_object(Bucket=bucket, Key=key, **({"VersionId": response["VersionId"]} if response.get("VersionId") else {}))
        return f"{action} was allowed"
    return None


def _lake_key_reference(ctx: LabContext) -> str:
    try:
        return ctx.client("kms").describe_key(KeyId=KEY_ALIAS)["KeyMetadata"]["Arn"]
    except ClientError:
        return KEY_ALIAS  # no key yet: a plain-HTTP write still shows whether TLS is enforced


@check("L01-05", "Requests without TLS are denied, on the bucket and on its objects", points=2, task="4.3",
       hints=("A bucket policy can refuse every request that did not arrive over TLS. It must cover the bucket itself "
              "and every object in it: listing acts on the bucket, reading and writing act on objects.",
              "A Deny statement on the global condition key aws:SecureTransport, whose Resource names both the bucket "
              "ARN and its objects' ARN (bucket/*); applied with put_bucket_policy.",
              "{'Effect': 'Deny', 'Principal': '*', 'Action': 's3:*', 'Resource': [f'arn:aws:s3:::{bucket}', "
              "f'arn:aws:s3:::{bucket}/*'], 'Condition': {'Bool': {'aws:SecureTransport': 'false'}}}"),
       docs="https://repost.aws/knowledge-center/s3-bucket-policy-for-config-rule")
def tls_only(ctx: LabContext) -> str:
    for bucket in _existing_buckets(ctx).values():
        let_through = _refused_over_plain_http(ctx, bucket)
        if let_through:
            raise Fail(f"bucket {bucket}: over plain HTTP a {let_through}; without TLS that data can be read or altered "
                       "on the wire, so the bucket and its objects must refuse aws:SecureTransport=false")
    return "all three buckets refuse plain-HTTP List, Get and Put"


@check("L01-06", "Uploads that do not ask for SSE-KMS are refused", points=3, task="4.3",
       hints=("Default encryption is not enforcement: only a bucket policy can refuse an upload that asks for no encryption, or for SSE-S3.",
              "A Deny statement on s3:PutObject for the objects (bucket/*) with the condition key s3:x-amz-server-side-encryption "
              "(StringNotEquals aws:kms).",
              "{'Effect': 'Deny', 'Principal': '*', 'Action': 's3:PutObject', 'Resource': f'arn:aws:s3:::{bucket}/*', "
              "'Condition': {'StringNotEquals': {'s3:x-amz-server-side-encryption': 'aws:kms'}}}"),
       docs=f"{S3_DOCS}/UsingKMSEncryption.html#require-sse-kms")
def kms_uploads_only(ctx: LabContext) -> str:
    _lake_key_id(ctx)
    for bucket in _existing_buckets(ctx).values():
        refused = _probe(ctx, bucket)
        if refused is None:
            raise Fail(f"bucket {bucket}: a PutObject that asked for no encryption was accepted; default encryption is not enforcement")
        if refused != "AccessDenied":
            raise Fail(f"bucket {bucket}: a PutObject without encryption failed with {refused}, expected AccessDenied from the bucket policy")
        sse_s3 = _probe(ctx, bucket, ServerSideEncryption="AES256")
        if sse_s3 is None:
            raise Fail(f"bucket {bucket}: a PutObject asking for SSE-S3 (AES256) was accepted; only aws:kms may pass")
        # the key named by ARN, as S3 reports it: a policy that pins the lake key compares with the ARN
        with_kms = _probe(ctx, bucket, ServerSideEncryption="aws:kms", SSEKMSKeyId=_lake_key_reference(ctx))
        if with_kms is not None:
            raise Fail(f"bucket {bucket}: a PutObject with SSE-KMS and the lake key was refused ({with_kms}); the policy is too strict")
    return "all three buckets accept SSE-KMS uploads and refuse the rest"


@check("L01-07", "Public access is blocked on every zone bucket", points=2, task="4.2",
       hints=("Block Public Access overrides any ACL or bucket policy that would make a bucket or its objects public.",
              "S3 PutPublicAccessBlock with all four settings: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets.",
              "s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={'BlockPublicAcls': True, 'IgnorePublicAcls': True, "
              "'BlockPublicPolicy': True, 'RestrictPublicBuckets': True})"),
       docs=f"{S3_DOCS}/access-control-block-public-access.html")
def public_access_blocked(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    for bucket in _existing_buckets(ctx).values():
        try:
            block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except ClientError as error:
            if _error_code(error) == "NoSuchPublicAccessBlockConfiguration":
                raise Fail(f"bucket {bucket} has no public access block") from None
            raise
        off = [name for name in PUBLIC_ACCESS_SETTINGS if not block.get(name)]
        if off:
            raise Fail(f"bucket {bucket}: {', '.join(off)} not enabled")
        try:
            s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
        except ClientError as error:
            if _error_code(error) in {"AccessDenied", "AccessControlListNotSupported"}:  # blocked, or ACLs disabled altogether
                continue
            raise Fail(f"bucket {bucket}: a public-read ACL failed with {_error_code(error)}, not the refusal Block Public Access gives") from None
        s3.put_bucket_acl(Bucket=bucket, ACL="private")
        raise Fail(f"bucket {bucket}: a public-read ACL was accepted, so the bucket can still be made public")
    return "all three buckets block public ACLs and policies"


@check("L01-08", "Buckets are tagged for governance", points=1, task="4.5",
       hints=("Tags attribute cost and ownership: Cost Explorer and tag policies group resources by them. Keys and values are case-sensitive.",
              "S3 PutBucketTagging with the tags project and zone on each bucket.",
              "s3.put_bucket_tagging(Bucket=bucket, Tagging={'TagSet': [{'Key': 'project', 'Value': 'dea-lake'}, {'Key': 'zone', 'Value': zone}]})"),
       docs="https://docs.aws.amazon.com/whitepapers/latest/tagging-best-practices/tagging-best-practices.html")
def governance_tags(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    for zone, bucket in _existing_buckets(ctx).items():
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
        except ClientError as error:
            if _error_code(error) == "NoSuchTagSet":
                raise Fail(f"bucket {bucket} has no tags") from None
            raise
        expected = {"project": "dea-lake", "zone": zone}
        wrong = {k: tags.get(k) for k, v in expected.items() if tags.get(k) != v}
        if wrong:
            raise Fail(f"bucket {bucket}: tags {wrong}, expected {expected} (keys and values are case-sensitive), so cost and ownership reports miss it")
    return "every bucket carries project and zone tags"


def _landed_keys(ctx: LabContext) -> set[str]:
    bucket = _existing_buckets(ctx)["raw"]
    keys = set()
    for page in ctx.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=RAW_PREFIX):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


@check("L01-09", "Every extract landed under its Hive-style key", points=3, task="2.4",
       hints=("Hive-style keys (source=web/dt=2024-05-01/) let Athena, Glue and Spark read folders as partition columns and skip the days "
              "a query does not need.",
              "S3 PutObject with a Key built from the file's path relative to data/, under the sales/ prefix.",
              "key = 'sales/' + path.relative_to(DATA).as_posix(), e.g. sales/source=web/dt=2024-05-01/orders.csv"),
       docs="https://docs.aws.amazon.com/athena/latest/ug/partitions.html")
def landed_layout(ctx: LabContext) -> str:
    expected = {RAW_PREFIX + path for path in ctx.dataset["files"]}
    landed = _landed_keys(ctx)
    missing, extra = sorted(expected - landed), sorted(landed - expected)
    if missing:
        raise Fail(f"bucket {ZONES['raw']}: {len(missing)} of {len(expected)} extracts missing, e.g. {missing[0]}")
    if extra:
        raise Fail(f"bucket {ZONES['raw']}: unexpected object(s) under {RAW_PREFIX}, e.g. {extra[0]}")
    return f"all {len(expected)} extracts are in s3://{ZONES['raw']}/{RAW_PREFIX} with source=/dt= keys"


@check("L01-10", "Landed extracts are byte-identical and encrypted with the lake key", points=3, task="2.1",
       hints=("The raw zone keeps data exactly as it arrived, and every object is encrypted under the lake's own key.",
              "S3 PutObject with the file's bytes unchanged and the headers ServerSideEncryption and SSEKMSKeyId.",
              "s3.put_object(Bucket='dea-lake-raw', Key=key, Body=path.read_bytes(), ServerSideEncryption='aws:kms', SSEKMSKeyId=key_arn)"),
       docs=f"{S3_DOCS}/UsingKMSEncryption.html")
def landed_content(ctx: LabContext) -> str:
    s3 = ctx.client("s3")
    bucket = ZONES["raw"]
    key_id = _lake_key_id(ctx)
    landed = _landed_keys(ctx)
    if not landed:
        raise Fail(f"no extract has landed in s3://{bucket}/{RAW_PREFIX} yet, so there is nothing to compare")
    sources = ctx.dataset["files"]
    for key in sorted(landed):
        obj = s3.get_object(Bucket=bucket, Key=key)
        source = sources.get(key[len(RAW_PREFIX):])  # an object under a key of its own is L01-09's business; its encryption is ours
        if source is not None and hashlib.sha256(obj["Body"].read()).hexdigest() != source:
            raise Fail(f"s3://{bucket}/{key} differs from data/{key[len(RAW_PREFIX):]}; the raw zone must keep the bytes exactly as they arrived")
        if obj.get("ServerSideEncryption") != "aws:kms" or _key_id_of(ctx, obj.get("SSEKMSKeyId", "")) != key_id:
            raise Fail(f"s3://{bucket}/{key} is encrypted with {obj.get('ServerSideEncryption')} {obj.get('SSEKMSKeyId', '')}, "
                       f"not the key behind {KEY_ALIAS}, so its use escapes your key policy and audit")
    compared = len(landed)
    return f"{compared} landed extracts match the source files and use the lake key"
