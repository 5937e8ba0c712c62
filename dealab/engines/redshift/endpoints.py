"""What a cluster's or workgroup's endpoint serves: the Postgres wire protocol (pgwire.py) over the same DuckDB
database the Data API uses, with the admin user and password the cluster or namespace was created with.

A password is kept as PostgreSQL keeps an MD5 password (md5(password + user)), never in clear. SQL that arrives
over the wire runs through `Warehouse.execute`, as a Data API statement does: the same dialect, lock-down, COPY
and UNLOAD, query history; its failures reach the client as Redshift words them, with the SQLSTATE a
PostgreSQL driver reads."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dealab.engines.redshift import pgwire, tls
from dealab.engines.redshift.errors import RedshiftError
from dealab.wire.store import JsonFile

if TYPE_CHECKING:
    from dealab.engines.redshift.warehouse import Result, Warehouse

log = logging.getLogger("dealab.redshift")

# Redshift's wording (pattern over the message) → the SQLSTATE a PostgreSQL driver reads. First match wins.
SQLSTATES = [
    (r'^relation ".*" does not exist', "42P01"), (r'^schema ".*" does not exist', "3F000"),
    (r'^column ".*" does not exist', "42703"), (r"^function .* does not exist", "42883"),
    (r"^operator does not exist", "42883"), (r'^type ".*" does not exist', "42704"),
    (r"already exists$", "42P07"), (r"^syntax error", "42601"), (r"^invalid input syntax", "22P02"),
    (r"out of range$", "22003"), (r"^null value in column", "23502"), (r"^Query cancelled", "57014"),
    (r"^dealab refuses", "42501"), (r"^dealab does not offer", "0A000"), (r'^database ".*" does not exist', "3D000"),
    (r"must appear in the GROUP BY", "42803"), (r"^cannot insert multiple commands", "42601"),
    (r"^permission denied", "42501"), (r"^must be owner of", "42501"), (r'^(user|group|role) ".*" does not exist', "42704"),
    (r"^Password must", "22023"), (r"not supported in dealab's procedure subset", "0A000"),
    (r"^procedure .* does not exist", "42883"), (r"already exists with same argument types$", "42723"),
]


def sqlstate_of(message: str) -> str:
    return next((code for pattern, code in SQLSTATES if re.search(pattern, message)), "XX000")


def _literal(value) -> str:
    """A parameter's value as a SQL literal (strings quoted with standard_conforming_strings: only ' doubles)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "'\\x" + bytes(value).hex() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def bind(sql: str, parameters: list) -> str:
    """The statement with each $n outside quotes replaced by its parameter as a literal: how the
    extended protocol's values reach the Redshift dialect (which binds Data API parameters as literals too)."""
    if not parameters:
        return sql
    out, done = [], 0
    for start, end, number in pgwire.placeholders(sql):
        if not 1 <= number <= len(parameters):
            raise pgwire.WireError("08P01", f"bind message supplies {len(parameters)} parameters, but the statement uses ${number}")
        out += [sql[done:start], _literal(parameters[number - 1])]
        done = end
    return "".join(out) + sql[done:]


class WarehouseSession:
    """One wire connection: a DuckDB cursor of its own on the warehouse, running as the user that signed in
    (`user` None: the admin)."""

    def __init__(self, warehouse: Warehouse, s3: Callable[[], object], user: str | None = None):
        self.warehouse, self._s3, self.user = warehouse, s3, user
        self.cursor = warehouse.session()
        self.superuser = warehouse.grants.is_superuser(self.cursor, user)

    def execute(self, sql: str, parameters: list) -> Result:
        try:
            return self.warehouse.execute(self.cursor, bind(sql, parameters), None, self._s3(), user=self.user)
        except RedshiftError as error:
            code = getattr(error, "sqlstate", None) or sqlstate_of(error.message)  # RAISE EXCEPTION's is P0001
            raise pgwire.WireError(code, error.message, error.position) from None

    def describe(self, sql: str) -> list[tuple[str, str]] | None:
        try:
            return self.warehouse.describe(self.cursor, bind(sql, [None] * pgwire.parameter_count(sql)), user=self.user)
        except RedshiftError as error:
            raise pgwire.WireError(sqlstate_of(error.message), error.message, error.position) from None

    def cancel(self) -> None:
        self.cursor.interrupt()

    def close(self) -> None:
        self.cursor.close()
        self.warehouse.audit.connection("disconnecting", self.user, pid=id(self))


class EndpointSessions:
    """pgwire's Sessions for one database: who may connect, and a session in it."""

    def __init__(self, key: str, secrets: JsonFile, warehouse: Callable[[], Warehouse], s3: Callable[[], object]):
        self.key, self._secrets, self._warehouse, self._s3 = key, secrets, warehouse, s3

    def _admin(self) -> dict:
        return self._secrets.load({}).get(self.key) or {}

    def md5_secret_of(self, user: str) -> str | None:
        """The admin's secret (kept by the endpoint), else a database user's (CREATE USER ... PASSWORD)."""
        admin = self._admin()
        if admin.get("user") == user:
            return admin.get("md5")
        warehouse = self._warehouse()
        with warehouse.connection.cursor() as cursor:
            return warehouse.grants.md5_of(cursor, user)

    def refused(self, user: str, peer: tuple[str, int]) -> None:
        self._warehouse().audit.connection("authentication failure", user, remotehost=peer[0], remoteport=str(peer[1]))

    def open(self, user: str, database: str) -> WarehouseSession:
        warehouse = self._warehouse()
        if database != warehouse.database:
            raise pgwire.WireError("3D000", f'database "{database}" does not exist', severity="FATAL")
        session = WarehouseSession(warehouse, self._s3, None if self._admin().get("user") == user else user)
        warehouse.audit.connection("authenticated", user, pid=id(session))
        return session


class Endpoints:
    """The running wire servers, one per cluster or namespace key, each on its endpoint's port."""

    def __init__(self, folder: Path, warehouse: Callable[[str], Warehouse], s3: Callable[[], object]):
        self._folder, self._warehouse, self._s3 = folder, warehouse, s3
        self.secrets = JsonFile(folder / "endpoint_admins.json")  # key → {"user", "md5"}
        self._lock = threading.Lock()
        self._servers: dict[str, pgwire.WireServer] = {}
        self._tls = None

    def remember_admin(self, key: str, user: str, password: str) -> None:
        with self._lock:
            admins = self.secrets.load({})
            admins[key] = {"user": user, "md5": pgwire.md5_secret(user, password)}
            self.secrets.save(admins)

    def serve(self, key: str, port: int) -> int:
        """Starts the endpoint of `key` on `port` (a port of its own when that one was taken meanwhile, as after a
        restart); returns the port it listens on."""
        with self._lock:
            running = self._servers.get(key)
            if running is not None:
                return running.port
            if self._tls is None:
                self._tls = tls.server_context(self._folder / "tls")
            sessions = EndpointSessions(key, self.secrets, lambda: self._warehouse(key), self._s3)
            try:
                server = pgwire.WireServer(port, sessions, self._tls)
            except OSError:
                log.warning("redshift: endpoint port %d of %s is taken; it listens on another port", port, key)
                server = pgwire.WireServer(0, sessions, self._tls)
            self._servers[key] = server.start()
            return server.port

    def admins(self) -> dict[str, dict]:
        return self.secrets.load({})

    def forget_admin(self, key: str) -> None:
        """The cluster or namespace is gone: nobody signs in to it any more."""
        with self._lock:
            admins = self.secrets.load({})
            if admins.pop(key, None) is not None:
                self.secrets.save(admins)

    def stop(self, key: str) -> None:
        with self._lock:
            server = self._servers.pop(key, None)
        if server is not None:
            server.stop()

    def stop_all(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.stop()
