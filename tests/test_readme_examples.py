"""README's examples still run and still print what the README shows.

The `$ ` commands in the ```text blocks of "## Commands" run in order in one scratch directory
(later ones read files earlier ones wrote), through bash, with this interpreter's `graphtool`
and `python` first on PATH and `fixtures` linked in. Each must exit as its shown output says
(1 after "NOT compatible", "FAIL:" or a diff, 0 otherwise), and every shown output line must
appear in what it printed: "…" marks where the README trims, timings are ignored, and the
error metrics of `verify` are compared by shape only (their values come from the runtimes'
kernels). The Python section's two-format example runs too, the transform lists of "How
graphtool compares" are held to the registry, and its Graph Transform Tool table is measured
again. TensorFlow is only ever imported in the child processes.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from graphtool.passes import all_passes

from .conftest import FIXTURES, ROOT

README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent

# Every transform the Graph Transform Tool registers (REGISTER_GRAPH_TRANSFORM in
# tensorflow/tools/graph_transforms/*.cc; all 29 are known to TF 2.21's transform binding).
GTT_TRANSFORMS = frozenset("""
    add_default_attributes backport_concatv2 backport_tensor_array_v3 flatten_atrous_conv
    fold_batch_norms fold_constants fold_old_batch_norms freeze_requantization_ranges
    fuse_pad_and_conv fuse_resize_and_conv fuse_resize_pad_and_conv inline_partitionedcall
    insert_logging merge_duplicate_nodes obfuscate_names quantize_nodes quantize_weights
    remove_attribute remove_control_dependencies remove_device remove_nodes rename_attribute
    rename_node rename_op round_weights set_device sort_by_execution_order sparsify_gather
    strip_unused_nodes""".split())

TIMING = re.compile(r"\(\d+(\.\d+)?s\)")
NUMBER = re.compile(r"\d+(\.\d+)?(e[-+]?\d+)?")


def section(title: str) -> str:
    """The README text under `## title`, up to the next level-2 heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else len(README)]


@dataclass
class Example:
    command: str
    shown: list[str] = field(default_factory=list)

    @property
    def expected_status(self) -> int:
        text = "\n".join(self.shown)
        return 1 if re.search(r"NOT compatible with|^FAIL:|^--- ", text, re.M) else 0


def _complete(command: str) -> bool:
    if command.endswith("\\"):
        return False
    try:
        shlex.split(command)
    except ValueError:  # a quote still open: the command goes on on the next line
        return False
    return True


def examples(text: str) -> list[Example]:
    """The `$ ` commands of every ```text block in `text`, each with the lines shown after it."""
    found: list[Example] = []
    for block in re.findall(r"```text\n(.*?)```", text, re.S):
        lines = block.splitlines()
        if not any(line.startswith("$ ") for line in lines):
            continue
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if not line.startswith("$ "):
                if found:
                    found[-1].shown.append(line)
                continue
            command = line[2:]
            while not _complete(command):
                command += "\n" + lines[index]
                index += 1
            found.append(Example(command))
    return found


def _normalise(line: str) -> str:
    line = TIMING.sub("(…s)", line.rstrip())
    if line.lstrip().startswith("max abs "):
        line = NUMBER.sub("N", line)
    return line


def shown_in(shown: str, printed: list[str]) -> bool:
    """Whether a shown line's pieces (split at "…") appear, in order, in one printed line."""
    pieces = [piece for piece in _normalise(shown).split("…") if piece.strip()]
    if not pieces:
        return True
    for line in map(_normalise, printed):
        position = 0
        for piece in pieces:
            found = line.find(piece, position)
            if found < 0:
                break
            position = found + len(piece)
        else:
            return True
    return False


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _scratch(path: Path) -> Path:
    (path / "fixtures").symlink_to(FIXTURES, target_is_directory=True)
    return path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=_environment(), capture_output=True, text=True,
                          timeout=300)


COMMANDS = examples(section("Commands"))


def test_the_commands_section_has_an_example_of_every_command():
    assert len(COMMANDS) >= 20
    for name in ("inspect", "transform", "transforms", "check", "diff", "verify", "draw", "convert"):
        assert any(re.match(rf"graphtool {name}\s", e.command + " ") for e in COMMANDS), name
    for example in COMMANDS:
        if example.command.startswith("graphtool "):
            assert example.shown, f"no output shown for: {example.command}"


def test_the_parser_splits_commands_and_outputs():
    text = "```text\n$ a 'b\n c' \\\n  d\nout 1\n…\n$ e\n```\n```text\nno prompt\n```"
    assert [(e.command, e.shown) for e in examples(text)] == [
        ("a 'b\n c' \\\n  d", ["out 1", "…"]), ("e", [])]
    assert shown_in("x: nodes 1 -> 2; …, y 3 (0.01s)", ["x: nodes 1 -> 2; a, b, y 3 (2.50s)"])
    assert not shown_in("x: nodes 1 -> 3", ["x: nodes 1 -> 2"])
    assert shown_in("    max abs 3.28e-07, rel 1e-07, top-1 100.0%", ["    max abs 9.1e-08, rel 2.2e-07, top-1 100.0%"])
    assert Example("c", ["f: NOT compatible with gpu (…)"]).expected_status == 1
    assert Example("c", ["PASS: every output is within tolerance"]).expected_status == 0


def test_every_command_runs_and_prints_what_the_readme_shows(tmp_path):
    cwd = _scratch(tmp_path)
    problems = []
    for example in COMMANDS:
        result = _run(["bash", "-c", example.command], cwd)
        printed = (result.stdout + result.stderr).splitlines()
        if result.returncode != example.expected_status:
            problems.append(f"$ {example.command}\n  exit {result.returncode}, README implies "
                            f"{example.expected_status}\n  stderr: {result.stderr[-500:]}")
            continue
        missing = [line for line in example.shown if not shown_in(line, printed)]
        if missing:
            problems.append(f"$ {example.command}\n  not printed: {missing}\n  printed: {printed}")
    assert not problems, "\n\n".join(problems)


def _python_block(containing: str) -> tuple[str, list[str]]:
    """A ```python block of the Python section and the ```text block right after it."""
    for match in re.finditer(r"```python\n((?:(?!```).)*)```\s*```text\n(.*?)```", section("Python"), re.S):
        if containing in match.group(1):
            return match.group(1), match.group(2).splitlines()
    raise AssertionError(f"no python example with {containing!r} in README's Python section")


def test_the_two_format_python_example_runs_and_prints_what_the_readme_shows(tmp_path):
    code, shown = _python_block("fixtures/pruned/pruned_cnn.tflite")
    result = _run([sys.executable, "-c", code], _scratch(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines() == shown


def _listed(bullet: str, text: str) -> set[str]:
    match = re.search(rf"- \*\*{re.escape(bullet)}.*?\*\*(.*?)(?=\n- \*\*|\n\n)", text, re.S)
    assert match, bullet
    return set(re.findall(r"`([a-z0-9_]+)`", match.group(1)))


def test_the_gtt_transform_lists_match_the_registry():
    text = section("How graphtool compares")
    ours: dict[str, set[str]] = {}
    for transform in all_passes():
        ours.setdefault(transform.name, set()).update(transform.formats)
    both = GTT_TRANSFORMS & ours.keys()
    listed_both = _listed("In both", text)
    also_tflite = {name for name in both if "tflite" in ours[name]}
    assert listed_both == both
    assert f"**In both ({len(both)}):**" in text
    assert f"{len(both)} of its {len(GTT_TRANSFORMS)} transforms" in text
    assert _listed("GTT only", text) == GTT_TRANSFORMS - ours.keys()
    assert _listed("graphtool only", text) == ours.keys() - GTT_TRANSFORMS
    sentence = re.search(r"of them also run on `\.tflite`:(.*?)\.\n", text, re.S)
    assert sentence and set(re.findall(r"`([a-z_]+)`", sentence.group(1))) == also_tflite


GTT_SCRIPT = textwrap.dedent("""
    import collections, json, sys
    import tensorflow as tf
    try:
        from tensorflow.python.util import _pywrap_transform_graph as gtt
    except ImportError:
        print(json.dumps(None)); sys.exit()
    import graphtool
    spec, names = sys.argv[1], sys.argv[2:]
    kinds = ("FusedBatchNorm", "FusedBatchNormV3", "Mul", "AddV2")
    result = {}
    for name in names:
        data = open("fixtures/graphdef/" + name, "rb").read()
        theirs = tf.compat.v1.GraphDef.FromString(gtt.TransformGraphWithStringInputs(data, "input", "Identity", spec))
        ops = collections.Counter(node.op for node in theirs.node)
        graph = graphtool.load(data)
        graphtool.transform(graph, spec, inputs=["input"], outputs=["Identity"])
        counts = graphtool.inspect(graph).ops
        result[name] = [[{k: ops[k] for k in kinds if ops[k]}, len(theirs.node)],
                        [{k: counts.get(k, 0) for k in kinds if counts.get(k)}, len(graph)]]
    print(json.dumps(result))
""")


def _cell(ops: dict[str, int], nodes: int) -> str:
    left = " + ".join(f"{count} {op}" for op, count in ops.items()) or "none"
    return f"{left} ({nodes} nodes)"


def test_the_gtt_batch_norm_table_is_measured(tmp_path):
    text = section("How graphtool compares")
    spec = re.search(r"The same pipeline, `(.*?)`,\s+run on the committed fixtures by GTT", text, re.S)
    assert spec
    rows = re.findall(r"^\| `(\w+\.pb)` \(.*?\) \| (.*?) \| (.*?) \|$", text, re.M)
    table = {name: [gtt, ours] for name, gtt, ours in rows}
    assert set(table) == {"keras2_cnn.pb", "keras3_cnn.pb"}
    result = _run([sys.executable, "-c", GTT_SCRIPT, " ".join(spec.group(1).split()), *table],
                  _scratch(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    if measured is None:
        pytest.skip("this TensorFlow has no _pywrap_transform_graph binding")
    assert {name: [_cell(*gtt), _cell(*ours)] for name, (gtt, ours) in measured.items()} == table
