"""Targets for the transforms and commands added after the campaign was first written: each
input is a command line on a small fixture, with parameters drawn from the model itself
(tensor, operator and signature names, shapes, types: mostly valid) and from hostile and
ill-typed values. The command runs in the worker as `graphtool` runs it; it must end in a
result (exit 0, or 1 where the command says "still failing") or one line of error (exit 2),
never another exception, never a partial output, never a changed input.

An input is a small JSON recipe: the target, a fixture and a seed. The checker draws the
command line from the seed and the model it loads, so every input can be made again.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .hostile import HOSTILE_STRINGS
from .oracle import Verdict

SUFFIX = ".json"
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
VALID = 0.9  # the share of parameters drawn from what the model has
JUNK = ["", " ", "-1", "0", "1e9", "nan", "true", "x" * 300, "a,b", "1,,2", "?", "🙂", "\\", "'"] + \
    list(HOSTILE_STRINGS)[:6]


@dataclass(frozen=True)
class Command:
    """One target: its fixtures and how to draw a command line for a model."""

    name: str
    models: tuple[str, ...]
    draw: Callable[["Draw"], list[str]]
    ok_codes: tuple[int, ...] = (0,)


class Draw:
    """Parameter values for one input: from the model (valid) or junk, by the seed."""

    def __init__(self, rng: random.Random, graph, workdir: Path, model: Path):
        self.rng, self.graph, self.workdir, self.model = rng, graph, workdir, model

    def valid(self) -> bool:
        return self.rng.random() < VALID

    def pick(self, values: list[str]) -> str:
        return self.rng.choice(values) if values and self.valid() else self.rng.choice(JUNK)

    # -- what the model has -------------------------------------------------------------
    def operators(self) -> list:
        return [n for n in self.graph if n.op not in ("Input", "Const", "Variable", "Tensor") and n.outputs]

    def op_names(self) -> list[str]:
        return [n.name for n in self.operators()]

    def op_types(self) -> list[str]:
        return sorted({n.op for n in self.operators()})

    def tensor_names(self) -> list[str]:
        return [t.name for n in self.operators() for t in n.outputs if t is not None]

    def inputs(self) -> list:
        return [self.graph.node(name).outputs[0] for name in self.graph.inputs]

    def signature_keys(self) -> list[str]:
        from graphtool.formats.tflite import keys

        return [s["key"] for s in self.graph.meta.get(keys.SIGNATURE_DEFS) or []]

    def samples(self, broken: str | None = None) -> str:
        """An .npz of representative inputs for the model (or a broken one: wrong name,
        shape, dtype, NaN, empty, not an npz)."""
        path = self.workdir / f"samples_{self.rng.randrange(1 << 30)}.npz"
        arrays = {}
        count = self.rng.choice([1, 4, 8])
        for tensor in self.inputs():
            shape = [1 if d is None else d for d in (tensor.shape or (1,))]
            dtype = tensor.dtype.numpy if tensor.dtype is not None and tensor.dtype.numpy is not None else np.float32
            arrays[tensor.name] = np.random.default_rng(self.rng.randrange(1 << 30)).random(
                (count, *shape[1:])).astype(dtype)
        broken = broken or (None if self.valid() else self.rng.choice(
            ["name", "shape", "dtype", "nan", "empty", "text", "missing"]))
        if broken == "missing":
            return str(path)
        if broken == "text":
            path.write_text("not an npz")
            return str(path)
        if arrays and broken:
            key = next(iter(arrays))
            value = arrays.pop(key)
            key, value = {"name": ("no_such_input", value), "shape": (key, value[..., :1]),
                          "dtype": (key, value.astype(np.complex64)), "nan": (key, value * np.nan),
                          "empty": (key, value[:0])}[broken]
            arrays[key] = value
        np.savez(path, **arrays)
        return str(path)

    def shape(self) -> str:
        dims = [str(self.rng.choice([1, 2, 8])) for _ in range(self.rng.choice([1, 2, 4]))]
        tensor = self.inputs()[0] if self.inputs() else None
        if tensor is not None and tensor.shape and self.valid():
            dims = [str(self.rng.choice([1, 2, 3]) if d is None or i == 0 else d) for i, d in enumerate(tensor.shape)]
        return ",".join(dims)


def _spec(name: str, params: list[tuple[str, str]]) -> str:
    def value(text: str) -> str:
        return '"' + text.replace('"', "") + '"'
    return f"{name}({', '.join(f'{key}={value(v)}' for key, v in params)})" if params else name


def _some(draw: Draw, choices: list[tuple[str, Callable[[], str]]], at_least: int = 0) -> list[tuple[str, str]]:
    """A few of the parameters `choices` offers, each drawn by its function."""
    chosen = [c for c in choices if draw.rng.random() < 0.5]
    for extra in choices[:max(0, at_least - len(chosen))]:
        chosen.append(extra)
    return [(key, make()) for key, make in chosen]


def _transform(name: str, params: list[tuple[str, str]], draw: Draw) -> list[str]:
    return ["transform", str(draw.model), str(draw.workdir / f"out{draw.model.suffix}"),
            "--transforms", _spec(name, params)]


def _quantize_nodes(draw: Draw) -> list[str]:
    return _transform("quantize_nodes", [("calibration", draw.samples())] + _some(draw, [
        ("activations", lambda: draw.pick(["int8", "int16"])),
        ("per_channel", lambda: draw.pick(["true", "false"])),
        ("method", lambda: draw.pick(["minmax", "percentile", "mse"])),
        ("rounding", lambda: draw.pick(["away", "even", "gptq"])),
        ("keep", lambda: draw.pick(draw.op_names())),
        ("keep_op", lambda: draw.pick(draw.op_types())),
        ("only", lambda: draw.pick(draw.op_names()))]), draw)


def _target_sqnr(draw: Draw) -> list[str]:
    return _transform("quantize_weights", [("target_sqnr", draw.pick(["20", "30", "40"])),
                                           ("calibration", draw.samples())] + _some(draw, [
        ("fallback", lambda: draw.pick(["float16", "float32"])),
        ("minimum_size", lambda: draw.pick(["0", "16"])),
        ("mode", lambda: draw.pick(["dynamic", "weight_only"]))]), draw)


def _set_io_types(draw: Draw) -> list[str]:
    kinds = ["float32", "int8", "uint8", "int16", "float16"]
    return _transform("set_io_types", _some(draw, [
        ("inputs", lambda: draw.pick(kinds + [f"{t.name}:{draw.rng.choice(kinds)}" for t in draw.inputs()])),
        ("outputs", lambda: draw.pick(kinds))], at_least=1), draw)


def _set_input_shape(draw: Draw) -> list[str]:
    return _transform("set_input_shape", _some(draw, [
        ("shape", draw.shape), ("batch", lambda: draw.pick(["1", "2", "8"]))], at_least=1), draw)


def _rename_node(draw: Draw) -> list[str]:
    old = draw.pick(draw.op_names() + draw.tensor_names())
    return _transform("rename_node", [("old_node_name", old),
                                      ("new_node_name", draw.pick([f"renamed_{draw.rng.randrange(99)}"]))], draw)


def _rename_signature(draw: Draw) -> list[str]:
    names = {"": draw.signature_keys(),
             "input_": [name for s in _signatures(draw) for name, _ in s["inputs"]],
             "output_": [name for s in _signatures(draw) for name, _ in s["outputs"]]}
    params = []
    for kind in draw.rng.sample(sorted(names), draw.rng.choice([1, 1, 2])):
        params += [(f"old_{kind}name", draw.pick(names[kind])),
                   (f"new_{kind}name", draw.pick([f"{kind}renamed_{draw.rng.randrange(9)}"]))]
    return _transform("rename_signature", params, draw)


def _signatures(draw: Draw) -> list[dict]:
    from graphtool.formats.tflite import keys

    return list(draw.graph.meta.get(keys.SIGNATURE_DEFS) or [])


def _strip_unused_nodes(draw: Draw) -> list[str]:
    """The TFLite cut: strip_unused_nodes with --inputs and --outputs naming tensors."""
    argv = _transform("strip_unused_nodes", [], draw)
    for flag in ("--inputs", "--outputs"):
        if draw.rng.random() < 0.7:
            argv += [flag, ",".join(draw.pick(draw.tensor_names()) for _ in range(draw.rng.choice([1, 1, 2])))]
    return argv


def _thin_channels(draw: Draw) -> list[str]:
    """No parameters: now and then one it does not take."""
    return _transform("thin_channels", [] if draw.valid() else [(draw.rng.choice(["keep", "x", "sparsity"]),
                                                                 draw.rng.choice(JUNK))], draw)


def _prune_channels(draw: Draw) -> list[str]:
    return _transform("prune_channels", [("sparsity", draw.pick(["0.1", "0.25", "0.5", "0.9"]))] + _some(draw, [
        ("criterion", lambda: draw.pick(["l1", "l2", "bn_gamma"])),
        ("global", lambda: draw.pick(["true", "false"])),
        ("only", lambda: draw.pick(draw.op_names())),
        ("keep", lambda: draw.pick(draw.op_names())),
        ("keep_op", lambda: draw.pick(draw.op_types()))]), draw)


def _split(draw: Draw) -> list[str]:
    at = ",".join(draw.pick(draw.tensor_names()) for _ in range(draw.rng.choice([1, 1, 2])))
    return ["split", str(draw.model), "--at", at, "-o", str(draw.workdir / "parts")]


def _check_fix(draw: Draw) -> list[str]:
    target = draw.pick(["edgetpu", "micro", "gpu"])
    argv = ["check", str(draw.model), "--target", target, "--fix", "-o", str(draw.workdir / "out.tflite")]
    if draw.rng.random() < 0.9:
        argv += ["--data", draw.samples()]
    return argv


_TFLITE = ("tflite/float_cnn.tflite", "tflite/full_int8.tflite", "tflite/multi_signature.tflite",
           "tflite/dynamic_range.tflite", "tflite/float16.tflite")
_FLOAT = ("tflite/float_cnn.tflite", "demo/float_cnn.tflite")
_BOTH = _FLOAT + ("graphdef/keras2_cnn.pb", "graphdef/keras3_cnn.pb")

COMMANDS = {command.name: command for command in [
    Command("quantize_nodes", _FLOAT + ("tflite/multi_signature.tflite",), _quantize_nodes),
    Command("target_sqnr", _FLOAT, _target_sqnr),
    Command("set_io_types", _TFLITE, _set_io_types),
    Command("set_input_shape", _TFLITE, _set_input_shape),
    Command("rename_node", _TFLITE + ("graphdef/keras2_cnn.pb",), _rename_node),
    Command("rename_signature", ("tflite/multi_signature.tflite", "tflite/float_cnn.tflite"), _rename_signature),
    Command("strip_unused_nodes", _TFLITE, _strip_unused_nodes),
    Command("split", _TFLITE, _split),
    Command("thin_channels", _BOTH + ("tflite/full_int8.tflite",), _thin_channels),
    Command("prune_channels", _BOTH, _prune_channels),
    Command("check_fix", _FLOAT, _check_fix, ok_codes=(0, 1)),
]}


class CommandInputs:
    """generate(rng) -> (bytes, suffix, recipe) for one command target."""

    def __init__(self, name: str):
        self.command = COMMANDS[name]

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        recipe = {"target": self.command.name, "model": rng.choice(self.command.models), "seed": rng.randrange(1 << 31)}
        return json.dumps(recipe).encode(), SUFFIX, f"{recipe['model']} seed {recipe['seed']}"


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


class CommandChecker:
    """Runs the drawn command line in this process, as `graphtool` would, and judges it."""

    def __call__(self, path: str) -> Verdict:
        from graphtool.cli.main import main

        import graphtool

        verdict = Verdict()
        recipe = json.loads(Path(path).read_text())
        command = COMMANDS[recipe["target"]]
        workdir = Path(tempfile.mkdtemp(prefix="graphtool-fuzz-cmd-"))
        try:
            model = workdir / Path(recipe["model"]).name
            shutil.copyfile(FIXTURES / recipe["model"], model)
            draw = Draw(random.Random(recipe["seed"]), graphtool.load(model), workdir, model)
            argv = command.draw(draw)
            verdict.notes["argv"] = " ".join(argv[1:])[:300]
            before = _digest(workdir)
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(argv)
            except Exception as exc:  # noqa: BLE001 - anything but a clean exit is what we look for
                verdict.fail("run", f"graphtool {' '.join(argv)[:300]}", exc)
                return verdict
            self._judge(verdict, command, argv, code, err.getvalue(), before, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return verdict

    @staticmethod
    def _judge(verdict: Verdict, command: Command, argv: list[str], code: int, stderr: str, before: dict,
               workdir: Path) -> None:
        after = _digest(workdir)
        changed = [name for name, digest in before.items() if after.get(name) != digest]
        if changed:
            verdict.fail("input", f"{changed[0]} changed (graphtool {' '.join(argv)[:200]})")
        new = sorted(set(os.listdir(workdir)) - set(before))
        if code == 2:
            verdict.outcome, verdict.error, verdict.message = "rejected", "exit 2", stderr[:500]
            lines = [line for line in stderr.splitlines() if not line.startswith("graphtool: warning:")]
            if len(lines) != 1 or not lines[0].startswith("graphtool: error: "):
                verdict.fail("message", f"exit 2 without one error line: {stderr[:300]!r}")
            if new:
                verdict.fail("partial", f"exit 2 left {new} behind (graphtool {' '.join(argv)[:200]})")
        elif code in command.ok_codes:
            if not new:
                verdict.fail("output", f"exit {code} wrote nothing (graphtool {' '.join(argv)[:200]})")
        else:
            verdict.fail("exit", f"exit {code}: {stderr[-300:]!r} (graphtool {' '.join(argv)[:200]})")
