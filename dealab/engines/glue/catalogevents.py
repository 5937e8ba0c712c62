"""The Data Catalog's own EventBridge events, as AWS Glue emits them for each successful catalog write:

- "Glue Data Catalog Database State Change" for CreateDatabase, DeleteDatabase, CreateTable, DeleteTable and
  BatchDeleteTable, detail `{databaseName, typeOfChange, changedTables}`;
- "Glue Data Catalog Table State Change" for UpdateTable, CreatePartition, BatchCreatePartition, UpdatePartition,
  DeletePartition, BatchUpdatePartition and BatchDeletePartition, detail `{databaseName, tableName, typeOfChange,
  changedPartitions}`, a partition named by its values as AWS prints them ("[2024, 01]").

typeOfChange is the operation's name. AWS names at most 100 tables or partitions in one event and sends more
events for more; a batch entry the catalog refused (listed in the answer's Errors) changed nothing and is not named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dealab.wire import serviceevents

DATABASE_CHANGE = "Glue Data Catalog Database State Change"
TABLE_CHANGE = "Glue Data Catalog Table State Change"
NAMES_PER_EVENT = 100


@dataclass(frozen=True)
class CatalogChange:
    detail_type: str
    # (request parameters) → (database, table or None, the changed tables or partitions as value lists)
    changed: Callable[[dict], tuple[str, str | None, list]]
    # the answer's Errors entry → the table name or partition values it refuses (batch operations only)
    refused: Callable[[dict], object] | None = None


def _table_name(params: dict) -> str:
    return params.get("TableName") or params.get("Name") or (params.get("TableInput") or {}).get("Name", "")


def _partition(values: list) -> str:
    return "[" + ", ".join(str(value) for value in values) + "]"


CHANGES: dict[str, CatalogChange] = {
    "CreateDatabase": CatalogChange(DATABASE_CHANGE, lambda p: ((p.get("DatabaseInput") or {}).get("Name", ""), None, [])),
    "DeleteDatabase": CatalogChange(DATABASE_CHANGE, lambda p: (p.get("Name", ""), None, [])),
    "CreateTable": CatalogChange(DATABASE_CHANGE, lambda p: (p.get("DatabaseName", ""), None, [_table_name(p)])),
    "DeleteTable": CatalogChange(DATABASE_CHANGE, lambda p: (p.get("DatabaseName", ""), None, [_table_name(p)])),
    "BatchDeleteTable": CatalogChange(DATABASE_CHANGE, lambda p: (p.get("DatabaseName", ""), None, list(p.get("TablesToDelete") or [])),
                                      refused=lambda error: error.get("TableName")),
    "UpdateTable": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p), [])),
    "CreatePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p),
                                                              [(p.get("PartitionInput") or {}).get("Values", [])])),
    "UpdatePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p), [p.get("PartitionValueList", [])])),
    "DeletePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p), [p.get("PartitionValues", [])])),
    "BatchCreatePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p),
                                                                   [entry.get("Values", []) for entry in p.get("PartitionInputList") or []]),
                                          refused=lambda error: error.get("PartitionValues")),
    "BatchUpdatePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p),
                                                                   [entry.get("PartitionValueList", []) for entry in p.get("Entries") or []]),
                                          refused=lambda error: error.get("PartitionValueList")),
    "BatchDeletePartition": CatalogChange(TABLE_CHANGE, lambda p: (p.get("DatabaseName", ""), _table_name(p),
                                                                   [entry.get("Values", []) for entry in p.get("PartitionsToDelete") or []]),
                                          refused=lambda error: error.get("PartitionValues")),
}


def events_of(operation: str, params: dict, answer: dict, arn_prefix: str) -> list[tuple[str, dict, list[str]]]:
    """(detail-type, detail, resources) of each event one successful catalog write sends; `arn_prefix` is
    "arn:aws:glue:<region>:<account>"."""
    change = CHANGES[operation]
    database, table, changed = change.changed(params)
    if change.refused is not None:
        refused = [change.refused(error) for error in answer.get("Errors") or []]
        changed = [item for item in changed if item not in refused]
        if not changed:
            return []  # every entry refused: nothing changed
    if change.detail_type == DATABASE_CHANGE:
        if not changed:
            return [(DATABASE_CHANGE, {"databaseName": database, "typeOfChange": operation}, [f"{arn_prefix}:database/{database}"])]
        return [(DATABASE_CHANGE, {"databaseName": database, "typeOfChange": operation, "changedTables": names},
                 [f"{arn_prefix}:table/{database}/{name}" for name in names])
                for names in _chunks(changed)]
    resources = [f"{arn_prefix}:table/{database}/{table}"]
    detail = {"databaseName": database, "tableName": table, "typeOfChange": operation}
    if not changed:
        return [(TABLE_CHANGE, detail, resources)]
    return [(TABLE_CHANGE, {**detail, "changedPartitions": [_partition(values) for values in chunk]}, resources) for chunk in _chunks(changed)]


def publish(operation: str, params: dict, answer: dict, arn_prefix: str, region: str) -> None:
    for detail_type, detail, resources in events_of(operation, params, answer, arn_prefix):
        serviceevents.publish("aws.glue", detail_type, detail, resources, region=region)


def _chunks(items: list) -> list[list]:
    return [items[start:start + NAMES_PER_EVENT] for start in range(0, len(items), NAMES_PER_EVENT)]
