"""Checks an ASL document as CreateStateMachine / UpdateStateMachine do, and words what is wrong as AWS does:
`Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: <what> at /States/<name>/<field>'`, with the
error codes AWS uses (INVALID_JSON_DESCRIPTION, SCHEMA_VALIDATION_FAILED, MISSING_TRANSITION_TARGET,
UNREACHABLE_STATE). The rules AWS documents for every state are checked here, as data; what they let through
is then parsed by moto's interpreter, whose refusal becomes a SCHEMA_VALIDATION_FAILED of its own.
"""

from __future__ import annotations

import functools
import json

STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
# Types that end an execution path themselves: no Next, no End.
TERMINAL_TYPES = {"Succeed", "Fail"}
# Fields each type must have (besides Type), per https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html
REQUIRED_FIELDS = {"Task": ("Resource",), "Choice": ("Choices",), "Parallel": ("Branches",)}


def problems(definition: str) -> list[str]:
    """What is wrong with the document, in AWS's words; [] when CreateStateMachine would take it."""
    try:
        document = json.loads(definition)
    except ValueError as error:
        return [f"INVALID_JSON_DESCRIPTION: {error}"]
    if not isinstance(document, dict):
        return ["SCHEMA_VALIDATION_FAILED: The state machine definition must be a JSON object at /"]
    found = _machine(document, "")
    if not found:
        found = _moto_parser_refusal(definition)
    return found


def _machine(machine: dict, at: str) -> list[str]:
    found = [f"SCHEMA_VALIDATION_FAILED: These fields are required: [{field}] at {at or '/'}"
             for field in ("StartAt", "States") if field not in machine]
    states = machine.get("States")
    if found or not isinstance(states, dict):
        return found or [f"SCHEMA_VALIDATION_FAILED: The field 'States' must be an object at {at}/States"]
    start = machine["StartAt"]
    if start not in states:
        found.append(f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {start} at {at}/StartAt")
    for name, state in states.items():
        found += _state(name, state, states, f"{at}/States/{name}")
    if not found:
        found += _unreachable(start, states, at)
    return found


def _state(name: str, state, states: dict, at: str) -> list[str]:
    if not isinstance(state, dict):
        return [f"SCHEMA_VALIDATION_FAILED: A state must be an object at {at}"]
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        return [f"SCHEMA_VALIDATION_FAILED: Value is not one of [{', '.join(STATE_TYPES)}] at {at}/Type"]
    found = [f"SCHEMA_VALIDATION_FAILED: These fields are required: [{field}] at {at}" for field in REQUIRED_FIELDS.get(kind, ()) if field not in state]
    if kind not in TERMINAL_TYPES and kind != "Choice":
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            found.append(f"SCHEMA_VALIDATION_FAILED: Exactly one of [Next, End] is required at {at}")
    for field, target in _targets(state):
        if target not in states:
            found.append(f"MISSING_TRANSITION_TARGET: Missing 'Next' target: {target} at {at}/{field}")
    for index, branch in enumerate(state.get("Branches", []) if kind == "Parallel" else []):
        found += _machine(branch, f"{at}/Branches[{index}]") if isinstance(branch, dict) else [f"SCHEMA_VALIDATION_FAILED: A branch must be an object at {at}/Branches[{index}]"]
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if kind == "Map":
        if not isinstance(processor, dict):
            found.append(f"SCHEMA_VALIDATION_FAILED: These fields are required: [ItemProcessor] at {at}")
        else:
            found += _machine(processor, f"{at}/{'ItemProcessor' if 'ItemProcessor' in state else 'Iterator'}")
    return found


def _targets(state: dict) -> list[tuple[str, str]]:
    """(field path, state name) for every transition out of a state."""
    targets = [("Next", state["Next"])] if "Next" in state else []
    if "Default" in state:
        targets.append(("Default", state["Default"]))
    for index, rule in enumerate(state.get("Choices", []) if isinstance(state.get("Choices"), list) else []):
        if isinstance(rule, dict) and "Next" in rule:
            targets.append((f"Choices[{index}]/Next", rule["Next"]))
    for index, catcher in enumerate(state.get("Catch", []) if isinstance(state.get("Catch"), list) else []):
        if isinstance(catcher, dict) and "Next" in catcher:
            targets.append((f"Catch[{index}]/Next", catcher["Next"]))
    return targets


def _unreachable(start: str, states: dict, at: str) -> list[str]:
    reached, frontier = {start}, [start]
    while frontier:
        for _, target in _targets(states[frontier.pop()]):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    return [f"UNREACHABLE_STATE: State '{name}' is not reachable. at {at}/States/{name}" for name in states if name not in reached]


@functools.lru_cache(maxsize=128)
def parsed_program(definition: str):
    """moto's parse of a definition (its Program), kept: parsing takes ~0.1 s for 20 states, and a parsed program
    holds no state of an evaluation (Map already evaluates one concurrently for all its iterations)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    return AmazonStateLanguageParser.parse(definition)[0]


def _moto_parser_refusal(definition: str) -> list[str]:
    try:
        parsed_program(definition)
    except Exception as error:  # the parser's refusal of what the rules above let through
        return [f"SCHEMA_VALIDATION_FAILED: {_parser_words(error)} at /"]
    return []


def _parser_words(error: Exception) -> str:
    words = str(error).strip() or type(error).__name__
    return " ".join(words.split())[:500]


def invalid_definition_message(found: list[str]) -> str:
    return "Invalid State Machine Definition: '" + ", ".join(found) + "'"
