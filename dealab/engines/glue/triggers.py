"""What Glue triggers mean, as pure functions of their definitions (the backend keeps those): which triggers
start a workflow, when a CONDITIONAL trigger's predicate holds, the graph a workflow's triggers draw, and
the statistics of a run's actions. The machinery that runs them is workflows.py.
"""

from __future__ import annotations

import datetime
import hashlib

from dealab.engines.glue.schedules import Cron, CronError

# Triggers that start a workflow run; a CONDITIONAL trigger fires inside one.
START_TRIGGER_TYPES = frozenset({"ON_DEMAND", "SCHEDULED", "EVENT"})
JOB, CRAWLER, TRIGGER = "JOB", "CRAWLER", "TRIGGER"
# Where an action's state is counted in a run's Statistics (crawls: CANCELLED is a stopped action).
STATISTIC_OF_STATE = {
    "STARTING": "RunningActions", "RUNNING": "RunningActions", "STOPPING": "RunningActions", "CANCELLING": "RunningActions",
    "WAITING": "WaitingActions",
    "SUCCEEDED": "SucceededActions",
    "FAILED": "FailedActions",
    "TIMEOUT": "TimeoutActions",
    "STOPPED": "StoppedActions", "CANCELLED": "StoppedActions",
    "ERROR": "ErroredActions",
}
STATISTICS = ("TotalActions", "TimeoutActions", "FailedActions", "StoppedActions", "SucceededActions", "RunningActions",
              "ErroredActions", "WaitingActions")
FINAL_ACTION_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "CANCELLED", "ERROR"})
# The states a Condition may wait for, by what it watches (AWS's documented values).
CONDITION_STATES = {JOB: ("SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT"), CRAWLER: ("SUCCEEDED", "FAILED", "CANCELLED")}
# TriggerUpdate members (UpdateTrigger); the rest of the definition stays.
TRIGGER_UPDATE_FIELDS = ("Description", "Schedule", "Actions", "Predicate", "EventBatchingCondition")


def predicate_problem(predicate: dict | None) -> str | None:
    """Why Glue would refuse this Predicate, or None."""
    conditions = (predicate or {}).get("Conditions") or []
    if len(conditions) > 1 and not (predicate or {}).get("Logical"):
        return "Predicate.Logical is required when the predicate has more than one condition"
    for condition in conditions:
        kind, name = condition_node(condition)
        state = condition_state(condition)
        if state not in CONDITION_STATES[kind]:
            member = "State" if kind == JOB else "CrawlState"
            return f"Condition on {kind.lower()} {name}: {member} {state!r} is not one of {', '.join(CONDITION_STATES[kind])}"
    return None


def node_id(kind: str, name: str) -> str:
    """A node's UniqueId: the same for the same trigger, job or crawler in every run, so ResumeWorkflowRun can name it."""
    return "wnode_" + hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:56]


def action_node(action: dict) -> tuple[str, str]:
    """(JOB, job name) or (CRAWLER, crawler name) of a trigger's action."""
    return (JOB, action["JobName"]) if action.get("JobName") else (CRAWLER, action.get("CrawlerName", ""))


def condition_node(condition: dict) -> tuple[str, str]:
    return (JOB, condition["JobName"]) if condition.get("JobName") else (CRAWLER, condition.get("CrawlerName", ""))


def condition_state(condition: dict) -> str | None:
    return condition.get("State") if condition.get("JobName") else condition.get("CrawlState")


def watches(trigger: dict, node: tuple[str, str]) -> bool:
    return any(condition_node(condition) == node for condition in (trigger.get("Predicate") or {}).get("Conditions", []))


def predicate_met(trigger: dict, outcomes: dict[tuple[str, str], str]) -> bool:
    """Whether a CONDITIONAL trigger's Predicate holds, given the final state of each job and crawler
    (`outcomes`, (kind, name) → state). EQUALS is the one LogicalOperator; Logical AND (the default) needs
    every condition, ANY one of them."""
    predicate = trigger.get("Predicate") or {}
    conditions = predicate.get("Conditions") or []
    if not conditions:
        return False
    results = [outcomes.get(condition_node(condition)) == condition_state(condition) for condition in conditions]
    return any(results) if predicate.get("Logical") == "ANY" else all(results)


def schedule_of(trigger: dict) -> Cron:
    """The trigger's cron; CronError when it has none Glue would take."""
    return Cron.parse(trigger.get("Schedule") or "")


def next_due(trigger: dict, after: datetime.datetime, horizon_days: int = 800) -> datetime.datetime | None:
    """The first moment after `after` (naive UTC, as the lab clock gives it) when the trigger's schedule fires."""
    try:
        cron = schedule_of(trigger)
    except CronError:
        return None
    aware = after.replace(tzinfo=datetime.timezone.utc)
    found = cron.first_time_between(aware, aware + datetime.timedelta(days=horizon_days))
    return found.replace(tzinfo=None) if found else None


def graph(triggers: list[dict]) -> tuple[dict[str, dict], list[dict]]:
    """The nodes (UniqueId → node without run details) and edges the workflow's triggers draw: a job or crawler
    a predicate watches → that trigger → the jobs and crawlers its actions start."""
    nodes: dict[str, dict] = {}
    edges: list[dict] = []

    def add(kind: str, name: str) -> str:
        unique_id = node_id(kind, name)
        nodes.setdefault(unique_id, {"Type": kind, "Name": name, "UniqueId": unique_id})
        return unique_id

    for trigger in triggers:
        trigger_id = add(TRIGGER, trigger["Name"])
        nodes[trigger_id]["TriggerDetails"] = {"Trigger": trigger}
        for condition in (trigger.get("Predicate") or {}).get("Conditions", []):
            edges.append({"SourceId": add(*condition_node(condition)), "DestinationId": trigger_id})
        for action in trigger.get("Actions", []):
            edges.append({"SourceId": trigger_id, "DestinationId": add(*action_node(action))})
    return nodes, edges


def downstream(edges: list[dict], starts: set[str]) -> set[str]:
    """The nodes `starts` lead to through the edges, `starts` included."""
    reached, frontier = set(starts), list(starts)
    while frontier:
        current = frontier.pop()
        for edge in edges:
            if edge["SourceId"] == current and edge["DestinationId"] not in reached:
                reached.add(edge["DestinationId"])
                frontier.append(edge["DestinationId"])
    return reached


def statistics(states: list[str]) -> dict[str, int]:
    """A run's Statistics from the current state of each action it started."""
    counted = dict.fromkeys(STATISTICS, 0)
    counted["TotalActions"] = len(states)
    for state in states:
        counted[STATISTIC_OF_STATE.get(state, "RunningActions")] += 1
    return counted


def occurrences_between(trigger: dict, after: datetime.datetime, until: datetime.datetime) -> int:
    """How many times the trigger's schedule fires after `after` up to `until` (naive UTC), counted a day at a time."""
    cron = schedule_of(trigger)
    start, end = after.replace(tzinfo=datetime.timezone.utc), until.replace(tzinfo=datetime.timezone.utc)
    count, day = 0, start.date()
    while day <= end.date():
        count += sum(1 for moment in cron.moments_on(day) if start < moment <= end)
        day += datetime.timedelta(days=1)
    return count
