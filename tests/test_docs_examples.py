"""The examples of README.md and docs/ still run and still print what they show.

docs/commands.md: its `$ ` commands (in ```text blocks) and ```python blocks run in order in
one scratch directory (later ones read files earlier ones wrote), through bash, with this
interpreter's `graphtool` and `python` first on PATH and `fixtures` linked in. Each must exit
as its shown output says (1 after "NOT compatible", "NOT all compatible", a JSON line with
`"compatible": false`, "FAIL:" or a diff, 0 otherwise), and every
shown output line must appear in what it printed: "…" marks where the page trims, timings
are ignored, and the error metrics of `verify` are compared by shape only (their values come
from the runtimes' kernels). docs/metadata.md's commands run the same way, in a scratch
directory of their own.

The ```python blocks of README.md, docs/python.md and docs/writing-a-transform.md run as one
program per page, in order, in a scratch directory; a block followed by a ```text block must
print exactly that. The transform lists of docs/comparison.md are held to the registry and
its Graph Transform Tool table is measured again; README's demo table is what `make demo`
prints; the fuzzing page's commands name options fuzz/run.py has. TensorFlow is only ever
imported in the child processes.
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

DOCS = ROOT / "docs"
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
BLOCK = re.compile(r"^```(text|python)\n(.*?)^```[ \t]*$", re.S | re.M)
BLOCK_END = "\n# graphtool docs: end of block\n"


def page(name: str) -> str:
    return (ROOT / name).read_text()


@dataclass
class Example:
    command: str
    shown: list[str] = field(default_factory=list)
    python: bool = False

    @property
    def expected_status(self) -> int:
        text = "\n".join(self.shown)
        return 1 if re.search(r'NOT compatible with|NOT all compatible|"compatible": false|^FAIL:|^--- ',
                              text, re.M) else 0


def _complete(command: str) -> bool:
    if command.endswith("\\"):
        return False
    try:
        shlex.split(command)
    except ValueError:  # a quote still open: the command goes on on the next line
        return False
    return True


def _commands(block: str) -> list[Example]:
    """The `$ ` commands of one ```text block, each with the lines shown after it."""
    found: list[Example] = []
    lines = block.splitlines()
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


def examples(text: str) -> list[Example]:
    """Every `$ ` command and every ```python block of `text`, in page order."""
    found: list[Example] = []
    for language, block in BLOCK.findall(text):
        found += [Example(block, python=True)] if language == "python" else _commands(block)
    return found


def python_blocks(text: str) -> list[tuple[str, list[str] | None]]:
    """Each ```python block of `text` with the output lines of the ```text block right after
    it (None when no output is shown)."""
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```[ \t]*\n", text, re.S | re.M):
        after = re.match(r"\s*```text\n(.*?)^```", text[match.end():], re.S | re.M)
        shown = after.group(1).splitlines() if after and not after.group(1).startswith("$ ") else None
        found.append((match.group(1), shown))
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


def run_python_page(text: str, cwd: Path) -> list[tuple[list[str], list[str] | None]]:
    """Run the page's ```python blocks as one program; (printed, shown) for each block."""
    blocks = python_blocks(text)
    assert blocks, "no ```python block"
    program = "".join(code + f"print({BLOCK_END!r}, end='')\n" for code, _ in blocks)
    result = _run([sys.executable, "-c", program], cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout.split(BLOCK_END)[:len(blocks)]
    return [(output.splitlines(), shown) for output, (_, shown) in zip(printed, blocks)]


def assert_prints_what_it_shows(text: str, cwd: Path) -> None:
    for printed, shown in run_python_page(text, _scratch(cwd)):
        if shown is not None:
            assert printed == shown


COMMANDS = examples(page("docs/commands.md"))


def test_the_commands_page_has_an_example_of_every_command():
    assert len(COMMANDS) >= 20
    for name in ("inspect", "transform", "transforms", "check", "diff", "verify", "draw", "convert"):
        assert any(re.match(rf"graphtool {name}\s", e.command + " ") for e in COMMANDS), name
    for example in COMMANDS:
        if example.command.startswith("graphtool "):
            assert example.shown, f"no output shown for: {example.command}"
    assert any(example.python for example in COMMANDS)


def test_the_parsers_split_commands_outputs_and_python_blocks():
    text = ("```text\n$ a 'b\n c' \\\n  d\nout 1\n…\n$ e\n```\n```text\nno prompt\n```\n"
            "```python\nprint(1)\n```\n\n```text\n1\n```\n```python\nx = 2\n```\n")
    assert [(e.command, e.shown, e.python) for e in examples(text)] == [
        ("a 'b\n c' \\\n  d", ["out 1", "…"], False), ("e", [], False),
        ("print(1)\n", [], True), ("x = 2\n", [], True)]
    assert python_blocks(text) == [("print(1)\n", ["1"]), ("x = 2\n", None)]
    assert shown_in("x: nodes 1 -> 2; …, y 3 (0.01s)", ["x: nodes 1 -> 2; a, b, y 3 (2.50s)"])
    assert not shown_in("x: nodes 1 -> 3", ["x: nodes 1 -> 2"])
    assert shown_in("    max abs 3.28e-07, rel 1e-07, top-1 100.0%", ["    max abs 9.1e-08, rel 2.2e-07, top-1 100.0%"])
    assert Example("c", ["f: NOT compatible with gpu (…)"]).expected_status == 1
    assert Example("c", ["PASS: every output is within tolerance"]).expected_status == 0
    assert Example("c", ["2 models checked against gpu: 1 compatible, 1 partial (NOT all compatible)"]
                   ).expected_status == 1
    assert Example("c", ['{"path": "a.tflite", "compatible": false, "verdict": "error"}']).expected_status == 1
    assert Example("c", ['{"path": "a.tflite", "compatible": true}']).expected_status == 0


def test_a_page_that_prints_something_else_fails(tmp_path):
    text = "```python\nprint('a')\n```\n```text\nb\n```\n"
    with pytest.raises(AssertionError):
        assert_prints_what_it_shows(text, tmp_path)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.litert
def test_every_command_runs_and_prints_what_the_commands_page_shows(tmp_path):
    problems = failures(COMMANDS, _scratch(tmp_path))
    assert not problems, "\n\n".join(problems)


METADATA = examples(page("docs/metadata.md"))


@pytest.mark.litert
def test_every_metadata_example_runs_and_prints_what_the_metadata_page_shows(tmp_path):
    """docs/metadata.md: one example per kind of model, each written, inspected and read back."""
    assert sum(example.command.startswith("graphtool transform ") for example in METADATA) >= 2
    problems = failures(METADATA, _scratch(tmp_path))
    assert not problems, "\n\n".join(problems)


def failures(found: list[Example], cwd: Path) -> list[str]:
    """Run `found` in order in `cwd`: what exited otherwise or did not print what it shows."""
    problems = []
    for example in found:
        argv = [sys.executable, "-c", example.command] if example.python else ["bash", "-c", example.command]
        result = _run(argv, cwd)
        printed = (result.stdout + result.stderr).splitlines()
        if result.returncode != example.expected_status:
            problems.append(f"$ {example.command}\n  exit {result.returncode}, the page implies "
                            f"{example.expected_status}\n  stderr: {result.stderr[-500:]}")
            continue
        missing = [line for line in example.shown if not shown_in(line, printed)]
        if missing:
            problems.append(f"$ {example.command}\n  not printed: {missing}\n  printed: {printed}")
    return problems


def test_the_readme_python_example_runs_and_prints_what_it_shows(tmp_path):
    assert_prints_what_it_shows(page("README.md"), tmp_path)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.litert
def test_the_python_page_examples_run_and_print_what_they_show(tmp_path):
    assert_prints_what_it_shows(page("docs/python.md"), tmp_path)


def test_the_example_transform_registers_runs_and_prints_what_it_shows(tmp_path):
    assert_prints_what_it_shows(page("docs/writing-a-transform.md"), tmp_path)


def _listed(bullet: str, text: str) -> set[str]:
    match = re.search(rf"- \*\*{re.escape(bullet)}.*?\*\*(.*?)(?=\n- \*\*|\n\n)", text, re.S)
    assert match, bullet
    return set(re.findall(r"`([a-z0-9_]+)`", match.group(1)))


def test_the_gtt_transform_lists_match_the_registry():
    text = page("docs/comparison.md")
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


@pytest.mark.slow
@pytest.mark.tf
def test_the_gtt_batch_norm_table_is_measured(tmp_path):
    text = page("docs/comparison.md")
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


GZIP_TOLERANCE = 0.01  # gzip sizes depend on the zlib build; everything else must match exactly


def _table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of each data row of a table printed with columns two or more spaces apart."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines if line.strip() and not line.startswith("---")]
    return rows[1:]  # after the header


def _same_rows(shown: list[list[str]], printed: list[list[str]], gzip_column: int) -> bool:
    if len(shown) != len(printed) or any(len(a) != len(b) for a, b in zip(shown, printed)):
        return False
    for row_a, row_b in zip(shown, printed):
        for column, (a, b) in enumerate(zip(row_a, row_b)):
            if column == gzip_column:
                size_a, size_b = (int(x.rstrip(" B").replace(",", "")) for x in (a, b))
                if abs(size_a - size_b) > GZIP_TOLERANCE * size_b:
                    return False
            elif a != b:
                return False
    return True


def test_the_demo_table_comparison_allows_only_gzip_noise():
    header = ["model  file size  gzip size", "-----  ---------  ---------"]
    rows = _table_rows(header + ["float  141,204 B  128,854 B"])
    assert _same_rows(rows, _table_rows(header + ["float  141,204 B  128,900 B"]), 2)
    assert not _same_rows(rows, _table_rows(header + ["float  141,205 B  128,854 B"]), 2)
    assert not _same_rows(rows, _table_rows(header + ["float  141,204 B  140,000 B"]), 2)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.litert
@pytest.mark.tfmot
@pytest.mark.sklearn  # demo/run.py's needs, as tests/test_demo.py marks them
def test_the_readme_demo_table_is_what_make_demo_prints(tmp_path):
    text = page("README.md")
    quick = text[text.index("## Quick start"):text.index("\n## ", text.index("## Quick start") + 1)]
    (block,) = re.findall(r"^```\n(model .*?)^```", quick, re.S | re.M)
    result = _run([sys.executable, str(ROOT / "demo" / "run.py"), "--out", str(tmp_path)], ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", f"the demo printed runtime logs or warnings:\n{result.stderr[-3000:]}"
    printed = result.stdout.strip()  # its table and nothing else
    header = block.splitlines()[0]
    assert printed.splitlines()[0] == header
    gzip_column = re.split(r"\s{2,}", header.strip()).index("gzip size")
    assert _same_rows(_table_rows(block.splitlines()), _table_rows(printed.splitlines()), gzip_column), \
        f"README's demo table differs from what demo/run.py prints:\n{printed}"


def test_the_fuzzing_commands_use_options_fuzz_run_has():
    (block,) = re.findall(r"^```sh\n(.*?)^```", page("docs/fuzzing.md"), re.S | re.M)
    commands = [line.split("#")[0].split() for line in block.splitlines() if line.strip()]
    shown = {option.split("=")[0] for words in commands if words[:2] == ["python", "fuzz/run.py"]
             for option in words if option.startswith("--")}
    assert shown
    result = _run([sys.executable, "fuzz/run.py", "--help"], ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {option for option in shown if option not in result.stdout} == set()
    makefile = page("Makefile")
    variables = {word.split("=")[0] for words in commands if words[:2] == ["make", "fuzz"] for word in words[2:]}
    assert variables and all(re.search(rf"^{name}\s*\?=", makefile, re.M) for name in variables)
