"""Hostile and broken inputs at the command line: exit 2 and one line naming the file,
outputs written atomically (a failure leaves no output and no temporary file, and an
existing output untouched), the input never modified, OUT == IN refused without
--in-place, and nothing in a model executed, evaluated or followed.

"Nothing followed" is proven in-process with an audit hook (sys.addaudithook): Python
raises an audit event for every open() / io.open / os.open / open_code, exec, compile,
subprocess, os.system, pickle lookup, socket and more, whoever calls them, so the hook
sees more than monkeypatching builtins.open and os.open would. While a test records,
the hook keeps every event; the tests then assert that the only files opened are the
model and the output's temporary file, and that no event mentions a path or code taken
from the model.
"""
from __future__ import annotations

import ast
import contextlib
import copy
import errno
import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphtool
from graphtool.cli.main import main
from graphtool.formats.graphdef import messages as pb
from graphtool.formats.tflite.flatbuf import Decoder, Encoder
from graphtool.formats.tflite.schema import load_schema

from ..conftest import FIXTURES, GRAPHDEF_FIXTURES, TFLITE_FIXTURES

CNN_PB = GRAPHDEF_FIXTURES / "keras2_cnn.pb"
CNN_TFLITE = TFLITE_FIXTURES / "float_cnn.tflite"
GRAPHTOOL_DIR = Path(graphtool.__file__).resolve().parent
PWNED = "/tmp/graphtool-hostile-pwned"
HOSTILE_PATHS = ("/etc/passwd", "../../x", "../../../../etc/shadow", "/dev/zero", PWNED)
HOSTILE_CODE = (f"__import__('os').system('touch {PWNED}')", f"eval(\"open('{PWNED}', 'w')\")",
                f"$(touch {PWNED})", "{0.__class__.__mro__[1].__subclasses__()}", "%s%n")


# -- running the command line in this process ------------------------------------------
def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def fingerprint(path: Path) -> tuple:
    data = path.read_bytes()
    st = path.stat()
    return hashlib.sha256(data).hexdigest(), st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)


def assert_one_error_line(err: str, path: Path | None = None) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphtool: error: "), lines[0]
    if path is not None:
        assert lines[0].startswith(f"graphtool: error: {path}: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- broken inputs ---------------------------------------------------------------------
def _broken_inputs() -> dict[str, tuple[str, bytes]]:
    """name -> (suffix, bytes) of inputs every reader must refuse when loading."""
    tflite = CNN_TFLITE.read_bytes()
    binary = CNN_PB.read_bytes()
    deep = ("node { name: 'd' op: 'NoOp' attr { key: 'a' value { "
            + "func { name: 'f' attr { key: 'a' value { " * 400 + "} } " * 400 + "} } }")
    empty_input = pb.GraphDef()
    empty_input.node.add(name="a", op="NoOp")
    empty_input.node.add(name="b", op="Identity", input=[":0"])
    flipped = bytearray(tflite)
    flipped[0:4] = (len(tflite) + 100).to_bytes(4, "little")  # root offset past the end
    return {
        "empty.pb": (".pb", b""),
        "truncated.pb": (".pb", binary[: len(binary) // 3]),
        "length_2**63.pb": (".pb", binary[:1] + b"\x80" * 9 + b"\x01" + binary[2:]),
        "deep_nesting.pbtxt": (".pbtxt", deep.encode()),
        "not_utf8.pbtxt": (".pbtxt", b"node { name: '\xff\xfe' }"),
        "input_names_no_node.pb": (".pb", empty_input.SerializeToString()),
        "empty.tflite": (".tflite", b""),
        "truncated.tflite": (".tflite", tflite[:100]),
        "root_past_end.tflite": (".tflite", bytes(flipped)),
        "wrong_identifier.tflite": (".tflite", tflite[:4] + b"TFL2" + tflite[8:]),
    }


BROKEN = _broken_inputs()


@pytest.fixture
def broken(tmp_path):
    def make(name: str) -> Path:
        suffix, data = BROKEN[name]
        folder = tmp_path / "in"
        folder.mkdir(exist_ok=True)
        path = folder / (name.rsplit(".", 1)[0] + suffix)
        path.write_bytes(data)
        return path
    return make


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_bad_input_exits_2_with_one_line_every_command(capsys, tmp_path, broken, name):
    path = broken(name)
    before = fingerprint(path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / ("result" + path.suffix)
    commands = [("inspect", path), ("inspect", path, "--json", "--structure"), ("convert", path, output),
                ("transform", path, output, "--transforms", "sort_by_execution_order"),
                ("transform", "--in_graph", path, "--out_graph", output, "--transforms", "sort_by_execution_order")]
    for command in commands:
        code, out, err = cli(capsys, *command)
        assert code == 2, (command, err)
        assert_one_error_line(err, path)
        assert out == "", command
        assert listing(out_dir) == [], f"{command} left {listing(out_dir)}"
    assert fingerprint(path) == before
    assert listing(path.parent) == [path.name]


@pytest.mark.parametrize("name", ["deep_nesting.pbtxt", "root_past_end.tflite"])
def test_bad_input_through_the_real_entry_point(tmp_path, broken, name):
    path = broken(name)
    result = subprocess.run([sys.executable, "-m", "graphtool", "inspect", str(path)], capture_output=True,
                            text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert_one_error_line(result.stderr, path)


def test_errors_say_where_in_the_file(capsys, broken):
    """The message names the file, then where in it (a byte, a line and column, a node)."""
    expected = {"truncated.pb": "byte ", "length_2**63.pb": "byte ", "deep_nesting.pbtxt": "line 1, column ",
                "not_utf8.pbtxt": "byte 14",
                "input_names_no_node.pb": "node 1 ('b')", "root_past_end.tflite": "offset"}
    for name, where in expected.items():
        path = broken(name)
        line = assert_one_error_line(cli(capsys, "inspect", path)[2], path)
        assert where in line[len(f"graphtool: error: {path}: "):], line


def test_a_constant_tensorflow_imports_but_cannot_expand_is_kept_and_refused_when_used(capsys, tmp_path):
    """4 TB of zeros claimed in a few bytes: TensorFlow imports the graph (it expands the
    constant only when it runs it), so graphtool reads it, keeps it as it is and warns; what
    needs its values exits 2 with one line naming the file and the node."""
    message = pb.GraphDef()
    node = message.node.add(name="c", op="Const")
    node.attr["dtype"].type = 1
    tensor = node.attr["value"].tensor
    tensor.dtype = 1
    for size in (1 << 20, 1 << 20):
        tensor.tensor_shape.dim.add().size = size
    tensor.float_val.append(0.0)
    path = tmp_path / "huge_broadcast.pb"
    path.write_bytes(message.SerializeToString(deterministic=True))
    code, out, err = cli(capsys, "inspect", path)
    assert code == 0 and err == "", err
    assert f"Warning: {path}: node 0 ('c') attr 'value': tensor of shape [1048576, 1048576] is stored as 1" in out
    output = tmp_path / "out.pb"
    assert cli(capsys, "convert", path, output)[0] == 0
    assert output.read_bytes() == path.read_bytes()
    output.unlink()
    code, out, err = cli(capsys, "transform", path, output, "--transforms", "quantize_weights(minimum_size=0)")
    assert code == 2 and "node 0 ('c') attr 'value'" in assert_one_error_line(err, path)
    assert listing(tmp_path) == ["huge_broadcast.pb"]


# -- atomic outputs --------------------------------------------------------------------
@pytest.fixture
def workspace(tmp_path):
    model = tmp_path / "model.pb"
    model.write_bytes(CNN_PB.read_bytes())
    previous = tmp_path / "out.pb"
    previous.write_bytes(b"an older output that must survive a failed run")
    return model, previous


def test_failed_transform_leaves_an_existing_output_untouched(capsys, workspace):
    model, previous = workspace
    before, old = fingerprint(model), fingerprint(previous)
    for spec in ("remove_nodes(op=Identity) bogus_transform", "rename_node(old_node_name=nope, new_node_name=x)",
                 "strip_unused_nodes(shape=\"1,,2\")", "quantize_weights(minimum_size=lots)"):
        code, out, err = cli(capsys, "transform", model, previous, "--transforms", spec)
        assert code == 2, (spec, err)
        assert_one_error_line(err)
        assert fingerprint(previous) == old and fingerprint(model) == before
        assert listing(model.parent) == ["model.pb", "out.pb"], spec


class _Boom:
    """Stands for the rest of a model: writing it fails as a full disk would, or is
    interrupted (Ctrl-C), after the first half of the model went out."""

    def __init__(self, failure: str):
        self.failure = failure


class _BoomWriter:
    """The temporary file's handle: writes bytes, fails on a _Boom."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, data):
        if isinstance(data, _Boom):
            if data.failure == "interrupted":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.handle.write(data)

    def __enter__(self):
        self.handle.__enter__()
        return self

    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)


@pytest.mark.parametrize("failure", ["disk_full", "interrupted", "rename_fails"])
def test_a_write_that_fails_midway_leaves_no_output_and_no_temporary(capsys, monkeypatch, workspace, failure):
    from graphtool import formats

    model, previous = workspace
    old = fingerprint(previous)
    real_parts, real_fdopen = formats._parts, os.fdopen
    if failure == "rename_fails":
        def refuse(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(formats.os, "replace", refuse)
    else:
        def half_then_boom(*args, **kwargs):
            first = bytes(real_parts(*args, **kwargs)[0])
            return [first[: len(first) // 2], _Boom(failure)]
        monkeypatch.setattr(formats, "_parts", half_then_boom)
        monkeypatch.setattr(formats.os, "fdopen", lambda fd, *a, **k: _BoomWriter(real_fdopen(fd, *a, **k)))
    for command in (("convert", model, previous), ("transform", model, previous, "--transforms", "remove_device")):
        code = main([str(c) for c in command])
        err = capsys.readouterr().err
        if failure == "interrupted":
            assert code == 130 and err == "graphtool: interrupted\n", (code, err)
        else:
            assert code == 2 and len(err.splitlines()) == 1, (code, err)
        assert fingerprint(previous) == old, command
        assert listing(model.parent) == ["model.pb", "out.pb"], f"{command}: {listing(model.parent)}"


def test_successful_outputs_replace_atomically_and_leave_no_temporary(capsys, workspace):
    model, previous = workspace
    before = fingerprint(model)
    assert cli(capsys, "convert", model, previous)[0] == 0
    assert previous.read_bytes() == CNN_PB.read_bytes()
    text = model.parent / "model.pbtxt"
    assert cli(capsys, "transform", model, text, "--transforms", "remove_device")[0] == 0
    assert graphtool.load(text).format == "graphdef"
    assert fingerprint(model) == before
    assert listing(model.parent) == ["model.pb", "model.pbtxt", "out.pb"]


# -- the input is never modified; OUT == IN needs --in-place ---------------------------
def _aliases(model: Path) -> dict[str, Path]:
    link = model.parent / "link.pb"
    link.symlink_to(model.name)
    hard = model.parent / "hard.pb"
    os.link(model, hard)
    return {"same": model, "dot": Path(os.curdir) / os.path.relpath(model), "absolute": model.resolve(),
            "symlink": link, "hardlink": hard, "dotdot": model.parent / ".." / model.parent.name / model.name}


@pytest.mark.parametrize("alias", ["same", "dot", "absolute", "symlink", "hardlink", "dotdot"])
def test_output_that_is_the_input_is_refused_without_in_place(capsys, monkeypatch, tmp_path, alias):
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model.pb"
    model.write_bytes(CNN_PB.read_bytes())
    target = _aliases(model)[alias]
    before = fingerprint(model)
    for command in (("convert", model, target),
                    ("transform", model, target, "--transforms", "remove_device"),
                    ("transform", "--in_graph", model, "--out_graph", target, "--transforms", "remove_device")):
        code, out, err = cli(capsys, *command)
        assert code == 2, (command, err)
        line = assert_one_error_line(err)
        assert "--in-place" in line and str(target) in line
        assert fingerprint(model) == before


def test_in_place_rewrites_atomically_and_a_failed_in_place_run_changes_nothing(capsys, tmp_path):
    model = tmp_path / "model.pb"
    model.write_bytes(CNN_PB.read_bytes())
    before = fingerprint(model)
    code, _, err = cli(capsys, "transform", model, model, "--in-place", "--transforms", "bogus_transform")
    assert code == 2 and fingerprint(model) == before, err
    code, _, err = cli(capsys, "transform", model, model, "--in-place", "--outputs", "Identity",
                       "--transforms", "remove_nodes(op=Identity)")
    assert code == 0, err
    assert len(graphtool.load(model)) < len(graphtool.load(CNN_PB))
    assert listing(tmp_path) == ["model.pb"]
    code, _, err = cli(capsys, "convert", model, model, "--in-place")
    assert code == 0, err
    assert listing(tmp_path) == ["model.pb"]


def test_inputs_are_never_modified_by_any_command(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for fixture in sorted(GRAPHDEF_FIXTURES.glob("*.pb*")) + sorted(TFLITE_FIXTURES.glob("*.tflite")):
        model = tmp_path / fixture.name
        model.write_bytes(fixture.read_bytes())
        before = fingerprint(model)
        for command in (("inspect", model, "--json", "--structure"), ("convert", model, out / fixture.name),
                        ("transform", model, out / fixture.name, "--transforms", "sort_by_execution_order")):
            code, _, err = cli(capsys, *command)
            assert code in (0, 2), (command, err)
            assert fingerprint(model) == before, command
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        p.name for p in list(GRAPHDEF_FIXTURES.glob("*.pb*")) + list(TFLITE_FIXTURES.glob("*.tflite")))


# -- errors on the output side are one line too, and outputs get the usual permissions


def test_output_in_a_missing_folder_is_one_line(capsys, tmp_path):
    code, _, err = cli(capsys, "convert", CNN_PB, tmp_path / "missing" / "out.pb")
    assert code == 2
    assert_one_error_line(err, tmp_path / "missing" / "out.pb")


def test_full_disk_is_one_line(capsys, monkeypatch, tmp_path):
    from graphtool import formats

    def refuse(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(formats.os, "replace", refuse)
    code, _, err = cli(capsys, "convert", CNN_PB, tmp_path / "out.pb")
    assert code == 2
    assert_one_error_line(err, tmp_path / "out.pb")
    assert listing(tmp_path) == []


def test_output_that_is_a_folder_is_one_line(capsys, tmp_path):
    folder = tmp_path / "out.pb"
    folder.mkdir()
    code, _, err = cli(capsys, "convert", CNN_PB, folder)
    assert code == 2
    assert_one_error_line(err, folder)
    assert listing(tmp_path) == ["out.pb"]


def test_missing_input_with_an_existing_output_is_one_line(capsys, tmp_path):
    existing = tmp_path / "out.pb"
    existing.write_bytes(b"keep me")
    code, _, err = cli(capsys, "convert", tmp_path / "missing.pb", existing)
    assert code == 2
    assert_one_error_line(err, tmp_path / "missing.pb")
    assert existing.read_bytes() == b"keep me"


def test_transform_error_on_a_model_that_reads_names_the_file(capsys, tmp_path):
    dangling = pb.GraphDef()
    dangling.node.add(name="a", op="Identity", input=["missing"])
    model = tmp_path / "dangling.pb"
    model.write_bytes(dangling.SerializeToString())
    code, _, err = cli(capsys, "transform", model, tmp_path / "out.pb", "--transforms", "sort_by_execution_order")
    assert code == 2
    assert_one_error_line(err, model)


def test_outputs_get_the_usual_permissions(capsys, tmp_path):
    umask = os.umask(0o022)
    try:
        out = tmp_path / "out.pb"
        assert cli(capsys, "convert", CNN_PB, out)[0] == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(umask)


# -- nothing in a model is executed, evaluated or followed -----------------------------
_RECORD: list | None = None


def _audit(event: str, args: tuple) -> None:
    if _RECORD is not None:
        _RECORD.append((event, args))


sys.addaudithook(_audit)  # lives as long as the process; records only inside recording()


@contextlib.contextmanager
def recording():
    global _RECORD
    events: list = []
    _RECORD = events
    try:
        yield events
    finally:
        _RECORD = None


RUNS_CODE = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
             "os.fork", "os.forkpty", "pickle.find_class", "marshal.loads", "ctypes.dlopen", "ctypes.dlsym",
             "socket.connect", "socket.getaddrinfo", "urllib.Request", "webbrowser.open", "import"}


TAINT = ("__import__", "/etc/passwd", "../../x", "touch", "eval(", "__class__", "__mro__", "etc/shadow", PWNED)


def _tainted_code(events) -> list[str]:
    """compile/exec events whose source or code holds text from a model or a command line.
    (typing.get_type_hints evaluates graphtool's own annotations, e.g. "list[str]", when a
    transform's parameters are converted: graphtool's source, not user data.)"""
    found = []
    for event, args in events:
        if event == "compile":
            text = repr(args[0])
        elif event == "exec":
            code = args[0]
            text = repr((getattr(code, "co_filename", ""), getattr(code, "co_names", ()),
                         getattr(code, "co_consts", ())))
        else:
            continue
        if any(t in text for t in TAINT):
            found.append(f"{event}: {text[:200]}")
    return found


def _opened(events) -> list[str]:
    paths = []
    for event, args in events:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            paths.append(os.path.realpath(os.fsdecode(args[0])))
    return paths


def hostile_graphdef() -> bytes:
    """A GraphDef whose strings look like code and paths: ops, devices, attrs, string
    constants, function names, input names."""
    graph = pb.GraphDef()
    graph.versions.producer = 1
    for i, text in enumerate(HOSTILE_PATHS + HOSTILE_CODE):
        node = graph.node.add(name=f"s{i}", op="Const", device=text)
        node.attr["dtype"].type = 7
        node.attr["value"].tensor.dtype = 7
        node.attr["value"].tensor.string_val.append(text.encode())
        node.attr["_class"].list.s.append(("loc:@" + text).encode())
        node.attr["path"].s = text.encode()
        node.attr["f"].func.name = text
    graph.node.add(name="code_op", op=HOSTILE_CODE[0], input=["s0", "^s1"])
    graph.node.add(name="path_op", op="/etc/passwd", input=["code_op"]).attr["shared_name"].s = b"../../x"
    function = graph.library.function.add()
    function.signature.name = "../../x"
    function.ret["out"] = "/etc/passwd:0"
    return graph.SerializeToString()


def hostile_tflite() -> bytes:
    """float_cnn.tflite with paths and code in its description, metadata names and values,
    custom code, tensor names, signature key, and an external buffer group (a weights file
    the newer schema lets a model name) pointing at /etc/passwd."""
    schema = load_schema()
    model = copy.deepcopy(Decoder(CNN_TFLITE.read_bytes(), schema).root("Model"))
    model["description"] = HOSTILE_CODE[0].encode()
    buffers = model["buffers"]
    for text in HOSTILE_PATHS:
        buffers.append({"data": np.frombuffer(text.encode(), np.uint8)})
        model.setdefault("metadata", []).append({"name": text.encode(), "buffer": len(buffers) - 1})
    model["operator_codes"].append({"builtin_code": 32, "deprecated_builtin_code": 32, "version": 1,
                                    "custom_code": b"/etc/passwd"})
    model["subgraphs"][0]["tensors"][0]["name"] = b"../../x"
    for signature in model.get("signature_defs") or []:
        signature["signature_key"] = HOSTILE_CODE[1].encode()
    model["external_buffer_groups"] = [{"name": b"/etc/passwd"}]
    model["external_buffers"] = [{"id": 1, "group": 0, "offset": 0, "length": 16, "packing": b"../../x"}]
    return b"".join(bytes(p) for p in Encoder(schema).finish(model, "Model"))


@pytest.fixture
def hostile_models(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "hostile.pb").write_bytes(hostile_graphdef())
    (folder / "hostile.tflite").write_bytes(hostile_tflite())
    from google.protobuf import text_format

    text = text_format.MessageToString(pb.GraphDef.FromString(hostile_graphdef()))
    (folder / "hostile.pbtxt").write_text(text)
    return folder


@pytest.mark.parametrize("name", ["hostile.pb", "hostile.pbtxt", "hostile.tflite"])
def test_paths_and_code_in_a_model_are_never_followed_or_run(capsys, tmp_path, hostile_models, name):
    model = hostile_models / name
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / ("result" + model.suffix)
    commands = [("inspect", model), ("inspect", model, "--json", "--structure"),
                ("convert", model, output, "--allow-unknown-fields"),
                ("transform", model, output, "--allow-unknown-fields", "--transforms",
                 "sort_by_execution_order")]
    for command in commands:  # once to import whatever each command imports lazily
        cli(capsys, *command)
    assert graphtool.load(model) is not None  # the model reads: its strings are inert data
    for command in commands:
        if output.exists():
            output.unlink()
        with recording() as events:
            code, out, err = cli(capsys, *command)
        assert code == 0, (command, err)
        ran = [(e, repr(a)[:200]) for e, a in events if e in RUNS_CODE] + _tainted_code(events)
        assert not ran, f"{command}: {ran}"
        allowed = {os.path.realpath(model)}
        opened = [p for p in _opened(events) if p not in allowed]
        if command[0] in ("convert", "transform"):  # the output's temporary file, in the output's folder
            opened = [p for p in opened if not (os.path.dirname(p) == os.path.realpath(out_dir)
                                                and os.path.basename(p).startswith(".graphtool-"))]
        assert not opened, f"{command} opened {opened}"
        mentioned = [(e, repr(a)[:200]) for e, a in events if e not in ("compile", "exec")
                     and any(h in repr(a) for h in HOSTILE_PATHS)]
        assert not mentioned, f"{command}: events name paths from the model: {mentioned}"
        assert not os.path.exists(PWNED)
        assert listing(out_dir) in ([], [output.name])


def test_strings_from_the_model_survive_as_data(hostile_models):
    """The hostile strings are kept (lossless), not interpreted: they are read back as text."""
    graph = graphtool.load(hostile_models / "hostile.pb")
    assert graph.node("code_op").op == HOSTILE_CODE[0]
    assert graph.node("s0").meta["device"] == "/etc/passwd"
    assert graph.node("s0").outputs[0].data.reshape(-1).tolist() == [b"/etc/passwd"]
    tflite = graphtool.load(hostile_models / "hostile.tflite")
    assert tflite.meta["metadata"]["/etc/passwd"] == b"/etc/passwd"
    assert tflite.meta["description"] == HOSTILE_CODE[0]


def test_transform_strings_are_parsed_never_evaluated():
    """spec.py, registry.py and pipeline.py call no eval/exec/compile/import machinery,
    and parsing and planning hostile strings raises no code-running audit event."""
    banned = {"eval", "exec", "compile", "__import__", "literal_eval", "import_module", "loads", "system",
              "Popen"}
    for module in ("spec.py", "registry.py", "pipeline.py"):
        tree = ast.parse((GRAPHTOOL_DIR / "passes" / module).read_text())
        calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                 for node in ast.walk(tree) if isinstance(node, ast.Call)}
        # the registry imports transform modules its index and folders name (never a string's)
        # and reads its index (package data) with json.loads
        allowed = {"import_module", "loads"} if module == "registry.py" else set()
        assert not calls & banned - allowed, (module, calls & banned)
    from graphtool.passes import SpecError, all_passes, parse

    all_passes()  # registers every transform (imports) before recording
    graph = graphtool.load(CNN_PB)
    specs = [f'remove_nodes(op="{code}")' for code in HOSTILE_CODE] + \
            [f"set_device(device={path})" for path in ("/etc/passwd", "../../x")] + \
            [f'{code}' for code in HOSTILE_CODE] + ['quantize_weights(minimum_size="__import__(\'os\')")']
    with recording() as events:
        for spec in specs:
            try:
                graphtool.transform(graph.copy(), parse(spec))
            except graphtool.GraphtoolError:
                pass
    ran = [(e, repr(a)[:200]) for e, a in events if e in RUNS_CODE] + _tainted_code(events)
    assert not ran, ran
    assert not os.path.exists(PWNED)
    with pytest.raises(SpecError):
        parse(HOSTILE_CODE[0])


def test_calibration_samples_never_unpickle(tmp_path):
    """An .npz whose member is a pickle (object dtype) is refused without unpickling."""
    samples = pytest.importorskip("graphtool.runtime.samples")
    import io
    import zipfile

    bomb = b"c__builtin__\nopen\n(S'" + PWNED.encode() + b"'\nS'w'\ntR."
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * ((-(10 + len(header) + 1)) % 64) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bomb
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images.npy", member)
    path = tmp_path / "samples.npz"
    path.write_bytes(buffer.getvalue())
    with recording() as events:
        with pytest.raises(graphtool.FormatError, match=str(path)):
            samples.read_npz(path)
    assert not [e for e, _ in events if e == "pickle.find_class"] + _tainted_code(events), [(e, repr(a)[:300]) for e, a in events if e in ("exec", "compile")]
    assert not os.path.exists(PWNED)


def test_no_model_strings_reach_the_disk_outside_the_output(capsys, tmp_path, hostile_models):
    """Converting a hostile model creates exactly one file: the output."""
    before = set(os.listdir("/tmp"))
    output = tmp_path / "result.tflite"
    assert cli(capsys, "convert", hostile_models / "hostile.tflite", output, "--allow-unknown-fields")[0] == 0
    assert graphtool.load(output).meta["metadata"]["../../x"] == b"../../x"
    created = set(os.listdir("/tmp")) - before
    assert not [c for c in created if "pwned" in c or c in ("x", "passwd")]
    assert listing(tmp_path) == ["models", "result.tflite"]


def test_fixture_folders_are_untouched():
    """Nothing above wrote next to the committed fixtures."""
    for folder in (GRAPHDEF_FIXTURES, TFLITE_FIXTURES):
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".graphtool-")]
    assert FIXTURES.is_dir()
