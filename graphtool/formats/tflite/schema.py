"""The TFLite schemas as data, made by schemas/gen_tflite_schema.py: the model's (schema.json)
and TFLite Support metadata's (metadata_schema.json)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

MODEL_SCHEMA = "schema.json"
METADATA_SCHEMA = "metadata_schema.json"
SCALAR_FORMATS = {  # struct format, size
    "bool": ("?", 1), "int8": ("b", 1), "uint8": ("B", 1), "int16": ("h", 2), "uint16": ("H", 2),
    "int32": ("i", 4), "uint32": ("I", 4), "int64": ("q", 8), "uint64": ("Q", 8),
    "float32": ("f", 4), "float64": ("d", 8),
}


@dataclass(frozen=True)
class Field:
    name: str
    slot: int
    kind: str  # scalar | string | table | union | vector
    type: str | None = None  # scalar type
    default: object = None
    table: str | None = None
    union: str | None = None
    element: dict | None = None  # vector element: {"kind": scalar|string|table, "type"|"table"}
    align: int | None = None


@dataclass(frozen=True)
class Table:
    name: str
    num_slots: int
    fields: tuple[Field, ...]

    @property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}


@dataclass(frozen=True)
class Schema:
    tables: dict[str, Table]
    enums: dict[str, dict[str, int]]
    unions: dict[str, dict[str, int]]  # member table -> type number (NONE excluded)

    def union_member(self, union: str, type_number: int) -> str | None:
        for name, number in self.unions[union].items():
            if number == type_number:
                return name
        return None

    def enum_name(self, enum: str, value: int) -> str | None:
        for name, number in self.enums[enum].items():
            if number == value:
                return name
        return None


@cache
def load_schema(resource: str = MODEL_SCHEMA) -> Schema:
    """A schema of the package: the model's by default, or METADATA_SCHEMA."""
    raw = json.loads(resources.files(__package__).joinpath(resource).read_text())
    tables = {name: Table(name, t["num_slots"], tuple(_field(f) for f in t["fields"]))
              for name, t in raw["tables"].items()}
    return Schema(tables, raw["enums"], raw["unions"])


def _field(raw: dict) -> Field:
    """A field as the schema data give it; a bool's default is a bool (the data hold 0/1),
    so an absent flag reads as False, as a present one reads as True or False."""
    if raw.get("type") == "bool" and raw.get("default") is not None:
        raw = {**raw, "default": bool(raw["default"])}
    return Field(**raw)
