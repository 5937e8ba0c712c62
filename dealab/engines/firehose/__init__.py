"""Firehose delivery as AWS does it: buffering hints, custom prefixes with timestamp namespaces, GZIP, and
delivery streams that read a Kinesis stream."""

from dealab.engines.firehose.engine import FirehoseEngine

__all__ = ["FirehoseEngine"]
