"""The Redshift engine: Redshift Serverless namespaces and workgroups (the backend has none), the endpoint of
moto's provisioned clusters, and the Data API running real SQL on one DuckDB database per cluster or namespace
(warehouse.py), with COPY from and UNLOAD to S3 through the engine's own S3 client.

State lives in state_dir/redshift/: the DuckDB files (the data: DuckDB's write-ahead log keeps every committed
statement through a kill -9, and closing checkpoints), and JSON documents through the store for namespaces,
workgroups, endpoint ports and Data API statements. A statement runs on a worker thread, never in the request:
SUBMITTED → STARTED → FINISHED / FAILED / ABORTED. Its result rows are kept in memory; a statement that was
running when the stack stopped is FAILED at the next start."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
import socket
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from typing import TYPE_CHECKING

from dealab.engines.redshift import tls
from dealab.engines.redshift.endpoints import Endpoints
from dealab.engines.redshift.pgwire import md5_secret
from dealab.wire import labtime, paging, rolesessions, serviceevents
from dealab.wire.engine import Engine, EngineContext
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile, JsonLines, UnsafeName, child_path, rename, write_atomic
from dealab.wire.trailevents import ACCOUNT_ID

# DuckDB and sqlglot load with the first statement, not with the stack
if TYPE_CHECKING:
    from dealab.engines.redshift.warehouse import Warehouse

log = logging.getLogger("dealab.redshift")

SERVERLESS_OPERATIONS = ("CreateNamespace", "GetNamespace", "ListNamespaces", "DeleteNamespace", "UpdateNamespace",
                         "CreateWorkgroup", "GetWorkgroup", "ListWorkgroups", "DeleteWorkgroup")
DATA_OPERATIONS = ("ExecuteStatement", "BatchExecuteStatement", "DescribeStatement", "GetStatementResult",
                   "GetStatementResultV2", "ListStatements", "CancelStatement", "ListDatabases", "ListSchemas",
                   "ListTables", "DescribeTable")
CLUSTER_OPERATIONS = {"CreateCluster": "_create_cluster", "DescribeClusters": "_cluster_endpoint",
                      "DeleteCluster": "_delete_cluster", "ModifyCluster": "_modify_cluster",
                      "DescribeDataShares": "_describe_data_shares", "DescribeDataSharesForProducer": "_describe_data_shares",
                      "DescribeDataSharesForConsumer": "_describe_data_shares", "EnableLogging": "_enable_logging",
                      "DisableLogging": "_disable_logging"}
# A workgroup is CREATING for this long in lab time, then AVAILABLE (AWS takes a few minutes)
WORKGROUP_CREATE_SECONDS = 2.0
NAMESPACE_NAME = re.compile(r"[a-z0-9-]{3,64}")
CLUSTER_IDENTIFIER = re.compile(r"[a-z][a-z0-9-]{0,62}")
DEFAULT_DATABASE = "dev"
FINAL_STATUSES = frozenset({"FINISHED", "FAILED", "ABORTED"})
RUNNING_STATUSES = ("SUBMITTED", "PICKED", "STARTED")
STACK_STOPPED = "ERROR: the dealab stack stopped while this statement ran"
# What a statement record keeps for the engine only (DescribeStatement does not show it)
PRIVATE_FIELDS = ("target", "region", "WithEvent", "runAs", "signInError", "caller")
# How long AWS keeps a statement's result: the event's expireAt
RESULT_KEPT_SECONDS = 24 * 3600
# DescribeStatement of a running statement waits this long for it to end before answering, so a client polling
# every few ms or every second sees FINISHED as soon as it is, not at its next poll (as the Athena engine does)
STATE_WAIT_SECONDS = 0.02
KEPT_STATEMENTS = 500
MAX_SQL_BYTES = 100 * 1024  # the Data API's limit on a statement's text (and what bounds statements.json)
KEPT_RESULTS = 32
RESULT_PAGE_ROWS = 10_000
STATEMENT_WORKERS = 4
# A database is checkpointed once idle this long after a statement (the stack's idle snapshot waits as long)
IDLE_CHECKPOINT_SECONDS = 30.0
CHECKPOINT_POLL_SECONDS = 5.0
# DuckDB type (pattern over its name) → Redshift's type name and the Data API field that carries the value
TYPE_FIELDS = [
    (r"^(INTEGER|INT32)$", "int4", "longValue"), (r"^(BIGINT|INT64)$", "int8", "longValue"),
    (r"^(SMALLINT|TINYINT|UTINYINT|USMALLINT)$", "int2", "longValue"), (r"^(HUGEINT|UBIGINT|UINTEGER)$", "numeric", "stringValue"),
    (r"^DECIMAL", "numeric", "stringValue"), (r"^DOUBLE$", "float8", "doubleValue"), (r"^FLOAT$", "float4", "doubleValue"),
    (r"^BOOLEAN$", "bool", "booleanValue"), (r"^DATE$", "date", "stringValue"),
    (r"^TIMESTAMP WITH TIME ZONE$", "timestamptz", "stringValue"), (r"^TIMESTAMP", "timestamp", "stringValue"),
    (r"^TIME", "time", "stringValue"), (r"^JSON$", "super", "stringValue"), (r"", "varchar", "stringValue"),
]


AUDIT_LOG_TYPES = ("connectionlog", "userlog", "useractivitylog")


def _query_error(code: str, message: str, status: int = 400) -> AwsResponse:
    """An error in the query protocol's shape (the redshift API's)."""
    from xml.sax.saxutils import escape

    body = (f'<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return AwsResponse(status, [("Content-Type", "text/xml")], body.encode())


class RedshiftApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _type_field(duckdb_type: str) -> tuple[str, str]:
    return next((name, member) for pattern, name, member in TYPE_FIELDS if re.search(pattern, duckdb_type))


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


# Paging members by API: Serverless spells them in camel case, the Data API in Pascal case
PAGING = {"serverless": ("maxResults", "nextToken"), "data": ("MaxResults", "NextToken")}


def _page(member: str, items: list, params: dict, api: str) -> dict:
    size_member, token_member = PAGING[api]
    return paging.page(member, items, params, default=100, token_member=token_member, limit_member=size_member,
                       invalid_token=lambda token: RedshiftApiError("ValidationException", f"Invalid {token_member}: {token}"))


def _reserve_port() -> int:
    """A free port on 127.0.0.1 for the endpoint, where the Postgres wire protocol listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedshiftEngine(Engine):
    name = "redshift"
    operations = ({("redshift-serverless", name): f"_{name}" for name in SERVERLESS_OPERATIONS}
                  | {("redshift-data", name): f"_{name}" for name in DATA_OPERATIONS}
                  | {("redshift", name): method for name, method in CLUSTER_OPERATIONS.items()})

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self.folder = context.state_dir / "redshift"
        self.serverless = JsonFile(self.folder / "serverless.json")
        self.ports = JsonFile(self.folder / "cluster_ports.json")
        self.statements_file = JsonFile(self.folder / "statements.json")
        self.datashares_file = JsonFile(self.folder / "datashares.json")  # shares cross databases: the engine keeps them
        self.audited_file = JsonFile(self.folder / "audited.json")  # databases with audit logging on
        self._datashares = None
        # each cluster's DefaultIamRoleArn (moto keeps IamRoles but not the default): `IAM_ROLE default` names it
        self.default_roles = JsonFile(self.folder / "cluster_default_roles.json")
        self.role_sessions = rolesessions.RoleSessions(context, "redshift.amazonaws.com")  # IAM_ROLE's sessions (roles.py)
        self.streaming_file = JsonFile(self.folder / "streaming.json")  # databases with auto-refresh streaming views
        self._lock = threading.RLock()
        self._ended = threading.Condition(self._lock)  # notified when a statement reaches a final status
        # statements.json is rewritten off the request; each change is appended to the journal first (a write the OS
        # holds, so a kill -9 loses none): loaded as the file, then the journal set aside by a rewrite under way,
        # then the journal
        self.statements_journal = JsonLines(self.folder / "statements.journal")
        self._statements: dict[str, dict] = self._load_statements()
        self._records_changed = threading.Event()  # the statement records changed since last written
        self._writing = threading.Lock()  # one rewrite of statements.json at a time (the writer's, or close's)
        self._results: OrderedDict[str, tuple[list, list]] = OrderedDict()
        self._sessions: dict[str, object] = {}  # running statement id → its DuckDB cursor (for CancelStatement)
        self._warehouses: dict[str, Warehouse] = {}
        self._workers = ThreadPoolExecutor(STATEMENT_WORKERS, thread_name_prefix="redshift-statement")
        self._stopping = threading.Event()
        self.endpoints = Endpoints(self.folder, self._warehouse_of, lambda: self.own_client("s3"))
        tls.ensure_certificates(self.folder / "tls")  # before any endpoint: `dealab env` exports the bundle
        threading.Thread(target=self._checkpoint_idle, name="redshift-checkpoints", daemon=True).start()
        threading.Thread(target=self._write_statement_records, name="redshift-statement-records", daemon=True).start()
        self._fail_interrupted()
        self._serve_known_endpoints()
        threading.Thread(target=self._resume_streams, name="redshift-streams", daemon=True).start()

    def answer(self, handler, request: AwsRequest) -> AwsResponse:
        try:
            return handler(request)
        except RedshiftApiError as error:
            return AwsResponse.json_error(error.code, error.message)

    # ------------------------------------------------------------ Serverless: namespaces and workgroups

    def _document(self) -> dict:
        return self.serverless.load({"namespaces": {}, "workgroups": {}})

    def _CreateNamespace(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        name = params.get("namespaceName") or ""
        if not NAMESPACE_NAME.fullmatch(name):
            raise RedshiftApiError("ValidationException", "namespaceName must be 3-64 characters of lowercase letters, digits and hyphens")
        with self._lock:
            document = self._document()
            if name in document["namespaces"]:
                raise RedshiftApiError("ConflictException", f"Namespace with name {name} already exists")
            namespace_id = str(uuid.uuid4())
            namespace = {
                "namespaceName": name, "namespaceId": namespace_id, "status": "AVAILABLE",
                "namespaceArn": f"arn:aws:redshift-serverless:{request.region}:{ACCOUNT_ID}:namespace/{namespace_id}",
                "adminUsername": params.get("adminUsername") or "admin", "dbName": params.get("dbName") or DEFAULT_DATABASE,
                "defaultIamRoleArn": params.get("defaultIamRoleArn"), "iamRoles": params.get("iamRoles") or [],
                "kmsKeyId": params.get("kmsKeyId") or "AWS_OWNED_KMS_KEY", "logExports": params.get("logExports") or [],
                "creationDate": _iso(labtime.unix_time()),
            }
            document["namespaces"][name] = {key: value for key, value in namespace.items() if value is not None}
            self.serverless.save(document)
            if params.get("adminUserPassword"):
                self.endpoints.remember_admin(f"namespace-{name}", namespace["adminUsername"], params["adminUserPassword"])
        return AwsResponse.json({"namespace": document["namespaces"][name]})

    def _serverless(self, kind: str, name: str | None) -> dict:
        """The namespace or workgroup (`kind`) of that name, or AWS's ResourceNotFoundException."""
        found = self._document()[f"{kind}s"].get(name or "")
        if not found:
            raise RedshiftApiError("ResourceNotFoundException", f"{kind.capitalize()} {name} not found.")
        return found

    def _GetNamespace(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json({"namespace": self._serverless("namespace", request.json.get("namespaceName"))})

    def _ListNamespaces(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json(_page("namespaces", list(self._document()["namespaces"].values()), request.json, "serverless"))

    def _DeleteNamespace(self, request: AwsRequest) -> AwsResponse:
        name = request.json.get("namespaceName")
        with self._lock:
            document = self._document()
            namespace = self._serverless("namespace", name)
            if any(workgroup["namespaceName"] == name for workgroup in document["workgroups"].values()):
                raise RedshiftApiError("ConflictException", f"Namespace {name} has a workgroup associated with it. "
                                                            "Delete the workgroup first.")
            del document["namespaces"][name]
            self.serverless.save(document)
            self.endpoints.forget_admin(f"namespace-{name}")
            self._drop_database(f"namespace-{name}")
        return AwsResponse.json({"namespace": dict(namespace, status="DELETING")})

    def _CreateWorkgroup(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        name, namespace_name = params.get("workgroupName") or "", params.get("namespaceName") or ""
        if not NAMESPACE_NAME.fullmatch(name):
            raise RedshiftApiError("ValidationException", "workgroupName must be 3-64 characters of lowercase letters, digits and hyphens")
        with self._lock:
            document = self._document()
            self._serverless("namespace", namespace_name)
            if name in document["workgroups"]:
                raise RedshiftApiError("ConflictException", f"Workgroup with name {name} already exists")
            if any(workgroup["namespaceName"] == namespace_name for workgroup in document["workgroups"].values()):
                raise RedshiftApiError("ConflictException", f"Namespace {namespace_name} already has a workgroup")
            workgroup_id = str(uuid.uuid4())
            document["workgroups"][name] = {
                "workgroupName": name, "workgroupId": workgroup_id, "namespaceName": namespace_name,
                "workgroupArn": f"arn:aws:redshift-serverless:{request.region}:{ACCOUNT_ID}:workgroup/{workgroup_id}",
                "baseCapacity": params.get("baseCapacity") or 128, "maxCapacity": params.get("maxCapacity"),
                "enhancedVpcRouting": bool(params.get("enhancedVpcRouting")), "publiclyAccessible": bool(params.get("publiclyAccessible")),
                "configParameters": params.get("configParameters") or [], "securityGroupIds": params.get("securityGroupIds") or [],
                "subnetIds": params.get("subnetIds") or [], "creationDate": _iso(labtime.unix_time()), "created": labtime.unix_time(),
                "endpoint": {"address": "127.0.0.1", "port": _reserve_port(), "vpcEndpoints": []},
            }
            workgroup = document["workgroups"][name]
            workgroup["endpoint"]["port"] = self.endpoints.serve(f"namespace-{namespace_name}", workgroup["endpoint"]["port"])
            self.serverless.save(document)
        return AwsResponse.json({"workgroup": self._shown_workgroup(document["workgroups"][name])})

    def _shown_workgroup(self, workgroup: dict) -> dict:
        status = "CREATING" if labtime.unix_time() - workgroup["created"] < WORKGROUP_CREATE_SECONDS else "AVAILABLE"
        shown = {key: value for key, value in workgroup.items() if key != "created" and value is not None}
        return dict(shown, status=status)

    def _GetWorkgroup(self, request: AwsRequest) -> AwsResponse:
        return AwsResponse.json({"workgroup": self._shown_workgroup(self._serverless("workgroup", request.json.get("workgroupName")))})

    def _ListWorkgroups(self, request: AwsRequest) -> AwsResponse:
        shown = [self._shown_workgroup(workgroup) for workgroup in self._document()["workgroups"].values()]
        return AwsResponse.json(_page("workgroups", shown, request.json, "serverless"))

    def _DeleteWorkgroup(self, request: AwsRequest) -> AwsResponse:
        name = request.json.get("workgroupName")
        with self._lock:
            document = self._document()
            workgroup = self._serverless("workgroup", name)
            del document["workgroups"][name]
            self.serverless.save(document)
            self.endpoints.stop(f"namespace-{workgroup['namespaceName']}")
        return AwsResponse.json({"workgroup": dict(self._shown_workgroup(workgroup), status="DELETING")})

    # ------------------------------------------------------------ provisioned clusters (moto's), their endpoint

    def _cluster_endpoint(self, request: AwsRequest) -> AwsResponse:
        """moto's answer with each cluster's endpoint on 127.0.0.1 and a port of its own."""
        response = request.send_on()
        body = response.read().decode()
        if response.status != 200 or "<Endpoint>" not in body:
            return response
        ports = self.ports.load({})
        for identifier in re.findall(r"<ClusterIdentifier>([^<]+)</ClusterIdentifier>", body):
            if identifier not in ports:
                ports[identifier] = _reserve_port()
                self.ports.save(ports)

        def local(match: re.Match) -> str:
            before = body[:match.start()]
            identifier = re.findall(r"<ClusterIdentifier>([^<]+)</ClusterIdentifier>", before)[-1]
            return f"<Endpoint><Address>127.0.0.1</Address><Port>{ports[identifier]}</Port>"

        body = re.sub(r"<Endpoint>\s*<Address>[^<]*</Address>\s*<Port>\d+</Port>", local, body)
        headers = [(key, value) for key, value in response.headers if key.lower() != "content-length"]
        return AwsResponse(response.status, headers, body.encode())

    def _create_cluster(self, request: AwsRequest) -> AwsResponse:
        response = self._cluster_endpoint(request)
        form = {name: (values or [""])[0] for name, values in request.form.items()}
        identifier = form.get("ClusterIdentifier", "").lower()
        if response.status == 200 and identifier and form.get("MasterUserPassword"):
            key = f"cluster-{identifier}"
            self.endpoints.remember_admin(key, form.get("MasterUsername", ""), form["MasterUserPassword"])
            self._serve_cluster(identifier)
        if response.status == 200 and identifier and form.get("DefaultIamRoleArn"):
            with self._lock:
                self.default_roles.save(dict(self.default_roles.load({}), **{identifier: form["DefaultIamRoleArn"]}))
        return response

    def _modify_cluster(self, request: AwsRequest) -> AwsResponse:
        """A new MasterUserPassword is the one the endpoint takes from now on."""
        response = request.send_on()
        form = {name: (values or [""])[0] for name, values in request.form.items()}
        key = f"cluster-{form.get('ClusterIdentifier', '').lower()}"
        admin = self.endpoints.admins().get(key)
        if response.status == 200 and admin and form.get("MasterUserPassword"):
            self.endpoints.remember_admin(key, admin["user"], form["MasterUserPassword"])
        return response

    def _serve_cluster(self, identifier: str) -> None:
        with self._lock:
            ports = self.ports.load({})
            wanted = ports.get(identifier) or _reserve_port()
            ports[identifier] = self.endpoints.serve(f"cluster-{identifier}", wanted)
            if ports[identifier] != wanted or identifier not in self.ports.load({}):
                self.ports.save(ports)

    def _serve_known_endpoints(self) -> None:
        """After a restart: each endpoint whose admin the engine knows listens again (on its port if still free)."""
        workgroups = self._document()["workgroups"]
        for key in self.endpoints.admins():
            kind, _, name = key.partition("-")
            if kind == "cluster" and name in self.ports.load({}):
                self._serve_cluster(name)
            for workgroup_name, workgroup in workgroups.items() if kind == "namespace" else ():
                if workgroup["namespaceName"] == name:
                    port = self.endpoints.serve(key, workgroup["endpoint"]["port"])
                    if port != workgroup["endpoint"]["port"]:
                        with self._lock:
                            document = self._document()
                            document["workgroups"][workgroup_name]["endpoint"]["port"] = port
                            self.serverless.save(document)

    def _delete_cluster(self, request: AwsRequest) -> AwsResponse:
        response = request.send_on()
        identifier = (request.form.get("ClusterIdentifier") or [""])[0]
        if response.status == 200 and identifier:
            key = f"cluster-{identifier.lower()}"
            self.endpoints.stop(key)
            self.endpoints.forget_admin(key)
            self._drop_database(key)
            with self._lock:
                defaults = self.default_roles.load({})
                if defaults.pop(identifier.lower(), None):
                    self.default_roles.save(defaults)
        return response

    # ------------------------------------------------------------ Data API: where a statement runs

    def _target(self, params: dict) -> tuple[str, str, str]:
        """(database key, database name, deployment) for a Data API call, checked as AWS checks it."""
        cluster, workgroup = params.get("ClusterIdentifier"), params.get("WorkgroupName")
        if cluster and workgroup:
            raise RedshiftApiError("ValidationException", "Specify either ClusterIdentifier or WorkgroupName, not both.")
        if not cluster and not workgroup:
            raise RedshiftApiError("ValidationException", "Either ClusterIdentifier or WorkgroupName needs to be specified.")
        if params.get("SessionId") or params.get("SessionKeepAliveSeconds"):
            raise RedshiftApiError("ValidationException", "dealab's Data API does not keep sessions yet (a later part of issue 18)")
        if params.get("SecretArn"):
            try:
                self.own_client("secretsmanager").describe_secret(SecretId=params["SecretArn"])
            except self.own_client("secretsmanager").exceptions.ResourceNotFoundException:
                raise RedshiftApiError("ValidationException", f"Secret {params['SecretArn']} was not found.") from None
        if workgroup:
            found = self._document()["workgroups"].get(workgroup)
            if not found:
                raise RedshiftApiError("ValidationException", f"Workgroup {workgroup} is not found.")
            namespace = self._serverless("namespace", found["namespaceName"])
            return f"namespace-{namespace['namespaceName']}", namespace["dbName"], "serverless"
        if params.get("DbUser") and params.get("SecretArn"):
            raise RedshiftApiError("ValidationException", "Specify either DbUser or SecretArn, not both.")
        if not CLUSTER_IDENTIFIER.fullmatch(cluster.lower()):
            raise RedshiftApiError("ValidationException", "Redshift endpoint doesn't exist in this region.")
        redshift = self.own_client("redshift")
        try:
            found = redshift.describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
        except redshift.exceptions.ClusterNotFoundFault:
            raise RedshiftApiError("ValidationException", "Redshift endpoint doesn't exist in this region.") from None
        return f"cluster-{cluster.lower()}", found.get("DBName") or DEFAULT_DATABASE, "provisioned"

    def _warehouse_of(self, key: str) -> Warehouse:
        """The warehouse behind an endpoint (a cluster's or a namespace's database)."""
        kind, _, name = key.partition("-")
        if kind == "namespace":
            return self._warehouse(key, self._serverless("namespace", name)["dbName"], "serverless")
        redshift = self.own_client("redshift")
        found = redshift.describe_clusters(ClusterIdentifier=name)["Clusters"][0]
        return self._warehouse(key, found.get("DBName") or DEFAULT_DATABASE, "provisioned")

    def _warehouse(self, key: str, database: str, deployment: str) -> Warehouse:
        with self._lock:
            if key not in self._warehouses:
                from dealab.engines.redshift.warehouse import Warehouse

                try:
                    path = child_path(self.folder, key, ".duckdb")
                except UnsafeName as error:
                    raise RedshiftApiError("ValidationException", str(error)) from None
                warehouse = Warehouse(path, self.folder / "scratch" / key, database, deployment, self._catalog_access())
                admin = self.endpoints.admins().get(key, {}).get("user")
                if admin:  # PG_USER shows the admin as the superuser it is
                    with warehouse.connection.cursor() as cursor:
                        warehouse.grants.ensure_superuser(cursor, admin)
                self._connect_streams(key, warehouse)
                warehouse.sharing.registry, warehouse.sharing.key = self._sharing(), key
                self._connect_audit(key, warehouse)
                warehouse.roles = self._role_access(key)
                self._warehouses[key] = warehouse
            return self._warehouses[key]

    def _connect_streams(self, key: str, warehouse: Warehouse) -> None:
        """Streaming ingestion reads Kinesis through the engine's own client; a warehouse with auto-refresh views is
        listed in streaming.json, so it is opened (and its views refresh again) after a restart."""
        def auto_refreshing(has_views: bool) -> None:
            with self._lock:
                listed = set(self.streaming_file.load([]))
                if (key in listed) != has_views:
                    self.streaming_file.save(sorted(listed ^ {key}))

        warehouse.streams.kinesis = lambda: self.own_client("kinesis")
        warehouse.streams.auto_refreshing = auto_refreshing
        warehouse.streams.resume()

    def _sharing(self):
        """The engine's one registry of datashares (datasharing.py), made with the first database."""
        with self._lock:
            if self._datashares is None:
                from dealab.engines.redshift.datasharing import Registry

                serverless_ids = lambda: {name: found["namespaceId"] for name, found in self._document()["namespaces"].items()}
                self._datashares = Registry(self.datashares_file, self._warehouse_of, serverless_ids, ACCOUNT_ID, self.context.region)
            return self._datashares

    def _describe_data_shares(self, request: AwsRequest) -> AwsResponse:
        """DescribeDataShares (every share, or DataShareArn's), DescribeDataSharesForProducer (ProducerArn's) and
        DescribeDataSharesForConsumer (those granted to ConsumerArn), in the query protocol's XML."""
        from xml.sax.saxutils import escape

        given = {name: (request.form.get(name) or [""])[0] or None for name in ("DataShareArn", "ProducerArn", "ConsumerArn")}
        operation = request.operation or "DescribeDataShares"
        def member(fields: dict) -> str:
            parts = []
            for name, value in fields.items():
                if isinstance(value, list):
                    inner = "".join(f"<member>{member(item)}</member>" for item in value)
                    parts.append(f"<{name}>{inner}</{name}>")
                else:
                    text = str(value).lower() if isinstance(value, bool) else escape(str(value))
                    parts.append(f"<{name}>{text}</{name}>")
            return "".join(parts)

        chosen = self._sharing().describe(given["DataShareArn"], given["ProducerArn"], given["ConsumerArn"])
        shares = "".join(f"<member>{member(share)}</member>" for share in chosen)
        body = (f'<{operation}Response xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><{operation}Result>'
                f"<DataShares>{shares}</DataShares></{operation}Result><ResponseMetadata><RequestId>{uuid.uuid4()}"
                f"</RequestId></ResponseMetadata></{operation}Response>")
        return AwsResponse(200, [("Content-Type", "text/xml")], body.encode())

    def _audit_target(self, key: str) -> dict | None:
        """Where the database's audit logs go (auditlog.Audit.target), None while logging is off: a cluster's
        logging status (EnableLogging), a Serverless namespace's logExports (to CloudWatch Logs only, as AWS)."""
        kind, _, name = key.partition("-")
        if kind == "namespace":
            exports = self._serverless("namespace", name).get("logExports") or []
            return {"destination": "cloudwatch", "name": name, "exports": exports, "deployment": "serverless"} if exports else None
        status = self.own_client("redshift").describe_logging_status(ClusterIdentifier=name)
        if not status.get("LoggingEnabled"):
            return None
        destination = status.get("LogDestinationType") or "s3"
        prefix = status.get("S3KeyPrefix") or ""
        return {"destination": destination, "name": name, "deployment": "provisioned", "bucket": status.get("BucketName"),
                "prefix": f"{prefix.rstrip('/')}/" if prefix else "", "exports": status.get("LogExports") or list(AUDIT_LOG_TYPES)}

    def _connect_audit(self, key: str, warehouse: Warehouse, target: dict | None | bool = False) -> None:
        """Points the database's audit log where logging goes now (`target` False: read it), arms its delivery, and
        lists the database in audited.json while logging is on (so a restart opens it and delivers what waits)."""
        audit = warehouse.audit
        audit.admin = self.endpoints.admins().get(key, {}).get("user") or "admin"
        audit.account, audit.region = ACCOUNT_ID, self.context.region
        audit.s3, audit.logs = (lambda: self.own_client("s3")), (lambda: self.own_client("logs"))
        audit.target = self._audit_target(key) if target is False else target
        audit.schedule()
        with self._lock:
            listed = set(self.audited_file.load([]))
            if (key in listed) != (audit.target is not None):
                self.audited_file.save(sorted(listed ^ {key}))

    def _logging_changed(self, key: str) -> None:
        """EnableLogging, DisableLogging or new logExports: what waits is delivered where it was going, then the
        database logs to its new place."""
        with self._lock:
            warehouse = self._warehouses.get(key)
        if warehouse is None:
            target = self._audit_target(key)
            if target is None:
                return
            warehouse = self._warehouse_of(key)
        try:
            warehouse.audit.flush()
        except Exception:
            log.warning("audit log delivery of %s failed", key, exc_info=True)
        self._connect_audit(key, warehouse)

    def _enable_logging(self, request: AwsRequest) -> AwsResponse:
        from dealab.engines.redshift.auditlog import bucket_refusal

        form = {name: (values or [""])[0] for name, values in request.form.items()}
        identifier = form.get("ClusterIdentifier", "").lower()
        bucket, prefix = form.get("BucketName"), form.get("S3KeyPrefix") or ""
        destination = form.get("LogDestinationType") or "s3"
        redshift = self.own_client("redshift")
        try:
            redshift.describe_clusters(ClusterIdentifier=identifier)
        except redshift.exceptions.ClusterNotFoundFault:
            return request.send_on()  # the backend answers ClusterNotFound
        refusal = None
        if destination == "s3":
            if re.search(r"[\x00-\x20\x22\x27\x5c\x7f-\uffff]", prefix) or len(prefix) > 512:
                refusal = ("InvalidS3KeyPrefixFault", "The S3 key prefix is not valid: it cannot contain spaces, quotes, "
                                                      "a backslash or control characters, and is at most 512 characters")
            elif not bucket:
                refusal = ("InvalidParameterValue", "BucketName is required when LogDestinationType is s3")
            else:
                s3 = self.own_client("s3")
                try:
                    s3.head_bucket(Bucket=bucket)
                    try:
                        policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
                    except s3.exceptions.ClientError:
                        policy = None
                    refusal = bucket_refusal(policy, bucket, f"{prefix.rstrip('/')}/" if prefix else "", ACCOUNT_ID)
                except s3.exceptions.ClientError:
                    refusal = ("BucketNotFoundFault", f"Cannot find S3 bucket {bucket}.")
        if refusal:
            return _query_error(*refusal)
        response = request.send_on()
        if response.status == 200:
            self._logging_changed(f"cluster-{identifier}")
        return response

    def _disable_logging(self, request: AwsRequest) -> AwsResponse:
        identifier = (request.form.get("ClusterIdentifier") or [""])[0].lower()
        with self._lock:
            warehouse = self._warehouses.get(f"cluster-{identifier}")
        if warehouse is not None and warehouse.audit.target is not None:
            try:  # what was logged while logging was on is still delivered
                warehouse.audit.flush()
            except Exception:
                log.warning("audit log delivery of cluster %s failed", identifier, exc_info=True)
        response = request.send_on()
        if response.status == 200:
            self._logging_changed(f"cluster-{identifier}")
        return response

    def _UpdateNamespace(self, request: AwsRequest) -> AwsResponse:
        """UpdateNamespace's logExports (where Serverless sends its audit logs) and its IAM roles (iamRoles,
        defaultIamRoleArn: what COPY, UNLOAD and Spectrum may assume, roles.py); dealab changes nothing else yet."""
        params = request.json
        name = params.get("namespaceName")
        others = sorted(set(params) - {"namespaceName", "logExports", "iamRoles", "defaultIamRoleArn"})
        if others:
            raise RedshiftApiError("ValidationException", "dealab's UpdateNamespace changes logExports, iamRoles and defaultIamRoleArn "
                                                          f"only, not {', '.join(others)}")
        exports = params.get("logExports") or []
        unknown = sorted(set(exports) - set(AUDIT_LOG_TYPES))
        if unknown:
            raise RedshiftApiError("ValidationException", f"logExports takes useractivitylog, userlog and connectionlog, not {', '.join(unknown)}")
        with self._lock:
            document = self._document()
            self._serverless("namespace", name)
            namespace = document["namespaces"][name]
            namespace.update({member: params[member] for member in ("logExports", "iamRoles", "defaultIamRoleArn") if member in params})
            self.serverless.save(document)
        if "logExports" in params:
            self._logging_changed(f"namespace-{name}")
        return AwsResponse.json({"namespace": namespace})

    def _resume_streams(self) -> None:
        for key in sorted(set(self.streaming_file.load([])) | set(self.audited_file.load([]))):
            try:
                self._warehouse_of(key)
            except Exception:  # the cluster or namespace is gone: its views cannot refresh
                log.warning("streaming views of %s not resumed", key, exc_info=True)

    def _role_access(self, key: str):
        """How the database's COPY, UNLOAD and external schemas assume their IAM_ROLE (roles.py)."""
        from dealab.engines.redshift.roles import Association, RoleAccess

        def association() -> Association:  # read when a statement runs: an association changed meanwhile counts
            kind, _, name = key.partition("-")
            admin = self.endpoints.admins().get(key, {}).get("user") or "admin"
            if kind == "namespace":
                namespace = self._serverless("namespace", name)
                workgroup = next((found["workgroupName"] for found in self._document()["workgroups"].values()
                                  if found["namespaceName"] == name), name)
                roles = tuple(role if isinstance(role, str) else role.get("iamRoleArn", "") for role in namespace.get("iamRoles", []))
                return Association(workgroup, self.context.region, admin, roles, namespace.get("defaultIamRoleArn"))
            cluster = self.own_client("redshift").describe_clusters(ClusterIdentifier=name)["Clusters"][0]
            roles = tuple(role["IamRoleArn"] for role in cluster.get("IamRoles", []))
            return Association(name, self.context.region, admin, roles, self.default_roles.load({}).get(name))

        return RoleAccess(self.role_sessions, association, self.context.loopback)

    def _catalog_access(self):
        """What a database's external schemas reach the Glue catalog with (Redshift Spectrum, spectrum.py)."""
        from dealab.engines.redshift.spectrum import CatalogAccess

        return CatalogAccess(lambda: self.own_client("glue"), lambda: self.own_client("s3"), self.context)

    def _drop_database(self, key: str) -> None:
        with self._lock:
            self._sharing().forget(key)
            for listing in (self.streaming_file, self.audited_file):  # nothing of it to open at the next start
                if key in listing.load([]):
                    listing.save([known for known in listing.load([]) if known != key])
            warehouse = self._warehouses.pop(key, None)
            if warehouse:
                warehouse.close()
            try:
                path = child_path(self.folder, key, ".duckdb")
            except UnsafeName:
                return
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)

    # ------------------------------------------------------------ Data API: statements

    def _ExecuteStatement(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        if not params.get("Sql"):
            raise RedshiftApiError("ValidationException", "Sql is required")
        parameters = {item.get("name"): item.get("value") for item in params.get("Parameters") or []}
        return self._submit(params, [params["Sql"]], parameters, batch=False, region=request.region, caller=request.caller_arn)

    def _BatchExecuteStatement(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        sqls = params.get("Sqls") or []
        if not sqls or len(sqls) > 40:
            raise RedshiftApiError("ValidationException", "Sqls must hold 1 to 40 statements")
        return self._submit(params, sqls, None, batch=True, region=request.region, caller=request.caller_arn)

    def _submit(self, params: dict, sqls: list[str], parameters: dict | None, batch: bool, region: str,
                caller: str | None = None) -> AwsResponse:
        if sum(len(sql.encode()) for sql in sqls) > MAX_SQL_BYTES:
            raise RedshiftApiError("ValidationException", "The query string is too long: the Data API takes up to 100 KB")
        key, database, deployment = self._target(params)
        if not params.get("Database") and not params.get("SecretArn"):
            raise RedshiftApiError("ValidationException", "Database is required")
        statement_id = str(uuid.uuid4())
        now = labtime.unix_time()
        record = {
            "Id": statement_id, "Status": "SUBMITTED", "CreatedAt": now, "UpdatedAt": now, "Duration": -1,
            "Database": params.get("Database") or database, "HasResultSet": False, "ResultRows": -1, "ResultSize": -1,
            "IsBatchStatement": batch, "ResultFormat": params.get("ResultFormat") or "JSON",
            "RedshiftPid": 1073741824 + len(self._statements), "target": [key, database, deployment],
            "region": region, "WithEvent": bool(params.get("WithEvent")),
            "caller": caller,  # the IAM principal: Lake Formation filters external tables for it
            **{member: params[member] for member in ("ClusterIdentifier", "WorkgroupName", "DbUser", "SecretArn", "StatementName")
               if params.get(member)},
            **self._sign_in(params, key, database, deployment),
        }
        if batch:
            record["QueryStrings"] = sqls
            record["SubStatements"] = [{"Id": f"{statement_id}:{number}", "QueryString": sql, "Status": "SUBMITTED",
                                        "CreatedAt": now, "UpdatedAt": now, "Duration": -1, "HasResultSet": False,
                                        "ResultRows": -1, "ResultSize": -1} for number, sql in enumerate(sqls, start=1)]
        else:
            record["QueryString"] = sqls[0]
            if parameters:
                record["QueryParameters"] = [{"name": name, "value": value} for name, value in parameters.items()]
        with self._lock:
            self._statements[statement_id] = record
            self._save_statements(record)
        self._workers.submit(self._run, statement_id, sqls, parameters)
        answer = {"Id": statement_id, "CreatedAt": now, "Database": record["Database"]}
        answer.update({member: params[member] for member in ("ClusterIdentifier", "WorkgroupName", "DbUser", "SecretArn") if params.get(member)})
        return AwsResponse.json(answer)

    def _sign_in(self, params: dict, key: str, database: str, deployment: str) -> dict:
        """Who a Data API statement runs as ({"runAs": user}, None for the admin), or why it cannot sign in
        ({"signInError": ...}, the statement then fails as Redshift's sign-in would). DbUser on a cluster is that
        database user (GetClusterCredentials without AutoCreate: it must exist); SecretArn is the secret's username,
        its password checked; a workgroup without a secret runs as the caller's IAM identity, which dealab maps
        to the admin."""
        admin = self.endpoints.admins().get(key, {})
        user, password = params.get("DbUser") if deployment == "provisioned" else None, None
        if params.get("SecretArn"):
            secret = self.own_client("secretsmanager").get_secret_value(SecretId=params["SecretArn"])
            try:
                found = json.loads(secret.get("SecretString") or "{}")
            except ValueError:
                found = {}
            user, password = found.get("username"), found.get("password")
            if not user:
                return {"signInError": "the secret holds no username"}
        if not user:
            return {"runAs": None}
        if user == admin.get("user"):
            secret_md5, user_as = admin.get("md5"), None
        else:
            warehouse = self._warehouse(key, database, deployment)
            with warehouse.connection.cursor() as cursor:
                if not warehouse.grants.exists(cursor, user):
                    return {"signInError": f'user "{user}" does not exist'}
                secret_md5, user_as = warehouse.grants.md5_of(cursor, user), user
        if password is not None and secret_md5 != md5_secret(user, str(password)):
            return {"signInError": f'password authentication failed for user "{user}"'}
        return {"runAs": user_as}

    def _run(self, statement_id: str, sqls: list[str], parameters: dict | None) -> None:
        from dealab.engines.redshift.errors import RedshiftError

        record = self._statements[statement_id]
        key, database, deployment = record["target"]
        with self._lock:
            if record["Status"] != "SUBMITTED":
                return
            self._set(record, Status="STARTED")
        parts = record.get("SubStatements") or [record]
        signed_in = None  # the database the statement signed in to: its disconnection is logged too
        try:
            if record["Database"] != database:
                raise RedshiftError(f'database "{record["Database"]}" does not exist')
            method = "IAM" if record.get("DbUser") or not record.get("SecretArn") else "password"
            signing_in = record.get("DbUser") or record.get("runAs")
            if record.get("signInError"):
                self._warehouse(key, database, deployment).audit.connection("authentication failure", signing_in, method, "Data API")
                raise RedshiftError(record["signInError"])
            warehouse = self._warehouse(key, database, deployment)
            warehouse.audit.connection("authenticated", signing_in, method, "Data API", pid=hash(statement_id))
            signed_in = warehouse
            cursor = warehouse.session()
            with self._lock:
                self._sessions[statement_id] = cursor
                if record["Status"] == "ABORTED":  # cancelled before it had a session to interrupt
                    raise RedshiftError("Query cancelled on user's request")
            if record["IsBatchStatement"]:
                cursor.execute("BEGIN TRANSACTION")  # a batch runs as one transaction, as on Redshift
            for part, sql in zip(parts, sqls):
                started = time.monotonic()
                self._set(part, Status="STARTED")
                try:
                    result = warehouse.execute(cursor, sql, parameters, self.own_client("s3"), in_batch=record["IsBatchStatement"],
                                               user=record.get("runAs"), principal=record.get("caller"))
                except RedshiftError as error:
                    self._set(part, Status="FAILED", Error=str(error), Duration=int((time.monotonic() - started) * 1e9))
                    raise
                if result.columns:
                    self._keep_result(part["Id"], result.columns, result.rows)
                # the first row's text size times the rows: an estimate that costs nothing on a large result
                size = sum(len(str(value)) for value in result.rows[0]) * len(result.rows) if result.rows else 0
                self._set(part, Status="FINISHED", HasResultSet=bool(result.columns),
                          ResultRows=len(result.rows) if result.columns else result.affected, ResultSize=size,
                          Duration=int((time.monotonic() - started) * 1e9), RedshiftQueryId=result.query_id)
            if record["IsBatchStatement"]:
                warehouse.run_duckdb(cursor, "COMMIT", "COMMIT")  # a write conflict fails in Redshift's words
                self._set(record, Status="FINISHED", Duration=sum(part["Duration"] for part in parts),
                          HasResultSet=any(part["HasResultSet"] for part in parts), ResultRows=parts[-1]["ResultRows"])
        except RedshiftError as error:
            if record["IsBatchStatement"]:
                for part in parts:
                    if part["Status"] in RUNNING_STATUSES:
                        self._set(part, Status="ABORTED")
            final = "ABORTED" if record["Status"] == "ABORTED" else "FAILED"
            self._set(record, Status=final, Error=str(error) if final == "FAILED" else record.get("Error"))
        except Exception as error:  # the engine's own failure: the statement fails, the worker lives on
            log.exception("statement %s failed in the engine", statement_id)
            self._set(record, Status="FAILED", Error=f"ERROR: internal error in dealab's Redshift engine ({type(error).__name__})")
        finally:
            with self._lock:
                cursor = self._sessions.pop(statement_id, None)
            if cursor is not None:
                cursor.close()
            if signed_in is not None:
                signed_in.audit.connection("disconnecting", signing_in, method, "Data API", pid=hash(statement_id))

    def _set(self, record: dict, **fields) -> None:
        with self._lock:
            if record.get("Status") == "ABORTED" and fields.get("Status") != "ABORTED":
                return
            record.update(fields, UpdatedAt=labtime.unix_time())
            if fields.get("Status") in FINAL_STATUSES and "Id" in record and ":" not in record["Id"]:
                self._save_statements(record)
                self._ended.notify_all()
                if record.get("WithEvent"):
                    self._announce(record)

    def _announce(self, record: dict) -> None:
        """AWS's "Redshift Data Statement Status Change" event, for a statement run WithEvent."""
        cluster, workgroup = record.get("ClusterIdentifier"), record.get("WorkgroupName")
        region = record.get("region") or self.context.region
        resource = (f"arn:aws:redshift:{region}:{ACCOUNT_ID}:cluster:{cluster}" if cluster else
                    self._document()["workgroups"].get(workgroup, {}).get("workgroupArn", ""))
        serviceevents.publish("aws.redshift-data", "Redshift Data Statement Status Change", {
            "principal": f"arn:aws:iam::{ACCOUNT_ID}:root", "statementName": record.get("StatementName", ""),
            "statementId": record["Id"], "redshiftQueryId": record.get("RedshiftQueryId", -1), "state": record["Status"],
            "rows": record.get("ResultRows", -1), "expireAt": int(record["CreatedAt"] + RESULT_KEPT_SECONDS),
        }, [resource] if resource else [], region=region)

    def _load_statements(self) -> dict[str, dict]:
        statements = self.statements_file.load({})
        for journal in (self._journal_set_aside(), self.statements_journal):
            for record in journal.read():
                statements[record["Id"]] = record
        return statements

    def _journal_set_aside(self) -> JsonLines:
        return JsonLines(self.statements_journal.path.with_suffix(".journal-writing"))

    def _save_statements(self, *changed: dict) -> None:
        """Journals the changed records (the caller holds the lock); _write_statement_records rewrites the file."""
        self.statements_journal.append([dict(record) for record in changed])
        if len(self._statements) > KEPT_STATEMENTS:
            for old in sorted(self._statements, key=lambda known: self._statements[known]["CreatedAt"])[:-KEPT_STATEMENTS]:
                del self._statements[old]
        self._records_changed.set()

    def _write_statement_records(self) -> None:
        """Rewrites statements.json after each burst of changes, off the request and the statement's worker: writing
        500 records with an fsync costs ~6 ms, twice a statement (submitted, ended), which a Data API round trip
        felt. Until it is written, the journal holds the changes."""
        while not self._stopping.is_set():
            self._records_changed.wait()
            self._records_changed.clear()
            self._write_records_now()

    def _write_records_now(self) -> None:
        """The records as they are now replace the file; the journal of what they hold is set aside meanwhile (new
        changes start a new one) and dropped once the file is written."""
        set_aside = self._journal_set_aside()
        with self._writing:
            with self._lock:
                text = json.dumps(self._statements, separators=(",", ":"), default=str)
                self.statements_journal.close()
                if self.statements_journal.path.exists():
                    rename(self.statements_journal.path, set_aside.path)
            write_atomic(self.statements_file.path, text)
            set_aside.remove()

    def _keep_result(self, statement_id: str, columns: list, rows: list) -> None:
        with self._lock:
            self._results[statement_id] = (columns, rows)
            while len(self._results) > KEPT_RESULTS:
                self._results.popitem(last=False)

    def _statement(self, statement_id: str) -> tuple[dict, dict]:
        """(the statement, the part the id names: the statement itself or one of a batch's `<id>:<n>`)."""
        base, _, number = (statement_id or "").partition(":")
        record = self._statements.get(base)
        if not record or (number and not number.isdigit()):
            raise RedshiftApiError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        if not number:
            return record, record
        parts = record.get("SubStatements") or []
        if int(number) < 1 or int(number) > len(parts):
            raise RedshiftApiError("ResourceNotFoundException", f"Query does not exist: {statement_id}")
        return record, parts[int(number) - 1]

    @staticmethod
    def _shown(record: dict) -> dict:
        return {key: value for key, value in record.items() if key not in PRIVATE_FIELDS and value is not None}

    def _DescribeStatement(self, request: AwsRequest) -> AwsResponse:
        record, _ = self._statement(request.json.get("Id"))
        with self._lock:
            if record["Status"] not in FINAL_STATUSES:
                self._ended.wait_for(lambda: record["Status"] in FINAL_STATUSES, STATE_WAIT_SECONDS)
            shown = self._shown(record)
        return AwsResponse.json(shown)

    def _result_rows(self, statement_id: str, want_format: str) -> tuple[list, list]:
        record, part = self._statement(statement_id)
        if record.get("IsBatchStatement") and part is record:
            part = next((sub for sub in reversed(record["SubStatements"]) if sub.get("HasResultSet")), record)
        if part["Status"] != "FINISHED" and record["Status"] != "FINISHED":
            raise RedshiftApiError("ValidationException", f"Query has not finished: it is {part['Status']}")
        if not part.get("HasResultSet"):
            raise RedshiftApiError("ResourceNotFoundException", "Query does not have result. Please check query status with DescribeStatement.")
        if record.get("ResultFormat", "JSON") != want_format:
            other = "GetStatementResultV2" if want_format == "JSON" else "GetStatementResult"
            raise RedshiftApiError("ValidationException", f"The statement's ResultFormat is {record.get('ResultFormat', 'JSON')}: "
                                                          f"read its result with {other}")
        kept = self._results.get(part["Id"])
        if kept is None:
            raise RedshiftApiError("ResourceNotFoundException", "The statement's result is no longer available: dealab keeps "
                                                                "results in memory, and the stack restarted or newer results replaced it")
        return kept

    @staticmethod
    def _column_metadata(columns: list) -> list[dict]:
        metadata = []
        for name, duckdb_type in columns:
            type_name, member = _type_field(duckdb_type)
            precision = re.search(r"\((\d+),(\d+)\)", duckdb_type)
            metadata.append({"name": name, "label": name, "typeName": type_name, "nullable": 1, "isCaseSensitive": type_name == "varchar",
                             "isCurrency": False, "isSigned": member in ("longValue", "doubleValue") or type_name == "numeric",
                             "precision": int(precision.group(1)) if precision else 0, "scale": int(precision.group(2)) if precision else 0,
                             "length": 0, "schemaName": "", "tableName": ""})
        return metadata

    def _GetStatementResult(self, request: AwsRequest) -> AwsResponse:
        columns, rows = self._result_rows(request.json.get("Id"), "JSON")
        start = int(request.json.get("NextToken") or 0)
        members = [_type_field(duckdb_type)[1] for _, duckdb_type in columns]
        records = [[{"isNull": True} if value is None else {member: value if member != "stringValue" else str(value)}
                    for member, value in zip(members, row)] for row in rows[start:start + RESULT_PAGE_ROWS]]
        answer = {"Records": records, "ColumnMetadata": self._column_metadata(columns), "TotalNumRows": len(rows)}
        if start + RESULT_PAGE_ROWS < len(rows):
            answer["NextToken"] = str(start + RESULT_PAGE_ROWS)
        return AwsResponse.json(answer)

    def _GetStatementResultV2(self, request: AwsRequest) -> AwsResponse:
        columns, rows = self._result_rows(request.json.get("Id"), "CSV")
        start = int(request.json.get("NextToken") or 0)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([name for name, _ in columns])
        writer.writerows(["" if value is None else value for value in row] for row in rows[start:start + RESULT_PAGE_ROWS])
        answer = {"Records": [{"CSVRecords": out.getvalue()}], "ColumnMetadata": self._column_metadata(columns),
                  "TotalNumRows": len(rows), "ResultFormat": "CSV"}
        if start + RESULT_PAGE_ROWS < len(rows):
            answer["NextToken"] = str(start + RESULT_PAGE_ROWS)
        return AwsResponse.json(answer)

    def _ListStatements(self, request: AwsRequest) -> AwsResponse:
        params = request.json
        wanted = params.get("Status") or "ALL"
        filters = {member: params[member] for member in ("ClusterIdentifier", "WorkgroupName", "Database") if params.get(member)}
        with self._lock:
            chosen = [self._shown(record) for record in sorted(self._statements.values(), key=lambda known: -known["CreatedAt"])
                      if (wanted == "ALL" or record["Status"] == wanted)
                      and record.get("StatementName", "").startswith(params.get("StatementName") or "")
                      and all(record.get(member) == value for member, value in filters.items())]
        for shown in chosen:
            shown.pop("SubStatements", None)
        return AwsResponse.json(_page("Statements", chosen, params, "data"))

    def _CancelStatement(self, request: AwsRequest) -> AwsResponse:
        record, _ = self._statement(request.json.get("Id"))
        with self._lock:
            if record["Status"] not in RUNNING_STATUSES:
                raise RedshiftApiError("ValidationException", f"Could not cancel a query that is already in {record['Status']} state.")
            self._set(record, Status="ABORTED")
            cursor = self._sessions.get(record["Id"])
        if cursor is not None:
            cursor.interrupt()
        return AwsResponse.json({"Status": True})

    # ------------------------------------------------------------ Data API: the catalog

    def _catalog(self, request: AwsRequest) -> tuple[dict, Warehouse]:
        params = request.json
        key, database, deployment = self._target(params)
        if params.get("Database") and params["Database"] != database:
            raise RedshiftApiError("DatabaseConnectionException", f'FATAL: database "{params["Database"]}" does not exist')
        return params, self._warehouse(key, database, deployment)

    def _ListDatabases(self, request: AwsRequest) -> AwsResponse:
        _, warehouse = self._catalog(request)
        return AwsResponse.json({"Databases": [warehouse.database]})

    def _ListSchemas(self, request: AwsRequest) -> AwsResponse:
        params, warehouse = self._catalog(request)
        pattern = re.compile(re.escape(params.get("SchemaPattern") or "%").replace("%", ".*").replace("_", "."))
        return AwsResponse.json(_page("Schemas", [schema for schema in warehouse.schemas() if pattern.fullmatch(schema)], params, "data"))

    def _ListTables(self, request: AwsRequest) -> AwsResponse:
        params, warehouse = self._catalog(request)
        tables = warehouse.tables(params.get("SchemaPattern") or "%", params.get("TablePattern") or "%")
        return AwsResponse.json(_page("Tables", tables, params, "data"))

    def _DescribeTable(self, request: AwsRequest) -> AwsResponse:
        from dealab.engines.redshift.errors import RedshiftError

        params, warehouse = self._catalog(request)
        schema, table = params.get("Schema") or "public", params.get("Table") or ""
        try:
            with warehouse.session() as session:
                columns = warehouse.columns(session, table, schema)
        except RedshiftError:
            return AwsResponse.json({"ColumnList": [], "TableName": table})
        listed = [dict(metadata, schemaName=schema, tableName=table) for metadata in self._column_metadata(columns)]
        return AwsResponse.json({"ColumnList": listed, "TableName": table})

    # ------------------------------------------------------------ lifecycle

    def _fail_interrupted(self) -> None:
        interrupted = [record for record in self._statements.values() if record["Status"] in RUNNING_STATUSES]
        for record in interrupted:
            record.update(Status="FAILED", Error=STACK_STOPPED, UpdatedAt=labtime.unix_time())
        if interrupted:
            self._save_statements(*interrupted)

    def _checkpoint_idle(self) -> None:
        while not self._stopping.wait(CHECKPOINT_POLL_SECONDS):
            with self._lock:
                warehouses = list(self._warehouses.values())
            for warehouse in warehouses:
                try:
                    warehouse.checkpoint_if_idle(IDLE_CHECKPOINT_SECONDS)
                except Exception:  # the log still has every commit: a failed checkpoint loses nothing
                    log.exception("checkpoint of %s failed; DuckDB's log keeps every commit", warehouse.path.name)

    def reset(self) -> None:
        self.endpoints.stop_all()
        self.role_sessions.forget()
        with self._lock:
            self.endpoints.secrets.remove()
            for key in list(self._warehouses):
                self._drop_database(key)
            for document in (self.serverless, self.ports, self.statements_file, self.statements_journal, self._journal_set_aside(),
                             self.streaming_file, self.datashares_file, self.audited_file, self.default_roles):
                document.remove()
            for path in self.folder.glob("*.duckdb*"):
                path.unlink(missing_ok=True)
            shutil.rmtree(self.folder / "scratch", ignore_errors=True)
            self._statements.clear()
            self._results.clear()

    def close(self) -> None:
        self._stopping.set()
        self._records_changed.set()  # the writer wakes and ends
        self._write_records_now()
        self.endpoints.stop_all()
        self._workers.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for cursor in self._sessions.values():
                cursor.interrupt()
            for warehouse in self._warehouses.values():
                warehouse.close()
            self._warehouses.clear()
