"""Read-only analyses of a Graph: inspect (and later diff, check, verify)."""
from .inspect import Summary, inspect

__all__ = ["Summary", "inspect"]
