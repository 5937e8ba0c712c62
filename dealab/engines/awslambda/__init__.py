"""Lambda: Python functions run for real in warm worker processes, without Docker (docs/lambda.md)."""

from dealab.engines.awslambda.engine import LambdaEngine

__all__ = ["LambdaEngine"]
