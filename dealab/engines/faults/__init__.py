"""Fault injection: a share of matching requests fails the way AWS fails them, reproducibly under a seed."""

from dealab.engines.faults.engine import FaultsEngine

__all__ = ["FaultsEngine"]
