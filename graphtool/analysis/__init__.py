"""Read-only analyses of a Graph: inspect, check, diff, verify, draw.

Importing this package imports no analysis: each module comes when it is used, so a
command imports the one it runs. `Summary` and `inspect` (the function) come from
`.inspect` on first use; once the module `graphtool.analysis.inspect` has been imported
directly, the package's `inspect` is that module, as Python binds it: use
`graphtool.inspect` or `graphtool.analysis.inspect.inspect` for the function.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inspect import Summary, inspect

__all__ = ["Summary", "inspect"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.inspect")
    # importing the submodule made `inspect` the module: the name means the function, as before
    globals().update(Summary=module.Summary, inspect=module.inspect)
    return globals()[name]
