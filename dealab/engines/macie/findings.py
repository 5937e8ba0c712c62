"""Sensitive data findings in Macie's shape, and how ListFindings and GetFindingStatistics read them.

A finding's type follows the categories found in the object (SensitiveData:S3Object/Financial, /Personal,
/Credentials, /CustomIdentifier, or /Multiple when more than one); its severity comes from SEVERITY_LADDERS for
managed categories and from each custom data identifier's own severityLevels (MEDIUM from one occurrence when it
has none), the finding taking the highest.
"""

from __future__ import annotations

import datetime
import secrets

from dealab.engines.macie.scan import Scanned

TYPE_BY_CATEGORY = {"FINANCIAL_INFORMATION": "Financial", "PERSONAL_INFORMATION": "Personal", "CREDENTIALS": "Credentials",
                    "CUSTOM_IDENTIFIER": "CustomIdentifier"}
SEVERITY_SCORE = {"Low": 1, "Medium": 2, "High": 3}
# (occurrences at least, severity) per category, read from Macie's "Severity scoring for sensitive data findings".
SEVERITY_LADDERS = {
    "CREDENTIALS": ((1, "High"),),
    "FINANCIAL_INFORMATION": ((1, "High"),),
    "PERSONAL_INFORMATION": ((1, "Medium"), (100, "High")),
}
DEFAULT_CUSTOM_SEVERITY = [{"occurrencesThreshold": 1, "severity": "MEDIUM"}]


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _laddered(ladder, count: int) -> str | None:
    reached = [severity for threshold, severity in ladder if count >= threshold]
    return reached[-1] if reached else None


def custom_severity(identifier: dict, count: int) -> str | None:
    """The severity a custom identifier gives `count` occurrences; None below its lowest threshold (no finding)."""
    levels = sorted(identifier.get("severityLevels") or DEFAULT_CUSTOM_SEVERITY, key=lambda level: level["occurrencesThreshold"])
    return _laddered([(level["occurrencesThreshold"], level["severity"].capitalize()) for level in levels], count)


def build(job: dict, bucket: dict, obj: dict, scanned: Scanned, managed: dict, customs: dict, now: datetime.datetime,
          account: str, region: str) -> dict | None:
    """The finding for one object, or None when nothing reportable was found. `managed` maps detector keys to their
    rows (category), `customs` custom identifier ids to their records."""
    by_category: dict[str, list[dict]] = {}
    severities: list[str] = []
    for key, detection in scanned.detections.items():
        if key in managed:
            by_category.setdefault(managed[key].category, []).append(
                {"type": key, "count": detection.count, "occurrences": detection.occurrences})
    sensitive = []
    for category, detections in sorted(by_category.items()):
        total = sum(d["count"] for d in detections)
        sensitive.append({"category": category, "detections": sorted(detections, key=lambda d: d["type"]), "totalCount": total})
        severities.append(_laddered(SEVERITY_LADDERS[category], total))
    custom_detections = []
    for key, detection in scanned.detections.items():
        if key in customs:
            severity = custom_severity(customs[key], detection.count)
            if severity is None:
                continue
            severities.append(severity)
            custom_detections.append({"arn": customs[key]["arn"], "name": customs[key]["name"], "count": detection.count,
                                      "occurrences": detection.occurrences})
    categories = list(by_category) + (["CUSTOM_IDENTIFIER"] if custom_detections else [])
    if not categories:
        return None
    kind = TYPE_BY_CATEGORY[categories[0]] if len(categories) == 1 else "Multiple"
    severity = max(severities, key=SEVERITY_SCORE.__getitem__)
    stamp = iso(now)
    key = obj["Key"]
    bucket_arn = f"arn:aws:s3:::{bucket['name']}"
    return {
        "accountId": account, "archived": False, "category": "CLASSIFICATION", "count": 1, "createdAt": stamp, "updatedAt": stamp,
        "id": secrets.token_hex(16), "partition": "aws", "region": region, "sample": False, "schemaVersion": "1.0",
        "type": f"SensitiveData:S3Object/{kind}", "severity": {"description": severity, "score": SEVERITY_SCORE[severity]},
        "title": f"The S3 object contains {kind.lower()} information." if kind != "Multiple" else "The S3 object contains multiple categories of sensitive data.",
        "description": f"The object contains sensitive data that Macie found with a classification job ({job['name']}).",
        "resourcesAffected": {
            "s3Bucket": {"arn": bucket_arn, "name": bucket["name"], "owner": {"id": account}, "createdAt": bucket.get("createdAt"),
                         "defaultServerSideEncryption": {"encryptionType": "AES256"}, "tags": []},
            "s3Object": {"bucketArn": bucket_arn, "key": key, "path": f"{bucket['name']}/{key}", "eTag": obj.get("ETag", "").strip('"'),
                         "extension": key.rsplit(".", 1)[-1] if "." in key.rsplit("/", 1)[-1] else "", "size": obj.get("Size", scanned.size),
                         "lastModified": obj.get("LastModified"), "storageClass": obj.get("StorageClass", "STANDARD"),
                         "serverSideEncryption": {"encryptionType": "NONE"}, "tags": [], "publicAccess": False},
        },
        "classificationDetails": {
            "jobId": job["jobId"], "jobArn": job["jobArn"], "originType": "SENSITIVE_DATA_DISCOVERY_JOB",
            "detailedResultsLocation": None,
            "result": {
                "mimeType": scanned.mime_type, "sizeClassified": scanned.size, "status": {"code": "COMPLETE"},
                # more occurrences than the 15 per type a finding lists
                "additionalOccurrences": any(d.count > sum(map(len, d.occurrences.values())) for d in scanned.detections.values()),
                "sensitiveData": sensitive,
                "customDataIdentifiers": {"detections": custom_detections, "totalCount": sum(d["count"] for d in custom_detections)},
            },
        },
    }


def field_value(finding: dict, path: str):
    value = finding
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _comparable(value, against):
    """ISO stamps compare with criteria given as epoch milliseconds, as ListFindings takes dates."""
    if isinstance(value, str) and isinstance(against, (int, float)) and value[:4].isdigit() and "T" in value:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000
    return value


def _matches(value, condition: dict) -> bool:
    for operator, wanted in condition.items():
        if operator in ("eq", "eqExactMatch") and value not in wanted and str(value) not in map(str, wanted):
            return False
        if operator == "neq" and (value in wanted or str(value) in map(str, wanted)):
            return False
        for name, test in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b), ("lt", lambda a, b: a < b), ("lte", lambda a, b: a <= b)):
            if operator == name and (value is None or not test(_comparable(value, wanted), wanted)):
                return False
    return True


def select(findings: list[dict], criteria: dict | None) -> list[dict]:
    criterion = (criteria or {}).get("criterion") or {}
    return [f for f in findings if all(_matches(field_value(f, path), condition) for path, condition in criterion.items())]


def ordered(findings: list[dict], sort: dict | None) -> list[dict]:
    attribute = (sort or {}).get("attributeName") or "createdAt"
    descending = (sort or {}).get("orderBy") == "DESC"
    return sorted(findings, key=lambda f: (field_value(f, attribute) is None, str(field_value(f, attribute))), reverse=descending)


def statistics(findings: list[dict], group_by: str) -> list[dict]:
    counts: dict[str, int] = {}
    for finding in findings:
        key = str(field_value(finding, group_by))
        counts[key] = counts.get(key, 0) + 1
    return [{"groupKey": key, "count": count} for key, count in sorted(counts.items())]
