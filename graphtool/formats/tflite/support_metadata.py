"""TFLite Support metadata: the TFLITE_METADATA entry of a model's metadata, as dataclasses.

The entry is a flatbuffer of TFLite Support's metadata_schema.fbs (file identifier M001),
read and written by the generic codec with the schema as data (metadata_schema.json, made by
schemas/gen_tflite_schema.py). graph.meta[keys.METADATA][keys.SUPPORT_METADATA] keeps its bytes as read (the
lossless copy); `decode` gives the parts graphtool shows and writes — model name, version,
author, license, per-tensor content (image, audio, bounding box), normalization, stats and
associated files — and `encode` writes them. `from_json` reads the JSON format of
docs/metadata.md (what `set_metadata` takes) and `to_json` gives it back (what `inspect
--json` shows). The files the metadata names travel in the zip archive of associated_files.py.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any, Union

import numpy as np

from ...errors import FormatError
from .flatbuf import Decoder, Encoder
from .schema import METADATA_SCHEMA, Schema, load_schema

IDENTIFIER = b"M001"
ROOT = "ModelMetadata"
LABELS_DESCRIPTION = "Labels for categories that the model can recognize."  # TFLite Support's label files say so
_UINT32, _INT32 = (0, 2**32 - 1), (-2**31, 2**31 - 1)


@dataclass(frozen=True)
class AssociatedFile:
    name: str  # as stored in the archive (a base name)
    type: str = "UNKNOWN"  # an AssociatedFileType: TENSOR_AXIS_LABELS, TENSOR_VALUE_LABELS, VOCABULARY, ...
    description: str = ""
    locale: str = ""
    version: str = ""


@dataclass(frozen=True)
class FeatureProperties:
    """Content with no properties: a plain feature tensor."""


@dataclass(frozen=True)
class ImageProperties:
    color_space: str = "UNKNOWN"  # RGB, GRAYSCALE
    width: int = 0   # default size; 0: not given
    height: int = 0


@dataclass(frozen=True)
class BoundingBoxProperties:
    index: tuple[int, ...] = ()  # where left, top, right, bottom (BOUNDARIES) sit in the last dimension
    type: str = "UNKNOWN"        # BOUNDARIES, UPPER_LEFT, CENTER
    coordinate_type: str = "RATIO"  # or PIXEL


@dataclass(frozen=True)
class AudioProperties:
    sample_rate: int = 0
    channels: int = 0


Content = Union[FeatureProperties, ImageProperties, BoundingBoxProperties, AudioProperties]
_CONTENT_KEYS = {"image": ImageProperties, "bounding_box": BoundingBoxProperties, "audio": AudioProperties}


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class TensorMetadata:
    name: str = ""
    description: str = ""
    tensor: str = ""  # the model tensor it describes; not stored (the metadata follow the model's order)
    content: Content | None = None
    range: tuple[int, int] | None = None  # the content's ValueRange (min, max)
    normalization: Normalization | None = None
    stats_min: tuple[float, ...] = ()
    stats_max: tuple[float, ...] = ()
    associated_files: tuple[AssociatedFile, ...] = ()
    process_units: tuple[str, ...] = ()  # the other process units, by options type (read, never written)


@dataclass(frozen=True)
class TensorGroup:
    name: str
    tensors: tuple[str, ...]  # names of tensor metadata


@dataclass(frozen=True)
class ModelMetadata:
    name: str = ""
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""
    inputs: tuple[TensorMetadata, ...] = ()   # of the first subgraph, the one TFLite Support describes
    outputs: tuple[TensorMetadata, ...] = ()
    input_groups: tuple[TensorGroup, ...] = ()
    output_groups: tuple[TensorGroup, ...] = ()
    associated_files: tuple[AssociatedFile, ...] = ()
    min_parser_version: str = ""
    subgraphs: int = 1  # SubGraphMetadata tables in the buffer

    def files(self) -> list[AssociatedFile]:
        """Every associated file the metadata names: the model's, then each tensor's."""
        return list(self.associated_files) + [f for t in self.inputs + self.outputs for f in t.associated_files]


def schema() -> Schema:
    return load_schema(METADATA_SCHEMA)


# -- flatbuffer -> dataclasses ---------------------------------------------------------------
def decode(data: bytes) -> ModelMetadata:
    """The metadata of a TFLITE_METADATA buffer; FormatError when it is not a valid one."""
    root = Decoder(data, schema(), IDENTIFIER).root(ROOT)
    subgraphs = root.get("subgraph_metadata") or []
    first = subgraphs[0] if subgraphs else {}
    return ModelMetadata(
        _text(root.get("name")), _text(root.get("description")), _text(root.get("version")),
        _text(root.get("author")), _text(root.get("license")),
        tuple(_tensor(t) for t in first.get("input_tensor_metadata") or []),
        tuple(_tensor(t) for t in first.get("output_tensor_metadata") or []),
        tuple(_group(g) for g in first.get("input_tensor_groups") or []),
        tuple(_group(g) for g in first.get("output_tensor_groups") or []),
        _files(root), _text(root.get("min_parser_version")), len(subgraphs))


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace")


def _enum(enum: str, value: int) -> str:
    return schema().enum_name(enum, value) or str(value)


def _files(table: dict) -> tuple[AssociatedFile, ...]:
    return tuple(AssociatedFile(_text(f.get("name")), _enum("AssociatedFileType", f["type"]),
                                _text(f.get("description")), _text(f.get("locale")), _text(f.get("version")))
                 for f in table.get("associated_files") or [])


def _group(table: dict) -> TensorGroup:
    return TensorGroup(_text(table.get("name")), tuple(_text(n) for n in table.get("tensor_names") or []))


def _floats(values) -> tuple[float, ...]:
    return () if values is None else tuple(float(v) for v in values)


def _tensor(table: dict) -> TensorMetadata:
    content_table = table.get("content") or {}
    value_range = content_table.get("range")
    normalization, others = None, []
    for unit in table.get("process_units") or []:
        member = schema().union_member("ProcessUnitOptions", unit["options_type"])
        if member == "NormalizationOptions" and unit.get("options") is not None:
            normalization = Normalization(_floats(unit["options"].get("mean")), _floats(unit["options"].get("std")))
        else:
            others.append(member or str(unit["options_type"]))
    stats = table.get("stats") or {}
    return TensorMetadata(
        _text(table.get("name")), _text(table.get("description")), "",
        _content(content_table) if table.get("content") is not None else None,
        None if value_range is None else (value_range["min"], value_range["max"]),
        normalization, _floats(stats.get("min")), _floats(stats.get("max")), _files(table), tuple(others))


def _content(table: dict) -> Content | None:
    member = schema().union_member("ContentProperties", table["content_properties_type"])
    properties = table.get("content_properties")
    if member is None or properties is None:
        return None
    if member == "ImageProperties":
        size = properties.get("default_size") or {"width": 0, "height": 0}
        return ImageProperties(_enum("ColorSpaceType", properties["color_space"]), size["width"], size["height"])
    if member == "BoundingBoxProperties":
        return BoundingBoxProperties(tuple(int(i) for i in properties.get("index", ())),
                                     _enum("BoundingBoxType", properties["type"]),
                                     _enum("CoordinateType", properties["coordinate_type"]))
    if member == "AudioProperties":
        return AudioProperties(properties["sample_rate"], properties["channels"])
    return FeatureProperties()


# -- dataclasses -> flatbuffer ---------------------------------------------------------------
def encode(metadata: ModelMetadata) -> bytes:
    """The TFLITE_METADATA buffer of `metadata` (min_parser_version computed as TFLite
    Support's populator does); the same metadata give the same bytes."""
    subgraph = {"input_tensor_metadata": [_tensor_table(t) for t in metadata.inputs],
                "output_tensor_metadata": [_tensor_table(t) for t in metadata.outputs],
                "input_tensor_groups": _groups_table(metadata.input_groups),
                "output_tensor_groups": _groups_table(metadata.output_groups)}
    root = {"name": _bytes(metadata.name), "description": _bytes(metadata.description),
            "version": _bytes(metadata.version), "subgraph_metadata": [subgraph],
            "author": _bytes(metadata.author), "license": _bytes(metadata.license),
            "associated_files": _files_table(metadata.associated_files),
            "min_parser_version": min_parser_version(metadata).encode()}
    return b"".join(bytes(part) for part in Encoder(schema()).finish(root, ROOT, IDENTIFIER))


def _bytes(text: str) -> bytes | None:
    return text.encode("utf-8") if text else None


def _number(enum: str, name: str) -> int:
    return schema().enums[enum][name]


def _files_table(files: tuple[AssociatedFile, ...]) -> list[dict] | None:
    return [{"name": _bytes(f.name), "description": _bytes(f.description),
             "type": _number("AssociatedFileType", f.type), "locale": _bytes(f.locale),
             "version": _bytes(f.version)} for f in files] or None


def _groups_table(groups: tuple[TensorGroup, ...]) -> list[dict] | None:
    return [{"name": _bytes(g.name), "tensor_names": [n.encode("utf-8") for n in g.tensors]}
            for g in groups] or None


def _tensor_table(tensor: TensorMetadata) -> dict:
    table: dict[str, Any] = {"name": _bytes(tensor.name), "description": _bytes(tensor.description),
                             "associated_files": _files_table(tensor.associated_files)}
    if tensor.content is not None or tensor.range is not None:
        table["content"] = _content_table(tensor.content or FeatureProperties(), tensor.range)
    if tensor.normalization is not None:
        options = {"mean": np.array(tensor.normalization.mean, np.float32),
                   "std": np.array(tensor.normalization.std, np.float32)}
        table["process_units"] = [{"options_type": schema().unions["ProcessUnitOptions"]["NormalizationOptions"],
                                   "options": options}]
    if tensor.stats_min or tensor.stats_max:
        table["stats"] = {"max": np.array(tensor.stats_max, np.float32) if tensor.stats_max else None,
                          "min": np.array(tensor.stats_min, np.float32) if tensor.stats_min else None}
    return table


def _content_table(content: Content, value_range: tuple[int, int] | None) -> dict:
    if isinstance(content, ImageProperties):
        properties: dict[str, Any] = {"color_space": _number("ColorSpaceType", content.color_space)}
        if content.width or content.height:
            properties["default_size"] = {"width": content.width, "height": content.height}
    elif isinstance(content, BoundingBoxProperties):
        properties = {"index": np.array(content.index, np.uint32), "type": _number("BoundingBoxType", content.type),
                      "coordinate_type": _number("CoordinateType", content.coordinate_type)}
    elif isinstance(content, AudioProperties):
        properties = {"sample_rate": content.sample_rate, "channels": content.channels}
    else:
        properties = {}
    table: dict[str, Any] = {"content_properties_type": schema().unions["ContentProperties"][type(content).__name__],
                             "content_properties": properties}
    if value_range is not None:
        table["range"] = {"min": value_range[0], "max": value_range[1]}
    return table


def min_parser_version(metadata: ModelMetadata) -> str:
    """The oldest metadata parser that understands `metadata`, by the rules of TFLite
    Support's metadata_version.cc for what graphtool writes."""
    needed = [(1, 0, 0)]
    for file in metadata.files():
        needed += [{"VOCABULARY": (1, 0, 1), "SCANN_INDEX_FILE": (1, 4, 0)}.get(file.type, (1, 0, 0))]
        needed += [(1, 4, 1)] if file.version else []
    needed += [(1, 2, 0)] if metadata.input_groups or metadata.output_groups else []
    needed += [(1, 3, 0) for t in metadata.inputs + metadata.outputs if isinstance(t.content, AudioProperties)]
    return ".".join(str(n) for n in max(needed))


# -- graphtool's JSON format (docs/metadata.md) ----------------------------------------------
_MODEL_KEYS = ("name", "description", "version", "author", "license", "inputs", "outputs", "associated_files",
               "input_groups", "output_groups")
_TENSOR_KEYS = ("tensor", "name", "description", "image", "audio", "bounding_box", "range", "normalization",
                "stats", "labels", "value_labels", "associated_files")
_FILE_KEYS = ("file", "type", "description", "locale", "version")
_LABEL_TYPES = {"labels": "TENSOR_AXIS_LABELS", "value_labels": "TENSOR_VALUE_LABELS"}


def from_json(document: Any) -> tuple[ModelMetadata, dict[str, tuple[str, str]]]:
    """The metadata a parsed JSON document describes, and for each associated file its stored
    name -> (the path the document gives, where it gives it). FormatError (where = the key)
    for anything else."""
    top = _Json(document, "", _MODEL_KEYS)
    paths: dict[str, tuple[str, str]] = {}
    inputs = tuple(_tensor_json(item, paths) for item in top.objects("inputs", _TENSOR_KEYS, required=True))
    outputs = tuple(_tensor_json(item, paths) for item in top.objects("outputs", _TENSOR_KEYS, required=True))
    metadata = ModelMetadata(top.text("name"), top.text("description"), top.text("version"), top.text("author"),
                             top.text("license"), inputs, outputs, _groups_json(top, "input_groups", inputs),
                             _groups_json(top, "output_groups", outputs), _files_json(top, paths))
    return metadata, paths


def _tensor_json(item: _Json, paths: dict[str, tuple[str, str]]) -> TensorMetadata:
    given = [key for key in _CONTENT_KEYS if item.has(key)]
    if len(given) > 1:
        raise FormatError(f"gives {' and '.join(given)}; a tensor has one kind of content", where=item.where)
    content = _content_json(item.object(given[0], tuple(f.name for f in fields(_CONTENT_KEYS[given[0]]))),
                            _CONTENT_KEYS[given[0]]) if given else FeatureProperties()
    value_range = item.object("range", ("min", "max"))
    normalization = item.object("normalization", ("mean", "std"))
    stats = item.object("stats", ("min", "max"))
    return TensorMetadata(
        item.text("name"), item.text("description"), item.text("tensor"), content,
        None if value_range is None else (value_range.integer("min", _INT32), value_range.integer("max", _INT32)),
        None if normalization is None else _normalization_json(normalization),
        () if stats is None else stats.numbers("min"), () if stats is None else stats.numbers("max"),
        _files_json(item, paths))


def _content_json(item: _Json, kind: type) -> Content:
    if kind is ImageProperties:
        return ImageProperties(item.enum("color_space", "ColorSpaceType", "UNKNOWN"),
                               item.integer("width", _UINT32), item.integer("height", _UINT32))
    if kind is BoundingBoxProperties:
        index = item.numbers("index", _UINT32)
        if len(index) != 4:
            raise FormatError(f"has {len(index)} numbers; a box has 4", where=item.at("index"))
        return BoundingBoxProperties(tuple(int(i) for i in index), item.enum("type", "BoundingBoxType", "UNKNOWN"),
                                     item.enum("coordinate_type", "CoordinateType", "RATIO"))
    return AudioProperties(item.integer("sample_rate", _UINT32), item.integer("channels", _UINT32))


def _normalization_json(item: _Json) -> Normalization:
    mean, std = item.numbers("mean"), item.numbers("std")
    if not mean or len(mean) != len(std):
        raise FormatError(f"mean has {len(mean)} values and std {len(std)}; they need the same number, at least 1",
                          where=item.where)
    if 0.0 in std:
        raise FormatError("std has a zero", where=item.at("std"))
    return Normalization(mean, std)


def _files_json(item: _Json, paths: dict[str, tuple[str, str]]) -> tuple[AssociatedFile, ...]:
    found = []
    for key, file_type in _LABEL_TYPES.items():
        if item.has(key):
            found.append(_file(item.text(key), item.at(key), paths, type=file_type, description=LABELS_DESCRIPTION))
    for entry in item.objects("associated_files", _FILE_KEYS):
        found.append(_file(entry.text("file"), entry.at("file"), paths,
                           type=entry.enum("type", "AssociatedFileType", "UNKNOWN"),
                           description=entry.text("description"), locale=entry.text("locale"),
                           version=entry.text("version")))
    return tuple(found)


def _file(path: str, where: str, paths: dict[str, tuple[str, str]], **properties: str) -> AssociatedFile:
    """An associated file stored under its base name, as TFLite Support stores them."""
    name = os.path.basename(path)
    if not name:
        raise FormatError("names no file", where=where)
    if paths.setdefault(name, (path, where))[0] != path:
        raise FormatError(f"{path} and {paths[name][0]} would both be stored as {name}", where=where)
    return AssociatedFile(name, **properties)


def _groups_json(top: _Json, key: str, tensors: tuple[TensorMetadata, ...]) -> tuple[TensorGroup, ...]:
    names = {t.name for t in tensors}
    groups = []
    for item in top.objects(key, ("name", "tensors")):
        members = item.texts("tensors")
        missing = [n for n in members if n not in names]
        if missing:
            raise FormatError(f"{missing[0]!r} is not the name of any of the document's {key.split('_')[0]}s",
                              where=item.at("tensors"))
        groups.append(TensorGroup(item.text("name"), members))
    return tuple(groups)


class _Json:
    """One JSON object of a metadata document, checked as it is read: unknown keys, types,
    ranges. `where` is its place in the document (outputs[0].image)."""

    def __init__(self, value: Any, where: str, allowed: tuple[str, ...]):
        if not isinstance(value, dict):
            raise FormatError(f"is {_json_type(value)}, not an object", where=where or "the document")
        unknown = [key for key in value if key not in allowed]
        if unknown:
            raise FormatError(f"unknown key {unknown[0]!r}; valid: {', '.join(allowed)}", where=where or None)
        self.value, self.where = value, where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.value

    def _typed(self, key: str, kind: type | tuple, default: Any, what: str) -> Any:
        value = self.value.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise FormatError(f"is {_json_type(value)}, not {what}", where=self.at(key))
        return value

    def text(self, key: str) -> str:
        return self._typed(key, str, "", "a string")

    def texts(self, key: str) -> tuple[str, ...]:
        values = self._typed(key, list, [], "a list of strings")
        if not all(isinstance(v, str) for v in values):
            raise FormatError("is not a list of strings", where=self.at(key))
        return tuple(values)

    def integer(self, key: str, bounds: tuple[int, int]) -> int:
        value = self._typed(key, int, 0, "an integer")
        if not bounds[0] <= value <= bounds[1]:
            raise FormatError(f"{value} is outside {bounds[0]}..{bounds[1]}", where=self.at(key))
        return value

    def numbers(self, key: str, bounds: tuple[int, int] | None = None) -> tuple:
        values = self._typed(key, list, [], "a list of numbers")
        wanted = int if bounds else (int, float)
        if not all(isinstance(v, wanted) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise FormatError(f"is not a list of {'integers' if bounds else 'finite numbers'}", where=self.at(key))
        if bounds and not all(bounds[0] <= v <= bounds[1] for v in values):
            raise FormatError(f"has a value outside {bounds[0]}..{bounds[1]}", where=self.at(key))
        return tuple(values if bounds else (float(v) for v in values))

    def enum(self, key: str, enum: str, default: str) -> str:
        value = self.text(key) or default
        names = list(schema().enums[enum])
        if value not in names:
            raise FormatError(f"{value!r} is not one of {', '.join(names)}", where=self.at(key))
        return value

    def object(self, key: str, allowed: tuple[str, ...]) -> _Json | None:
        return _Json(self.value[key], self.at(key), allowed) if key in self.value else None

    def objects(self, key: str, allowed: tuple[str, ...], required: bool = False) -> list[_Json]:
        if required and key not in self.value:
            raise FormatError("is missing: list one entry per model tensor", where=self.at(key))
        items = self._typed(key, list, [], "a list of objects")
        return [_Json(item, f"{self.at(key)}[{i}]", allowed) for i, item in enumerate(items)]


def _json_type(value: Any) -> str:
    """What JSON calls the type of `value` (a string, a number, ...)."""
    return {str: "a string", bool: "true/false", int: "a number", float: "a number", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


# -- dataclasses -> graphtool's JSON (what inspect --json shows) ------------------------------
def to_json(metadata: ModelMetadata) -> dict[str, Any]:
    """`metadata` in the JSON format `from_json` reads (associated files by their stored
    name), plus what is read and never written: min_parser_version, process_units."""
    out: dict[str, Any] = _nonempty(name=metadata.name, description=metadata.description, version=metadata.version,
                                    author=metadata.author, license=metadata.license)
    out["inputs"] = [_tensor_dict(t) for t in metadata.inputs]
    out["outputs"] = [_tensor_dict(t) for t in metadata.outputs]
    out.update(_nonempty(associated_files=[_file_dict(f) for f in metadata.associated_files],
                         input_groups=[{"name": g.name, "tensors": list(g.tensors)} for g in metadata.input_groups],
                         output_groups=[{"name": g.name, "tensors": list(g.tensors)} for g in metadata.output_groups],
                         min_parser_version=metadata.min_parser_version))
    return out


def _nonempty(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in ("", [], None)}


def _file_dict(file: AssociatedFile) -> dict[str, str]:
    return {"file": file.name, "type": file.type, **_nonempty(description=file.description, locale=file.locale,
                                                               version=file.version)}


def _tensor_dict(tensor: TensorMetadata) -> dict[str, Any]:
    out = _nonempty(tensor=tensor.tensor, name=tensor.name, description=tensor.description)
    kind = next((key for key, cls in _CONTENT_KEYS.items() if isinstance(tensor.content, cls)), None)
    if kind is not None:
        properties = {f.name: getattr(tensor.content, f.name) for f in fields(tensor.content)}
        out[kind] = {k: list(v) if isinstance(v, tuple) else v for k, v in properties.items()}
    norm = tensor.normalization
    out.update(_nonempty(
        range=None if tensor.range is None else {"min": tensor.range[0], "max": tensor.range[1]},
        normalization=None if norm is None else {"mean": list(norm.mean), "std": list(norm.std)},
        stats=_nonempty(min=list(tensor.stats_min), max=list(tensor.stats_max)) or None,
        associated_files=[_file_dict(f) for f in tensor.associated_files],
        process_units=list(tensor.process_units)))
    return out
