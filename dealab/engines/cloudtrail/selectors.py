"""Which records a trail logs: its basic event selectors (ReadWriteType, IncludeManagementEvents, DataResources)
or its advanced ones (field selectors), as AWS evaluates them. Without any selector a trail logs every
management event and no data event, as a new trail does on AWS."""

from __future__ import annotations

from collections.abc import Callable

# What an advanced field selector's Field reads from a record.
FIELD_VALUES: dict[str, Callable[[dict], str | None]] = {
    "eventCategory": lambda record: record["eventCategory"],
    "readOnly": lambda record: "true" if record["readOnly"] else "false",
    "eventSource": lambda record: record["eventSource"],
    "eventName": lambda record: record["eventName"],
    "eventType": lambda record: record["eventType"],
    "errorCode": lambda record: record.get("errorCode"),
    "userIdentity.arn": lambda record: record["userIdentity"].get("arn"),
    "resources.type": lambda record: data_resource(record)[0],
    "resources.ARN": lambda record: data_resource(record)[1],
}
# Advanced selector operators: the positive ones hold when any value holds, the negative ones when all do.
POSITIVE = {"Equals": lambda value, operand: value == operand,
            "StartsWith": lambda value, operand: value.startswith(operand),
            "EndsWith": lambda value, operand: value.endswith(operand)}
NEGATIVE = {"NotEquals": lambda value, operand: value != operand,
            "NotStartsWith": lambda value, operand: not value.startswith(operand),
            "NotEndsWith": lambda value, operand: not value.endswith(operand)}
# A basic DataResources value naming every resource of its type.
ALL_OF_TYPE = {"AWS::S3::Object": ("arn:aws:s3", "arn:aws:s3:::"), "AWS::Lambda::Function": ("arn:aws:lambda",),
               "AWS::DynamoDB::Table": ("arn:aws:dynamodb",)}


def data_resource(record: dict) -> tuple[str | None, str | None]:
    """(resources.type, resources.ARN) of a data event: an S3 object's ARN, or its bucket's ARN and "/" for a
    bucket-level call (ListObjects), which a bucket's selector "arn:aws:s3:::bucket/" covers."""
    found = record.get("resources") or []
    if not found or record["managementEvent"]:
        return None, None
    first = found[0]
    if first["type"] == "AWS::S3::Bucket":
        return "AWS::S3::Object", first["ARN"] + "/"
    return first["type"], first["ARN"]


def logs(trail: dict, record: dict) -> bool:
    advanced = trail.get("AdvancedEventSelectors") or []
    if advanced:
        return any(_advanced_holds(selector, record) for selector in advanced)
    basic = trail.get("EventSelectors") or []
    if not basic:
        return record["managementEvent"]
    return any(_basic_holds(selector, record) for selector in basic)


def _basic_holds(selector: dict, record: dict) -> bool:
    read_write = selector.get("ReadWriteType", "All")
    if (read_write == "ReadOnly" and not record["readOnly"]) or (read_write == "WriteOnly" and record["readOnly"]):
        return False
    if record["managementEvent"]:
        return selector.get("IncludeManagementEvents", True) and record["eventSource"] not in selector.get("ExcludeManagementEventSources", [])
    resource_type, arn = data_resource(record)
    for resource in selector.get("DataResources") or []:
        if resource.get("Type") != resource_type:
            continue
        for value in resource.get("Values") or []:
            if value in ALL_OF_TYPE.get(resource_type, ()) or (arn and arn.startswith(value)):
                return True
    return False


def _advanced_holds(selector: dict, record: dict) -> bool:
    for field in selector.get("FieldSelectors") or []:
        read = FIELD_VALUES.get(field.get("Field", ""))
        value = read(record) if read else None
        if value is None:
            return False
        positives = [(POSITIVE[name], operand) for name in POSITIVE for operand in field.get(name) or []]
        if positives and not any(test(value, operand) for test, operand in positives):
            return False
        if not all(NEGATIVE[name](value, operand) for name in NEGATIVE for operand in field.get(name) or []):
            return False
    return True
