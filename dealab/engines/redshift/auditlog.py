"""Database audit logging: the connection log, the user log and the user activity log, delivered where the
cluster's EnableLogging or the Serverless namespace's logExports send them.

- A provisioned cluster with LogDestinationType s3 (the default) gets gzip files in Redshift's key layout,
  `[prefix/]AWSLogs/<account>/redshift/<region>/<yyyy>/<mm>/<dd>/<account>_redshift_<region>_<cluster>_<logtype>_<yyyy-mm-ddThh:mm>.gz`,
  uploaded every FLUSH_SECONDS["s3"] of lab time (Redshift uploads "at a minimum on an hourly basis"). EnableLogging
  is refused as AWS refuses it when the bucket does not exist or its policy does not let redshift.amazonaws.com
  s3:GetBucketAcl the bucket and s3:PutObject the log keys (`bucket_refusal`).
- A cluster with LogDestinationType cloudwatch, and a Serverless namespace with logExports (Serverless sends audit
  logs to CloudWatch only), get log events in `/aws/redshift/cluster/<cluster>/<logtype>` or
  `/aws/redshift/<namespace>/<logtype>` (stream `serverless`), every FLUSH_SECONDS["cloudwatch"].

While logging is on, each event is a line in `dealab_system.audit_lines` (in the database itself, so a kill -9
loses none); a flush uploads the lines and deletes them in one step. Events: a Data API statement's and a wire
connection's authentication and disconnection (connection log), CREATE/ALTER/DROP USER (user log), each statement
before it runs (user activity log). Lines follow the formats Redshift's documentation gives (pipe-separated
STL_CONNECTION_LOG / STL_USERLOG columns; `'<time> UTC [ db=… user=… pid=… userid=… xid=… ]' LOG: <sql>`)."""

from __future__ import annotations

import datetime
import fnmatch
import gzip
import json
import logging
import re
import threading

from dealab.wire import labtime
from dealab.wire.timers import timers

log = logging.getLogger("dealab.redshift.audit")

SYSTEM = "dealab_system"
TIMER_OWNER = "redshift-audit"
LOG_TYPES = ("connectionlog", "userlog", "useractivitylog")
# How often lines are delivered, in lab time, by destination
FLUSH_SECONDS = {"s3": 3600.0, "cloudwatch": 60.0}
SERVICE_PRINCIPAL = "redshift.amazonaws.com"
METADATA = [
    f"CREATE SEQUENCE IF NOT EXISTS {SYSTEM}.audit_line_ids START 1",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.audit_lines (line_id BIGINT DEFAULT nextval('{SYSTEM}.audit_line_ids'),
        log_type VARCHAR, recorded TIMESTAMP, line VARCHAR)""",
]
USER_CHANGE = re.compile(r"^\s*(?P<action>CREATE|ALTER|DROP)\s+USER\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?\"?(?P<user>[\w.@+-]+)\"?"
                         r"(?:\s+RENAME\s+TO\s+\"?(?P<renamed>[\w.@+-]+)\"?)?", re.I)
# A session's process id as Redshift shows it (pg_backend_pid's range)
PID_BASE = 1073741824


def _connection_time(moment: datetime.datetime) -> str:
    return f"{moment:%a, %d %b %Y %H:%M:%S}:{moment.microsecond // 1000:03d}"


def _listed(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def bucket_refusal(policy_text: str | None, bucket: str, prefix: str, account: str) -> tuple[str, str] | None:
    """(AWS's error code, message) when the bucket policy does not let Redshift write audit logs; None when it does.
    Redshift needs s3:GetBucketAcl on the bucket and s3:PutObject on the log keys for its service principal."""
    try:
        statements = [s for s in _listed(json.loads(policy_text).get("Statement")) if isinstance(s, dict)] if policy_text else []
    except (ValueError, AttributeError):
        statements = []

    def grants(statement: dict, action: str, resource: str) -> bool:
        principal = statement.get("Principal")
        services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
        if SERVICE_PRINCIPAL not in services and principal != "*" and not (isinstance(principal, dict) and "*" in _listed(principal.get("AWS"))):
            return False
        if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(statement.get("Action"))):
            return False
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in _listed(statement.get("Resource")))

    needs = ((f"arn:aws:s3:::{bucket}", "s3:GetBucketAcl", f"Cannot read ACLs of bucket {bucket}. Please ensure that your IAM permissions are set up correctly."),
             (f"arn:aws:s3:::{bucket}/{prefix}AWSLogs/{account}/redshift/x", "s3:PutObject",
              f"Cannot write to bucket {bucket}. Please ensure that your IAM permissions are set up correctly."))
    for resource, action, message in needs:
        allowed = any(s.get("Effect") == "Allow" and grants(s, action, resource) for s in statements)
        denied = any(s.get("Effect") == "Deny" and grants(s, action, resource) for s in statements)
        if denied or not allowed:
            return "InsufficientS3BucketPolicyFault", message
    return None


class Audit:
    """One database's audit log. The engine sets `target` (where logging goes, None while it is off), `admin` (the
    admin user's name), `account`, `region`, and the clients `s3()` and `logs()`."""

    def __init__(self, warehouse):
        self.warehouse = warehouse
        self.target: dict | None = None  # {"destination", "name", "exports", "bucket", "prefix", "deployment"}
        self.admin = "admin"
        self.account, self.region = "", ""
        self.s3 = self.logs = None
        self._lock = threading.Lock()
        self._closed = False

    def _wants(self, log_type: str) -> bool:
        return self.target is not None and log_type in self.target["exports"]

    def _add(self, log_type: str, line: str) -> None:
        with self.warehouse.connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SYSTEM}.audit_lines (log_type, recorded, line) VALUES (?, ?, ?)",
                           [log_type, labtime.live_now(), line])

    # ------------------------------------------------------------ events

    def connection(self, event: str, user: str | None, authmethod: str = "password", application: str = "",
                   remotehost: str = "127.0.0.1", remoteport: str = "", pid: int = 0) -> None:
        """A connection log event: 'authenticated', 'authentication failure' or 'disconnecting'."""
        if not self._wants("connectionlog"):
            return
        fields = [event, _connection_time(labtime.live_now()), remotehost, remoteport, str(PID_BASE + pid % 100000),
                  self.warehouse.database, user or self.admin, authmethod, "0", "", "", "0", "", "", "", application,
                  "", "", "", "", "", ""]
        self._add("connectionlog", "|".join(f"{field} " if index < 8 else field for index, field in enumerate(fields)) + "\n")

    def statement(self, user: str | None, sql: str, query_id: int, pid: int = 0) -> None:
        """The user activity log's line for a statement about to run."""
        if not self._wants("useractivitylog"):
            return
        now = labtime.live_now()
        text = " ".join(sql.split())
        self._add("useractivitylog", f"'{now:%Y-%m-%dT%H:%M:%SZ} UTC [ db={self.warehouse.database} user={user or self.admin} "
                                     f"pid={PID_BASE + pid % 100000} userid={1 if user is None else 100} xid={query_id} ]' LOG: {text}\n")

    def statement_done(self, user: str | None, sql: str, query_id: int, pid: int = 0) -> None:
        """The user log's line for a statement that changed a database user."""
        change = USER_CHANGE.match(sql)
        if not change or not self._wants("userlog"):
            return
        action = {"CREATE": "create", "DROP": "drop"}.get(change.group("action").upper(), "rename" if change.group("renamed") else "alter")
        name, old = (change.group("renamed"), change.group("user")) if change.group("renamed") else (change.group("user"), "")
        superuser = "1" if re.search(r"\bCREATEUSER\b", sql, re.I) else "0"
        fields = ["100", name, old, action, "0", superuser, "0", "", str(PID_BASE + pid % 100000), str(query_id),
                  _connection_time(labtime.live_now())]
        self._add("userlog", "|".join(fields) + "\n")

    # ------------------------------------------------------------ delivery

    def _timer_key(self) -> str:
        return self.warehouse.path.stem

    def schedule(self, after: datetime.datetime | None = None) -> None:
        """Arms the next delivery (logging is on), or forgets it (off)."""
        if self.target is None or self._closed:
            timers.cancel(TIMER_OWNER, self._timer_key())
            return
        due = (after or labtime.live_now()) + datetime.timedelta(seconds=FLUSH_SECONDS[self.target["destination"]])
        timers.schedule(TIMER_OWNER, self._timer_key(), due, self._fire)

    def _fire(self, at: datetime.datetime) -> None:
        try:
            self.flush(at)
        except Exception:  # the bucket went away or its policy changed: the lines wait for the next round
            log.warning("audit log delivery of %s failed", self.warehouse.path.stem, exc_info=True)
        self.schedule(max(at, labtime.live_now()))

    def flush(self, moment: datetime.datetime | None = None) -> int:
        """Delivers every waiting line; returns how many."""
        target = self.target
        if target is None or self._closed:
            return 0
        moment = moment or labtime.live_now()
        with self._lock, self.warehouse.connection.cursor() as cursor:
            waiting = cursor.execute(f"SELECT line_id, log_type, recorded, line FROM {SYSTEM}.audit_lines ORDER BY line_id").fetchall()
            if not waiting:
                return 0
            deliver = self._to_s3 if target["destination"] == "s3" else self._to_cloudwatch
            for log_type in LOG_TYPES:
                lines = [(recorded, line) for _, kind, recorded, line in waiting if kind == log_type]
                if lines and log_type in target["exports"]:
                    deliver(target, log_type, lines, moment)
            cursor.execute(f"DELETE FROM {SYSTEM}.audit_lines WHERE line_id <= ?", [waiting[-1][0]])
        return len(waiting)

    def _to_s3(self, target: dict, log_type: str, lines: list, moment: datetime.datetime) -> None:
        client = self.s3()
        policy = None
        try:
            policy = client.get_bucket_policy(Bucket=target["bucket"])["Policy"]
        except client.exceptions.ClientError:
            pass
        refusal = bucket_refusal(policy, target["bucket"], target["prefix"], self.account)
        if refusal:
            raise PermissionError(refusal[1])
        prefix = f"{target['prefix']}AWSLogs/{self.account}/redshift/{self.region}/{moment:%Y/%m/%d}/"
        key = f"{prefix}{self.account}_redshift_{self.region}_{target['name']}_{log_type}_{moment:%Y-%m-%dT%H:%M}.gz"
        client.put_object(Bucket=target["bucket"], Key=key, Body=gzip.compress("".join(line for _, line in lines).encode()))

    def _to_cloudwatch(self, target: dict, log_type: str, lines: list, moment: datetime.datetime) -> None:
        client = self.logs()
        group = (f"/aws/redshift/{target['name']}/{log_type}" if target["deployment"] == "serverless"
                 else f"/aws/redshift/cluster/{target['name']}/{log_type}")
        stream = "serverless" if target["deployment"] == "serverless" else target["name"]
        for create in (lambda: client.create_log_group(logGroupName=group),
                       lambda: client.create_log_stream(logGroupName=group, logStreamName=stream)):
            try:
                create()
            except client.exceptions.ResourceAlreadyExistsException:
                pass
        epoch = datetime.datetime(1970, 1, 1)
        events = [{"timestamp": int((recorded - epoch).total_seconds() * 1000), "message": line.rstrip("\n")} for recorded, line in lines]
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def close(self) -> None:
        self._closed = True
        timers.cancel(TIMER_OWNER, self._timer_key())
