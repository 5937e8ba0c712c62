"""Database users, groups and roles, and GRANT/REVOKE on schemas, tables and columns, enforced for each
statement by the user the session signed in as.

Everything lives in the warehouse's own metadata (`dealab_system`), so users and grants survive a restart with the
data. A password is kept as PostgreSQL keeps an MD5 password, md5(password + user), never in clear. The admin
(master) user is a superuser and may do anything; another user may read a table with USAGE on its schema and
SELECT on the table (or on each column the statement reads), write it with INSERT/UPDATE/DELETE, create tables
in a schema with CREATE on it, and drop or alter only what it owns. A group's and a role's grants reach their
members; PUBLIC's reach everyone. The public schema gives PUBLIC USAGE and CREATE, as Redshift's does."""

from __future__ import annotations

import hashlib
import re

from sqlglot import exp

from dealab.engines.redshift.errors import RedshiftError

SYSTEM = "dealab_system"
FIRST_USER_ID = 100  # Redshift's rdsdb is 1; the admin and created users count from 100

METADATA = [
    f"CREATE SEQUENCE IF NOT EXISTS {SYSTEM}.user_ids START {FIRST_USER_ID}",
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.users (user_name VARCHAR PRIMARY KEY, user_id INTEGER, password_md5 VARCHAR,
        superuser BOOLEAN, createdb BOOLEAN)""",
    # groups and roles alike: a named set of members that grants reach (kind 'group' or 'role')
    f"CREATE TABLE IF NOT EXISTS {SYSTEM}.groups (group_name VARCHAR, kind VARCHAR, group_id INTEGER, PRIMARY KEY (group_name, kind))",
    f"CREATE TABLE IF NOT EXISTS {SYSTEM}.group_members (group_name VARCHAR, kind VARCHAR, user_name VARCHAR)",
    # grantee_kind: 'user', 'group', 'role' or 'public'; object_kind 'schema' or 'table'; column_name NULL for the whole table
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.privileges (grantee_kind VARCHAR, grantee VARCHAR, object_kind VARCHAR,
        schema_name VARCHAR, table_name VARCHAR, column_name VARCHAR, privilege VARCHAR)""",
    f"CREATE TABLE IF NOT EXISTS {SYSTEM}.owners (schema_name VARCHAR, table_name VARCHAR, user_name VARCHAR)",
    # ALTER DEFAULT PRIVILEGES: what a table `creator` makes (NULL: a superuser) in `schema_name` (NULL: any) grants at once
    f"""CREATE TABLE IF NOT EXISTS {SYSTEM}.default_privileges (creator VARCHAR, schema_name VARCHAR, grantee_kind VARCHAR,
        grantee VARCHAR, privilege VARCHAR)""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_default_privileges AS SELECT schema_name, 'RELATION' AS object_type,
        creator AS owner_name, privilege AS privilege_type, grantee_kind AS grantee_type, grantee AS grantee_name
        FROM {SYSTEM}.default_privileges""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.pg_user AS SELECT user_name AS usename, user_id AS usesysid, createdb AS usecreatedb,
        superuser AS usesuper, false AS usecatupd, '********' AS passwd, NULL::TIMESTAMP AS valuntil, NULL::VARCHAR AS useconfig
        FROM {SYSTEM}.users""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_user_info AS SELECT user_name, user_id, createdb, superuser,
        password_md5 IS NOT NULL AS password_enabled FROM {SYSTEM}.users""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.pg_group AS SELECT g.group_name AS groname, g.group_id AS grosysid,
        list(u.user_id ORDER BY u.user_id) FILTER (WHERE u.user_id IS NOT NULL) AS grolist FROM {SYSTEM}.groups g
        LEFT JOIN {SYSTEM}.group_members m ON m.group_name = g.group_name AND m.kind = g.kind
        LEFT JOIN {SYSTEM}.users u ON u.user_name = m.user_name WHERE g.kind = 'group' GROUP BY ALL""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_relation_privileges AS SELECT DISTINCT schema_name AS namespace_name,
        table_name AS relation_name, privilege AS privilege_type, grantee_kind AS identity_type, grantee AS identity_name
        FROM {SYSTEM}.privileges WHERE object_kind = 'table' AND column_name IS NULL""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_column_privileges AS SELECT schema_name AS namespace_name, table_name AS relation_name,
        column_name, privilege AS privilege_type, grantee_kind AS identity_type, grantee AS identity_name
        FROM {SYSTEM}.privileges WHERE column_name IS NOT NULL""",
    f"""CREATE OR REPLACE VIEW {SYSTEM}.svv_schema_privileges AS SELECT schema_name AS namespace_name, privilege AS privilege_type,
        grantee_kind AS identity_type, grantee AS identity_name FROM {SYSTEM}.privileges WHERE object_kind = 'schema'""",
    # the public schema's default, once (a REVOKE of it must hold after a restart): everyone may use it and create in it
    f"CREATE TABLE IF NOT EXISTS {SYSTEM}.grant_defaults (applied BOOLEAN)",
    f"""INSERT INTO {SYSTEM}.privileges SELECT 'public', 'public', 'schema', 'public', NULL, NULL, privilege
        FROM (VALUES ('USAGE'), ('CREATE')) v(privilege) WHERE NOT EXISTS (SELECT 1 FROM {SYSTEM}.grant_defaults)""",
    f"INSERT INTO {SYSTEM}.grant_defaults SELECT true WHERE NOT EXISTS (SELECT 1 FROM {SYSTEM}.grant_defaults)",
]
# System views of this module: name → relation (catalog, schema, name), for every deployment
SYSTEM_VIEWS = {name: (None, SYSTEM, name) for name in
                ("pg_user", "pg_group", "svv_user_info", "svv_relation_privileges", "svv_column_privileges", "svv_schema_privileges",
                 "svv_default_privileges")}

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "REFERENCES", "TRUNCATE", "DROP")
SCHEMA_PRIVILEGES = ("USAGE", "CREATE")
# Redshift's password rule for CREATE/ALTER USER ... PASSWORD 'clear text'
PASSWORD_RULES = [
    (lambda password: 8 <= len(password) <= 64, "Password must be 8 to 64 characters long"),
    (lambda password: re.search(r"[A-Z]", password), "Password must contain at least one uppercase letter"),
    (lambda password: re.search(r"[a-z]", password), "Password must contain at least one lowercase letter"),
    (lambda password: re.search(r"[0-9]", password), "Password must contain at least one number"),
    (lambda password: not re.search(r"['\"\\/@ ]", password), "Password must not contain ', \", \\, /, @ or a space"),
]
NAME = r'"?([A-Za-z_][\w$]*)"?'
NAMES = r'((?:"?[A-Za-z_][\w$]*"?\s*,\s*)*"?[A-Za-z_][\w$]*"?)'


def md5_secret(user: str, password: str) -> str:
    """md5(password + user) in hex: what PostgreSQL (and the wire endpoint's MD5 sign-in) keeps of a password."""
    return hashlib.md5(password.encode() + user.encode()).hexdigest()


def _names(text: str) -> list[str]:
    return [name.strip().strip('"').lower() for name in text.split(",") if name.strip()]


class Grants:
    """Users, groups, roles and privileges of one warehouse."""

    def __init__(self, database: str):
        self.database = database

    # ------------------------------------------------------------ who

    def ensure_superuser(self, cursor, user: str) -> None:
        """The admin (master) user: a superuser whose password the endpoint keeps."""
        if not cursor.execute(f"SELECT 1 FROM {SYSTEM}.users WHERE user_name = ?", [user.lower()]).fetchone():
            cursor.execute(f"INSERT INTO {SYSTEM}.users VALUES (?, nextval('{SYSTEM}.user_ids'), NULL, true, true)", [user.lower()])

    def md5_of(self, cursor, user: str) -> str | None:
        """The user's md5 secret, None when there is no such user or its password is DISABLED."""
        row = cursor.execute(f"SELECT password_md5 FROM {SYSTEM}.users WHERE user_name = ?", [user.lower()]).fetchone()
        return row[0] if row else None

    def exists(self, cursor, user: str) -> bool:
        return bool(cursor.execute(f"SELECT 1 FROM {SYSTEM}.users WHERE user_name = ?", [user.lower()]).fetchone())

    def is_superuser(self, cursor, user: str | None) -> bool:
        if user is None:
            return True
        row = cursor.execute(f"SELECT superuser FROM {SYSTEM}.users WHERE user_name = ?", [user.lower()]).fetchone()
        return bool(row and row[0])

    # ------------------------------------------------------------ statements

    def run(self, cursor, sql: str, user: str | None) -> None:
        """CREATE/ALTER/DROP USER, GROUP and ROLE, GRANT and REVOKE: a superuser's statements, and GRANT/REVOKE
        on tables also their owner's."""
        superuser = self.is_superuser(cursor, user)
        statement = " ".join(sql.strip().rstrip(";").split())
        for pattern, handler in STATEMENTS:
            match = re.fullmatch(pattern, statement, re.I)
            if match:
                if not superuser and not (handler in (Grants._grant, Grants._revoke, Grants._grant_execute) and self._owns_all(cursor, user, match)):
                    raise RedshiftError("permission denied: only a superuser may manage users, groups and roles, and only a "
                                        "table's owner or a superuser may grant on it")
                handler(self, cursor, match)
                return
        if not superuser:
            raise RedshiftError("permission denied: only a superuser may manage users, groups, roles and grants in dealab")
        first = " ".join(statement.split()[:3])
        raise RedshiftError(f"dealab does not offer this form of {first} (see docs/redshift.md: users and GRANT)", 1)

    def _create_user(self, cursor, match: re.Match) -> None:
        user, options = match.group(1).lower(), match.group(2) or ""
        if self.exists(cursor, user):
            raise RedshiftError(f'user "{user}" already exists')
        password = re.search(r"\bPASSWORD\s+(?:'((?:[^']|'')*)'|(DISABLED))", options, re.I)
        if not password:
            raise RedshiftError('syntax error at or near "PASSWORD": CREATE USER needs PASSWORD \'...\' or PASSWORD DISABLED')
        createdb = bool(re.search(r"\bCREATEDB\b", options, re.I))
        superuser = bool(re.search(r"\bCREATEUSER\b", options, re.I))
        cursor.execute(f"INSERT INTO {SYSTEM}.users VALUES (?, nextval('{SYSTEM}.user_ids'), ?, ?, ?)",
                       [user, self._secret(user, password), superuser, createdb])
        groups = re.search(r"\bIN\s+GROUP\s+" + NAMES, options, re.I)
        for group in _names(groups.group(1)) if groups else []:
            self._add_members(cursor, group, "group", [user])

    @staticmethod
    def _secret(user: str, password: re.Match) -> str | None:
        if password.group(2):
            return None
        clear = password.group(1).replace("''", "'")
        if re.fullmatch(r"md5[0-9a-f]{32}", clear):  # already hashed by the client: md5 + md5(password + user)
            return clear[3:]
        for rule, wording in PASSWORD_RULES:
            if not rule(clear):
                raise RedshiftError(wording)
        return md5_secret(user, clear)

    def _alter_user(self, cursor, match: re.Match) -> None:
        user, change = match.group(1).lower(), match.group(2)
        if not self.exists(cursor, user):
            raise RedshiftError(f'user "{user}" does not exist')
        rename = re.fullmatch(r"RENAME\s+TO\s+" + NAME, change, re.I)
        if rename:
            new = rename.group(1).lower()
            if self.exists(cursor, new):
                raise RedshiftError(f'user "{new}" already exists')
            # the md5 secret is salted with the name: a renamed user must set its password again, as on Redshift
            cursor.execute(f"UPDATE {SYSTEM}.users SET user_name = ?, password_md5 = NULL WHERE user_name = ?", [new, user])
            for table in ("group_members", "owners"):
                cursor.execute(f"UPDATE {SYSTEM}.{table} SET user_name = ? WHERE user_name = ?", [new, user])
            cursor.execute(f"UPDATE {SYSTEM}.privileges SET grantee = ? WHERE grantee_kind = 'user' AND grantee = ?", [new, user])
            return
        password = re.search(r"\bPASSWORD\s+(?:'((?:[^']|'')*)'|(DISABLED))", change, re.I)
        if password:
            cursor.execute(f"UPDATE {SYSTEM}.users SET password_md5 = ? WHERE user_name = ?", [self._secret(user, password), user])
        for word, column, value in (("NOCREATEDB", "createdb", False), ("CREATEDB", "createdb", True),
                                    ("NOCREATEUSER", "superuser", False), ("CREATEUSER", "superuser", True)):
            if re.search(rf"\b{word}\b", change, re.I):
                cursor.execute(f"UPDATE {SYSTEM}.users SET {column} = ? WHERE user_name = ?", [value, user])
        if not password and not re.search(r"\b(NO)?CREATE(DB|USER)\b", change, re.I):
            raise RedshiftError(f'dealab does not offer ALTER USER ... {change.split()[0]} (it offers PASSWORD, RENAME TO, CREATEDB, CREATEUSER)')

    def _drop_user(self, cursor, match: re.Match) -> None:
        for user in _names(match.group(2)):
            if not self.exists(cursor, user):
                if match.group(1):
                    continue
                raise RedshiftError(f'user "{user}" does not exist')
            if cursor.execute(f"SELECT 1 FROM {SYSTEM}.owners WHERE user_name = ?", [user]).fetchone():
                raise RedshiftError(f'user "{user}" cannot be dropped because the user owns some object')
            cursor.execute(f"DELETE FROM {SYSTEM}.users WHERE user_name = ?", [user])
            cursor.execute(f"DELETE FROM {SYSTEM}.group_members WHERE user_name = ?", [user])
            cursor.execute(f"DELETE FROM {SYSTEM}.privileges WHERE grantee_kind = 'user' AND grantee = ?", [user])

    def _create_group(self, cursor, match: re.Match, kind: str = "group") -> None:
        group = match.group(1).lower()
        if cursor.execute(f"SELECT 1 FROM {SYSTEM}.groups WHERE group_name = ? AND kind = ?", [group, kind]).fetchone():
            raise RedshiftError(f'{kind} "{group}" already exists')
        cursor.execute(f"INSERT INTO {SYSTEM}.groups VALUES (?, ?, nextval('{SYSTEM}.user_ids'))", [group, kind])
        if kind == "group" and match.group(2):
            self._add_members(cursor, group, kind, _names(match.group(2)))

    def _alter_group(self, cursor, match: re.Match) -> None:
        group, action, users = match.group(1).lower(), match.group(2).upper(), _names(match.group(3))
        self._require_group(cursor, group, "group")
        if action == "ADD":
            self._add_members(cursor, group, "group", users)
        else:
            for user in users:
                cursor.execute(f"DELETE FROM {SYSTEM}.group_members WHERE group_name = ? AND kind = 'group' AND user_name = ?", [group, user])

    def _drop_group(self, cursor, match: re.Match, kind: str = "group") -> None:
        group = match.group(1).lower()
        self._require_group(cursor, group, kind)
        for table, column in (("groups", "group_name"), ("group_members", "group_name")):
            cursor.execute(f"DELETE FROM {SYSTEM}.{table} WHERE {column} = ? AND kind = ?", [group, kind])
        cursor.execute(f"DELETE FROM {SYSTEM}.privileges WHERE grantee_kind = ? AND grantee = ?", [kind, group])

    def _grant_role(self, cursor, match: re.Match, revoke: bool = False) -> None:
        for role in _names(match.group(1)):
            self._require_group(cursor, role, "role")
            for user in _names(match.group(2)):
                cursor.execute(f"DELETE FROM {SYSTEM}.group_members WHERE group_name = ? AND kind = 'role' AND user_name = ?", [role, user])
                if not revoke:
                    self._add_members(cursor, role, "role", [user])

    def _require_group(self, cursor, group: str, kind: str) -> None:
        if not cursor.execute(f"SELECT 1 FROM {SYSTEM}.groups WHERE group_name = ? AND kind = ?", [group, kind]).fetchone():
            raise RedshiftError(f'{kind} "{group}" does not exist')

    def _add_members(self, cursor, group: str, kind: str, users: list[str]) -> None:
        self._require_group(cursor, group, kind)
        for user in users:
            if not self.exists(cursor, user):
                raise RedshiftError(f'user "{user}" does not exist')
            if not cursor.execute(f"SELECT 1 FROM {SYSTEM}.group_members WHERE group_name = ? AND kind = ? AND user_name = ?",
                                  [group, kind, user]).fetchone():
                cursor.execute(f"INSERT INTO {SYSTEM}.group_members VALUES (?, ?, ?)", [group, kind, user])

    def _grant(self, cursor, match: re.Match, revoke: bool = False) -> None:
        privileges, target, grantees = match.group("privileges"), match.group("target"), match.group("grantees")
        objects = self._objects(cursor, target)
        kind = "schema" if re.match(r"SCHEMA\b", target, re.I) else "table"
        allowed = SCHEMA_PRIVILEGES if kind == "schema" else TABLE_PRIVILEGES
        wanted = []  # (privilege, column or None)
        for item in re.findall(r"(\w+(?:\s+PRIVILEGES)?)\s*(?:\(([^)]*)\))?", privileges):
            word, columns = item[0].split()[0].upper(), _names(item[1]) if item[1] else [None]
            if word == "ALL":
                wanted += [(privilege, column) for privilege in allowed for column in columns]
            elif word in allowed:
                wanted += [(word, column) for column in columns]
            else:
                raise RedshiftError(f"invalid privilege type {word} for {'schema' if kind == 'schema' else 'relation'}")
        for grantee_kind, grantee in self._grantees(cursor, grantees):
            for object_kind, schema, table in objects:
                for privilege, column in wanted:
                    cursor.execute(f"DELETE FROM {SYSTEM}.privileges WHERE grantee_kind = ? AND grantee = ? AND object_kind = ? "
                                   "AND schema_name = ? AND table_name IS NOT DISTINCT FROM ? AND privilege = ? "
                                   f"AND {'column_name IS NOT DISTINCT FROM ?' if not revoke or column else '? IS NULL'}",
                                   [grantee_kind, grantee, object_kind, schema, table, privilege, column])
                    if not revoke:
                        cursor.execute(f"INSERT INTO {SYSTEM}.privileges VALUES (?, ?, ?, ?, ?, ?, ?)",
                                       [grantee_kind, grantee, object_kind, schema, table, column, privilege])

    def _default_privileges(self, cursor, match: re.Match) -> None:
        creators = _names(match.group("creators")) if match.group("creators") else [None]
        schemas = _names(match.group("schemas")) if match.group("schemas") else [None]
        for schema in schemas:
            if schema:
                self._require_schema(cursor, schema)
        revoke = match.group("action").upper() == "REVOKE"
        wanted = []
        for word in re.findall(r"\w+", re.sub(r"\bPRIVILEGES\b", "", match.group("privileges"), flags=re.I)):
            if word.upper() not in ("ALL", *TABLE_PRIVILEGES):
                raise RedshiftError(f"invalid privilege type {word.upper()} for relation")
            wanted += list(TABLE_PRIVILEGES) if word.upper() == "ALL" else [word.upper()]
        for creator in creators:
            # a superuser's defaults apply to what any superuser creates (dealab runs the admin as the superuser)
            creator = None if creator is None or self.is_superuser(cursor, creator) else creator
            for grantee_kind, grantee in self._grantees(cursor, match.group("grantees")):
                for schema in schemas:
                    for privilege in wanted:
                        cursor.execute(f"DELETE FROM {SYSTEM}.default_privileges WHERE creator IS NOT DISTINCT FROM ? AND "
                                       "schema_name IS NOT DISTINCT FROM ? AND grantee_kind = ? AND grantee = ? AND privilege = ?",
                                       [creator, schema, grantee_kind, grantee, privilege])
                        if not revoke:
                            cursor.execute(f"INSERT INTO {SYSTEM}.default_privileges VALUES (?, ?, ?, ?, ?)",
                                           [creator, schema, grantee_kind, grantee, privilege])

    def _revoke(self, cursor, match: re.Match) -> None:
        self._grant(cursor, match, revoke=True)

    def _grant_execute(self, cursor, match: re.Match) -> None:
        """GRANT/REVOKE EXECUTE ON PROCEDURE name(types), ... or ON ALL PROCEDURES IN SCHEMA s (procedures.py)."""
        from dealab.engines.redshift import procedures

        revoke = match.group("action").upper() == "REVOKE"
        for grantee_kind, grantee in self._grantees(cursor, match.group("grantees")):
            for object_kind, schema, key in procedures.procedure_objects(cursor, match.group("target")):
                cursor.execute(f"DELETE FROM {SYSTEM}.privileges WHERE grantee_kind = ? AND grantee = ? AND object_kind = ? "
                               "AND schema_name = ? AND table_name = ? AND privilege = 'EXECUTE'",
                               [grantee_kind, grantee, object_kind, schema, key])
                if not revoke:
                    cursor.execute(f"INSERT INTO {SYSTEM}.privileges VALUES (?, ?, ?, ?, ?, NULL, 'EXECUTE')",
                                   [grantee_kind, grantee, object_kind, schema, key])

    def may_execute(self, cursor, user: str, schema: str, key: str) -> bool:
        """EXECUTE on the procedure `key` (name(types)), granted to the user, a group or role of it, or PUBLIC."""
        return self._has(cursor, user, "procedure", schema, key, "EXECUTE")

    def need_schema_privilege(self, cursor, user: str, schema: str, privilege: str) -> None:
        self._need_schema(cursor, user, schema, privilege)

    def _owns_all(self, cursor, user: str, match: re.Match) -> bool:
        if re.match(r"SCHEMA\b", match.group("target"), re.I):
            return False  # schemas are a superuser's in dealab
        if re.match(r"(PROCEDURE|ALL\s+PROCEDURES)\b", match.group("target"), re.I):  # a procedure's owner grants EXECUTE on it
            from dealab.engines.redshift import procedures

            objects = procedures.procedure_objects(cursor, match.group("target"))
            return bool(objects) and all(procedures.procedure_owner(cursor, schema, key) == user.lower() for _, schema, key in objects)
        objects = self._objects(cursor, match.group("target"))
        return bool(objects) and all(self._owns(cursor, user, schema, table) for _, schema, table in objects)

    def _objects(self, cursor, target: str) -> list[tuple[str, str, str | None]]:
        """(object kind, schema, table) of what a GRANT names: tables, every table of a schema, or schemas."""
        schemas = re.fullmatch(r"SCHEMA\s+" + NAMES, target, re.I)
        if schemas:
            names = _names(schemas.group(1))
            for schema in names:
                self._require_schema(cursor, schema)
            return [("schema", schema, None) for schema in names]
        in_schema = re.fullmatch(r"ALL\s+TABLES\s+IN\s+SCHEMA\s+" + NAMES, target, re.I)
        if in_schema:
            found = []
            for schema in _names(in_schema.group(1)):
                self._require_schema(cursor, schema)
                found += [("table", schema, table) for (table,) in cursor.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_catalog = current_database() "
                    "ORDER BY 1", [schema]).fetchall()]
            return found
        tables = re.fullmatch(r"(?:TABLE\s+)?((?:[\w\".]+\s*,\s*)*[\w\".]+)", target, re.I)
        if not tables:
            raise RedshiftError(f'syntax error at or near "{target.split()[0]}"')
        found = []
        for name in _names(tables.group(1)):
            schema, _, table = name.replace('"', "").rpartition(".")
            schema = schema.rpartition(".")[2] or "public"
            if not cursor.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
                                  "AND table_catalog = current_database()", [schema, table]).fetchone():
                raise RedshiftError(f'relation "{name}" does not exist')
            found.append(("table", schema, table))
        return found

    @staticmethod
    def _external(cursor, schema: str) -> bool:
        """An external schema (Spectrum's, spectrum.py), kept in the warehouse's metadata rather than DuckDB's catalog."""
        return bool(cursor.execute(f"SELECT 1 FROM {SYSTEM}.external_schemas WHERE schema_name = ?", [schema]).fetchone())

    def _require_schema(self, cursor, schema: str) -> None:
        if self._external(cursor, schema):
            return
        if not cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = ? AND catalog_name = current_database()",
                              [schema]).fetchone():
            raise RedshiftError(f'schema "{schema}" does not exist')

    def _grantees(self, cursor, text: str) -> list[tuple[str, str]]:
        found = []
        for part in re.split(r"\s*,\s*", text.strip()):
            words = part.split()
            if len(words) == 1 and words[0].upper() == "PUBLIC":
                found.append(("public", "public"))
            elif len(words) == 2 and words[0].upper() in ("GROUP", "ROLE"):
                kind, name = words[0].lower(), words[1].strip('"').lower()
                self._require_group(cursor, name, kind)
                found.append((kind, name))
            elif len(words) == 1:
                name = words[0].strip('"').lower()
                if not self.exists(cursor, name):
                    raise RedshiftError(f'user "{name}" does not exist')
                found.append(("user", name))
            else:
                raise RedshiftError(f'syntax error at or near "{words[0]}"')
        return found

    # ------------------------------------------------------------ enforcement

    def _grantees_of(self, cursor, user: str) -> list[tuple[str, str]]:
        memberships = cursor.execute(f"SELECT kind, group_name FROM {SYSTEM}.group_members WHERE user_name = ?", [user.lower()]).fetchall()
        return [("user", user.lower()), ("public", "public"), *memberships]

    def _has(self, cursor, user: str, object_kind: str, schema: str, table: str | None, privilege: str,
             column: str | None = None) -> bool:
        grantees = self._grantees_of(cursor, user)
        where = " OR ".join("(grantee_kind = ? AND grantee = ?)" for _ in grantees)
        return bool(cursor.execute(
            f"SELECT 1 FROM {SYSTEM}.privileges WHERE ({where}) AND object_kind = ? AND schema_name = ? "
            "AND table_name IS NOT DISTINCT FROM ? AND privilege = ? AND column_name IS NOT DISTINCT FROM ?",
            [value for pair in grantees for value in pair] + [object_kind, schema, table, privilege, column]).fetchone())

    def _owns(self, cursor, user: str, schema: str, table: str) -> bool:
        return bool(cursor.execute(f"SELECT 1 FROM {SYSTEM}.owners WHERE schema_name = ? AND table_name = ? AND user_name = ?",
                                   [schema, table, user.lower()]).fetchone())

    def check(self, cursor, user: str | None, tree: exp.Expression) -> None:
        """Refuses, in Redshift's words, a statement `user` may not run; nothing for a superuser."""
        if self.is_superuser(cursor, user):
            return
        for action, schema, table, node in self._touched(tree):
            if action == "DATABASE":
                raise RedshiftError(f"permission denied for database {self.database}")
            if action == "CREATE":
                self._need_schema(cursor, user, schema, "CREATE")
                continue
            self._need_schema(cursor, user, schema, "USAGE")
            if action == "SELECT" and self._external(cursor, schema):
                continue  # an external schema's tables are read with USAGE on it (and Lake Formation's grants), as on Redshift
            if self._owns(cursor, user, schema, table):
                continue
            if action == "OWNER":
                raise RedshiftError(f"must be owner of relation {table}")
            if self._has(cursor, user, "table", schema, table, action):
                continue
            if action == "SELECT" and self._columns_granted(cursor, user, schema, table, node, tree):
                continue
            raise RedshiftError(f"permission denied for relation {table}")

    def check_write(self, cursor, user: str | None, name: str, privilege: str) -> None:
        """COPY into a table needs INSERT on it (and USAGE on its schema)."""
        if self.is_superuser(cursor, user):
            return
        schema, _, table = name.lower().replace('"', "").rpartition(".")
        schema = schema or "public"
        self._need_schema(cursor, user, schema, "USAGE")
        if not self._owns(cursor, user, schema, table) and not self._has(cursor, user, "table", schema, table, privilege):
            raise RedshiftError(f"permission denied for relation {table}")

    def record_owner(self, cursor, user: str | None, tree: exp.Expression) -> None:
        """A table a (non-super)user creates is its own: it may read, write and drop it without a grant; and the
        creator's default privileges (ALTER DEFAULT PRIVILEGES) are granted on it."""
        if not isinstance(tree, exp.Create) or tree.args.get("kind", "").upper() not in ("TABLE", "VIEW") or tree.find(exp.TemporaryProperty):
            return
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(table, exp.Table):
            return
        schema, name = (table.db or "public").lower(), table.name.lower()
        creator = None if self.is_superuser(cursor, user) else user.lower()
        if creator:
            cursor.execute(f"DELETE FROM {SYSTEM}.owners WHERE schema_name = ? AND table_name = ?", [schema, name])
            cursor.execute(f"INSERT INTO {SYSTEM}.owners VALUES (?, ?, ?)", [schema, name, creator])
        cursor.execute(f"INSERT INTO {SYSTEM}.privileges SELECT DISTINCT grantee_kind, grantee, 'table', ?, ?, NULL, privilege "
                       f"FROM {SYSTEM}.default_privileges WHERE creator IS NOT DISTINCT FROM ? AND (schema_name IS NULL OR schema_name = ?)",
                       [schema, name, creator, schema])

    def forget_table(self, cursor, schema: str, table: str) -> None:
        for metadata in ("owners", "privileges"):
            cursor.execute(f"DELETE FROM {SYSTEM}.{metadata} WHERE schema_name = ? AND table_name = ?", [schema, table])

    def session_user(self, cursor, user: str | None) -> str:
        """The name CURRENT_USER answers: the signed-in user, or for the admin the first superuser recorded."""
        if user is not None:
            return user.lower()
        row = cursor.execute(f"SELECT user_name FROM {SYSTEM}.users WHERE superuser ORDER BY user_id LIMIT 1").fetchone()
        return row[0] if row else "admin"

    def bind_session(self, cursor, user: str | None, tree: exp.Expression) -> bool:
        """Replaces CURRENT_USER/SESSION_USER and HAS_TABLE_PRIVILEGE/HAS_SCHEMA_PRIVILEGE (their arguments
        literals) by their values for this session, which DuckDB cannot know; True when the tree changed."""
        changed = False
        for node in list(tree.find_all(exp.CurrentUser, exp.SessionUser)):
            node.replace(exp.Literal.string(self.session_user(cursor, user)))
            changed = True
        for node in list(tree.find_all(exp.Anonymous)):
            name = node.name.lower()
            if name not in ("has_table_privilege", "has_schema_privilege"):
                continue
            if not all(isinstance(argument, exp.Literal) and argument.is_string for argument in node.expressions):
                raise RedshiftError(f"dealab offers {name.upper()} with literal (quoted) arguments only")
            values = [argument.this for argument in node.expressions]
            if len(values) == 2:
                values.insert(0, self.session_user(cursor, user))
            if len(values) != 3:
                raise RedshiftError(f"function {name}({', '.join(['unknown'] * len(values))}) does not exist")
            node.replace(exp.Boolean(this=self._has_privilege(cursor, name, *values)))
            changed = True
        return changed

    def _has_privilege(self, cursor, function: str, user: str, target: str, privileges: str) -> bool:
        if not self.exists(cursor, user):
            raise RedshiftError(f'user "{user}" does not exist')
        if self.is_superuser(cursor, user):
            return True
        wanted = [word.strip().upper() for word in privileges.split(",")]
        if function == "has_schema_privilege":
            return all(self._has(cursor, user, "schema", target.lower(), None, privilege) for privilege in wanted)
        schema, _, table = target.lower().replace('"', "").rpartition(".")
        schema = schema or "public"
        return all(self._owns(cursor, user, schema, table) or self._has(cursor, user, "table", schema, table, privilege)
                   for privilege in wanted)

    def _need_schema(self, cursor, user: str, schema: str, privilege: str) -> None:
        if not self._has(cursor, user, "schema", schema, None, privilege):
            raise RedshiftError(f"permission denied for schema {schema}")

    def _touched(self, tree: exp.Expression):
        """(privilege needed, schema, table, node) for each table a statement reaches: the target of a write needs
        INSERT/UPDATE/DELETE (MERGE each its clauses do), TRUNCATE its privilege, a new table CREATE on its schema,
        DROP/ALTER ownership, every other table SELECT."""
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        targets, actions = [], []
        if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
            targets, actions = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this], [type(tree).__name__.upper()]
        elif isinstance(tree, exp.Merge):
            targets = [tree.this]
            actions = sorted({type(when.args.get("then")).__name__.upper() if isinstance(when.args.get("then"), (exp.Insert, exp.Update))
                              else "DELETE" for when in tree.find_all(exp.When)})
        elif isinstance(tree, exp.TruncateTable):
            targets, actions = list(tree.expressions), ["TRUNCATE"]
        elif isinstance(tree, (exp.Create, exp.Drop)) and tree.args.get("kind", "").upper() == "SCHEMA":
            yield "DATABASE", "", "", tree
            return
        elif isinstance(tree, exp.Create):
            if tree.find(exp.TemporaryProperty):
                return  # every user may make temporary tables (Redshift's TEMP on the database, granted to PUBLIC)
            targets, actions = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this], ["CREATE"]
        elif isinstance(tree, (exp.Drop, exp.Alter)):
            targets, actions = list(tree.find_all(exp.Table)), ["OWNER"]
        for table in tree.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier) or table.name.lower() in ctes and not table.db:
                continue  # a table function or a CTE
            schema = (table.db or "public").lower()
            if schema == SYSTEM or (table.catalog or "").lower() == "temp":
                continue  # a system view: every user may read them
            for action in actions if any(table is target for target in targets) else ["SELECT"]:
                yield action, schema, table.name.lower(), table

    def _columns_granted(self, cursor, user: str, schema: str, table: str, node: exp.Table, tree: exp.Expression) -> bool:
        """Column-level SELECT: every column of `table` the statement reads is granted (a * reads them all)."""
        names = {node.name.lower(), node.alias_or_name.lower()}
        columns = {name for (name,) in cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall()}
        read = set()
        for star in tree.find_all(exp.Star):
            if isinstance(star.parent, exp.Count):
                continue  # count(*) reads rows, not columns
            qualifier = star.parent.table.lower() if isinstance(star.parent, exp.Column) else ""
            if not qualifier or qualifier in names:
                read |= columns
        for column in tree.find_all(exp.Column):
            if column.name.lower() in columns and (not column.table or column.table.lower() in names):
                read.add(column.name.lower())
        if not read:  # count(*) reads no column: any column of the table granted will do, as in PostgreSQL
            return any(self._has(cursor, user, "table", schema, table, "SELECT", column) for column in columns)
        return all(self._has(cursor, user, "table", schema, table, "SELECT", column) for column in read)


GRANT = (r"GRANT\s+(?P<privileges>.+?)\s+ON\s+(?P<target>.+?)\s+TO\s+(?P<grantees>.+?)(?:\s+WITH\s+GRANT\s+OPTION)?")
REVOKE = (r"REVOKE\s+(?:GRANT\s+OPTION\s+FOR\s+)?(?P<privileges>.+?)\s+ON\s+(?P<target>.+?)\s+FROM\s+(?P<grantees>.+?)"
          r"(?:\s+(?:CASCADE|RESTRICT))?")
# (pattern over the whole statement, whitespace folded; what runs it). First match wins.
STATEMENTS = [
    (r"CREATE\s+USER\s+" + NAME + r"(?:\s+WITH)?(\s+.*)?", Grants._create_user),
    (r"ALTER\s+USER\s+" + NAME + r"\s+(?:WITH\s+)?(.+)", Grants._alter_user),
    (r"DROP\s+USER\s+(IF\s+EXISTS\s+)?" + NAMES, Grants._drop_user),
    (r"CREATE\s+GROUP\s+" + NAME + r"(?:\s+(?:WITH\s+)?USER\s+" + NAMES + ")?", Grants._create_group),
    (r"ALTER\s+GROUP\s+" + NAME + r"\s+(ADD|DROP)\s+USER\s+" + NAMES, Grants._alter_group),
    (r"DROP\s+GROUP\s+" + NAME, Grants._drop_group),
    (r"CREATE\s+ROLE\s+" + NAME + "()", lambda self, cursor, match: self._create_group(cursor, match, "role")),
    (r"DROP\s+ROLE\s+" + NAME, lambda self, cursor, match: self._drop_group(cursor, match, "role")),
    (r"GRANT\s+ROLE\s+" + NAMES + r"\s+TO\s+(?:USER\s+)?" + NAMES, Grants._grant_role),
    (r"REVOKE\s+ROLE\s+" + NAMES + r"\s+FROM\s+(?:USER\s+)?" + NAMES,
     lambda self, cursor, match: self._grant_role(cursor, match, revoke=True)),
    (r"ALTER\s+DEFAULT\s+PRIVILEGES(?:\s+FOR\s+USER\s+(?P<creators>" + NAMES[1:-1] + r"))?(?:\s+IN\s+SCHEMA\s+(?P<schemas>"
     + NAMES[1:-1] + r"))?\s+(?P<action>GRANT|REVOKE)\s+(?P<privileges>.+?)\s+ON\s+TABLES\s+(?:TO|FROM)\s+(?P<grantees>.+?)"
     r"(?:\s+WITH\s+GRANT\s+OPTION)?", Grants._default_privileges),
    (r"(?P<action>GRANT|REVOKE)\s+EXECUTE\s+ON\s+(?P<target>(?:PROCEDURE|ALL\s+PROCEDURES\s+IN\s+SCHEMA)\s+.+?)\s+(?:TO|FROM)\s+"
     r"(?P<grantees>.+?)(?:\s+WITH\s+GRANT\s+OPTION)?(?:\s+(?:CASCADE|RESTRICT))?", Grants._grant_execute),
    (GRANT, Grants._grant),
    (REVOKE, Grants._revoke),
]
