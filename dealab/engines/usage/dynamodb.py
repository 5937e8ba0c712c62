"""DynamoDB's consumed capacity (AWS/DynamoDB ConsumedReadCapacityUnits / ConsumedWriteCapacityUnits, dimension
TableName, and TableName + GlobalSecondaryIndexName for reads of a global secondary index), computed as AWS
computes it ("DynamoDB item sizes and formats", "Read/write capacity unit consumption"):

- an item's size is the sum of its attribute names and values: strings and binaries their bytes, a number
  1 byte per two significant digits + 1, null and Boolean 1, a list or map 3 + 1 per element + its elements;
- reads: 4 KB per unit, half a unit when eventually consistent; GetItem and BatchGetItem round each item up,
  Query and Scan round the total of the items read; a read that finds nothing still costs one unit (half);
- writes: 1 KB per unit per item, the larger of the item before and after (PutItem, UpdateItem), the deleted
  item's size (DeleteItem), at least one unit; TransactWriteItems costs two units per KB.

The backend's own ConsumedCapacity answers are constants, so the sizes are measured here: the items the answer
carries, and for writes the item before (read by the engine first) and after.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal

NAMESPACE = "AWS/DynamoDB"
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
TRANSACTION_FACTOR = 2


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict) -> int:
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(base64.b64decode(content)) if isinstance(content, str) else len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(element.encode()) for element in content)
    if kind == "NS":
        return sum(_number_size(element) for element in content)
    if kind == "BS":
        return sum(len(base64.b64decode(element)) if isinstance(element, str) else len(element) for element in content)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in content.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind}")


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits  # leading and trailing zeroes trimmed
    return math.ceil(len(digits) / 2) + 1


def read_units(sizes: list[int], consistent: bool, each: bool) -> float:
    """Read units of items of `sizes`: each rounded up to 4 KB (GetItem, BatchGetItem) or their total (Query, Scan)."""
    blocks = sum(max(1, math.ceil(size / READ_UNIT_BYTES)) for size in sizes) if each else max(1, math.ceil(sum(sizes) / READ_UNIT_BYTES))
    return float(blocks) if consistent else blocks / 2


def write_units(size: int, transactional: bool = False) -> float:
    return float(max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (TRANSACTION_FACTOR if transactional else 1))
