"""`graphtool inspect MODEL`: what a model holds, as text or --json."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from . import batch
from .common import load_model

if TYPE_CHECKING:
    from ..analysis.inspect import Summary


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect", help="summarise a model: inputs, outputs, ops, parameters",
        description="Summarise a model: inputs, outputs, op histogram, parameters and bytes by "
                    "dtype, variables, control edges, devices and invalid inputs. Several models, a "
                    "directory (walked for .tflite, .pb and .pbtxt files and SavedModel directories) or a "
                    "glob: every model is read, --jobs at a time, one row each (format, size, nodes, "
                    "parameters, op types; --json: one JSON object per line, with `error` for a model that "
                    "could not be read); exit status 0 when every one was read, 1 otherwise, 2 when an "
                    "argument names no model.")
    batch.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (several models: one per line)")
    parser.add_argument("--structure", action="store_true", help="also list every node and its inputs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = batch.single_model(args.model)
    if model is None:
        return batch.run_inspect(args)
    from ..analysis.inspect import inspect

    summary = inspect(load_model(model), structure=args.structure)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(render(summary))
    return 0


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _shape(shape: list | None) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _quant(q) -> str:
    if q is None:
        return ""
    if q.scheme == "per-channel":
        return f"  int-quantized per channel (axis {q.axis}, {len(q.scale)} scales)"
    return f"  scale {q.scale[0]:.6g} zero point {q.zero_point[0]}"


SPARSE_WEIGHT = 0.1  # weights with at least this share of zeros are listed one by one
MAX_LISTED = 20


def _blocks(shares: dict) -> str:
    return ", ".join(f"{key} {share:.1%}" for key, share in shares.items())


def _sparsity(s: Summary) -> list[str]:
    """The totals, then each weight with at least SPARSE_WEIGHT zeros."""
    sparse = sum(1 for w in s.weights if w.sparse_storage)
    shares = {key: totals.share for key, totals in s.sparsity.blocks.items() if totals.blocks}
    scope = f" in the {s.sparsity.weights - sparse} stored dense" if sparse else ""
    lines = [f"Weight sparsity: {s.sparsity.share:.1%} zeros in {s.sparsity.weights} weight tensors"
             + (f" ({sparse} stored sparse)" if sparse else "")
             + (f"; zero blocks{scope} {_blocks(shares)}" if shares else "")]
    listed = [w for w in s.weights if w.zeros >= SPARSE_WEIGHT]
    for w in listed[:MAX_LISTED]:
        blocks = "stored sparse" if w.zero_blocks is None else f"zero blocks {_blocks(w.zero_blocks)}"
        lines.append(f"  {w.zeros:6.1%}  {w.name}  {_shape(w.shape)}  {blocks}")
    if len(listed) > MAX_LISTED:
        lines.append(f"  … {len(listed) - MAX_LISTED} more sparse weights (--json lists every weight)")
    return lines


def _numbers(values: list) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _files(files: list[dict], labels: dict[str, int | None]) -> list[str]:
    """Associated files as `labels NAME (N labels)`, `vocabulary NAME`."""
    out = []
    for f in files:
        count = labels.get(f["file"])
        kind = {"TENSOR_AXIS_LABELS": "labels", "TENSOR_VALUE_LABELS": "value labels"}.get(
            f["type"], f["type"].lower().replace("_", " "))
        out.append(f"{kind} {f['file']}" + ("" if count is None else f" ({count} labels)"))
    return out


def _tensor_metadata(entry: dict, labels: dict[str, int | None]) -> list[str]:
    """What one input's or output's metadata say, piece by piece."""
    parts = []
    if "image" in entry:
        image = entry["image"]
        size = f" {image['width']}x{image['height']}" if image["width"] or image["height"] else ""
        parts.append(f"image {image['color_space']}{size}")
    if "audio" in entry:
        parts.append(f"audio {entry['audio']['sample_rate']} Hz, {entry['audio']['channels']} channel(s)")
    if "bounding_box" in entry:
        box = entry["bounding_box"]
        parts.append(f"boxes {box['type']} {box['coordinate_type']}, index {box['index']}")
    if "range" in entry:
        parts.append(f"range {entry['range']['min']}..{entry['range']['max']}")
    if "normalization" in entry:
        norm = entry["normalization"]
        parts.append(f"normalization mean {_numbers(norm['mean'])} std {_numbers(norm['std'])}")
    if "stats" in entry:
        parts.append("stats " + " ".join(f"{key} {_numbers(entry['stats'][key])}" for key in ("min", "max")
                                         if key in entry["stats"]))
    parts += _files(entry.get("associated_files", []), labels)
    if entry.get("process_units"):
        parts.append("process units " + ", ".join(entry["process_units"]))
    return parts


def _support_metadata(m: dict, labels: dict[str, int | None]) -> list[str]:
    """The TFLite Support metadata: the model, then each input and output."""
    version = f", version {m['version']}" if m.get("version") else ""
    lines = [f"TFLite Support metadata: {m.get('name') or '(unnamed)'}{version} "
             f"(parser {m.get('min_parser_version') or '?'})"]
    if m.get("description"):
        lines.append(f"  {m['description']}")
    credits = "; ".join(f"{key}: {m[key]}" for key in ("author", "license") if m.get(key))
    if credits:
        lines.append(f"  {credits[0].upper()}{credits[1:]}")
    for kind in ("inputs", "outputs"):
        for entry in m[kind]:
            details = "; ".join(_tensor_metadata(entry, labels)) or entry.get("description") or "-"
            lines.append(f"  {kind[:-1].capitalize()} {entry.get('name') or '(unnamed)'} "
                         f"({entry.get('tensor') or '?'}): {details}")
    if m.get("associated_files"):
        lines.append("  Model files: " + ", ".join(_files(m["associated_files"], labels)))
    return lines


def render(s: Summary) -> str:
    lines = [f"{s.path or '<bytes>'}: {s.format}, {s.num_nodes:,} {'operators' if s.subgraphs else 'nodes'}, "
             f"{_size(s.file_size)}"]
    if s.description:
        lines.append(f"Description: {s.description}")
    if s.versions:
        lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in s.versions.items()))
    if s.min_runtime_version:
        lines.append(f"Minimum runtime: {s.min_runtime_version}")
    lines.append(f"Inputs ({len(s.inputs)}):")
    lines += [f"  {t.name}  {t.dtype or '?'}  {_shape(t.shape)}{_quant(t.quantization)}" for t in s.inputs] \
        or ["  none"]
    lines.append(f"Outputs ({len(s.outputs)}):")
    lines += [f"  {o.name}  ({o.op})" + (f"  {o.dtype}  {_shape(o.shape)}{_quant(o.quantization)}" if o.dtype else "")
              for o in s.outputs] or ["  none"]
    if len(s.subgraphs) > 1:
        lines.append(f"Subgraphs ({len(s.subgraphs)}):")
        lines += [f"  {g.index}: {g.name or '(unnamed)'}  {g.operators} operators, {g.tensors} tensors"
                  for g in s.subgraphs]
    if s.signature_defs:
        lines.append(f"Signatures ({len(s.signature_defs)}):")
        lines += [f"  {sig.key} (subgraph {sig.subgraph}): {', '.join(sig.inputs)} -> {', '.join(sig.outputs)}"
                  for sig in s.signature_defs]
    p = s.parameters
    lines.append(f"Parameters in constants: {p.count:,} ({_size(p.bytes)})")
    lines += [f"  {dtype}: {t.count:,} ({_size(t.bytes)})" for dtype, t in p.by_dtype.items()]
    if s.quantized_weights:
        lines.append("Quantized weights: " + ", ".join(f"{n} {scheme}" for scheme, n in s.quantized_weights.items()))
    if s.sparsity.weights:
        lines += _sparsity(s)
    if s.variables:
        lines.append(f"Variables ({len(s.variables)}, {s.variable_parameters:,} parameters):")
        lines += [f"  {v.name}  {v.dtype or '?'}  {_shape(v.shape)}" for v in s.variables]
    if not s.subgraphs:
        lines.append(f"Control edges: {s.control_edges:,}")
    if s.devices:
        lines.append("Devices: " + ", ".join(f"{d} ({n})" for d, n in s.devices.items()))
    if s.invalid_inputs:
        lines.append(f"Invalid inputs ({len(s.invalid_inputs)}):")
        lines += [f"  {i.node} <- {i.input} (no such node)" for i in s.invalid_inputs]
    if s.functions:
        lines.append(f"Functions ({len(s.functions)}): " + ", ".join(s.functions))
    if s.custom_ops:
        lines.append("Custom ops: " + ", ".join(f"{op} ({n})" for op, n in s.custom_ops.items()))
    if s.select_tf_ops:
        lines.append("Select TF ops: " + ", ".join(f"{op} ({n})" for op, n in s.select_tf_ops.items()))
    lines.append(f"Ops ({len(s.ops)} types):")
    width = max((len(f"{n:,}") for n in s.ops.values()), default=1)
    for op, n in s.ops.items():
        versions = s.op_versions.get(op)
        suffix = f"  v{','.join(map(str, versions))}" if versions else ""
        lines.append(f"  {n:>{width},}  {op}{suffix}")
    if s.metadata:
        lines.append("Metadata: " + ", ".join(s.metadata))
    if s.support_metadata is not None:
        lines += _support_metadata(s.support_metadata, {f.name: f.labels for f in s.associated_files})
    if s.associated_files:
        lines.append(f"Associated files ({len(s.associated_files)}, zipped after the model): " + ", ".join(
            f"{f.name} ({_size(f.bytes)}" + ("" if f.labels is None else f", {f.labels} labels") + ")"
            for f in s.associated_files))
    lines += [f"Warning: {problem}" for problem in s.unreadable + s.warnings]
    if s.structure is not None:
        lines.append("Structure:")
        for node in s.structure:
            device = f"  @{node.device}" if node.device else ""
            lines.append(f"  {node.name} ({node.op}){device} <- {', '.join(node.inputs) or '-'}")
    return "\n".join(lines)
