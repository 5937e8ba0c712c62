"""S3's naming rules for general purpose buckets, shared by what refuses a bad name (the validation engine) and what
must tell a bucket's own name from an access point's alias or an ARN (wire.s3changes)."""

from __future__ import annotations

import ipaddress
import re

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets)
BUCKET_NAME_FORM = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid general purpose bucket name, or None."""
    if not BUCKET_NAME_FORM.fullmatch(name):
        return "3 to 63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit"
    if ".." in name:
        return "no two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "not formatted as an IP address"
    except ValueError:
        pass
    if name.startswith(RESERVED_BUCKET_PREFIXES) or name.endswith(RESERVED_BUCKET_SUFFIXES):
        return f"no reserved prefix {RESERVED_BUCKET_PREFIXES} or suffix {RESERVED_BUCKET_SUFFIXES}"
    return None
