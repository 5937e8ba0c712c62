"""Lambda event source mappings polled for real: SQS, Kinesis, DynamoDB Streams (see engine.py)."""

from dealab.engines.eventsources.engine import EventSourcesEngine

__all__ = ["EventSourcesEngine"]
