"""Read-only analyses of a Graph: inspect, check, diff, verify, draw."""
from .inspect import Summary, inspect

__all__ = ["Summary", "inspect"]
