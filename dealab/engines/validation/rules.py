"""What is validated where: (service, operation) → the validators that run, in order, before the request
goes on. Each validator takes the request and returns AWS's refusal, or None to let it pass."""

from __future__ import annotations

from collections.abc import Callable

from dealab.engines.validation import bucket_policy, dynamodb, kinesis, s3
from dealab.wire.messages import AwsRequest, AwsResponse

Validator = Callable[[AwsRequest], AwsResponse | None]

RULES: dict[tuple[str, str], tuple[Validator, ...]] = {
    ("s3", "CreateBucket"): (s3.valid_bucket_name,),
    ("s3", "PutObject"): (s3.key_not_too_long, s3.body_matches_content_md5),
    ("s3", "UploadPart"): (s3.body_matches_content_md5,),
    ("s3", "CopyObject"): (s3.key_not_too_long,),
    ("s3", "CreateMultipartUpload"): (s3.key_not_too_long,),
    ("s3", "PutBucketPolicy"): (bucket_policy.policy_is_well_formed,),
    ("dynamodb", "BatchWriteItem"): (dynamodb.batch_write_within_limits,),
    ("kinesis", "PutRecord"): (kinesis.record_data_is_base64,),
    ("kinesis", "PutRecords"): (kinesis.records_data_is_base64,),
}
