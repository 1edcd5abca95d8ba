"""The rule tables: what each runtime and accelerator supports and which runtime each
operator version needs, as JSON data in this package (the one copy), loaded on first use
and cached. `graphtool check` reads the ones its target needs; the TFLite format reads
runtime_versions.

Every table is versioned (`schema`) and names where each rule comes from:
`sources` maps a key to {file, repository, tensorflow, what}, and rules refer to a key.
"""
from __future__ import annotations

import json
from functools import cache
from typing import Any

from ..errors import GraphtoolError

SCHEMA = "graphtool.compat.v1"
PACKAGE = __name__
TARGETS = ("tflite", "tflite+select", "gpu", "edgetpu", "micro", "xnnpack", "runtime")
"""What `graphtool check --target` takes (and runtime:X.Y.Z), each checked against tables here."""
TABLES = ("tflite_graphdef", "select_tf_ops", "tflite_builtins", "gpu", "edgetpu", "micro", "xnnpack",
          "runtime_versions")


class RulesError(GraphtoolError):
    """A rule table is missing or not of the schema graphtool reads."""


@cache
def table(name: str) -> dict[str, Any]:
    """The rule table `name` (e.g. "gpu"), checked for its schema version."""
    if name not in TABLES:
        raise RulesError(f"no rule table {name!r}; tables: {', '.join(TABLES)}")
    from importlib import resources  # here: `graphtool --help` reads TARGETS, no table

    try:
        text = resources.files(PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"rule table {name}.json is missing from the installed package") from None
    data = json.loads(text)
    if data.get("schema") != SCHEMA:
        raise RulesError(f"rule table {name}.json has schema {data.get('schema')!r}, graphtool reads {SCHEMA!r}")
    return data


def source(rules: dict[str, Any], key: str) -> str:
    """'file (TensorFlow 2.21)' for a source key of `rules`, for reports and docs."""
    entry = rules["sources"][key]
    return f"{entry['file']} ({entry.get('repository', '')}, TensorFlow {entry.get('tensorflow', '?')})"


def runtime_versions() -> dict[str, tuple[str | None, ...]]:
    """op -> minimum runtime of version 1, 2, ... (None where runtime_version.cc has no entry)."""
    return {op: tuple(versions) for op, versions in table("runtime_versions")["ops"].items()}
