"""What a target receives: the event, or Input, InputPath or InputTransformer applied to it, as AWS does.

InputTransformer's template: a placeholder `<name>` inside a JSON string literal of the template takes the
value's text (a string as it is, escaped for JSON; anything else as its JSON); outside a string literal it
takes the value's JSON (a string in quotes). So `"<instance> is in state <state>"` gives
`"i-1 is in state RUNNING"`, and `{"state": <state>}` gives `{"state": "RUNNING"}`. A path that is not in
the event gives null (an empty text inside a literal). `<aws.events.event>` (the event without its detail)
and `<aws.events.event.json>` (the whole event) are inserted as JSON wherever they stand, as AWS documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STEP = re.compile(r"\.([A-Za-z0-9_\-/:@]+|\*)|\[(\d+|\*)\]|\['([^']*)'\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()


class TransformError(ValueError):
    """A path or template AWS refuses when the target is put (ValidationException)."""


def steps_of(path: str) -> list[str | int]:
    """`$.detail.items[0].name` → ["detail", "items", 0, "name"]; "*" for a wildcard."""
    if not path.startswith("$"):
        raise TransformError(f"{path} is not a valid JSON path: it must start with $")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if not match:
            raise TransformError(f"{path} is not a valid JSON path (at character {position + 1})")
        name, index, quoted = match.groups()
        steps.append(int(index) if index and index.isdigit() else (quoted if quoted is not None else (name or index)))
        position = match.end()
    return steps


def select(document: Any, path: str) -> Any:
    """The value at `path`, or _MISSING; a wildcard gives the list of what it reaches."""
    values, wild = [document], False
    for step in steps_of(path):
        reached = []
        for value in values:
            if step == "*":
                wild = True
                reached.extend(value.values() if isinstance(value, dict) else value if isinstance(value, list) else [])
            elif isinstance(step, int):
                if isinstance(value, list) and step < len(value):
                    reached.append(value[step])
            elif isinstance(value, dict) and step in value:
                reached.append(value[step])
        values = reached
    if wild:
        return values
    return values[0] if values else _MISSING


def _text_in_literal(value: Any) -> str:
    """A value put inside a JSON string literal: its text, escaped as the literal needs."""
    if value is _MISSING or value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return json.dumps(text)[1:-1]


def _json(value: Any) -> str:
    return "null" if value is _MISSING else json.dumps(value, separators=(",", ":"))


def render_template(template: str, paths: dict[str, str], event: dict, rule_arn: str, rule_name: str) -> str:
    values: dict[str, Any] = {name: select(event, path) for name, path in paths.items()}
    values["aws.events.rule-arn"] = rule_arn
    values["aws.events.rule-name"] = rule_name
    values["aws.events.event.ingestion-time"] = event.get("time")
    raw_json = {
        "aws.events.event": json.dumps({key: value for key, value in event.items() if key != "detail"}, separators=(",", ":")),
        "aws.events.event.json": json.dumps(event, separators=(",", ":")),
    }
    out, in_literal, position = [], False, 0
    while position < len(template):
        char = template[position]
        if char == "\\" and in_literal:
            out.append(template[position:position + 2])
            position += 2
            continue
        if char == '"':
            in_literal = not in_literal
        elif char == "<":
            match = _PLACEHOLDER.match(template, position)
            if match and (match.group(1) in values or match.group(1) in raw_json):
                name = match.group(1)
                if name in raw_json:
                    out.append(raw_json[name])
                else:
                    out.append(_text_in_literal(values[name]) if in_literal else _json(values[name]))
                position = match.end()
                continue
        out.append(char)
        position += 1
    return "".join(out)


def check_target_input(target: dict) -> None:
    """Refuses what PutTargets refuses: more than one input form, paths that are not JSON paths."""
    forms = [name for name in ("Input", "InputPath", "InputTransformer") if target.get(name) is not None]
    if len(forms) > 1:
        raise TransformError(f"Target {target.get('Id')}: only one of Input, InputPath and InputTransformer may be given, not {' and '.join(forms)}")
    if target.get("Input") is not None:
        try:
            json.loads(target["Input"])
        except ValueError:
            raise TransformError(f"Target {target.get('Id')}: Input is not valid JSON") from None
    if target.get("InputPath") is not None:
        steps_of(target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer is not None:
        for name, path in (transformer.get("InputPathsMap") or {}).items():
            if name.startswith("aws.events."):
                raise TransformError(f"InputTransformer: {name} is a reserved variable name")
            steps_of(path)
        if "InputTemplate" not in transformer:
            raise TransformError("InputTransformer: InputTemplate is required")


def target_input(target: dict, event: dict, rule_arn: str, rule_name: str) -> str:
    """The text the target receives for `event`."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath") is not None:
        return _json(select(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer is not None:
        return render_template(transformer["InputTemplate"], transformer.get("InputPathsMap") or {}, event, rule_arn, rule_name)
    return json.dumps(event, separators=(",", ":"))


def path_value_text(event: dict, path: str) -> str | None:
    """A value for a target parameter read from the event (Kinesis PartitionKeyPath): its text, or None."""
    value = select(event, path)
    if value is _MISSING or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
