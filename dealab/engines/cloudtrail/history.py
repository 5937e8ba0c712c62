"""Event history: the last 90 days (lab time) of management events, for LookupEvents.

One JSON-lines file per lab day (`history/YYYY-MM-DD.jsonl`, a line `{"record": ..., "resources": [...]}`):
recording a call is one appended line, and forgetting a day past the 90 is deleting its file.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
from pathlib import Path

from dealab.wire.store import JsonLines, child_path

RETENTION = datetime.timedelta(days=90)
MAX_RESULTS = 50
# LookupAttribute key → what it compares in one stored line.
ATTRIBUTES = {
    "EventId": lambda line: [line["record"]["eventID"]],
    "EventName": lambda line: [line["record"]["eventName"]],
    "ReadOnly": lambda line: ["true" if line["record"]["readOnly"] else "false"],
    "Username": lambda line: [username(line["record"]["userIdentity"])],
    "ResourceType": lambda line: [item["ResourceType"] for item in line["resources"]],
    "ResourceName": lambda line: [item["ResourceName"] for item in line["resources"]],
    "EventSource": lambda line: [line["record"]["eventSource"]],
    "AccessKeyId": lambda line: [line["record"]["userIdentity"].get("accessKeyId")],
}


class HistoryError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def username(identity: dict) -> str | None:
    """The user name LookupEvents shows: the IAM user's, "root", or an assumed role's session name."""
    if identity.get("type") == "Root":
        return "root"
    if identity.get("userName"):
        return identity["userName"]
    arn = identity.get("arn") or ""
    return arn.rsplit("/", 1)[-1] or None


def _parse_time(value) -> datetime.datetime:
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _epoch(text: str) -> float:
    return (datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ") - datetime.datetime(1970, 1, 1)).total_seconds()


class EventHistory:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._day = ""
        self._file: JsonLines | None = None

    def append(self, record: dict, resources: list[dict]) -> None:
        day = record["eventTime"][:10]
        with self._lock:
            if day != self._day:
                if self._file is not None:
                    self._file.close()
                self._day, self._file = day, JsonLines(child_path(self.folder, day, ".jsonl"))
            self._file.append([{"record": record, "resources": resources}])

    def prune(self, now: datetime.datetime) -> int:
        """Deletes the days older than 90 days before `now`; returns how many."""
        oldest = (now - RETENTION).strftime("%Y-%m-%d")
        removed = 0
        with self._lock:
            for path in sorted(self.folder.glob("*.jsonl")):
                if path.stem < oldest:
                    if path.stem == self._day and self._file is not None:
                        self._file.close()
                        self._file, self._day = None, ""
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def clear(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file, self._day = None, ""
            for path in self.folder.glob("*.jsonl"):
                path.unlink(missing_ok=True)

    def lookup(self, parameters: dict, now: datetime.datetime) -> dict:
        attributes = parameters.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise HistoryError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
        test = None
        if attributes:
            key, wanted = attributes[0].get("AttributeKey"), attributes[0].get("AttributeValue")
            read = ATTRIBUTES.get(key)
            if read is None:
                raise HistoryError("InvalidLookupAttributesException", f"Invalid AttributeKey {key!r}: use one of {', '.join(ATTRIBUTES)}.")
            test = lambda line: wanted in read(line)  # noqa: E731 - one comparison, chosen once
        start = max(_parse_time(parameters["StartTime"]) if "StartTime" in parameters else now - RETENTION, now - RETENTION)
        end = _parse_time(parameters["EndTime"]) if "EndTime" in parameters else now
        if start > end:
            raise HistoryError("InvalidTimeRangeException", "Start time must be before end time.")
        if parameters.get("EventCategory") == "insight":
            return {"Events": []}  # Insights events are not generated: no trail here has Insights selectors that fire
        limit = parameters.get("MaxResults") or MAX_RESULTS
        if not 1 <= limit <= MAX_RESULTS:
            raise HistoryError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        cursor = _cursor(parameters.get("NextToken"))
        start_text, end_text = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
        events: list[dict] = []
        days = sorted((path.stem for path in self.folder.glob("*.jsonl") if start_text[:10] <= path.stem <= end_text[:10]), reverse=True)
        for day in days:
            if cursor and day > cursor[0]:
                continue
            lines = list(JsonLines(self.folder / f"{day}.jsonl").read())
            last = cursor[1] if cursor and day == cursor[0] else len(lines)
            for index in range(last - 1, -1, -1):
                line = lines[index]
                moment = line["record"]["eventTime"]
                if not start_text <= moment <= end_text or (test is not None and not test(line)):
                    continue
                if len(events) == limit:
                    return {"Events": events, "NextToken": _token(day, index + 1)}
                events.append(_event(line))
        return {"Events": events}


def _event(line: dict) -> dict:
    record = line["record"]
    event = {"EventId": record["eventID"], "EventName": record["eventName"], "ReadOnly": "true" if record["readOnly"] else "false",
             "EventTime": _epoch(record["eventTime"]), "EventSource": record["eventSource"], "Resources": line["resources"],
             "CloudTrailEvent": json.dumps(record, separators=(",", ":"))}
    if record["userIdentity"].get("accessKeyId"):
        event["AccessKeyId"] = record["userIdentity"]["accessKeyId"]
    name = username(record["userIdentity"])
    if name:
        event["Username"] = name
    return event


def _token(day: str, before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([day, before]).encode()).decode()


def _cursor(token: str | None) -> tuple[str, int] | None:
    if not token:
        return None
    try:
        day, before = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(day), int(before)
    except (ValueError, TypeError):
        raise HistoryError("InvalidNextTokenException", "Invalid NextToken.") from None
