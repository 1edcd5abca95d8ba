"""The runtimes as a second opinion: does LiteRT load and run this .tflite, does TensorFlow
import this GraphDef? Each runtime answers in a long-lived child process (a malformed
flatbuffer may crash LiteRT; importing TensorFlow costs seconds), restarted when it dies.

    python -m fuzz.runtime_oracle litert       # serves requests on stdin/stdout
    python -m fuzz.runtime_oracle tensorflow

A request is one line, the path of a model file; the answer is one line of JSON:
{"ok": true, "fingerprint": "..."} when the runtime loads the model (and, for LiteRT, runs
it on seeded inputs), {"ok": false, "error": "..."} when it refuses it. The fingerprint is
what lossless must keep: LiteRT's output bytes, or TensorFlow's imported graph.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_INPUT_ELEMENTS = 1 << 22  # a claimed input larger than this is not run (only loaded)
ORACLE_TIMEOUT = 10.0  # seconds one answer may take: past it the runtime counts as hung on the model


@dataclass(frozen=True)
class Opinion:
    """The runtime's answer: ok (loads and runs), crashed (the runtime process died or hung on
    it: it does not run either), and what identifies its result."""

    ok: bool
    fingerprint: str = ""
    error: str = ""
    crashed: bool = False


# -- the oracle process ----------------------------------------------------------------------
def _litert_answer(path: str) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        digest = hashlib.sha256()
        rng = np.random.default_rng(0)
        inputs = interpreter.get_input_details()
        for detail in inputs:
            shape = [max(1, int(d)) for d in detail["shape"]]
            if int(np.prod(shape, dtype=np.int64)) > MAX_INPUT_ELEMENTS:
                return {"ok": True, "fingerprint": "loaded; inputs too large to run", "ran": False}
            if list(shape) != list(detail["shape"]):
                interpreter.resize_tensor_input(detail["index"], shape)
        if any(list(d["shape"]) != [max(1, int(x)) for x in d["shape"]] for d in inputs):
            interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            dtype = np.dtype(detail["dtype"])
            shape = tuple(int(d) for d in detail["shape"])
            if dtype == np.bool_:
                value = rng.random(shape) < 0.5
            elif dtype.kind in "iu":
                info = np.iinfo(dtype)
                value = rng.integers(max(info.min, -8), min(info.max, 8) + 1, shape).astype(dtype)
            elif dtype.kind in "fc":
                value = rng.standard_normal(shape).astype(dtype)
            else:  # strings, resources: the model loads; running it needs more than samples
                return {"ok": True, "fingerprint": "loaded; inputs not samplable", "ran": False}
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            value = interpreter.get_tensor(detail["index"])
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return {"ok": True, "fingerprint": digest.hexdigest(), "ran": True}
    except Exception as exc:  # noqa: BLE001 - any refusal is an answer
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _plain(value):
    """A flatc object-API value as plain data: NaN-safe, arrays as lists."""
    import numpy as np

    if hasattr(value, "__dict__"):
        return {key: _plain(item) for key, item in value.__dict__.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item) for item in value]
    if isinstance(value, (float, np.floating)) and value != value:
        return "nan"
    return value.item() if isinstance(value, np.generic) else value


def _litert_same(first: str, second: str) -> dict:
    """Whether two .tflite files hold the same fields, as LiteRT's own flatc-generated object
    API reads them (a parser graphtool did not write)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        models = [schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(Path(p).read_bytes(), 0))
                  for p in (first, second)]
        for model in models:  # an options type the schema does not know reads as no options, as LiteRT takes it
            for subgraph in model.subgraphs or []:
                for operator in subgraph.operators or []:
                    if operator.builtinOptions is None:
                        operator.builtinOptionsType = 0
                    if getattr(operator, "builtinOptions2", None) is None:
                        operator.builtinOptions2Type = 0
        return {"ok": True, "same": _plain(models[0]) == _plain(models[1])}
    except Exception as exc:  # noqa: BLE001 - a file the object API cannot read
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _tensorflow_answer(path: str) -> dict:
    import tensorflow as tf
    from google.protobuf import text_format

    data = Path(path).read_bytes()
    try:
        graph_def = tf.compat.v1.GraphDef()
        if path.endswith(".pbtxt"):
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
        if not graph_def.node and not graph_def.HasField("library") and not graph_def.HasField("versions"):
            # bytes that parse as a message with nothing in it (an empty file, unknown fields only):
            # TensorFlow imports an empty graph, but there is no model there
            return {"ok": False, "error": "no nodes, library or versions: not a model"}
        with tf.Graph().as_default() as graph:
            tf.graph_util.import_graph_def(graph_def, name="")
        imported = graph.as_graph_def()
        digest = hashlib.sha256(imported.SerializeToString(deterministic=True))
        return {"ok": True, "fingerprint": digest.hexdigest()}
    except Exception as exc:  # noqa: BLE001 - any refusal is an answer
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def serve(runtime: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    answer = {"litert": _litert_answer, "tensorflow": _tensorflow_answer}[runtime]
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # runtimes print to stdout; only answers go there
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    if runtime == "tensorflow":
        import tensorflow  # noqa: F401 - pay the import once, before the first request
    else:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        paths = line.rstrip("\n").split("\t")
        reply = answer(paths[0]) if len(paths) == 1 else _litert_same(*paths)
        out.write(json.dumps(reply) + "\n")
        out.flush()


# -- the client ----------------------------------------------------------------------------
def _unlimited() -> None:
    """The fuzz worker caps its address space; the runtime (TensorFlow maps gigabytes) is not
    what is measured."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


class Oracle:
    """A runtime in a child process; ask(path) -> Opinion. A crash or a hang on one model is
    that model's answer (it does not run), and the next question gets a fresh process."""

    def __init__(self, runtime: str, timeout: float = ORACLE_TIMEOUT):
        self.runtime, self.timeout = runtime, timeout
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> subprocess.Popen:
        """The runtime process, started and ready (RuntimeError when it cannot start)."""
        process = subprocess.Popen([sys.executable, "-m", "fuzz.runtime_oracle", self.runtime], cwd=ROOT,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, preexec_fn=_unlimited)
        if process.stdout.readline().strip() != "ready":
            process.kill()
            raise RuntimeError(f"the {self.runtime} oracle did not start (is the test extra installed?)")
        return process

    def ask(self, path: str) -> Opinion:
        answer = self._request(os.path.abspath(path))
        if answer is None:
            return Opinion(False, error=f"the {self.runtime} process died or hung on it", crashed=True)
        return Opinion(answer["ok"], answer.get("fingerprint", ""), answer.get("error", ""))

    def same_fields(self, first: str, second: str) -> bool | None:
        """LiteRT's object API on both files: True when every field is equal, None when it
        cannot read them."""
        answer = self._request(f"{os.path.abspath(first)}\t{os.path.abspath(second)}")
        return answer.get("same") if answer and answer["ok"] else None

    def _request(self, line: str) -> dict | None:
        if self.process is None or self.process.poll() is not None:
            self.process = self.start()
        import select

        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        reply = self.process.stdout.readline() if ready else ""
        if not reply:
            self.close(kill=True)
            self.restarts += 1
            return None
        return json.loads(reply)

    def close(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.stdin.close()
        self.process.wait()
        self.process = None


if __name__ == "__main__":
    serve(sys.argv[1])
