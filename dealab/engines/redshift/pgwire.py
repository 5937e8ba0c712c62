"""The PostgreSQL wire protocol (version 3.0) on a cluster's or workgroup's endpoint, as Redshift speaks it:
`psql`, `psycopg` and `redshift_connector` connect with the admin user and password and run SQL.

Written here rather than taken from a library: buenavista (the one pure-Python server on the package index)
answers every error without its SQLSTATE, refuses TLS, and offers MD5 only; clients read the code (28P01 for a
wrong password, 42P01 for a missing table) and redshift_connector asks for TLS first.

What is spoken:
- start-up: SSLRequest (TLS when a certificate is configured, else 'N' and plain text), GSSENCRequest ('N'),
  CancelRequest, the startup packet; authentication by MD5 or clear-text password;
- the simple query protocol (one or more statements in a Query message);
- the extended protocol: Parse, Bind (text parameters), Describe (statement or portal), Execute (with a row
  limit: PortalSuspended), Close, Sync, Flush;
- results in text format with the PostgreSQL type OIDs of the columns.
The server knows nothing of SQL: a `Sessions` object authenticates and opens sessions, and a session runs one
statement at a time (`execute`) and may be interrupted (`cancel`) from another thread."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import logging
import os
import re
import secrets
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("dealab.redshift.pgwire")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
# What Redshift reports to clients at start-up (redshift_connector and psycopg read server_version)
SERVER_PARAMETERS = {
    "server_version": "8.0.2", "server_encoding": "UTF8", "client_encoding": "UTF8", "DateStyle": "ISO, MDY",
    "integer_datetimes": "on", "standard_conforming_strings": "on", "TimeZone": "UTC", "is_superuser": "on",
    "application_name": "",
}
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Result(Protocol):
    columns: list[tuple[str, str]]  # (name, DuckDB type name)
    rows: list[tuple]
    affected: int  # rows a DML statement changed, -1 when it is not one


class Session(Protocol):
    superuser: bool  # what ParameterStatus is_superuser reports

    def execute(self, sql: str, parameters: list[str | None]) -> Result: ...

    def describe(self, sql: str) -> list[tuple[str, str]] | None:
        """The (name, type) of the columns the statement would return, None when it returns no rows."""

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class Sessions(Protocol):
    def md5_secret_of(self, user: str) -> str | None:
        """md5_secret(user, password) of the user's password (what MD5 authentication needs, so no password is
        kept in clear), None when no such user may connect."""

    def open(self, user: str, database: str) -> Session:
        """A session in `database`; WireError 3D000 when there is no such database."""

    def refused(self, user: str, peer: tuple[str, int]) -> None:
        """A sign-in refused for a wrong password or an unknown user (Redshift's connection log records it)."""


class WireError(Exception):
    """An error as PostgreSQL sends it: SQLSTATE, message and, where known, the 1-based position."""

    def __init__(self, code: str, message: str, position: int | None = None, severity: str = "ERROR"):
        super().__init__(message)
        self.code, self.message, self.position, self.severity = code, message, position, severity


# DuckDB type name (its prefix before any parenthesis) → (PostgreSQL type OID, type length)
TYPE_OIDS = {
    "BOOLEAN": (16, 1), "TINYINT": (21, 2), "SMALLINT": (21, 2), "INTEGER": (23, 4), "BIGINT": (20, 8),
    "HUGEINT": (1700, -1), "UTINYINT": (21, 2), "USMALLINT": (23, 4), "UINTEGER": (20, 8), "UBIGINT": (1700, -1),
    "FLOAT": (700, 4), "REAL": (700, 4), "DOUBLE": (701, 8), "DECIMAL": (1700, -1), "VARCHAR": (1043, -1),
    "DATE": (1082, 4), "TIME": (1083, 8), "TIMESTAMP": (1114, 8), "TIMESTAMP WITH TIME ZONE": (1184, 8),
    "TIMESTAMPTZ": (1184, 8), "BLOB": (17, -1), "UUID": (2950, 16), "INTERVAL": (1186, 16), "JSON": (114, -1),
}
TEXT_OID = (25, -1)
# PostgreSQL type OIDs of parameters whose text a client sends → how the value reaches the session
PARAMETER_READERS: dict[int, Callable[[str], object]] = {
    16: lambda text: text.lower() in ("t", "true", "1", "yes", "on"),
    20: int, 21: int, 23: int, 700: float, 701: float, 1700: decimal.Decimal,
}
POSTGRES_EPOCH = datetime.datetime(2000, 1, 1)
# ... and of parameters a client sends in binary format (psycopg sends numbers so)
BINARY_PARAMETER_READERS: dict[int, Callable[[bytes], object]] = {
    16: lambda data: data != b"\0",
    20: lambda data: struct.unpack("!q", data)[0], 21: lambda data: struct.unpack("!h", data)[0],
    23: lambda data: struct.unpack("!i", data)[0], 700: lambda data: struct.unpack("!f", data)[0],
    701: lambda data: struct.unpack("!d", data)[0], 25: bytes.decode, 1043: bytes.decode, 0: bytes.decode,
    1082: lambda data: (POSTGRES_EPOCH + datetime.timedelta(days=struct.unpack("!i", data)[0])).date(),
    1114: lambda data: POSTGRES_EPOCH + datetime.timedelta(microseconds=struct.unpack("!q", data)[0]),
    17: bytes,
}


def _microseconds(moment: datetime.datetime) -> bytes:
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return struct.pack("!q", (moment - POSTGRES_EPOCH) // datetime.timedelta(microseconds=1))


def _utf8(value) -> bytes:
    return str(value).encode()


# PostgreSQL type OID → a value in PostgreSQL's binary format, for the columns a client asks to get so
# (redshift_connector asks for integers, floats, booleans, text and timestamps in binary)
BINARY_WRITERS: dict[int, Callable[[object], bytes]] = {
    16: lambda value: b"\1" if value else b"\0",
    20: lambda value: struct.pack("!q", value), 21: lambda value: struct.pack("!h", value),
    23: lambda value: struct.pack("!i", value), 700: lambda value: struct.pack("!f", value),
    701: lambda value: struct.pack("!d", value), 25: _utf8, 1043: _utf8, 1042: _utf8, 19: _utf8, 114: _utf8,
    1082: lambda value: struct.pack("!i", (value - POSTGRES_EPOCH.date()).days),
    1114: _microseconds, 1184: _microseconds, 17: bytes,
    1186: lambda value: struct.pack("!qii", value // datetime.timedelta(microseconds=1) if isinstance(value, datetime.timedelta) else 0, 0, 0),
}


def type_oid(duckdb_type: str) -> tuple[int, int]:
    name = duckdb_type.upper()
    return TYPE_OIDS.get(name) or TYPE_OIDS.get(name.split("(")[0].strip()) or TEXT_OID


def text_of(value) -> bytes | None:
    """A value in PostgreSQL's text format."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"\\x" + bytes(value).hex().encode()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ").encode()
    if isinstance(value, float) and value == int(value) and abs(value) < 1e16:
        return repr(value).encode()
    return str(value).encode()


def command_tag(sql: str, result: Result) -> str:
    """CommandComplete's tag: SELECT n, INSERT 0 n, UPDATE n, DELETE n, or the statement's first words."""
    words = sql.split()
    verb = words[0].upper() if words else ""
    if verb == "INSERT":
        return f"INSERT 0 {max(result.affected, 0)}"
    if verb in ("UPDATE", "DELETE", "COPY", "UNLOAD", "MERGE"):
        return f"{verb} {max(result.affected, 0)}"
    if result.columns:
        return f"SELECT {len(result.rows)}"
    if verb in ("CREATE", "DROP", "ALTER") and len(words) > 1:
        second = words[1].upper()
        if second in ("TEMP", "TEMPORARY", "MATERIALIZED", "EXTERNAL") and len(words) > 2:
            second = f"{second} {words[2].upper()}"
        return f"{verb} {second}"
    return verb or "EMPTY"


# $tag$ ... $tag$ (tag empty or a name), as PostgreSQL reads a dollar-quoted string
DOLLAR_QUOTE = re.compile(r"\$((?:[A-Za-z_]\w*)?)\$.*?\$\1\$", re.S)


def split_statements(sql: str) -> list[str]:
    """The statements of a simple Query message, split on semicolons outside quotes, dollar quotes and comments."""
    statements, current, quote, index = [], [], None, 0
    while index < len(sql):
        char = sql[index]
        dollar = None if quote else DOLLAR_QUOTE.match(sql, index)
        if dollar:  # a procedure's body, $$ ... $$, with its own semicolons
            current.append(dollar.group())
            index = dollar.end()
            continue
        if quote:
            current.append(char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            current.append(char)
        elif sql.startswith("--", index):
            end = sql.find("\n", index)
            index = len(sql) if end < 0 else end
            continue
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()]


def md5_secret(user: str, password: str) -> str:
    """What a PostgreSQL server keeps of an MD5 password: md5(password + user), in hex."""
    return hashlib.md5(password.encode() + user.encode()).hexdigest()


def md5_answer(secret: str, salt: bytes) -> str:
    """What a client sends in answer to an MD5 request with `salt`."""
    return "md5" + hashlib.md5(secret.encode() + salt).hexdigest()


# ---- messages ---------------------------------------------------------------------------------------------

def _message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def _error(error: WireError) -> bytes:
    fields = [(b"S", error.severity), (b"V", error.severity), (b"C", error.code), (b"M", error.message)]
    if error.position:
        fields.append((b"P", str(error.position)))
    return _message(b"E", b"".join(kind + _cstring(value) for kind, value in fields) + b"\0")


# A stored procedure's RAISE level → the NoticeResponse's severity and SQLSTATE
NOTICE_CODES = {"INFO": "00000", "NOTICE": "00000", "LOG": "00000", "DEBUG": "00000", "WARNING": "01000"}


def _notices(result: Result) -> bytes:
    """NoticeResponse messages for what a statement raised (a CALL's RAISE INFO/NOTICE/WARNING), sent before its end."""
    return b"".join(_message(b"N", b"".join(kind + _cstring(value) for kind, value in (
        (b"S", level), (b"V", level), (b"C", NOTICE_CODES.get(level, "00000")), (b"M", message))) + b"\0")
        for level, message in getattr(result, "notices", None) or ())


def _row_description(columns: list[tuple[str, str]], formats: list[int] | None = None) -> bytes:
    parts = [struct.pack("!h", len(columns))]
    for index, (name, kind) in enumerate(columns):
        oid, length = type_oid(kind)
        parts.append(_cstring(name) + struct.pack("!ihihih", 0, 0, oid, length, -1, formats[index] if formats else 0))
    return _message(b"T", b"".join(parts))


def _result_formats(codes: list[int], columns: list[tuple[str, str]]) -> list[int]:
    """Bind's result format codes spread over the columns (none: all text; one: all alike), checked against
    the types this server can write in binary."""
    formats = [codes[0]] * len(columns) if len(codes) == 1 else codes or [0] * len(columns)
    if len(formats) != len(columns):
        raise WireError("08P01", f"bind message has {len(codes)} result formats but query has {len(columns)} columns")
    for (name, kind), code in zip(columns, formats):
        if code == 1 and type_oid(kind)[0] not in BINARY_WRITERS:
            raise WireError("0A000", f'column "{name}": binary format of type {kind} is not supported: ask for text')
    return formats


def _data_row(row: Iterable, formats: list[int] | None = None, oids: list[int] | None = None) -> bytes:
    values = [None if value is None else BINARY_WRITERS[oids[index]](value) if formats and formats[index] == 1 else text_of(value)
              for index, value in enumerate(row)]
    parts = [struct.pack("!h", len(values))]
    for value in values:
        parts.append(struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value)
    return _message(b"D", b"".join(parts))


def _ready(status: bytes = b"I") -> bytes:
    return _message(b"Z", status)


class _Transaction:
    """The transaction block ReadyForQuery reports (I: none, T: in a block, E: a block that failed), kept from
    the statements a session runs: drivers such as redshift_connector send BEGIN only when the server says I."""

    BEGINS = ("BEGIN", "START")
    ENDS = ("COMMIT", "END", "ROLLBACK", "ABORT")

    def __init__(self):
        self.status = b"I"

    def run(self, session: Session, sql: str, parameters: list) -> Result:
        verb = (sql.split() or [""])[0].upper()
        if self.status == b"E" and verb not in self.ENDS:
            raise WireError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
        try:
            # a failed block ends in a rollback, whatever ends it
            result = session.execute("ROLLBACK" if self.status == b"E" else sql, parameters)
        except Exception as error:
            if self.status == b"T":
                self.status = b"E"
            if isinstance(error, WireError):
                raise
            log.exception("pgwire: the session failed on a statement")  # the engine's fault, never the client's
            raise WireError("XX000", "internal error: the statement failed in dealab (see the stack's log)") from None
        if verb in self.BEGINS:
            self.status = b"T"
        elif verb in self.ENDS:
            self.status = b"I"
        return result


class _Reader:
    def __init__(self, payload: bytes):
        self.payload, self.at = payload, 0

    def cstring(self) -> str:
        end = self.payload.index(b"\0", self.at)
        text = self.payload[self.at:end].decode()
        self.at = end + 1
        return text

    def int16(self) -> int:
        value, = struct.unpack_from("!h", self.payload, self.at)
        self.at += 2
        return value

    def int32(self) -> int:
        value, = struct.unpack_from("!i", self.payload, self.at)
        self.at += 4
        return value

    def take(self, count: int) -> bytes:
        value = self.payload[self.at:self.at + count]
        self.at += count
        return value


@dataclass
class _Statement:
    sql: str
    parameter_oids: list[int]


@dataclass
class _Portal:
    statement: _Statement
    parameters: list
    result_formats: list[int] = field(default_factory=list)  # as Bind asked: per column, one for all, or none
    result: Result | None = None
    sent: int = 0  # rows already sent by Execute messages with a row limit


# ---- the server -------------------------------------------------------------------------------------------

class _Connection(socketserver.StreamRequestHandler):
    server: WireServer

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        session = None
        try:
            started = self._start()
            if started is None:
                return
            user, database = started
            session = self.server.sessions.open(user, database)
            key = self.server.register(session)
            self._send(_message(b"R", struct.pack("!i", 0)))
            # is_superuser as Redshift reports it: on for a superuser only (a session that does not say is one)
            shown = dict(SERVER_PARAMETERS, is_superuser="on" if getattr(session, "superuser", True) else "off")
            for name, value in shown.items():
                self._send(_message(b"S", _cstring(name) + _cstring(value)))
            self._send(_message(b"K", struct.pack("!ii", *key)) + _ready())
            self._serve(session, _Transaction())
        except (ConnectionError, EOFError, ssl.SSLError, OSError):
            pass  # the client went away; its session is closed below and the engine stays healthy
        except WireError as error:
            self._send_quietly(_error(error))
        finally:
            if session is not None:
                self.server.unregister(session)
                session.close()

    # start-up -------------------------------------------------------------------------------------------
    def _start(self) -> tuple[str, str] | None:
        while True:
            length, code = struct.unpack("!ii", self._read_exactly(8))
            if code == SSL_REQUEST:
                if self.server.tls is None:
                    self._send(b"N")
                    continue
                self._send(b"S")
                self.request = self.server.tls.wrap_socket(self.request, server_side=True)
                self.rfile = self.request.makefile("rb")
                continue
            if code == GSSENC_REQUEST:
                self._send(b"N")
                continue
            if code == CANCEL_REQUEST:
                process_id, secret = struct.unpack("!ii", self._read_exactly(8))
                self.server.cancel(process_id, secret)
                return None
            if code != PROTOCOL_3:
                raise WireError("08P01", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: server supports 3.0", severity="FATAL")
            fields = self._read_exactly(length - 8).split(b"\0")
            parameters = dict(zip((name.decode() for name in fields[0::2]), (value.decode() for value in fields[1::2])))
            user = parameters.get("user", "")
            database = parameters.get("database") or user
            self._authenticate(user)
            return user, database

    def _authenticate(self, user: str) -> None:
        secret = self.server.sessions.md5_secret_of(user)
        salt = secrets.token_bytes(4)
        self._send(_message(b"R", struct.pack("!i", 5) + salt))
        kind, payload = self._read_message()
        if kind != b"p":
            raise WireError("08P01", "expected a password message", severity="FATAL")
        given = payload.rstrip(b"\0").decode(errors="replace")
        if secret is None or not secrets.compare_digest(given, md5_answer(secret, salt)):
            self.server.sessions.refused(user, self.client_address)
            raise WireError("28P01", f'password authentication failed for user "{user}"', severity="FATAL")

    # after start-up -------------------------------------------------------------------------------------
    def _serve(self, session: Session, transaction: _Transaction) -> None:
        statements: dict[str, _Statement] = {}
        portals: dict[str, _Portal] = {}
        skipping = False  # after an error in the extended protocol, messages are skipped until Sync
        handlers = {
            b"P": lambda reader: self._parse(reader, statements),
            b"B": lambda reader: self._bind(reader, statements, portals),
            b"D": lambda reader: self._describe(reader, session, transaction, statements, portals),
            b"E": lambda reader: self._execute(reader, session, transaction, portals),
            b"C": lambda reader: self._close(reader, statements, portals),
            b"H": lambda reader: None,
        }
        while True:
            kind, payload = self._read_message()
            if kind == b"X":
                return
            if kind == b"Q":
                self._simple_query(session, transaction, payload.rstrip(b"\0").decode())
                portals.pop("", None)
                continue
            if kind == b"S":
                skipping = False
                portals.pop("", None)
                self._send(_ready(transaction.status))
                continue
            handler = handlers.get(kind)
            if handler is None:
                raise WireError("08P01", f"invalid frontend message type {kind!r}", severity="FATAL")
            if skipping:
                continue
            try:
                handler(_Reader(payload))
            except WireError as error:
                self._send(_error(error))
                skipping = True
            except (struct.error, ValueError, IndexError):  # a malformed message: refused, the session goes on
                self._send(_error(WireError("08P01", f"malformed {kind.decode(errors='replace')} message")))
                skipping = True

    def _simple_query(self, session: Session, transaction: _Transaction, sql: str) -> None:
        statements = split_statements(sql)
        if not statements:
            self._send(_message(b"I") + _ready(transaction.status))
            return
        for statement in statements:
            try:
                result = transaction.run(session, statement, [])
            except WireError as error:
                self._send(_error(error))
                break
            out = [_row_description(result.columns)] if result.columns else []
            out += [_data_row(row) for row in result.rows]
            out += [_notices(result), _message(b"C", _cstring(command_tag(statement, result)))]
            self._send(b"".join(out))
        self._send(_ready(transaction.status))

    def _parse(self, reader: _Reader, statements: dict[str, _Statement]) -> None:
        name, sql = reader.cstring(), reader.cstring()
        oids = [reader.int32() for _ in range(reader.int16())]
        statements[name] = _Statement(sql, oids)
        self._send(_message(b"1"))

    def _bind(self, reader: _Reader, statements: dict[str, _Statement], portals: dict[str, _Portal]) -> None:
        portal, name = reader.cstring(), reader.cstring()
        statement = statements.get(name)
        if statement is None:
            raise WireError("26000", f'prepared statement "{name}" does not exist')
        formats = [reader.int16() for _ in range(reader.int16())]
        parameters = []
        for index in range(reader.int16()):
            length = reader.int32()
            binary = (formats[index] if len(formats) > 1 else formats[0] if formats else 0) == 1
            oid = statement.parameter_oids[index] if index < len(statement.parameter_oids) else 0
            parameters.append(None if length < 0 else _parameter(reader.take(length), oid, binary, index))
        portals[portal] = _Portal(statement, parameters, [reader.int16() for _ in range(reader.int16())])
        self._send(_message(b"2"))

    def _describe(self, reader: _Reader, session: Session, transaction: _Transaction, statements: dict[str, _Statement], portals: dict[str, _Portal]) -> None:
        target, name = reader.take(1), reader.cstring()
        if target == b"S":
            statement = statements.get(name)
            if statement is None:
                raise WireError("26000", f'prepared statement "{name}" does not exist')
            count = parameter_count(statement.sql)
            oids = (statement.parameter_oids + [0] * count)[:max(count, len(statement.parameter_oids))]
            columns = session.describe(statement.sql)
            self._send(_message(b"t", struct.pack("!h", len(oids)) + b"".join(struct.pack("!i", oid or 25) for oid in oids))
                       + (_row_description(columns) if columns else _message(b"n")))
            return
        portal = portals.get(name)
        if portal is None:
            raise WireError("34000", f'portal "{name}" does not exist')
        if portal.result is None:  # its columns are known only once it ran: Execute then sends the kept rows
            portal.result = transaction.run(session, portal.statement.sql, portal.parameters)
        columns = portal.result.columns
        self._send(_row_description(columns, _result_formats(portal.result_formats, columns)) if columns else _message(b"n"))

    def _execute(self, reader: _Reader, session: Session, transaction: _Transaction, portals: dict[str, _Portal]) -> None:
        name, limit = reader.cstring(), reader.int32()
        portal = portals.get(name)
        if portal is None:
            raise WireError("34000", f'portal "{name}" does not exist')
        if not portal.statement.sql.strip():
            self._send(_message(b"I"))
            return
        if portal.result is None:
            portal.result = transaction.run(session, portal.statement.sql, portal.parameters)
        rows = portal.result.rows[portal.sent:portal.sent + limit] if limit > 0 else portal.result.rows[portal.sent:]
        portal.sent += len(rows)
        columns = portal.result.columns
        formats = _result_formats(portal.result_formats, columns) if columns else []
        oids = [type_oid(kind)[0] for _, kind in columns]
        out = [_data_row(row, formats, oids) for row in rows]
        if limit > 0 and portal.sent < len(portal.result.rows):
            out.append(_message(b"s"))
        else:
            out += [_notices(portal.result), _message(b"C", _cstring(command_tag(portal.statement.sql, portal.result)))]
        self._send(b"".join(out))

    def _close(self, reader: _Reader, statements: dict[str, _Statement], portals: dict[str, _Portal]) -> None:
        target, name = reader.take(1), reader.cstring()
        (statements if target == b"S" else portals).pop(name, None)
        self._send(_message(b"3"))

    # plumbing -------------------------------------------------------------------------------------------
    def _read_exactly(self, count: int) -> bytes:
        data = self.rfile.read(count)
        if len(data) < count:
            raise EOFError
        return data

    def _read_message(self) -> tuple[bytes, bytes]:
        kind = self._read_exactly(1)
        length, = struct.unpack("!i", self._read_exactly(4))
        if not 4 <= length <= MAX_MESSAGE_BYTES:
            raise WireError("08P01", f"invalid message length {length}", severity="FATAL")
        return kind, self._read_exactly(length - 4)

    def _send(self, data: bytes) -> None:
        self.request.sendall(data)

    def _send_quietly(self, data: bytes) -> None:
        try:
            self._send(data)
        except OSError:
            pass


def placeholders(sql: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, n) of each $n placeholder of a statement, outside quotes and dollar quotes."""
    quote, index = None, 0
    while index < len(sql):
        char = sql[index]
        dollar = None if quote else DOLLAR_QUOTE.match(sql, index)
        if dollar:  # a procedure's body: its $1 is the procedure's argument, not the statement's
            index = dollar.end()
            continue
        if quote:
            quote = None if char == quote else quote
        elif char in ("'", '"'):
            quote = char
        elif char == "$" and index + 1 < len(sql) and sql[index + 1].isdigit():
            end = index + 1
            while end < len(sql) and sql[end].isdigit():
                end += 1
            yield index, end, int(sql[index + 1:end])
            index = end
            continue
        index += 1


def parameter_count(sql: str) -> int:
    """The highest $n placeholder of a statement."""
    return max((number for _, _, number in placeholders(sql)), default=0)


def _parameter(data: bytes, oid: int, binary: bool, index: int):
    """A parameter as the value its declared type says (text of an unknown type stays text)."""
    if binary:
        reader = BINARY_PARAMETER_READERS.get(oid)
        if reader is None:
            raise WireError("0A000", f"parameter ${index + 1}: binary format of type {oid} is not supported: send it as text")
        try:
            return reader(data)
        except (struct.error, UnicodeDecodeError, OverflowError):
            raise WireError("22P03", f"incorrect binary data format in parameter ${index + 1}") from None
    text = data.decode()
    reader = PARAMETER_READERS.get(oid)
    try:
        return text if reader is None else reader(text)
    except (ValueError, decimal.InvalidOperation):
        raise WireError("22P02", f'invalid input syntax for parameter ${index + 1}: "{text}"') from None


class WireServer(socketserver.ThreadingTCPServer):
    """One endpoint: a listening socket on 127.0.0.1 with a thread per connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, sessions: Sessions, tls: ssl.SSLContext | None = None):
        self.sessions, self.tls = sessions, tls
        self._lock = threading.Lock()
        self._keys: dict[tuple[int, int], Session] = {}
        super().__init__(("127.0.0.1", port), _Connection)
        self._thread = threading.Thread(target=self.serve_forever, name=f"pgwire-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self) -> WireServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self._lock:
            sessions = list(self._keys.values())
        for session in sessions:
            session.cancel()

    def register(self, session: Session) -> tuple[int, int]:
        key = (os.getpid() & 0x7FFFFFFF, secrets.randbelow(2**31))
        with self._lock:
            while key in self._keys:
                key = (key[0], secrets.randbelow(2**31))
            self._keys[key] = session
        return key

    def unregister(self, session: Session) -> None:
        with self._lock:
            for key in [key for key, known in self._keys.items() if known is session]:
                del self._keys[key]

    def cancel(self, process_id: int, secret: int) -> None:
        with self._lock:
            session = self._keys.get((process_id, secret))
        if session is not None:
            session.cancel()
