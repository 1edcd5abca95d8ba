"""set_metadata for TFLite models: TFLite Support metadata from a JSON file (docs/metadata.md).

The JSON format and its flatbuffer are graphtool.formats.tflite.support_metadata's; the files
the metadata names are zipped after the flatbuffer by associated_files.py, as TFLite
Support's metadata writer does.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import FormatError
from ...formats.tflite import associated_files, keys, support_metadata
from ...formats.tflite.support_metadata import TensorMetadata
from ...ir import Graph, Tensor
from ..registry import Context, PassError, PassResult, register


@dataclass(frozen=True)
class Params:
    file: str = field(default="", metadata={
        "doc": "the metadata as JSON (docs/metadata.md); the associated files it names are read relative "
               "to it. Required"})


@register("set_metadata", Params, formats=("tflite",), guarantee="exact")
def set_metadata(graph: Graph, params: Params, context: Context) -> PassResult:
    """Write TFLite Support metadata (name, version, license, normalization, image properties, labels) from JSON.

    file=METADATA.json describes the model and each of its inputs and outputs in the format
    of docs/metadata.md: one entry per model input and output, matched by the model tensor
    each names (`tensor`) or, when none names one, by position. The metadata become the
    model's TFLITE_METADATA entry (a metadata_schema.fbs flatbuffer with file identifier
    M001, min_parser_version as TFLite Support computes it), replacing one the model had;
    the files it names (labels, vocabularies) are zipped, uncompressed, after the flatbuffer,
    as TFLite Support's metadata writer packs them, replacing the files the model carried.
    Signature defs and the other metadata entries stay. A document that does not match the
    model (the number or names of its inputs and outputs, normalization values for another
    channel count), names a file that does not exist, or is not valid JSON is refused before
    anything changes. Exact: the operators and tensors are untouched.

    Stats: inputs, outputs (entries written), associated_files (files zipped)."""
    if not params.file:
        raise PassError("set_metadata: needs file=METADATA.json (docs/metadata.md)")
    try:
        metadata, paths = support_metadata.from_json(_document(params.file))
        metadata = replace(metadata, inputs=_matched(metadata.inputs, _inputs(graph), "input"),
                           outputs=_matched(metadata.outputs, _outputs(graph), "output"))
        files = {name: _content(params.file, path, where) for name, (path, where) in paths.items()}
        archive = associated_files.build(files) if files else None
        encoded = support_metadata.encode(metadata)
    except FormatError as exc:
        raise exc.with_source(params.file) from None
    graph.meta[keys.METADATA] = {**(graph.meta.get(keys.METADATA) or {}), keys.SUPPORT_METADATA: encoded}
    if archive is None:
        graph.meta.pop(keys.ASSOCIATED_FILES, None)
    else:
        graph.meta[keys.ASSOCIATED_FILES] = archive
    return PassResult(True, {"inputs": len(metadata.inputs), "outputs": len(metadata.outputs),
                             "associated_files": len(files)})


def _document(path: str) -> Any:
    """The parsed JSON of `path`; FormatError naming the file when it cannot be."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FormatError("no such file", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot be read as text: {exc}", path) from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", path) from None
    except ValueError as exc:  # a number past Python's digit limit
        raise FormatError(f"not valid JSON: {exc}", path) from None
    except RecursionError:
        raise FormatError("not valid JSON: nested too deeply", path) from None


def _content(document: str, path: str, where: str) -> bytes:
    """An associated file's bytes; a relative path is read from the document's folder."""
    resolved = os.path.join(os.path.dirname(document), path)
    try:
        with open(resolved, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise FormatError(f"cannot read {resolved}: {exc.strerror or exc}", where=where) from None


def _inputs(graph: Graph) -> list[Tensor]:
    return [graph.node(name).outputs[0] for name in graph.inputs]


def _outputs(graph: Graph) -> list[Tensor]:
    return [graph.node(ref.node).outputs[ref.port] for ref in graph.outputs]


def _matched(entries: tuple[TensorMetadata, ...], tensors: list[Tensor], kind: str) -> tuple[TensorMetadata, ...]:
    """`entries` in the model's order, each naming its tensor: by the tensors they name, or
    by position when none names one. FormatError when they do not fit the model."""
    names = [tensor.name for tensor in tensors]
    if len(entries) != len(names):
        raise FormatError(f"{len(entries)} entries; the model has {len(names)} {kind}{'' if len(names) == 1 else 's'}"
                          f": {', '.join(names)}", where=f"{kind}s")
    named = [entry.tensor for entry in entries if entry.tensor]
    if named and len(named) != len(entries):
        raise FormatError("names the tensor of some entries only: name every one's, or none (then they are "
                          "taken in the model's order)", where=f"{kind}s")
    for index, entry in enumerate(entries):
        if entry.tensor and entry.tensor not in names:
            raise FormatError(f"{entry.tensor!r} is not an {kind} of the model ({', '.join(names)})",
                              where=f"{kind}s[{index}].tensor")
        if entry.tensor and named.count(entry.tensor) > 1:
            raise FormatError(f"{entry.tensor!r} is described twice", where=f"{kind}s[{index}].tensor")
    order = sorted(range(len(entries)), key=lambda i: names.index(entries[i].tensor)) if named else \
        list(range(len(entries)))
    for position, index in enumerate(order):
        _check_channels(entries[index], tensors[position], f"{kind}s[{index}].normalization")
    return tuple(replace(entries[index], tensor=names[position]) for position, index in enumerate(order))


def _check_channels(entry: TensorMetadata, tensor: Tensor, where: str) -> None:
    """Normalization gives one value for all channels or one per channel (the last dimension)."""
    if entry.normalization is None or not tensor.shape or tensor.shape[-1] is None:
        return
    count, channels = len(entry.normalization.mean), tensor.shape[-1]
    if count not in (1, channels):
        raise FormatError(f"{count} values; {tensor.name} {list(tensor.shape)} has {channels} channels "
                          "(give 1 or one per channel)", where=where)
