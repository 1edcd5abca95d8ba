"""Model files <-> Graph: format detection, loading, and atomic saving."""
from __future__ import annotations

import importlib
import mmap
import os
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

from ..errors import FormatError, GraphtoolWarning, UnknownFormatError
from ..ir import Graph

READERS = ("graphdef", "savedmodel", "tflite")  # this package's modules reading each format


def _reader(name: str) -> ModuleType:
    """The module of READERS reading format `name`, imported on first use: reading a .tflite
    imports no protobuf, reading a .pb no flatbuffer codec, neither the SavedModel reader."""
    return importlib.import_module(f"{__name__}.{name}")


def __getattr__(name: str) -> ModuleType:
    """`formats.graphdef`, `formats.savedmodel`, `formats.tflite` as attributes too."""
    if name in READERS:
        return _reader(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# suffix -> (format, text?)
SUFFIXES = {
    ".pb": ("graphdef", False),
    ".graphdef": ("graphdef", False),
    ".pbtxt": ("graphdef", True),
    ".pb.txt": ("graphdef", True),
    ".tflite": ("tflite", False),
}
TFLITE_IDENTIFIER = b"TFL3"
MMAP_BYTES = 1 << 20  # TFLite files from 1 MiB are memory-mapped: no copy of the weights


def _suffix(path: str) -> str:
    name = os.path.basename(path).lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return os.path.splitext(name)[1]


class SuffixWarning(GraphtoolWarning):
    """A model file's suffix names another format than its bytes hold (it was read by its bytes)."""


Encoding = tuple[str, bool]  # (format, text)
TFLITE, BINARY_GRAPHDEF, TEXT_GRAPHDEF = ("tflite", False), ("graphdef", False), ("graphdef", True)
NAMES = {TFLITE: "TFLite", BINARY_GRAPHDEF: "binary GraphDef", TEXT_GRAPHDEF: "text GraphDef"}
TEXT_STARTS = (b"node ", b"node{", b"libra", b"versi")  # how text GraphDefs begin


def detect(path: str | None, data: bytes) -> tuple[str, bool]:
    """(format, text) a model most likely is: TFLite when its bytes carry TFLite's file
    identifier, else a GraphDef, as text or binary by its suffix or, without one, its bytes."""
    return candidates(path, data)[0]


def candidates(path: str | None, data: bytes) -> list[Encoding]:
    """The encodings worth trying for a model, most likely first. The bytes decide what they
    can (TFLite's file identifier, the first word of a text GraphDef): then, or where the
    suffix agrees with them, one encoding is tried, so its error is the one reported. TFLite
    comes last otherwise: its error says what the file identifier is."""
    if bytes(data[4:8]) == TFLITE_IDENTIFIER:
        return [TFLITE]
    claimed = SUFFIXES.get(_suffix(path)) if path is not None else None
    if not data:
        return [claimed or BINARY_GRAPHDEF]
    if bytes(data[:4096]).lstrip()[:5] in TEXT_STARTS:
        return [TEXT_GRAPHDEF, TFLITE] if claimed == TFLITE else [TEXT_GRAPHDEF]
    if claimed == BINARY_GRAPHDEF or path is None:  # bytes from Python: their reader's error, precisely
        return [BINARY_GRAPHDEF]
    also_text = [TEXT_GRAPHDEF] if claimed == TEXT_GRAPHDEF else []  # a text GraphDef may open with a comment
    return [BINARY_GRAPHDEF, *also_text, TFLITE]


def looks_like_model(path: str) -> bool:
    """Whether a file found in a directory is worth reading as a model: its suffix is one
    graphtool reads, or its bytes carry TFLite's file identifier (a `.bin`, a `.lite`)."""
    if _suffix(path) in SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(8)[4:8] == TFLITE_IDENTIFIER
    except OSError:
        return False


def _reason(encoding: Encoding, exc: FormatError) -> str:
    """What the reader of `encoding` said, without repeating what it was not."""
    message = exc.message.removeprefix(f"not a {NAMES[encoding]}: ")
    return f"{exc.where}: {message}" if exc.where else message


def _parse(data: bytes, path: str | None) -> Graph:
    """Read `data` as the first encoding that parses; a SuffixWarning when it is not the one
    the suffix names; one FormatError naming every encoding tried when none does."""
    tried: list[tuple[Encoding, FormatError]] = []
    for encoding in candidates(path, data):
        fmt, text = encoding
        try:
            reader = _reader(fmt)
            graph = reader.read(data, text=text, source=path) if fmt == "graphdef" else reader.read(data, source=path)
        except FormatError as exc:
            tried.append((encoding, exc))
            continue
        claimed = SUFFIXES.get(_suffix(path)) if path is not None else None
        if claimed is not None and claimed[0] != fmt:
            warnings.warn(SuffixWarning(f"{path}: the suffix says {NAMES[claimed]}, the bytes are {NAMES[encoding]}; "
                                        f"read as {NAMES[encoding]}"), stacklevel=3)
        return graph
    if len(tried) == 1:
        raise tried[0][1]
    reasons = "; ".join(f"not {NAMES[encoding]} ({_reason(encoding, exc)})" for encoding, exc in tried)
    raise UnknownFormatError(f"not a model graphtool reads: {reasons}")


def load(source: str | os.PathLike | bytes) -> Graph:
    """Read a model from a path or from bytes into a Graph (a SavedModel directory too:
    its serving signature as a GraphDef, see graphtool.formats.savedmodel)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path = bytes(source), None
    else:
        path = os.fspath(source)
        if os.path.isdir(path) and _reader("savedmodel").is_saved_model(path):  # read with TensorFlow
            graph = _reader("savedmodel").read(path)
            graph.meta["source"] = path
            return graph
        data = _read_file(path)
    try:
        graph = _parse(data, path)
    except FormatError as exc:
        raise exc.with_source(path or "<bytes>") from None
    graph.meta["source"] = path
    return graph


def dumps(graph: Graph, path: str | None = None, text: bool | None = None,
          allow_unknown: bool = False) -> bytes:
    """Serialize `graph` in its format (the suffix of `path` decides text or binary)."""
    return b"".join(_parts(graph, path, text, allow_unknown))


def _parts(graph: Graph, path: str | None, text: bool | None, allow_unknown: bool) -> list:
    fmt, suffix_text = (SUFFIXES.get(_suffix(path), (None, None)) if path else (None, None))
    fmt = fmt or graph.format
    if fmt != graph.format:
        raise FormatError(f"cannot write a {graph.format} graph as {fmt}", source=path)
    try:
        if fmt == "graphdef":
            graphdef = _reader(fmt)
            if text is None:
                text = suffix_text if suffix_text is not None else bool(graph.meta.get(graphdef.keys.TEXT))
            return [graphdef.write(graph, text=text)]
        return _reader("tflite").write_parts(graph, allow_unknown=allow_unknown)
    except FormatError as exc:
        raise exc.with_source(path or "<graph>") from None


def save(graph: Graph, path: str | os.PathLike, text: bool | None = None,
         allow_unknown: bool = False) -> None:
    """Write `graph` to `path` atomically: a temporary file in the same folder, then rename.
    `allow_unknown` writes a TFLite model even if fields the schema does not know are dropped."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FormatError("is a directory; give a file name for the output", source=path)
    unfrozen = _reader("savedmodel").unfrozen(graph) if graph.format == "graphdef" else []
    if unfrozen:
        raise FormatError(f"variables {', '.join(unfrozen[:3])} hold values only in memory (written by the "
                          "SavedModel's graph): run strip_pruning first", source=path)
    if _suffix(path) not in SUFFIXES:
        raise UnknownFormatError(f"unknown model suffix {_suffix(path)!r}; expected one of "
                                 f"{', '.join(SUFFIXES)}", source=path)
    atomic_write(path, _parts(graph, path, text, allow_unknown))


def atomic_write(path: str, parts: list) -> None:
    """Write the byte chunks `parts` to a temporary file beside `path`, then rename it, so a
    failure leaves no output (and no temporary) behind. The file gets the usual permissions
    (those of the file it replaces, else 0666 less the umask). OS errors become FormatError
    naming the output."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise FormatError("is a directory; give a file name for the output", source=path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".graphtool-", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise FormatError(f"cannot write here: {exc.strerror or exc}", source=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            for part in parts:
                handle.write(part)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise FormatError(f"cannot write: {exc.strerror or exc}", source=path) from None
        raise


def _file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _read_file(path: str) -> bytes | mmap.mmap:
    """The file's bytes; large TFLite files are memory-mapped, so constants stay views
    into the file and only what is touched is read."""
    try:
        if os.path.isdir(path):
            raise FormatError("is a directory, not a model file", source=path)
        size = os.path.getsize(path)
        if size >= MMAP_BYTES and _suffix(path) == ".tflite":
            with open(path, "rb") as handle:
                return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError("no such file", source=path) from None
    except PermissionError:
        raise FormatError("permission denied", source=path) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not a model file", source=path) from None
