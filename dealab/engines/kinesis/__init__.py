"""What Kinesis Data Streams does that the backend does not: iterators that expire, AWS's refusals of bad input."""

from dealab.engines.kinesis.engine import KinesisEngine

__all__ = ["KinesisEngine"]
