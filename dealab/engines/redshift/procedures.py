"""Stored procedures: CREATE [OR REPLACE] PROCEDURE ... LANGUAGE plpgsql, CALL, DROP PROCEDURE and SHOW PROCEDURE,
in a documented subset of PL/pgSQL (docs/redshift.md), run by a small interpreter of our own.

Why our own: no maintained PL/pgSQL interpreter exists for DuckDB or in Python (pglast parses PL/pgSQL into a
tree but runs nothing), and the subset Redshift's labs use is small. The body is parsed at CREATE (so a
statement beyond the subset is refused there, SQLSTATE 0A000), kept as text in the warehouse's metadata (it
survives a restart with the data) and parsed again at CALL. Expressions are evaluated by DuckDB through the same
dialect, lock-down and grants as any statement; a variable reaches SQL as a literal node put into the parsed
statement in place of its name (never spliced into text), so a value cannot change what a statement does.

A CALL outside a transaction block runs in one transaction of its own, committed at its end and rolled back when
it fails; COMMIT and ROLLBACK inside it end that transaction and start the next, as Redshift's atomic mode does.
RAISE INFO/NOTICE/WARNING/LOG messages go to SVL_STORED_PROC_MESSAGES / SYS_PROCEDURE_MESSAGES (and to a wire
client as notices); RAISE EXCEPTION aborts the call with its message."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from dealab.engines.redshift import errors, partiql
from dealab.engines.redshift.errors import RedshiftError

SYSTEM = "dealab_system"
SUBSET = "not supported in dealab's procedure subset"
MAX_NESTING = 16  # Redshift's limit on nested CALLs
MAX_STEPS = 1_000_000  # statements one CALL may run: a loop that never exits fails instead of holding a worker
VARIABLE = "dealab_variable_"  # what a variable is called between its parse and its parameter number
PLPGSQL_OID = 100356  # what Redshift's pg_proc shows as prolang for plpgsql

METADATA = [
    f"CREATE SEQUENCE IF NOT EXISTS {SYSTEM}.procedure_ids START 200000",
    # signature: the types of the IN and INOUT arguments, which CALL and DROP name a procedure by
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.procedures (procedure_id INTEGER, schema_name VARCHAR, name VARCHAR, signature VARCHAR,
        arguments VARCHAR, body VARCHAR, security VARCHAR, owner VARCHAR, created TIMESTAMP, PRIMARY KEY (schema_name, name, signature))""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.procedure_calls (query_id BIGINT, user_name VARCHAR, procedure_name VARCHAR,
        start_time TIMESTAMP, end_time TIMESTAMP, aborted INTEGER, query_text VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.procedure_messages (query_id BIGINT, user_name VARCHAR, procedure_name VARCHAR,
        record_time TIMESTAMP, log_level VARCHAR, message VARCHAR, query_text VARCHAR)""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.pg_proc_info AS SELECT p.procedure_id AS prooid, p.name AS proname,
        s.oid AS pronamespace, coalesce(u.user_id, 100) AS proowner, {PLPGSQL_OID} AS prolang, 2278 AS prorettype,
        len(json_extract_string(p.arguments, '$[*][2]')) AS pronargs, p.signature AS proargtypes,
        json_extract_string(p.arguments, '$[*][0]') AS proargnames, p.security = 'DEFINER' AS prosecdef, p.body AS prosrc,
        'p' AS prokind FROM {SYSTEM}.procedures p LEFT JOIN duckdb_schemas() s ON s.schema_name = p.schema_name
        AND s.database_name = current_database() LEFT JOIN {SYSTEM}.users u ON u.user_name = p.owner""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.pg_proc AS SELECT proname, pronamespace, proowner, prolang, prorettype, pronargs,
        proargtypes, proargnames, prosecdef, prosrc FROM {SYSTEM}.pg_proc_info""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_function_privileges AS SELECT schema_name AS namespace_name,
        split_part(table_name, '(', 1) AS function_name, rtrim(split_part(table_name, '(', 2), ')') AS argument_types,
        privilege AS privilege_type, grantee_kind AS identity_type, grantee AS identity_name
        FROM {SYSTEM}.privileges WHERE object_kind = 'procedure'""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svl_stored_proc_call AS SELECT coalesce(u.user_id, 100) AS userid, c.query_id AS query,
        c.query_text AS querytxt, c.start_time AS starttime, c.end_time AS endtime, c.aborted
        FROM {SYSTEM}.procedure_calls c LEFT JOIN {SYSTEM}.users u ON u.user_name = c.user_name""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svl_stored_proc_messages AS SELECT coalesce(u.user_id, 100) AS userid, m.query_id AS query,
        m.record_time AS recordtime, m.log_level AS loglevel_text, m.message, m.query_text AS querytxt
        FROM {SYSTEM}.procedure_messages m LEFT JOIN {SYSTEM}.users u ON u.user_name = m.user_name""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.sys_procedure_call AS SELECT query_id, user_name AS caller_user_name, procedure_name,
        start_time, end_time, CASE WHEN aborted = 1 THEN 'failed' ELSE 'success' END AS status, query_text
        FROM {SYSTEM}.procedure_calls""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.sys_procedure_messages AS SELECT query_id, user_name, procedure_name, record_time,
        log_level, message, query_text FROM {SYSTEM}.procedure_messages""",
]
# name → (deployments that offer it, relation); Serverless has the SYS_* views only
SYSTEM_VIEWS = {
    "pg_proc": ({"serverless", "provisioned"}, (None, SYSTEM, "pg_proc")),
    "pg_proc_info": ({"serverless", "provisioned"}, (None, SYSTEM, "pg_proc_info")),
    "svv_function_privileges": ({"serverless", "provisioned"}, (None, SYSTEM, "svv_function_privileges")),
    "sys_procedure_call": ({"serverless", "provisioned"}, (None, SYSTEM, "sys_procedure_call")),
    "sys_procedure_messages": ({"serverless", "provisioned"}, (None, SYSTEM, "sys_procedure_messages")),
    "svl_stored_proc_call": ({"provisioned"}, (None, SYSTEM, "svl_stored_proc_call")),
    "svl_stored_proc_messages": ({"provisioned"}, (None, SYSTEM, "svl_stored_proc_messages")),
}


class RaisedException(RedshiftError):
    """RAISE EXCEPTION: the call fails with the procedure's own message (SQLSTATE P0001, raise_exception)."""

    sqlstate = "P0001"


def unsupported(what: str) -> RedshiftError:
    return RedshiftError(f"{what} is {SUBSET} (see docs/redshift.md, stored procedures)")


# ------------------------------------------------------------------------------------------------ the body's tokens

TOKEN = re.compile(r"""
    (?P<space>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<string>(?:[EeNn])?'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
  | (?P<label><<\s*\w+\s*>>)
  | (?P<word>"(?:[^"]|"")*"|[A-Za-z_][\w$]*(?:\.(?:"(?:[^"]|"")*"|[A-Za-z_][\w$]*))*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<symbol>:=|\.\.|<>|!=|>=|<=|\|\||::|[^\s])
""", re.S | re.X)


@dataclass
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def word(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


def tokens_of(source: str) -> list[Token]:
    found, at = [], 0
    while at < len(source):
        match = TOKEN.match(source, at)
        if not match:
            raise RedshiftError(f'syntax error at or near "{source[at:at + 10]}" in the procedure body')
        kind = match.lastgroup if match.lastgroup != "tag" else "dollar"
        if kind != "space":
            found.append(Token(kind, match.group(), match.start(), match.end()))
        at = match.end()
    return found


# ------------------------------------------------------------------------------------------------ the parsed body

@dataclass
class Node:
    line: str  # the statement's text, for messages


@dataclass
class Block(Node):
    declarations: list = field(default_factory=list)  # Declaration
    body: list = field(default_factory=list)
    handler: list | None = None  # EXCEPTION WHEN OTHERS THEN ...
    label: str | None = None


@dataclass
class Declaration(Node):
    name: str = ""
    type: str | None = None  # None: RECORD
    default: str | None = None
    constant: bool = False


@dataclass
class Assign(Node):
    target: str = ""
    expression: str = ""


@dataclass
class If(Node):
    branches: list = field(default_factory=list)  # (condition, statements)
    otherwise: list = field(default_factory=list)


@dataclass
class Loop(Node):
    body: list = field(default_factory=list)
    label: str | None = None
    condition: str | None = None  # WHILE
    variable: str | None = None  # FOR
    low: str | None = None  # FOR i IN low..high [BY step]
    high: str | None = None
    step: str | None = None
    reverse: bool = False
    query: str | None = None  # FOR rec IN query / EXECUTE expression
    dynamic: bool = False


@dataclass
class Exit(Node):
    kind: str = "EXIT"  # or CONTINUE
    label: str | None = None
    condition: str | None = None


@dataclass
class Raise(Node):
    level: str = "EXCEPTION"
    format: str = ""
    arguments: list = field(default_factory=list)


@dataclass
class Sql(Node):
    text: str = ""
    into: list = field(default_factory=list)  # SELECT ... INTO variables
    dynamic: bool = False  # EXECUTE expression
    perform: bool = False


@dataclass
class Transaction(Node):
    verb: str = "COMMIT"


@dataclass
class Return(Node):
    pass


@dataclass
class Diagnostics(Node):
    target: str = ""


@dataclass
class Nothing(Node):
    pass


# Words that start a SQL statement in a body; the rest of STATEMENT_WORDS' grammar is the parser below
SQL_WORDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE", "WITH", "MERGE",
                       "COPY", "UNLOAD", "CALL", "GRANT", "REVOKE", "ANALYZE", "VACUUM", "REFRESH", "VALUES"})
# SQL statements whose variables are bound (sqlglot parses them); others run as written
BOUND_WORDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "VALUES"})
# Statement words of PL/pgSQL this subset does not offer: refused by name at CREATE
UNSUPPORTED_WORDS = {"OPEN": "cursors (OPEN)", "FETCH": "cursors (FETCH)", "CLOSE": "cursors (CLOSE)", "MOVE": "cursors (MOVE)",
                     "CASE": "the CASE statement (use IF/ELSIF)", "FOREACH": "FOREACH", "ASSERT": "ASSERT",
                     "SET": "SET inside a procedure", "LOCK": "LOCK inside a procedure"}


class Parser:
    def __init__(self, source: str):
        self.source, self.tokens, self.at = source, tokens_of(source), 0

    # ---- plumbing
    def peek(self, ahead: int = 0) -> Token | None:
        return self.tokens[self.at + ahead] if self.at + ahead < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return token.word if token else ""

    def expect(self, *words: str) -> Token:
        token = self.peek()
        if token is None or (token.word if token.kind == "word" else token.text) not in words:
            near = token.text if token else "end of procedure body"
            raise RedshiftError(f'syntax error at or near "{near}" in the procedure body (expected {" or ".join(words)})')
        self.at += 1
        return token

    def until(self, *stops: str, semicolon_stops: bool = True) -> str:
        """The text up to the first of `stops` (words, or ';') outside parentheses and CASE ... END."""
        start, depth, cases = self.peek(), 0, 0
        while (token := self.peek()) is not None:
            if depth == 0 and cases == 0 and ((token.word in stops and token.kind == "word") or
                                              (semicolon_stops and token.text == ";") or token.text in stops):
                break
            depth += {"(": 1, ")": -1}.get(token.text, 0)
            cases += 1 if token.word == "CASE" else -1 if token.word == "END" and cases else 0
            self.at += 1
        if start is None or start is self.peek():
            near = self.peek().text if self.peek() else "end of procedure body"
            raise RedshiftError(f'syntax error at or near "{near}" in the procedure body')
        end = self.tokens[self.at - 1].end
        return self.source[start.start:end]

    def line_of(self, token: Token) -> str:
        return " ".join(self.source[token.start:token.start + 60].split())

    # ---- grammar
    def block(self, label: str | None = None) -> Block:
        first = self.peek()
        block = Block(self.line_of(first) if first else "", label=label)
        if self.word() == "DECLARE":
            self.at += 1
            while self.word() != "BEGIN":
                if self.peek() is None:
                    raise RedshiftError("syntax error at end of procedure body (DECLARE without BEGIN)")
                block.declarations.append(self.declaration())
        self.expect("BEGIN")
        block.body = self.statements("END", "EXCEPTION")
        if self.word() == "EXCEPTION":
            self.at += 1
            self.expect("WHEN")
            if self.word() != "OTHERS":
                raise unsupported(f"EXCEPTION WHEN {self.word() or '?'} (only WHEN OTHERS)")
            self.at += 1
            self.expect("THEN")
            block.handler = self.statements("END")
        self.expect("END")
        if self.peek() is not None and self.peek().kind == "word" and self.word() != "END":
            self.at += 1  # END label
        if self.peek() is not None and self.peek().text == ";":
            self.at += 1
        return block

    def declaration(self) -> Declaration:
        first = self.peek()
        name = self.expect_name()
        declaration = Declaration(self.line_of(first), name=name)
        if self.word() == "CONSTANT":
            declaration.constant = True
            self.at += 1
        if self.word() in ("CURSOR", "REFCURSOR"):
            raise unsupported("a cursor variable")
        if self.word() == "ALIAS":
            raise unsupported("ALIAS FOR (name the argument in the procedure's signature)")
        type_text = self.until(":=", "=", "DEFAULT", "NOT")
        declaration.type = None if type_text.strip().upper() == "RECORD" else type_text.strip()
        if self.word() == "NOT":
            self.at += 2  # NOT NULL: kept as a plain variable
        if self.peek() is not None and (self.peek().text in (":=", "=") or self.word() == "DEFAULT"):
            self.at += 1
            declaration.default = self.until(";")
        self.expect(";")
        return declaration

    def expect_name(self) -> str:
        token = self.peek()
        if token is None or token.kind != "word":
            raise RedshiftError(f'syntax error at or near "{token.text if token else "end"}" in the procedure body')
        self.at += 1
        return token.text.strip('"') if token.text.startswith('"') else token.text.lower()

    def statements(self, *ends: str) -> list:
        found = []
        while self.word() not in ends:
            if self.peek() is None:
                raise RedshiftError(f"syntax error at end of procedure body (missing {' or '.join(ends)})")
            found.append(self.statement())
        return found

    def statement(self) -> Node:
        token = self.peek()
        line = self.line_of(token)
        label = None
        if token.kind == "label":
            label = token.text.strip("<> \t").lower()
            self.at += 1
            token, line = self.peek(), self.line_of(self.peek())
        word = token.word
        if word in ("DECLARE", "BEGIN"):
            return self.block(label)
        if word in ("LOOP", "WHILE", "FOR"):
            return self.loop(label, line)
        if label:
            raise RedshiftError(f'syntax error at or near "{token.text}" in the procedure body (a label names a loop or block)')
        if word == "IF":
            return self.if_statement(line)
        if word in ("EXIT", "CONTINUE"):
            self.at += 1
            node = Exit(line, kind=word)
            if self.peek() is not None and self.peek().kind == "word" and self.word() != "WHEN":
                node.label = self.expect_name()
            if self.word() == "WHEN":
                self.at += 1
                node.condition = self.until(";")
            self.expect(";")
            return node
        if word == "RETURN":
            self.at += 1
            if self.peek() is not None and self.peek().text != ";":
                raise unsupported("RETURN with a value (a procedure returns through OUT and INOUT arguments)")
            self.expect(";")
            return Return(line)
        if word == "RAISE":
            return self.raise_statement(line)
        if word in ("COMMIT", "ROLLBACK"):
            self.at += 1
            if self.word() in ("WORK", "TRANSACTION"):
                self.at += 1
            self.expect(";")
            return Transaction(line, verb=word)
        if word == "NULL" and self.peek(1) is not None and self.peek(1).text == ";":
            self.at += 2
            return Nothing(line)
        if word == "EXECUTE":
            self.at += 1
            node = Sql(line, text=self.until("INTO", "USING"), dynamic=True)
            if self.word() == "USING":
                raise unsupported("EXECUTE ... USING (build the statement with || and QUOTE_LITERAL)")
            node.into = self.into_names()
            self.expect(";")
            return node
        if word == "PERFORM":
            self.at += 1
            node = Sql(line, text="SELECT " + self.until(";"), perform=True)
            self.expect(";")
            return node
        if word == "GET":
            self.at += 1
            self.expect("DIAGNOSTICS")
            target = self.expect_name()
            self.expect(":=", "=")
            self.expect("ROW_COUNT")
            self.expect(";")
            return Diagnostics(line, target=target)
        if word in SQL_WORDS:
            return self.sql_statement(line)
        if token.kind == "word" and self.peek(1) is not None and self.peek(1).text in (":=", "="):
            target = self.expect_name()
            self.at += 1
            node = Assign(line, target=target, expression=self.until(";"))
            self.expect(";")
            return node
        described = UNSUPPORTED_WORDS.get(word) or (f"the statement {word}" if word else f'"{token.text}"')
        raise unsupported(described)

    def into_names(self) -> list[str]:
        if self.word() != "INTO":
            return []
        self.at += 1
        if self.word() == "STRICT":
            self.at += 1
        names = [self.expect_name()]
        while self.peek() is not None and self.peek().text == ",":
            self.at += 1
            names.append(self.expect_name())
        return names

    def sql_statement(self, line: str) -> Sql:
        """A SQL statement up to its ';'; a SELECT's INTO variables taken out of it."""
        start, depth, into, into_span = self.peek(), 0, [], None
        while (token := self.peek()) is not None and not (depth == 0 and token.text == ";"):
            depth += {"(": 1, ")": -1}.get(token.text, 0)
            if depth == 0 and token.word == "INTO" and start.word in ("SELECT", "WITH") and not into:
                begin = token.start
                into = self.into_names()
                into_span = (begin, self.tokens[self.at - 1].end)
                continue
            self.at += 1
        end = self.tokens[self.at - 1].end
        self.expect(";")
        text = self.source[start.start:end]
        if into_span:
            text = self.source[start.start:into_span[0]] + " " + self.source[into_span[1]:end]
        return Sql(line, text=text, into=into)

    def if_statement(self, line: str) -> If:
        node = If(line)
        self.expect("IF")
        while True:
            condition = self.until("THEN")
            self.expect("THEN")
            node.branches.append((condition, self.statements("ELSIF", "ELSEIF", "ELSE", "END")))
            word = self.word()
            self.at += 1
            if word in ("ELSIF", "ELSEIF"):
                continue
            if word == "ELSE":
                node.otherwise = self.statements("END")
                self.expect("END")
            self.expect("IF")
            self.expect(";")
            return node

    def loop(self, label: str | None, line: str) -> Loop:
        node = Loop(line, label=label)
        word = self.word()
        self.at += 1
        if word == "WHILE":
            node.condition = self.until("LOOP")
        elif word == "FOR":
            node.variable = self.expect_name()
            self.expect("IN")
            if self.word() == "REVERSE":
                node.reverse = True
                self.at += 1
            if self.word() == "EXECUTE":
                self.at += 1
                node.query, node.dynamic = self.until("LOOP"), True
            elif self.word() in ("SELECT", "WITH") or (self.peek() is not None and self.peek().text == "("):
                node.query = self.until("LOOP")
            else:
                node.low = self.until("..")
                self.expect("..")
                node.high = self.until("BY", "LOOP")
                if self.word() == "BY":
                    self.at += 1
                    node.step = self.until("LOOP")
        if word != "LOOP":
            self.expect("LOOP")
        node.body = self.statements("END")
        self.expect("END")
        self.expect("LOOP")
        if self.peek() is not None and self.peek().kind == "word":
            self.at += 1  # END LOOP label
        self.expect(";")
        return node

    def raise_statement(self, line: str) -> Raise:
        self.expect("RAISE")
        level = "EXCEPTION"
        if self.word() in ("DEBUG", "LOG", "INFO", "NOTICE", "WARNING", "EXCEPTION"):
            level = self.word()
            self.at += 1
        token = self.peek()
        if token is None or token.kind != "string":
            raise unsupported("RAISE without a message string (RAISE level 'format', expressions)")
        self.at += 1
        node = Raise(line, level=level, format=token.text[1:-1].replace("''", "'"))
        while self.peek() is not None and self.peek().text == ",":
            self.at += 1
            node.arguments.append(self.until(",", "USING"))
        if self.word() == "USING":
            raise unsupported("RAISE ... USING")
        self.expect(";")
        return node


def parse_body(body: str) -> Block:
    parser = Parser(body)
    block = parser.block()
    if parser.peek() is not None:
        raise RedshiftError(f'syntax error at or near "{parser.peek().text}" after the procedure body\'s END')
    return block


# ------------------------------------------------------------------------------------------------ CREATE's header

NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
CREATE = re.compile(r"CREATE\s+(?P<replace>OR\s+REPLACE\s+)?PROCEDURE\s+(?P<name>" + NAME + r"(?:\." + NAME + r")?)\s*"
                    r"\((?P<arguments>[^()]*(?:\([^()]*\)[^()]*)*)\)(?P<options>.*?)\bAS\s+"
                    r"(?:(?P<dollar>\$(?P<tag>\w*)\$)(?P<body>.*?)\$(?P=tag)\$|'(?P<quoted>(?:[^']|'')*)')(?P<after>.*)", re.S | re.I)
DROP = re.compile(r"DROP\s+PROCEDURE\s+(?P<exists>IF\s+EXISTS\s+)?(?P<name>" + NAME + r"(?:\." + NAME + r")?)\s*"
                  r"(?:\((?P<arguments>[^()]*(?:\([^()]*\)[^()]*)*)\))?\s*;?\s*", re.S | re.I)
CALL = re.compile(r"CALL\s+(?P<name>" + NAME + r"(?:\." + NAME + r")?)\s*\((?P<arguments>.*)\)\s*;?\s*", re.S | re.I)
SHOW = re.compile(r"SHOW\s+PROCEDURE\s+(?P<name>" + NAME + r"(?:\." + NAME + r")?)\s*(?:\((?P<arguments>.*)\))?\s*;?\s*", re.S | re.I)
MODES = ("IN", "OUT", "INOUT")


def _split_name(name: str) -> tuple[str, str]:
    schema, _, bare = name.rpartition(".")
    unquote = lambda part: part[1:-1] if part.startswith('"') else part.lower()  # noqa: E731
    return unquote(schema) if schema else "public", unquote(bare)


def _top_level(text: str) -> list[str]:
    """`text` split on commas outside parentheses and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [part.strip() for part in parts + [text[start:]] if part.strip()]


def type_key(type_text: str) -> str:
    """A type as a signature names it: Redshift's type without its length (varchar(10) and varchar are one)."""
    try:
        built = exp.DataType.build(type_text, dialect="redshift")
    except (ParseError, ValueError):
        raise RedshiftError(f'type "{type_text.strip()}" does not exist') from None
    kind = built.this
    if kind == exp.DataType.Type.UNKNOWN or (kind == exp.DataType.Type.USERDEFINED and type_text.strip().upper() != "SUPER"):
        raise RedshiftError(f'type "{type_text.strip()}" does not exist')
    return {"TEXT": "varchar", "INT": "integer", "DOUBLE": "double precision", "DECIMAL": "numeric"}.get(kind.name, kind.name.lower())


def parse_arguments(text: str) -> list[list[str]]:
    """[[name, mode, type], ...] of a signature: `[name] [mode] type` (or `mode name type`), unnamed ones `$n`."""
    arguments = []
    for number, part in enumerate(_top_level(text), 1):
        words = part.split(None, 1)
        mode, name = "IN", f"${number}"
        if words[0].upper() in MODES and len(words) > 1:  # mode first, as PostgreSQL writes it
            mode, part = words[0].upper(), words[1]
            words = part.split(None, 1)
        if len(words) > 1:
            try:
                type_key(part)
            except RedshiftError:  # the first word is a name
                name, part = words[0].strip('"') if words[0].startswith('"') else words[0].lower(), words[1]
                words = part.split(None, 1)
                if words[0].upper() in MODES and len(words) > 1:
                    mode, part = words[0].upper(), words[1]
        type_key(part)
        arguments.append([name, mode, part.strip()])
    return arguments


def signature(arguments: list[list[str]]) -> str:
    return ", ".join(type_key(kind) for _, mode, kind in arguments if mode in ("IN", "INOUT"))


# ------------------------------------------------------------------------------------------------ statements

def run(warehouse, cursor, sql: str, parameters, s3, user: str | None, principal: str | None, query_id: int):
    """CREATE/DROP/SHOW PROCEDURE or CALL: the warehouse's Result."""
    from dealab.engines.redshift.warehouse import Result

    statement = sql.strip()
    head = " ".join(statement.split()[:3]).upper()
    if head.startswith("CREATE"):
        create(warehouse, cursor, statement, user)
        return Result()
    if head.startswith("DROP"):
        drop(warehouse, cursor, statement, user)
        return Result()
    if head.startswith("SHOW"):
        found = _named(cursor, SHOW, statement, "SHOW PROCEDURE")
        return Result(columns=[("Stored Procedure Definition", "VARCHAR")], rows=[(_definition(found),)])
    return Call(warehouse, cursor, parameters, s3, user, principal, query_id).call(statement)


def describe(warehouse, cursor, sql: str) -> list[tuple[str, str]] | None:
    """The (name, DuckDB type) of the row a CALL returns (its OUT and INOUT arguments), without running it; None
    for a procedure without them and for CREATE/DROP (the wire protocol's Describe before Execute)."""
    from dealab.engines.redshift import dialect

    match = CALL.fullmatch(sql.strip())
    if not match:
        return [("Stored Procedure Definition", "VARCHAR")] if SHOW.fullmatch(sql.strip()) else None
    schema, name = _split_name(match.group("name"))
    call = Call(warehouse, cursor, None, None, None, None, 0)
    arguments = json.loads(call._resolve(schema, name, len(_top_level(match.group("arguments"))))[3])
    outputs = [(_local(argument), kind) for argument, mode, kind in arguments if mode in ("OUT", "INOUT")]
    if not outputs:
        return None
    query = "SELECT " + ", ".join(f"CAST(NULL AS {kind}) AS {_shown_output(local, number)}" for number, (local, kind) in enumerate(outputs, 1))
    translation = dialect.translate(query, warehouse.database, warehouse.system_views)
    return [(column, kind) for column, kind, *_ in cursor.execute(f"DESCRIBE {translation.sql}").fetchall()]


def create(warehouse, cursor, sql: str, user: str | None) -> None:
    match = CREATE.fullmatch(sql.rstrip().rstrip(";").rstrip())
    if not match:
        raise RedshiftError('syntax error at or near "PROCEDURE": CREATE PROCEDURE name ( [ [ argname ] [ argmode ] argtype [, ...] ] ) '
                            "AS $$ ... $$ LANGUAGE plpgsql")
    options = (match.group("options") + " " + match.group("after")).strip().rstrip(";")
    language = re.search(r"\bLANGUAGE\s+(\w+)", options, re.I)
    if not language or language.group(1).lower() != "plpgsql":
        raise RedshiftError(f'language "{language.group(1) if language else ""}" does not exist (Redshift procedures are LANGUAGE plpgsql)')
    if re.search(r"\bNONATOMIC\b", options, re.I):
        raise unsupported("NONATOMIC mode")
    if re.search(r"\bSET\b", options, re.I):
        raise unsupported("SET configuration_parameter on a procedure")
    security = re.search(r"\bSECURITY\s+(INVOKER|DEFINER)\b", options, re.I)
    schema, name = _split_name(match.group("name"))
    arguments = parse_arguments(match.group("arguments"))
    body = match.group("body") if match.group("dollar") else match.group("quoted").replace("''", "'")
    parse_body(_named_arguments(body, arguments))  # refused now, not at its first CALL
    key = signature(arguments)
    if not warehouse.grants.is_superuser(cursor, user):
        warehouse.grants.need_schema_privilege(cursor, user, schema, "CREATE")
    existing = cursor.execute(f"SELECT owner FROM {SYSTEM}.procedures WHERE schema_name = ? AND name = ? AND signature = ?",
                              [schema, name, key]).fetchone()
    if existing and not match.group("replace"):
        raise RedshiftError(f'function "{name}" already exists with same argument types')
    if existing:
        _need_owner(warehouse, cursor, user, existing[0], name)
    if not cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = ? AND catalog_name = current_database()",
                          [schema]).fetchone():
        raise RedshiftError(f'schema "{schema}" does not exist')
    owner = existing[0] if existing else warehouse.grants.session_user(cursor, user)
    cursor.execute(f"DELETE FROM {SYSTEM}.procedures WHERE schema_name = ? AND name = ? AND signature = ?", [schema, name, key])
    cursor.execute(f"INSERT INTO {SYSTEM}.procedures VALUES (nextval('{SYSTEM}.procedure_ids'), ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
                   [schema, name, key, json.dumps(arguments), body, (security.group(1) if security else "INVOKER").upper(), owner])


def _need_owner(warehouse, cursor, user: str | None, owner: str, name: str) -> None:
    if not warehouse.grants.is_superuser(cursor, user) and (user or "").lower() != owner:
        raise RedshiftError(f"must be owner of procedure {name}")


def _candidates(cursor, schema: str, name: str) -> list[tuple]:
    return cursor.execute(f"SELECT schema_name, name, signature, arguments, body, security, owner FROM {SYSTEM}.procedures "
                          "WHERE schema_name = ? AND name = ? ORDER BY procedure_id", [schema, name]).fetchall()


def _named(cursor, pattern: re.Pattern, sql: str, what: str) -> tuple:
    """The one procedure DROP/SHOW names: by its argument types, or by name alone when only one has it."""
    match = pattern.fullmatch(sql)
    if not match:
        raise RedshiftError(f'syntax error at or near "{sql.split()[1] if len(sql.split()) > 1 else what}"')
    schema, name = _split_name(match.group("name"))
    found = _candidates(cursor, schema, name)
    if match.group("arguments") is not None and (what != "SHOW PROCEDURE" or match.group("arguments").strip()):
        key = signature(parse_arguments(match.group("arguments")))
        found = [row for row in found if row[2] == key]
        shown = f"{name}({key})"
    else:
        shown = name
        if len(found) > 1:
            raise RedshiftError(f'procedure name "{name}" is not unique (name its argument types)')
    if not found:
        if what == "DROP PROCEDURE" and match.group("exists"):
            return ()
        raise RedshiftError(f"procedure {shown} does not exist")
    return found[0]


def drop(warehouse, cursor, sql: str, user: str | None) -> None:
    found = _named(cursor, DROP, sql.strip(), "DROP PROCEDURE")
    if not found:
        return
    schema, name, key, _, _, _, owner = found
    _need_owner(warehouse, cursor, user, owner, name)
    cursor.execute(f"DELETE FROM {SYSTEM}.procedures WHERE schema_name = ? AND name = ? AND signature = ?", [schema, name, key])
    cursor.execute(f"DELETE FROM {SYSTEM}.privileges WHERE object_kind = 'procedure' AND schema_name = ? AND table_name = ?",
                   [schema, f"{name}({key})"])


def _definition(found: tuple) -> str:
    schema, name, _, arguments, body, security, _ = found
    shown = ", ".join(f"{'' if argument.startswith('$') else argument + ' '}{mode.lower()} {kind}"
                      for argument, mode, kind in json.loads(arguments))
    return f"CREATE OR REPLACE PROCEDURE {schema}.{name}({shown})\n AS $$\n{body}\n$$ LANGUAGE plpgsql SECURITY {security}"


def procedure_objects(cursor, target: str) -> list[tuple[str, str, str]]:
    """('procedure', schema, 'name(types)') of what GRANT/REVOKE EXECUTE ON names: PROCEDURE name(types), ... or
    ALL PROCEDURES IN SCHEMA s, ..."""
    in_schema = re.fullmatch(r"ALL\s+PROCEDURES\s+IN\s+SCHEMA\s+(.+)", target, re.I)
    if in_schema:
        schemas = [part.strip().strip('"').lower() for part in in_schema.group(1).split(",")]
        return [("procedure", schema, f"{name}({key})") for schema in schemas for name, key in cursor.execute(
            f"SELECT name, signature FROM {SYSTEM}.procedures WHERE schema_name = ? ORDER BY 1, 2", [schema]).fetchall()]
    named = re.fullmatch(r"PROCEDURE\s+(.+)", target, re.I | re.S)
    if not named:
        raise RedshiftError(f'syntax error at or near "{target.split()[0]}"')
    found = []
    for part in _top_level(named.group(1)):
        row = _named(cursor, SHOW, f"SHOW PROCEDURE {part}", "GRANT")
        found.append(("procedure", row[0], f"{row[1]}({row[2]})"))
    return found


def procedure_owner(cursor, schema: str, key: str) -> str | None:
    name, _, types = key.partition("(")
    row = cursor.execute(f"SELECT owner FROM {SYSTEM}.procedures WHERE schema_name = ? AND name = ? AND signature = ?",
                         [schema, name, types.rstrip(")")]).fetchone()
    return row[0] if row else None


def _local(argument: str) -> str:
    """The variable an argument is in the body: its name, or _argN for the unnamed $N."""
    return f"_arg{argument[1:]}" if argument.startswith("$") else argument


def _shown_output(local: str, number: int) -> str:
    """A CALL's result column for an OUT or INOUT argument: its name, or columnN for an unnamed one (PostgreSQL's)."""
    return f"column{number}" if local.startswith("_arg") else f'"{local}"'


def _named_arguments(body: str, arguments: list[list[str]]) -> str:
    """The body with $n outside quotes read as argument n's name (unnamed ones are called $n in the frame)."""
    def rename(match: re.Match) -> str:
        if match.group("number") is None:
            return match.group()
        number = int(match.group("number"))
        if not 1 <= number <= len(arguments):
            raise RedshiftError(f"there is no parameter ${number}")
        return _local(arguments[number - 1][0])
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|\$(?P<number>\d+)", rename, body)


# ------------------------------------------------------------------------------------------------ the interpreter

class LoopExit(Exception):
    def __init__(self, kind: str, label: str | None):
        super().__init__(kind)
        self.kind, self.label = kind, label


class ReturnNow(Exception):
    pass


_calls = threading.local()  # the CALLs running on this thread, outermost first (nesting, transaction ownership)


class Call:
    """One CALL: its frame of variables, the user its statements run as, and the transaction it owns."""

    def __init__(self, warehouse, cursor, parameters, s3, user: str | None, principal: str | None, query_id: int):
        self.warehouse, self.cursor, self.parameters, self.s3 = warehouse, cursor, parameters, s3
        self.caller, self.principal, self.query_id = user, principal, query_id
        self.runner = user
        self.variables: dict[str, object] = {}
        self.types: dict[str, str | None] = {}
        self.constants: set[str] = set()
        self.steps = 0
        self.row_count = 0
        self.owns_transaction = False
        self.name = ""
        self.sql = ""
        self.arguments = "[]"  # the procedure's [[name, mode, type], ...] as kept
        self._compiled_queries: dict[tuple, tuple[str, list[str]] | None] = {}

    # ---- the call
    def call(self, sql: str):
        from dealab.engines.redshift.warehouse import Result

        self.sql = sql
        match = CALL.fullmatch(sql)
        if not match:
            raise RedshiftError('syntax error at or near "CALL": CALL name ( [ argument [, ...] ] )')
        values = [self.evaluate(text, self.parameters) for text in _top_level(match.group("arguments"))]
        return self.call_with(match.group("name"), values)

    def call_with(self, named: str, values: list):
        """The CALL of the procedure `named` with its IN and INOUT arguments' values."""
        from dealab.engines.redshift.warehouse import Result

        schema, name = _split_name(named)
        self.name = name
        chosen = self._resolve(schema, name, len(values))
        _, _, key, self.arguments, body, security, owner = chosen
        arguments = json.loads(self.arguments)
        grants = self.warehouse.grants
        if not grants.is_superuser(self.cursor, self.caller) and (self.caller or "").lower() != owner \
                and not grants.may_execute(self.cursor, self.caller, schema, f"{name}({key})"):
            raise RedshiftError(f"permission denied for procedure {name}")
        if security == "DEFINER":
            # the owner's grants; a superuser owner (the admin, recorded by name) runs it as the admin does
            self.runner = owner if grants.exists(self.cursor, owner) and not grants.is_superuser(self.cursor, owner) else None
        stack = getattr(_calls, "stack", None) or []
        if len(stack) >= MAX_NESTING:
            raise RedshiftError(f"stored procedure nesting is limited to {MAX_NESTING} levels")
        if not stack:
            _calls.notices = []
        started = time.time()
        _calls.stack = stack + [self]
        self.owns_transaction = not stack and self._begin()
        try:
            inputs = iter(values)
            self.variables["found"], self.types["found"] = False, None
            for argument, mode, kind in arguments:
                self.declare(_local(argument), kind, next(inputs) if mode in ("IN", "INOUT") else None)
            try:
                self.run_block(parse_body(_named_arguments(body, arguments)))
            except ReturnNow:
                pass
            except LoopExit as escaped:
                raise RedshiftError(f"{escaped.kind} cannot be used outside a loop") from None
            outputs = [(_local(argument), kind) for argument, mode, kind in arguments if mode in ("OUT", "INOUT")]
            result = self._outputs(outputs) if outputs else Result()
            if self.owns_transaction:
                self._end("COMMIT")
        except Exception:
            if self.owns_transaction:
                self._end("ROLLBACK")
            self._record_call(started, aborted=True)
            raise
        finally:
            _calls.stack = stack
        self._record_call(started, aborted=False)
        if not stack:
            result.notices = _calls.notices  # a wire client is sent them as NoticeResponse messages
        return result

    def _resolve(self, schema: str, name: str, count: int) -> tuple:
        found = [row for row in _candidates(self.cursor, schema, name)
                 if sum(mode in ("IN", "INOUT") for _, mode, _ in json.loads(row[3])) == count]
        if not found:
            raise RedshiftError(f"procedure {name}({', '.join(['unknown'] * count)}) does not exist")
        if len(found) > 1:
            raise RedshiftError(f"procedure {name} is not unique (two procedures take {count} arguments)")
        return found[0]

    def _begin(self) -> bool:
        """Starts the call's own transaction; False when the session is already in one (a transaction block or a
        BatchExecuteStatement), which then owns it. (Inside a transaction two statements share its id; a failed
        BEGIN would abort that transaction, so it is not tried.)"""
        ids = [self.cursor.execute("SELECT current_transaction_id()").fetchone()[0] for _ in range(2)]
        if ids[0] == ids[1]:
            return False
        self.cursor.execute("BEGIN TRANSACTION")
        return True

    def _end(self, verb: str) -> None:
        self.warehouse.run_duckdb(self.cursor, verb, verb)

    def _outputs(self, outputs: list[tuple[str, str]]):
        from dealab.engines.redshift.warehouse import Result

        tree = sqlglot.parse_one("SELECT " + ", ".join(f"CAST(NULL AS {kind}) AS {_shown_output(local, number)}" for number, (local, kind) in enumerate(outputs, 1)), read="redshift")
        for cast, (local, _) in zip(tree.expressions, outputs):
            cast.this.set("this", literal(self.variables.get(local)))
        columns, rows = self.query(tree.sql("redshift"), bound=True)
        return Result(columns=columns, rows=rows)

    def _record_call(self, started: float, aborted: bool) -> None:
        with self.warehouse.connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SYSTEM}.procedure_calls VALUES (?, ?, ?, to_timestamp(?)::TIMESTAMP, now()::TIMESTAMP, ?, ?)",
                           [self.query_id, self.warehouse.grants.session_user(cursor, self.caller), self.name, started,
                            int(aborted), self.sql[:4000]])

    # ---- variables
    def declare(self, name: str, kind: str | None, value: object, cast: bool = True) -> None:
        self.types[name] = kind
        self.variables[name] = self.cast(value, kind) if cast and value is not None and kind else value

    def cast(self, value: object, kind: str | None) -> object:
        if kind is None or value is None:
            return value
        tree = sqlglot.parse_one(f"SELECT CAST(NULL AS {kind})", read="redshift")
        tree.expressions[0].set("this", literal(value))
        return self.query(tree.sql("redshift"), bound=True)[1][0][0]

    def assign(self, name: str, value: object, cast: bool = True) -> None:
        if name in self.constants:
            raise RedshiftError(f'variable "{name}" is declared CONSTANT')
        if "." in name:  # rec.field
            record, _, member = name.partition(".")
            if not isinstance(self.variables.get(record), dict):
                raise RedshiftError(f'"{name}" is not a known variable')
            self.variables[record][member] = value
            return
        if name not in self.variables:
            raise RedshiftError(f'"{name}" is not a known variable')
        self.variables[name] = self.cast(value, self.types.get(name)) if cast else value

    def bind(self, text: str) -> tuple[str, bool]:
        """The statement with each variable (and rec.field) replaced by a literal of its value: (text, whether any was).
        Statements sqlglot does not parse (COPY, UNLOAD, GRANT) are run as written: EXECUTE builds those."""
        mentioned = re.compile(r"\b(" + "|".join(re.escape(name) for name in self.variables) + r")\b", re.I)
        first = (text.split() or [""])[0].upper()
        if not self.variables or first not in BOUND_WORDS or not mentioned.search(text):
            return text, False
        try:
            tree = sqlglot.parse_one(text, read="redshift")
        except ParseError:
            return text, False
        changed = False
        for column in list(tree.find_all(exp.Column)):
            if isinstance(column.parent, exp.EQ) and isinstance(column.parent.parent, exp.Update) and column.parent.this is column:
                continue  # UPDATE ... SET column = : the column, not a variable
            parts = [part.name.lower() for part in column.parts]
            value, found = self._lookup(parts)
            if found:
                column.replace(literal(value))
                changed = True
        return (tree.sql("redshift"), True) if changed else (text, False)

    def _lookup(self, parts: list[str]) -> tuple[object, bool]:
        if len(parts) == 1 and parts[0] in self.variables:
            return self.variables[parts[0]], True
        if len(parts) == 2 and isinstance(self.variables.get(parts[0]), dict):
            record = self.variables[parts[0]]
            if parts[1] not in record:
                raise RedshiftError(f'record "{parts[0]}" has no field "{parts[1]}"')
            return record[parts[1]], True
        return None, False

    # ---- evaluation
    def query(self, text: str, parameters=None, bound: bool = False) -> tuple[list[tuple[str, str]], list[tuple]]:
        """A SELECT evaluated through the dialect, lock-down and the runner's grants, without a history row."""
        from dealab.engines.redshift import dialect

        compiled = self._compiled(text) if not bound and parameters is None else None
        if compiled is not None:  # translated once per CALL, the variables DuckDB's parameters
            duckdb_sql, names = compiled
            try:
                rows = self.cursor.execute(duckdb_sql, [self._lookup(name.split("."))[0] for name in names]).fetchall()
            except duckdb.Error as error:
                raise errors.from_duckdb(error, text) from None
            return [(name, str(kind)) for name, kind, *_ in self.cursor.description or []], rows
        sql = text if bound else self.bind(text)[0]
        translation = dialect.translate(sql, self.warehouse.database, self.warehouse.system_views, parameters)
        partiql.navigate(self.cursor, translation)
        grants = self.warehouse.grants
        grants.check(self.cursor, self.runner, translation.tree)
        if grants.bind_session(self.cursor, self.runner, translation.tree):
            translation.sql = translation.tree.sql("duckdb")
        rows = self.warehouse.run_duckdb(self.cursor, translation.sql, sql)
        return [(name, str(kind)) for name, kind, *_ in self.cursor.description or []], rows

    def _compiled(self, text: str) -> tuple[str, list[str]] | None:
        """A SELECT's DuckDB text with each variable it names as a numbered parameter ($1, ...), and those names;
        translated (dialect, lock-down, SUPER paths, grants) once per CALL and text. None: sqlglot cannot parse it
        (the literal path below then words the error)."""
        from dealab.engines.redshift import dialect

        key = (text, frozenset(name for name, value in self.variables.items() if not isinstance(value, dict)))
        if key in self._compiled_queries:
            return self._compiled_queries[key]
        try:
            tree = sqlglot.parse_one(text, read="redshift")
        except ParseError:
            self._compiled_queries[key] = None
            return None
        names: list[str] = []
        for column in list(tree.find_all(exp.Column)):
            parts = [part.name.lower() for part in column.parts]
            value, found = self._lookup(parts)
            if found and not isinstance(value, dict):
                name = ".".join(parts)
                names += [name] if name not in names else []
                column.replace(exp.column(f"{VARIABLE}{names.index(name)}"))
        translation = dialect.translate(tree.sql("redshift"), self.warehouse.database, self.warehouse.system_views)
        partiql.navigate(self.cursor, translation)
        grants = self.warehouse.grants
        grants.check(self.cursor, self.runner, translation.tree)
        grants.bind_session(self.cursor, self.runner, translation.tree)
        for column in list(translation.tree.find_all(exp.Column)):
            if column.name.startswith(VARIABLE) and not column.table:
                column.replace(exp.Parameter(this=exp.Literal.number(int(column.name[len(VARIABLE):]) + 1)))
        self._compiled_queries[key] = translation.tree.sql("duckdb"), names
        return self._compiled_queries[key]

    def evaluate(self, expression: str, parameters=None, cast: str | None = None) -> object:
        """One value; `cast`: the type of the variable it is for (the cast is part of the same query)."""
        columns, rows = self.query(f"SELECT CAST(({expression}) AS {cast})" if cast else f"SELECT {expression}", parameters)
        if len(columns) != 1:
            raise RedshiftError(f"query returned {len(columns)} columns where one value was expected: {expression.strip()[:60]}")
        if len(rows) > 1:
            raise RedshiftError("query returned more than one row")
        return rows[0][0] if rows else None

    def condition(self, expression: str) -> bool:
        return self.evaluate(expression) is True

    def statement(self, sql: str):
        """A SQL statement of the body, run as the warehouse runs any (history, COPY, UNLOAD, nested CALL)."""
        bound, _ = self.bind(sql)
        return self.warehouse.execute(self.cursor, bound, None, self.s3, in_batch=True, user=self.runner, principal=self.principal)

    # ---- statements
    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise RedshiftError(f"the procedure ran more than {MAX_STEPS} statements: dealab stops a loop that does not exit")

    def run_block(self, block: Block) -> None:
        saved = dict(self.variables), dict(self.types)
        for declaration in block.declarations:
            value = self.evaluate(declaration.default, cast=declaration.type) if declaration.default else None
            self.declare(declaration.name, declaration.type, value if declaration.type else None, cast=False)
            if declaration.type is None:
                self.variables[declaration.name] = None
            if declaration.constant:
                self.constants.add(declaration.name)
        try:
            self.run_all(block.body)
        except RedshiftError as error:
            if block.handler is None:
                raise
            # Redshift rolls the transaction back before the handler runs
            if self.owns_transaction:
                self._end("ROLLBACK")
                self._begin()
            self.variables["sqlerrm"], self.types["sqlerrm"] = error.message, None
            self.variables["sqlstate"] = getattr(error, "sqlstate", "XX000")
            self.run_all(block.handler)
        finally:
            outer_names = saved[0].keys()
            self.variables = {name: value for name, value in self.variables.items() if name in outer_names}
            self.types = saved[1]

    def run_all(self, statements: list) -> None:
        for node in statements:
            self.step()
            RUNNERS[type(node)](self, node)

    def run_assign(self, node: Assign) -> None:
        kind = self.types.get(node.target) if node.target in self.variables else None
        self.assign(node.target, self.evaluate(node.expression, cast=kind), cast=False)

    def run_if(self, node: If) -> None:
        for condition, statements in node.branches:
            if self.condition(condition):
                self.run_all(statements)
                return
        self.run_all(node.otherwise)

    def run_loop(self, node: Loop) -> None:
        for value in self._iterations(node):
            if node.variable:
                self.variables[node.variable] = value
            if node.condition is not None and not self.condition(node.condition):
                return
            try:
                self.run_all(node.body)
            except LoopExit as signal:
                if signal.label not in (None, node.label):
                    raise
                if signal.kind == "EXIT":
                    return
            self.step()

    def _iterations(self, node: Loop):
        if node.query is not None:
            text = str(self.evaluate(node.query)) if node.dynamic else node.query
            columns, rows = self.query(text)
            self.variables["found"] = bool(rows)
            for row in rows:
                yield {name.lower(): value for (name, _), value in zip(columns, row)}
            return
        if node.low is not None:
            low, high = int(self.evaluate(node.low)), int(self.evaluate(node.high))
            step = int(self.evaluate(node.step)) if node.step else 1
            if step <= 0:
                raise RedshiftError("BY value of FOR loop must be greater than zero")
            index = low  # REVERSE a..b counts down from a to b, as PL/pgSQL does
            while (index >= high) if node.reverse else (index <= high):
                yield index
                index += -step if node.reverse else step
            return
        while True:
            yield None

    def run_exit(self, node: Exit) -> None:
        if node.condition is None or self.condition(node.condition):
            raise LoopExit(node.kind, node.label)

    def run_raise(self, node: Raise) -> None:
        values = [self.evaluate(argument) for argument in node.arguments]
        pieces = re.split(r"(%%|%)", node.format)
        if sum(piece == "%" for piece in pieces) != len(values):
            raise RedshiftError("too few or too many parameters specified for RAISE")
        shown, given = [], iter(values)
        for piece in pieces:
            if piece == "%":
                value = next(given)
                shown.append("<NULL>" if value is None else str(value))
            else:
                shown.append("%" if piece == "%%" else piece)
        message = "".join(shown)
        if node.level == "EXCEPTION":
            raise RaisedException(message)
        with self.warehouse.connection.cursor() as cursor:  # kept even when the call later fails
            cursor.execute(f"INSERT INTO {SYSTEM}.procedure_messages VALUES (?, ?, ?, now()::TIMESTAMP, ?, ?, ?)",
                           [self.query_id, self.warehouse.grants.session_user(cursor, self.caller), self.name, node.level,
                            message, self.sql[:4000]])
        _calls.notices.append((node.level, message))

    def run_sql(self, node: Sql) -> None:
        if node.dynamic:
            text = self.evaluate(node.text)
            if not isinstance(text, str):
                raise RedshiftError("query string argument of EXECUTE is null")
            if node.into:
                columns, rows = self.query(text, bound=True)
                self._into(node.into, columns, rows)
                return
            result = self.warehouse.execute(self.cursor, text, None, self.s3, in_batch=True, user=self.runner, principal=self.principal)
            self.row_count = max(result.affected, len(result.rows))
            return
        if node.into or node.perform:
            columns, rows = self.query(node.text)
            if node.into:
                self._into(node.into, columns, rows)
            self.variables["found"] = bool(rows)
            self.row_count = len(rows)
            return
        nested = CALL.fullmatch(node.text.strip())
        if nested:  # a variable given for an INOUT argument takes its value back, as PL/pgSQL does
            arguments = _top_level(nested.group("arguments"))
            inner = Call(self.warehouse, self.cursor, None, self.s3, self.runner, self.principal, self.query_id)
            result = inner.call_with(nested.group("name"), [self.evaluate(argument) for argument in arguments])
            modes = [mode for _, mode, _ in json.loads(inner.arguments)]
            given = iter(argument.strip().lower() for argument in arguments)
            outputs = iter(result.rows[0] if result.rows else ())
            for mode in modes:
                argument = next(given) if mode in ("IN", "INOUT") else None
                value = next(outputs) if mode in ("OUT", "INOUT") else None
                if mode == "INOUT" and argument in self.variables:
                    self.assign(argument, value)
            return
        if re.match(r"\s*(SELECT|VALUES)\b", node.text, re.I):
            raise RedshiftError("query has no destination for result data (use SELECT ... INTO, or PERFORM)")
        result = self.statement(node.text)
        self.row_count = max(result.affected, len(result.rows), 0)
        self.variables["found"] = self.row_count > 0

    def _into(self, names: list[str], columns: list, rows: list) -> None:
        row = rows[0] if rows else [None] * len(columns)
        if len(names) == 1 and names[0] in self.variables and self.types.get(names[0]) is None and names[0] != "found":
            self.variables[names[0]] = {name.lower(): value for (name, _), value in zip(columns, row)} if rows else None
        else:
            if len(names) != len(columns):
                raise RedshiftError(f"SELECT INTO names {len(names)} variables for {len(columns)} columns")
            for name, value in zip(names, row):
                self.assign(name, value)
        self.variables["found"] = bool(rows)
        self.row_count = len(rows)

    def run_transaction(self, node: Transaction) -> None:
        if not self.owns_transaction:
            raise RedshiftError(f"{node.verb} is not allowed in a procedure called inside a transaction block or another procedure"
                                if getattr(_calls, "stack", [None])[0] is self else
                                f"{node.verb} is not allowed in a nested procedure call (dealab commits in the outermost CALL)")
        self._end(node.verb)
        self._begin()

    def run_diagnostics(self, node: Diagnostics) -> None:
        self.assign(node.target, self.row_count)

    def run_return(self, node: Return) -> None:
        raise ReturnNow()


RUNNERS = {Block: Call.run_block, Assign: Call.run_assign, If: Call.run_if, Loop: Call.run_loop, Exit: Call.run_exit,
           Raise: Call.run_raise, Sql: Call.run_sql, Transaction: Call.run_transaction, Diagnostics: Call.run_diagnostics,
           Return: Call.run_return, Nothing: lambda call, node: None}


def literal(value: object) -> exp.Expression:
    """A value as a literal node of the statement (a variable's value bound, never spliced into its text)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, float) and not math.isfinite(value):
        return exp.Cast(this=exp.Literal.string(str(value)), to=exp.DataType.build("DOUBLE"))
    if isinstance(value, (int, float, decimal.Decimal)):
        return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))
    if isinstance(value, datetime.datetime):
        return exp.Cast(this=exp.Literal.string(value.isoformat(sep=" ")), to=exp.DataType.build("TIMESTAMP"))
    if isinstance(value, datetime.date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, dict):
        raise RedshiftError("a record variable cannot be used as a value (use record.field)")
    return exp.Literal.string(str(value))

