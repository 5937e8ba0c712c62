"""EventBridge (rules, PutEvents, targets, retries, dead-letter queues, S3 events) and EventBridge Scheduler,
executed on the lab clock."""

from dealab.engines.events.engine import EventsEngine

__all__ = ["EventsEngine"]
