"""Lab 04 reference solution: the bucket's lifecycle rules."""

import json

import boto3

BUCKET = "dea-lifecycle-lab"
STANDARD_RETENTION = [{"Key": "retention", "Value": "standard"}]

s3 = boto3.client("s3")

rules = [
    {
        "ID": "raw-tiering-and-expiry",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "raw/", "Tags": STANDARD_RETENTION}},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER_IR"}],
        "Expiration": {"Days": 365},
    },
    {
        "ID": "tmp-expiry",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "tmp/", "Tags": STANDARD_RETENTION}},
        "Expiration": {"Days": 7},
    },
    {
        "ID": "noncurrent-versions",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3},
    },
    {
        "ID": "abort-incomplete-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    },
]

s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})
print(json.dumps(s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"], indent=2))
