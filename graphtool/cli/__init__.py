"""Command-line interface: `graphtool` / `python -m graphtool`."""
from .main import main

__all__ = ["main"]
