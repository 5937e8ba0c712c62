"""Statements on a table's partitions in the catalog: ALTER TABLE ... ADD / DROP PARTITION, MSCK REPAIR TABLE."""

from __future__ import annotations

import re
from urllib.parse import unquote

from dealab.engines.athena.catalog import Table, folder
from dealab.engines.athena.errors import QueryError
from dealab.engines.athena.results import Outcome
from dealab.engines.athena.statements.common import BATCH_PARTITIONS, StatementContext, existing, register_partitions

_PARTITION_SPEC = re.compile(r"PARTITION\s*\((?P<spec>[^)]*)\)(?:\s*LOCATION\s+'(?P<location>[^']*)')?", re.I)
_SPEC_ITEM = re.compile(r"[`\"]?(\w+)[`\"]?\s*=\s*(?:'((?:[^']|'')*)'|([^,\s]+))")


def partition_specs(text: str) -> list[tuple[dict[str, str], str | None]]:
    """Each PARTITION (k = v, ...) [LOCATION '...'] in the text: its values by key, and its location."""
    specs = []
    for match in _PARTITION_SPEC.finditer(text):
        values = {m.group(1).lower(): (m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3)) for m in _SPEC_ITEM.finditer(match.group("spec"))}
        specs.append((values, match.group("location")))
    return specs


def registered_values(ctx: StatementContext, table: Table) -> set[tuple[str, ...]]:
    return {tuple(p["Values"]) for p in ctx.catalog.partitions(table)}


def add_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    registered = registered_values(ctx, table)
    inputs = []
    for values, location in partition_specs(match.group("rest")):
        if sorted(values) != sorted(keys):
            raise QueryError(f"Partition spec {values} does not match the partition keys {keys} of {table.name}", "SemanticException")
        ordered = [values[k] for k in keys]
        if tuple(ordered) in registered:
            if re.search(r"IF\s+NOT\s+EXISTS", match.group("rest"), re.I):
                continue
            raise QueryError(f"Partition already exists: {dict(zip(keys, ordered))}", "AlreadyExistsException")
        descriptor = dict(table.descriptor)
        descriptor["Location"] = folder(location) if location else folder(table.location) + "/".join(f"{k}={values[k]}" for k in keys) + "/"
        inputs.append({"Values": ordered, "StorageDescriptor": descriptor})
    for start in range(0, len(inputs), BATCH_PARTITIONS):
        ctx.catalog.glue.batch_create_partition(DatabaseName=table.database, TableName=table.name, PartitionInputList=inputs[start : start + BATCH_PARTITIONS])
    return Outcome.lines("DDL", "ALTER_TABLE_ADD_PARTITION", "result", [])


def drop_partitions(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    registered = registered_values(ctx, table)
    doomed = []
    for values, _ in partition_specs(match.group("rest")):
        ordered = tuple(values.get(k) for k in keys)
        if ordered not in registered:
            if re.search(r"IF\s+EXISTS", match.group("rest"), re.I):
                continue
            raise QueryError(f"No partition is dropped: {values}", "SemanticException")
        doomed.append({"Values": list(ordered)})
    if doomed:
        ctx.catalog.glue.batch_delete_partition(DatabaseName=table.database, TableName=table.name, PartitionsToDelete=doomed)
    return Outcome.lines("DDL", "ALTER_TABLE_DROP_PARTITION", "result", [])


def _partitions_in_folders(ctx: StatementContext, table: Table, keys: list[str]) -> list[tuple[str, ...]]:
    """The partition values named by k=v folders under the table's location, in keys' order."""
    base = folder(table.location)
    found: dict[tuple[str, ...], None] = {}
    for url, _ in ctx.catalog.list_files(base):
        segments = url[len(base):].split("/")[: len(keys)]
        pairs = [segment.split("=", 1) for segment in segments if "=" in segment]
        if len(pairs) == len(keys) and [p[0].lower() for p in pairs] == keys:
            found[tuple(unquote(p[1]) for p in pairs)] = None
    return list(found)


def msck_repair(ctx: StatementContext, match: re.Match) -> Outcome:
    table = existing(ctx, match.group("table"))
    keys = [k for k, _ in table.partition_keys]
    if not keys:
        return Outcome.lines("DDL", "MSCK_REPAIR_TABLE", "result", [])
    registered = registered_values(ctx, table)
    missing = [values for values in _partitions_in_folders(ctx, table, keys) if values not in registered]
    names = [f"{table.name}:" + "/".join(f"{k}={v}" for k, v in zip(keys, values)) for values in missing]
    if missing:
        register_partitions(ctx, table.raw, table.database, [dict(zip(keys, values)) for values in missing])
    lines = (["Partitions not in metastore:\t" + "\t".join(names)] if names else []) + [f"Repair: Added partition to metastore {n}" for n in names]
    return Outcome.lines("DDL", "MSCK_REPAIR_TABLE", "result", lines)
