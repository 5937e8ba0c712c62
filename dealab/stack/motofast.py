"""Where embedded moto is made fast at the calls the lab clock leans on, without changing one byte it answers.

Moving the lab clock 400 days over 100,000 objects or items lists whole buckets and tables and deletes
tens of thousands of keys through the API; moto serves those calls correctly but slowly (its generic
response serializer looks every member of every listed object up through six alias rules and re-parses
every timestamp with dateutil; ListObjectVersions deep-copies every stored version, body included). Each
patch below replaces one moto function with one that returns exactly what the original returns, and says
why that holds; tests/test_motofast.py compares answers with and without them. They are applied once,
from motohooks.install().
"""

from __future__ import annotations

import datetime
import inspect
import itertools
import re
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xmltodict
from dateutil.tz import tzutc
from moto.core import responses as moto_responses
from moto.core import serialize as moto_serialize
from moto.core.utils import unix_time, unix_time_millis
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table
from moto.s3.models import FakeKey, S3Backend
from moto.moto_api._internal import mock_random
from moto.sqs import models as moto_sqs
from moto.sqs.exceptions import InvalidAttributeName, ReceiptHandleIsInvalid
from moto.sqs.models import Queue, SQSBackend


@dataclass(frozen=True)
class Patch:
    owner: object  # a class, or a module for a function other modules call through it
    name: str
    original: Any
    replacement: Any


PATCHES: list[Patch] = []


def _patch(owner: object, name: str):
    def register(replacement):
        PATCHES.append(Patch(owner, name, getattr(owner, name), replacement))
        return replacement

    return register


def install() -> None:
    for patch in PATCHES:
        setattr(patch.owner, patch.name, patch.replacement)


# ---- request dispatch ----------------------------------------------------------------------------------
_original_method_names = moto_responses.method_names_from_class
_method_names: dict[type, list[str]] = {}


@_patch(moto_responses, "method_names_from_class")
def method_names_from_class(clazz) -> list[str]:
    """moto's call_action asks which methods a response class has (inspect.getmembers over the class, ~0.5 ms
    for DynamoDB's) on every request, to find the action's handler; a class's methods are set when it is
    defined, so the answer is worked out once per class."""
    if clazz not in _method_names:
        _method_names[clazz] = _original_method_names(clazz)
    return _method_names[clazz]


# ---- the response serializer ---------------------------------------------------------------------------
_PICKER_CONTEXT = moto_serialize.AttributePickerContext
_original_get_value = moto_serialize.ResponseSerializer.get_value


def _candidate_keys(picker, key: str, shape) -> list[str] | None:
    """The keys moto's attribute picker tries, in order, on a plain dict for this member of this structure.

    For a plain dict the alias rules see only the member key, its shape and the shape's parent (set just
    before each member is serialized) — never the dict's contents (a dict has no Meta and its class name is
    always "dict") — so the list is worked out once, by the picker itself, and kept on the shape.
    """
    parent = getattr(shape, "parent", None)
    cache = shape.__dict__.setdefault("_dealab_candidate_keys", {})
    entry = cache.get(key)
    if entry is None or entry[0] is not parent:
        candidates = list(picker.get_possible_keys(_PICKER_CONTEXT(obj={}, key=key, shape=shape)))
        # moto's get_value walks a dotted key as a path; no member name has a dot, but keep its way if one did
        entry = (parent, None if any("." in candidate for candidate in candidates) else candidates)
        cache[key] = entry
    return entry[1]


def _default_picker(serializer) -> bool:
    """Whether the serializer picks members as moto does for every answer: the attribute picker with moto's
    default alias rules and no response transformers (what the candidate keys are worked out for)."""
    picker = serializer._value_picker
    return (type(picker) is moto_serialize.XFormedAttributePicker
            and picker.alias_providers is moto_serialize.DEFAULT_ALIAS_PROVIDERS and not picker.response_transformers)


@_patch(moto_serialize.ResponseSerializer, "get_value")
def get_value(self, value, key, shape):
    """Replaces ResponseSerializer.get_value, which builds a picker context and runs six alias rules (each a
    new object with hasattr checks) for every member of every object in the answer: ~60 µs per listed S3
    object, ~25 µs per DynamoDB attribute value. For a plain dict, the default picker (XFormedAttributePicker
    with moto's default alias rules and no response transformers) returns dict[k] for the first candidate key
    k present in the dict, even a None, else None; this does the same with the candidates worked out once.
    Anything else — other objects, other pickers, transformers — goes the original way."""
    if type(value) is dict and shape is not None and _default_picker(self):
        candidates = _candidate_keys(self._value_picker, key, shape)
        if candidates is not None:
            for candidate in candidates:
                if candidate in value:
                    return value[candidate]
            return None
    return _original_get_value(self, value, key, shape)


# An ISO 8601 UTC timestamp as moto writes them (S3 LastModified is "%Y-%m-%dT%H:%M:%S.000Z"). Four-digit
# years from 1000 on only: dateutil reads shorter or zero-led years its own way.
_ISO_UTC = re.compile(r"([1-9]\d{3})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")
_UTC = tzutc()
_original_convert_timestamp = moto_serialize.TimestampSerializer._convert_timestamp_to_str


@_patch(moto_serialize.TimestampSerializer, "_convert_timestamp_to_str")
def convert_timestamp_to_str(self, value, timestamp_format: str):
    """Replaces TimestampSerializer._convert_timestamp_to_str, which parses string timestamps with dateutil
    (~0.5 ms each; one per listed S3 object). For "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", dateutil yields exactly
    that moment in UTC (fractions padded to microseconds, as dateutil pads them); the datetime is built
    directly and handed to the same converter, or for the ISO formats (S3 listings, on every object) written
    from the matched digits as strftime would write them. Any other value goes the original way."""
    match = _ISO_UTC.fullmatch(value) if type(value) is str else None
    if match is None:
        return _original_convert_timestamp(self, value, timestamp_format)
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                                   int(fraction.ljust(6, "0")) if fraction else 0, tzinfo=_UTC)
    except ValueError:  # an impossible date: let the original raise as it does
        return _original_convert_timestamp(self, value, timestamp_format)
    converter = timestamp_format.lower()
    if type(self) is moto_serialize.TimestampSerializer and converter in ("iso8601", "iso8601_zeroed"):
        stamp = f"{year}-{month}-{day}T{hour}:{minute}:{second}"  # "%Y-%m-%dT%H:%M:%S" of the moment
        if converter == "iso8601_zeroed":
            return stamp + ".000Z"
        return f"{stamp}.{moment.microsecond:06d}Z" if moment.microsecond > 0 else stamp + "Z"
    return getattr(self, f"_timestamp_{converter}")(moment)


# ---- S3 answers written straight to XML -----------------------------------------------------------------
# The answers the lab clock fetches by the hundred thousand entries. Anything else S3 answers is left to moto.
S3_WRITTEN = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions", "DeleteObjects"})
_XML_PROLOG = '<?xml version="1.0" encoding="utf-8"?>\n'


class _Unusual(Exception):
    """Something the written answers leave to moto: it then serializes the whole answer itself."""


def _text(text: str) -> str:
    """saxutils.escape, skipped for text with nothing to escape (nearly all of it)."""
    return escape(text) if "&" in text or "<" in text or ">" in text else text


def _xml_name(name: str) -> str:
    try:
        xmltodict._validate_name(name, "element")
    except ValueError:
        raise _Unusual from None
    return name


_DEFAULT_PICKER = moto_serialize.XFormedAttributePicker()


def _found(value: dict, candidates: tuple):
    """What moto's picker finds in a plain dict: the first candidate key present (even a None), else None."""
    for candidate in candidates:
        if candidate in value:
            return value[candidate]
    return None


class _XmlPlan:
    """How moto's S3Serializer turns a plain-dict value of one shape into XML, worked out once per shape.

    moto walks the shape (members in model order, each looked up with the attribute picker, None skipped;
    strings str(), integers int(), booleans "true" when True or "true"-ish, timestamps through the
    serializer's TimestampSerializer; lists flattened or wrapped in <member>, an empty wrapped list written
    empty, empty structures inside lists dropped), builds a dict tree and renders it with xmltodict. The plan
    does the same walk and writes the characters xmltodict would. Shape traits it does not know (maps,
    blobs, XML attributes and namespaces, members sharing a name) make the whole answer go moto's way.
    """

    def __init__(self, shape, nested: bool = True):
        self.shape = shape
        self.kind = shape.type_name
        if self.kind == "structure":
            self.members = []  # (picker candidates, element name, plan)
            self.headers = []  # picker candidates of the header members (top level)
            names = set()
            for key, member in shape.members.items():
                member.parent = shape  # as moto sets it before serializing the member
                candidates = _candidate_keys(_DEFAULT_PICKER, key, member)
                if candidates is None:
                    raise _Unusual
                if "location" in member.serialization:
                    # nested: moto drops them; top level: only headers are written, and none are expected here
                    if not nested and member.is_http_header_trait:
                        self.headers.append(tuple(candidates))
                    continue
                name = member.serialization.get("name", key)
                if (name in names or name in ("body", "headers") or name.startswith(("@", "#"))
                        or member.serialization.get("xmlAttribute") or member.serialization.get("xmlNamespace")):
                    raise _Unusual
                names.add(name)
                self.members.append((tuple(candidates), _xml_name(name), _XmlPlan(member)))
        elif self.kind == "list":
            item = shape.member
            if item.serialization.get("xmlAttribute") or item.serialization.get("xmlNamespace"):
                raise _Unusual
            self.flattened = shape.is_flattened
            # items are named by the member's own name, else (flattened) the list's, else "member"
            self.item_name = item.serialization.get("name")
            if self.item_name is not None:
                _xml_name(self.item_name)
            self.item = _XmlPlan(item)
        elif self.kind not in ("string", "integer", "long", "boolean", "timestamp"):
            raise _Unusual

    def text(self, serializer, value) -> str:
        kind = self.kind
        if kind == "string":
            return str(value)
        if kind == "integer" or kind == "long":
            return str(int(value))
        if kind == "boolean":
            return "true" if value is True or str(value).lower() == "true" else "false"
        timestamps = serializer._timestamp_serializer
        timestamp_format = self.shape.serialization.get("timestampFormat", timestamps.default_format)
        return xmltodict._convert_value_to_string(timestamps._convert_timestamp_to_str(value, timestamp_format))

    def children(self, serializer, value, parts: list) -> None:
        """Appends the members of a structure value, as moto would write them inside its element, to parts
        (never an empty string: an element with nothing in it is the one that has no parts)."""
        if type(value) is not dict:
            raise _Unusual
        for candidates, name, plan in self.members:
            found = _found(value, candidates)
            if found is None:
                continue
            kind = plan.kind
            if kind == "structure":
                inner = []
                plan.children(serializer, found, inner)
                parts.append(f"<{name}>{''.join(inner)}</{name}>" if inner else f"<{name}/>")
            elif kind == "list":
                plan.items(serializer, name, found, parts)
            else:
                text = plan.text(serializer, found)
                parts.append(f"<{name}>{_text(text)}</{name}>" if text else f"<{name}/>")

    def items(self, serializer, name: str, value, parts: list) -> None:
        if type(value) not in (list, tuple):  # a generator could not be walked again by moto
            raise _Unusual
        item_name = self.item_name or (name if self.flattened else "member")
        item = self.item
        items = parts if self.flattened else []
        for entry in value:
            if item.kind == "structure":
                inner = []
                item.children(serializer, entry, inner)
                if inner:  # moto drops items that serialize to an empty structure
                    items.append(f"<{item_name}>{''.join(inner)}</{item_name}>")
            elif item.kind == "list":
                raise _Unusual
            else:
                text = item.text(serializer, entry)
                items.append(f"<{item_name}>{_text(text)}</{item_name}>" if text else f"<{item_name}/>")
        if not self.flattened:
            parts.append(f"<{name}>{''.join(items)}</{name}>" if items else f"<{name}/>")


_plans: dict[str, _XmlPlan | None] = {}
_original_s3_serialize = moto_serialize.S3Serializer.serialize


def _plan_for(operation_model) -> _XmlPlan | None:
    name = operation_model.name
    if name not in _plans:
        shape = operation_model.output_shape
        try:
            if shape is None or "payload" in shape.serialization or operation_model.has_event_stream_output:
                raise _Unusual
            _plans[name] = _XmlPlan(shape, nested=False)
        except _Unusual:
            _plans[name] = None
    return _plans[name]


@_patch(moto_serialize.S3Serializer, "serialize")
def s3_serialize(self, result):
    """Replaces S3Serializer.serialize for the answers in S3_WRITTEN: moto builds a dict tree member by member
    (~40 µs per listed object even with the patches above) and renders it through xmltodict's SAX
    generator (~25 µs per element, ten elements per object); _XmlPlan writes the same characters in one
    pass. Same status (the model's responseCode, 200), same headers (Content-Type application/xml), same
    root (the output shape's resultWrapper, with the model's xmlns). Errors, pretty printing, values that
    are not plain dicts and lists, or a header member with a value go moto's way, for the whole answer."""
    operation = self.operation_model
    if operation.name in S3_WRITTEN and type(result) is dict and not self.pretty_print and _default_picker(self):
        plan = _plan_for(operation)
        if plan is not None:
            try:
                return _written_answer(self, plan, result)
            except Exception:  # _Unusual, or a value moto would choke on: moto answers (or fails) its own way
                pass
    return _original_s3_serialize(self, result)


def _written_answer(serializer, plan: _XmlPlan, result: dict) -> dict:
    if any(_found(result, candidates) is not None for candidates in plan.headers):
        raise _Unusual
    operation = serializer.operation_model
    root = _xml_name(plan.shape.serialization.get("resultWrapper", f"{operation.name}Response"))
    namespace = operation.metadata.get("xmlNamespace")
    if namespace is not None and type(namespace) is not str:
        raise _Unusual
    start = f"<{root} xmlns={quoteattr(namespace)}" if namespace is not None else f"<{root}"
    parts: list[str] = []
    plan.children(serializer, result, parts)
    # one join: a listing of 100,000 versions is ~50 MB of XML, not to be copied on the way
    body = "".join([_XML_PROLOG, start, ">", *parts, f"</{root}>"]) if parts else f"{_XML_PROLOG}{start}/>"
    return {
        "body": body,
        "headers": {"Content-Type": serializer.CONTENT_TYPE},
        "status_code": operation.http.get("responseCode", serializer.DEFAULT_RESPONSE_CODE),
    }


# ---- DynamoDB answers built straight from the result ----------------------------------------------------
# The answers of a TTL sweep: the scan of the table, the deletions, and the stream records they leave.
JSON_BUILT = frozenset({"Scan", "Query", "BatchWriteItem", "GetRecords"})
_SKIPPED = object()  # where moto sets nothing
_UNUSUAL = object()  # a shape _JsonPlan leaves to moto


class _JsonPlan:
    """How moto's JSONSerializer turns a plain-dict value of one shape into the tree it hands to json.dumps,
    worked out once per shape: members in model order under their serialized names, each looked up with the
    attribute picker and skipped when None; strings str() (Enums by value; None, {} and [] as they are),
    integers int(), floats float(), booleans as they are, blobs base64, timestamps through the serializer's
    TimestampSerializer; a list item or map value that serializes to nothing (a None structure) kept raw in
    a list and left out of a map. The tree is built with the same dict assignments, in the same order, so
    json.dumps writes the same text. Document types, and list members moto files under another name, make
    the whole answer go moto's way."""

    def __init__(self, shape):
        self.shape = shape
        self.kind = shape.type_name
        if self.kind == "structure":
            if shape.is_document_type:
                raise _Unusual
            self.members = []
            for key, member in shape.members.items():
                member.parent = shape  # as moto sets it before serializing the member
                candidates = _candidate_keys(_DEFAULT_PICKER, key, member)
                if candidates is None:
                    raise _Unusual
                self.members.append((tuple(candidates), member.serialization.get("name", key), member))
        elif self.kind == "list":
            if "name" in shape.member.serialization:
                raise _Unusual
        elif self.kind == "map":
            self.value_name = shape.value.serialization.get("name")
        elif self.kind not in ("string", "integer", "long", "float", "double", "boolean", "blob", "timestamp"):
            raise _Unusual

    @staticmethod
    def of(shape) -> _JsonPlan:
        """The plan of a shape, made when first needed (kept on the shape: AttributeValue nests in itself,
        a level deeper being a new shape object, so plans are only made as deep as the values go)."""
        plan = shape.__dict__.get("_dealab_json_plan")
        if plan is None:
            try:
                plan = _JsonPlan(shape)
            except _Unusual:
                plan = _UNUSUAL
            shape.__dict__["_dealab_json_plan"] = plan
        if plan is _UNUSUAL:
            raise _Unusual
        return plan

    def build(self, serializer, value):
        kind = self.kind
        if kind == "structure":
            if value is None:
                return _SKIPPED
            if type(value) is not dict:
                raise _Unusual
            tree = {}
            for candidates, name, member in self.members:
                found = _found(value, candidates)
                if found is not None:
                    built = _JsonPlan.of(member).build(serializer, found)
                    if built is not _SKIPPED:
                        tree[name] = built
            return tree
        if kind == "list":
            if type(value) not in (list, tuple):  # a generator could not be walked again by moto
                raise _Unusual
            item_plan = _JsonPlan.of(self.shape.member)
            built = [item_plan.build(serializer, item) for item in value]
            return [item if entry is _SKIPPED else entry for item, entry in zip(value, built)]
        if kind == "map":
            if type(value) is not dict:
                raise _Unusual
            value_plan = _JsonPlan.of(self.shape.value)
            tree = {}
            for key, item in value.items():
                built = value_plan.build(serializer, item)
                if built is not _SKIPPED:
                    tree[key if self.value_name is None else self.value_name] = built
            return tree
        if kind == "string":
            if isinstance(value, Enum):
                value = value.value
            return str(value) if value not in [None, {}, []] else value
        if kind == "integer" or kind == "long":
            return int(value)
        if kind == "float" or kind == "double":
            return float(value)
        if kind == "boolean":
            return value
        if kind == "blob":
            return serializer._base64(value)
        timestamps = serializer._timestamp_serializer
        return timestamps._convert_timestamp_to_str(value, self.shape.serialization.get("timestampFormat", timestamps.default_format))


_original_json_serialize = moto_serialize.JSONSerializer.serialize


@_patch(moto_serialize.JSONSerializer, "serialize")
def json_serialize(self, result):
    """Replaces JSONSerializer.serialize for the answers in JSON_BUILT: moto walks every attribute value of
    every item through the ten members of the AttributeValue shape (~40 µs per scanned item even with the
    patches above); _JsonPlan builds the same tree directly and moto's own _serialize_body writes it. Same
    status (the model's responseCode, 200) and Content-Type (application/x-amz-json-1.0). Errors, pretty
    printing and values that are not plain dicts and lists go moto's way, for the whole answer."""
    operation = self.operation_model
    if operation.name in JSON_BUILT and type(result) is dict and not self.pretty_print and _default_picker(self):
        if operation.output_shape is not None and not operation.has_event_stream_output:
            try:
                tree = _JsonPlan.of(operation.output_shape).build(self, result)
                return {
                    "body": self._serialize_body(tree),
                    "headers": {"Content-Type": self._get_protocol_specific_content_type()},
                    "status_code": operation.http.get("responseCode", self.DEFAULT_RESPONSE_CODE),
                }
            except Exception:  # _Unusual, or a value moto would choke on: moto answers (or fails) its own way
                pass
    return _original_json_serialize(self, result)


# ---- S3 ------------------------------------------------------------------------------------------------
class _ListedVersion:
    """A stored version as ListObjectVersions shows it: the version itself, with whether it is the latest.

    moto deep-copies each version only to set `is_latest` on the copy; this wrapper carries the flag and
    reads everything else from the stored version, which it leaves alone (the name and version id, read
    over and over while paging, once)."""

    __slots__ = ("version", "is_latest", "name", "version_id")

    def __init__(self, version, is_latest: bool):
        self.version = version
        self.is_latest = is_latest
        self.name = version.name
        self.version_id = version.version_id

    def __getattr__(self, name: str):
        return getattr(self.version, name)


@_patch(S3Backend, "list_object_versions")
def list_object_versions(self, bucket_name: str, delimiter: str | None = None, key_marker: str | None = None,
                         max_keys: int | None = 1000, prefix: str = "", version_id_marker: str | None = None):
    """Replaces S3Backend.list_object_versions, which deep-copies every stored version of the bucket (its
    body, ACL and metadata) on every call: ~1.5 ms and ~5 KB per version, and the whole bucket at once. The
    copies exist only to carry `is_latest`; S3Response.list_object_versions (the one caller) reads name,
    version_id, is_latest, last_modified_ISO8601, etag, size and storage_class from the entries, which the
    wrapper answers from the stored version. A shallow copy would not do: FakeKey.__del__ closes the value
    buffer that a shallow copy shares with the stored key. Ordering, pagination, prefixes and markers are
    moto's own code below, line for line, on the wrapped versions."""
    bucket = self.get_bucket(bucket_name)

    common_prefixes: set[str] = set()
    requested_versions: list = []
    delete_markers: list = []
    next_key_marker: str | None = None
    next_version_id_marker: str | None = None
    all_versions = list(itertools.chain(*(version_key for key, version_key in bucket.keys.iterlists())))
    # sort by name, revert last-modified-date
    all_versions.sort(key=lambda r: (r.name, -unix_time_millis(r.last_modified)))
    last_name = None

    skip_versions = True
    last_item_added = None
    for stored in all_versions:
        name = stored.name
        # guaranteed to be sorted - so the first key with this name will be the latest
        version = _ListedVersion(stored, name != last_name)
        if version.is_latest:
            last_name = name

        # Pagination
        if skip_versions:
            if key_marker is None:
                skip_versions = False
            elif not version_id_marker:
                skip_versions = version.name < key_marker
                continue
            elif version.name == key_marker and version.version_id == version_id_marker:
                skip_versions = False
                continue
            else:
                continue

        if not name.startswith(prefix):
            continue
        is_common_prefix = False
        if delimiter and delimiter in name[len(prefix):]:
            end_of_delimiter = len(prefix) + name[len(prefix):].index(delimiter) + len(delimiter)
            prefix_including_delimiter = name[0:end_of_delimiter]

            # Skip already-processed common prefix.
            if prefix_including_delimiter == key_marker:
                continue

            common_prefixes.add(prefix_including_delimiter)
            name = prefix_including_delimiter
            is_common_prefix = True
        elif last_item_added:
            name = last_item_added.name

        # Only return max_keys items.
        if max_keys is not None and len(requested_versions) + len(delete_markers) + len(common_prefixes) >= max_keys:
            next_key_marker = name
            if is_common_prefix:
                next_version_id_marker = None
            elif last_item_added is not None:
                next_version_id_marker = last_item_added.version_id
            else:
                next_version_id_marker = None
            break

        if not is_common_prefix:
            last_item_added = version
            if not isinstance(stored, FakeKey):
                delete_markers.append(version)
            else:
                requested_versions.append(version)

    return requested_versions, sorted(common_prefixes), delete_markers, next_key_marker, next_version_id_marker


# ---- DynamoDB reads ------------------------------------------------------------------------------------
_reads = threading.local()
_original_item_deepcopy = Item.__deepcopy__


@_patch(Item, "__deepcopy__")
def _item_deepcopy(self, memo):
    """moto's copy of an item, except within a read that answers with the stored items (below)."""
    if getattr(_reads, "sharing", False):
        return self
    return _original_item_deepcopy(self, memo)


def _read_without_spare_copies(read):
    """Table.scan / Table.query as moto has them, minus the cost of the copies they answer with.

    A read answers with deep copies of the stored items, so that narrowing them to an index's projection or
    a ProjectionExpression cannot reach the stored ones. Without either, nothing touches the answer's items
    before they are serialized (moments later, under the backend's lock), so those reads answer with the
    stored items themselves: the copies were a third of a 100,000-item scan's time.
    The copies that remain leaked: moto's BaseModel appends every instance it ever makes to its class's
    `instances_tracked` list (read only by the /moto-api/data.json debug listing; cleared by a reset), so each
    projected scan of 100,000 items kept 100,000 dead copies, ~100 MB, for the life of the stack. A read
    stores nothing, so the items made during it are taken off the list again. The answer is the original's."""
    parameters = inspect.signature(read)

    def reading(self, *args, **kwargs):
        arguments = parameters.bind(self, *args, **kwargs).arguments
        narrowed = any(arguments.get(name) for name in ("index_name", "projection_expression", "projection_expressions"))
        tracked = Item.instances_tracked
        before = len(tracked)
        _reads.sharing = not narrowed
        try:
            return read(self, *args, **kwargs)
        finally:
            _reads.sharing = False
            del tracked[before:]

    reading.__name__ = read.__name__
    reading.__doc__ = _read_without_spare_copies.__doc__
    return reading


_patch(Table, "scan")(_read_without_spare_copies(Table.scan))
_patch(Table, "query")(_read_without_spare_copies(Table.query))


# ---- SQS -----------------------------------------------------------------------------------------------
# A queue's message counts walk every message it holds, and moto read the clock twice per message of each walk;
# ReceiveMessage, DeleteMessage and GetQueueAttributes walked the queue many times over. The walks below read
# the clock once. Under a journaled request the lab clock stands still (backend.forward freezes it), so each
# message is compared with the same moment either way; a read-only GetQueueAttributes runs on the live clock,
# where one reading is the answer moto gives when its walk takes no time.
RECEIPT_HANDLE_LENGTH = 185
_LETTERS = moto_sqs.string.ascii_lowercase
_WORD_BITS = 32


@_patch(moto_sqs, "generate_receipt_handle")
def generate_receipt_handle() -> str:
    """moto draws a receipt handle as 185 `random.choice(ascii_lowercase)` from its seeded generator, ~0.4 ms a
    message (a fifth of a receive). choice(26 letters) is getrandbits(5) redrawn while >= 26, and getrandbits(5)
    is the top 5 bits of the generator's next 32-bit word; getrandbits(32 * n) is its next n words, the first
    in the lowest bits. Drawing exactly as many words as letters are still wanted never draws a word the
    one-at-a-time way would not, so the generator ends where moto's leaves it, having given the same letters."""
    letters: list[str] = []
    while (wanted := RECEIPT_HANDLE_LENGTH - len(letters)) > 0:
        words = mock_random.getrandbits(_WORD_BITS * wanted)
        for _ in range(wanted):
            drawn = (words & 0xFFFFFFFF) >> (_WORD_BITS - 5)
            words >>= _WORD_BITS
            if drawn < len(_LETTERS):
                letters.append(_LETTERS[drawn])
    return "".join(letters)


@_patch(Queue, "messages")
@property
def messages(self) -> list:
    """Queue.messages (visible and not delayed), with one clock reading (Message.visible: now > visible_at,
    Message.delayed: now < delayed_until). Messages past the queue's retention period are deleted first, as SQS
    deletes them: moto's ReceiveMessage stops at the first expired message it meets (marking it received), so one
    message sent more than MessageRetentionPeriod of lab time ago hid every message behind it from every receive."""
    now = unix_time_millis()
    oldest_kept = now - self.message_retention_period * 1000
    expired = [message for message in self._messages if message.sent_timestamp is not None and message.sent_timestamp <= oldest_kept]
    if expired:
        for message in expired:
            self.pending_messages.discard(message)
        gone = set(map(id, expired))
        self._messages = [message for message in self._messages if id(message) not in gone]
    return [message for message in self._messages if now > message.visible_at and not now < message.delayed_until]


@_patch(Queue, "approximate_number_of_messages_delayed")
@property
def approximate_number_of_messages_delayed(self) -> int:
    now = unix_time_millis()
    return sum(1 for message in self._messages if now < message.delayed_until)


@_patch(Queue, "approximate_number_of_messages_not_visible")
@property
def approximate_number_of_messages_not_visible(self) -> int:
    now = unix_time_millis()
    return sum(1 for message in self._messages if not now > message.visible_at)


@_patch(Queue, "delete_message")
def delete_message(self, receipt_handle: str) -> None:
    """Queue.delete_message walked the queue twice (is the handle known? then drop its messages), building each
    message's list of handles twice; this finds the messages once. Same result: an unknown handle is refused,
    one already deleted passes, every message that ever had the handle goes, its handles remembered."""
    if receipt_handle in self.deleted_messages:
        return
    holders = [message for message in self._messages
               if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles]
    if not holders:
        raise ReceiptHandleIsInvalid()
    for message in holders:
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
    gone = set(map(id, holders))
    self._messages = [message for message in self._messages if id(message) not in gone]


@_patch(SQSBackend, "get_queue_attributes")
def get_queue_attributes(self, queue_name: str, attribute_names: list[str]) -> dict:
    """moto's works out all of the queue's attributes (each count a walk of the queue) once for "All", but 1 + 2
    times per name asked for otherwise; this works them out once."""
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All"] + queue.BASE_ATTRIBUTES + queue.FIFO_ATTRIBUTES + queue.KMS_ATTRIBUTES
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    every = queue.attributes
    if "All" in attribute_names:
        return every
    return {name: every[name] for name in attribute_names if name in every and every[name] is not None}


@_patch(SQSBackend, "is_message_valid_based_on_retention_period")
def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:
    """ReceiveMessage asks this of every message it hands out, and moto's reads the retention period through
    get_queue_attributes, which works out every attribute of the queue three times to give one, each time
    counting the queue's visible, delayed and in-flight messages: a receive of 10 from a queue of 500 read the
    clock some 15,000 times (120 ms). That attribute is the queue's `message_retention_period` as it is
    (an int: Queue.__init__ sets it from its defaults and _set_attributes int()s every value given; never a
    bool, which is the one value get_queue_attributes would rewrite), so it is read from there."""
    retain_until = self.get_queue(queue_name).message_retention_period + message.sent_timestamp / 1000
    return retain_until > unix_time()
