"""Custom classifiers (CreateClassifier, GetClassifier, GetClassifiers, UpdateClassifier, DeleteClassifier),
which the backend does not keep: kept here in state_dir/glue/classifiers.json.

Only CSV classifiers are taken, the kind dealab's crawlers run; a Grok, XML or JSON classifier is refused
with InvalidInputException rather than stored and silently never used.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dealab.engines.glue.inference import CsvRules
from dealab.engines.glue.jobs import GlueError
from dealab.engines.glue.schedules import lab_now
from dealab.wire.store import JsonFile

KINDS = ("GrokClassifier", "XMLClassifier", "JsonClassifier", "CsvClassifier")
HEADER_OPTIONS = ("UNKNOWN", "PRESENT", "ABSENT")
SERDE_OPTIONS = ("OpenCSVSerDe", "LazySimpleSerDe", "None")
CSV_MEMBERS = ("Delimiter", "QuoteSymbol", "ContainsHeader", "Header", "DisableValueTrimming", "AllowSingleColumn", "Serde")


def _csv_definition(given: dict) -> dict:
    """The stored members of a CSV classifier, checked as Glue checks them."""
    if given.get("CustomDatatypeConfigured") or given.get("CustomDatatypes"):
        raise GlueError("InvalidInputException", "custom datatypes in CSV classifiers are not supported by dealab's crawlers")
    definition = {key: given[key] for key in CSV_MEMBERS if given.get(key) is not None}
    for member in ("Delimiter", "QuoteSymbol"):
        value = definition.get(member)
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise GlueError("InvalidInputException", f"{member} must be one character other than a line break, not {value!r}")
    if definition.get("Delimiter", ",") == definition.get("QuoteSymbol", '"'):
        raise GlueError("InvalidInputException", "QuoteSymbol must be different from the Delimiter")
    for member, allowed in (("ContainsHeader", HEADER_OPTIONS), ("Serde", SERDE_OPTIONS)):
        if member in definition and definition[member] not in allowed:
            raise GlueError("InvalidInputException", f"{member} must be one of {', '.join(allowed)}, not {definition[member]!r}")
    return definition


class Classifiers:
    def __init__(self, state_dir: Path):
        self._file = JsonFile(state_dir / "glue" / "classifiers.json")
        self._lock = threading.Lock()
        self._stored: dict[str, dict] = self._file.load({})

    def _save(self) -> None:
        self._file.save(self._stored)

    @staticmethod
    def _csv_request(params: dict) -> dict:
        kinds = [kind for kind in KINDS if params.get(kind)]
        if len(kinds) != 1:
            raise GlueError("InvalidInputException", f"give exactly one of {', '.join(KINDS)}")
        if kinds[0] != "CsvClassifier":
            raise GlueError("InvalidInputException", f"{kinds[0]} is not supported by dealab's crawlers; they run CsvClassifier only")
        request = params["CsvClassifier"]
        if not request.get("Name"):
            raise GlueError("InvalidInputException", "the classifier needs a Name")
        return request

    def create(self, params: dict) -> None:
        request = self._csv_request(params)
        definition = _csv_definition(request)
        now = lab_now().timestamp()
        with self._lock:
            if request["Name"] in self._stored:
                raise GlueError("AlreadyExistsException", f"Classifier with name {request['Name']} already exists")
            self._stored[request["Name"]] = {"Name": request["Name"], **definition, "CreationTime": now, "LastUpdated": now, "Version": 1}
            self._save()

    def update(self, params: dict) -> None:
        request = self._csv_request(params)
        with self._lock:
            current = self._stored.get(request["Name"])
            if current is None:
                raise GlueError("EntityNotFoundException", f"Classifier with name {request['Name']} not found")
            definition = _csv_definition({**current, **request})
            self._stored[request["Name"]] = {**current, **definition, "LastUpdated": lab_now().timestamp(), "Version": current["Version"] + 1}
            self._save()

    def get(self, name: str) -> dict:
        with self._lock:
            if name not in self._stored:
                raise GlueError("EntityNotFoundException", f"Classifier with name {name} not found")
            return {"CsvClassifier": dict(self._stored[name])}

    def all(self) -> list[dict]:
        with self._lock:
            return [{"CsvClassifier": dict(self._stored[name])} for name in sorted(self._stored)]

    def delete(self, name: str) -> None:
        with self._lock:
            if self._stored.pop(name, None) is None:
                raise GlueError("EntityNotFoundException", f"Classifier with name {name} not found")
            self._save()

    def csv_rules(self, names: list[str]) -> tuple[list[CsvRules], list[str]]:
        """The rules of the named classifiers, in the crawler's order, and the names not found."""
        with self._lock:
            found = [self._stored[name] for name in names if name in self._stored]
            missing = [name for name in names if name not in self._stored]
        rules = [
            CsvRules(
                name=stored["Name"],
                delimiter=stored.get("Delimiter", ","),
                quote=stored.get("QuoteSymbol", '"'),
                contains_header=stored.get("ContainsHeader", "UNKNOWN"),
                header=tuple(stored.get("Header", ())),
                trim_values=not stored.get("DisableValueTrimming", True),  # AWS documents the default as true
                allow_single_column=stored.get("AllowSingleColumn", False),
                serde=stored.get("Serde", "None"),
            )
            for stored in found
        ]
        return rules, missing

    def reset(self) -> None:
        with self._lock:
            self._stored.clear()
            self._save()
