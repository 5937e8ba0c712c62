"""Listing the S3 objects a read covers, so job bookmarks can leave out those an earlier run read."""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from urllib.parse import urlsplit

import boto3


@cache
def s3():
    return boto3.client("s3")


def split_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a", "s3n"):
        raise ValueError(f"{uri} is not an s3:// path")
    return parts.netloc, parts.path.lstrip("/")


def _hidden(key: str, prefix: str) -> bool:
    """Objects Spark and Glue skip: folder markers and names starting with _ or . (like _SUCCESS)."""
    relative = key[len(prefix):] if key.startswith(prefix) else key
    return key.endswith("/") or any(part.startswith(("_", ".")) and "=" not in part for part in relative.split("/") if part)


def list_objects(paths: list[str], exclusions: str | list[str] | None = None, recurse: bool = True) -> dict[str, str]:
    """{s3://bucket/key: ETag} of the data objects under `paths`, without empty ones and exclusion globs."""
    patterns = json.loads(exclusions) if isinstance(exclusions, str) else list(exclusions or [])
    found: dict[str, str] = {}
    for path in paths:
        bucket, prefix = split_uri(path)
        paginator = s3().get_paginator("list_objects_v2")
        arguments = {"Bucket": bucket, "Prefix": prefix}
        if not recurse:
            arguments["Delimiter"] = "/"
        for page in paginator.paginate(**arguments):
            for item in page.get("Contents", []):
                key = item["Key"]
                relative = key[len(prefix):].lstrip("/")
                if item["Size"] == 0 or _hidden(key, prefix):
                    continue
                if any(fnmatch.fnmatch(relative, pattern.replace("**", "*")) for pattern in patterns):
                    continue
                found[f"s3://{bucket}/{key}"] = item["ETag"].strip('"')
    return found
