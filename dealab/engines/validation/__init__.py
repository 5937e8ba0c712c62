"""Requests AWS refuses but the backend would accept are refused here, with AWS's error and status code."""

from dealab.engines.validation.engine import ValidationEngine

__all__ = ["ValidationEngine"]
