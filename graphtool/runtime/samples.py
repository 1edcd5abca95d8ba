"""Representative samples for running a model: an .npz keyed by input name (samples on the
first axis), a mapping of arrays, or an iterable of batches — checked against the model's
inputs before anything runs.

The .npz reader never unpickles: it reads each member's .npy header itself, refuses object,
structured and non-numeric dtypes, checks the sizes the header and the zip directory claim
against each other (and refuses members expanding more than MAX_RATIO times, beyond
RATIO_FREE_BYTES) before allocating, then reads the bytes straight into the array
(zipfile checks the CRC).
"""
from __future__ import annotations

import ast
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import FormatError

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: what a model input takes
MAX_RATIO = 100  # a deflated member may expand this much (real samples compress far less)...
RATIO_FREE_BYTES = 64 << 20  # ...or to this size whatever its ratio (a deflate bomb expands ~1000x)
CHUNK_BYTES = 1 << 20  # data are read and checked in chunks: no second copy of a large array
SUPPORTED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what np.savez(_compressed) writes
NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 10000  # numpy's own limit


@dataclass(frozen=True)
class InputSpec:
    """One model input: name, numpy dtype and shape (None for unknown dims or rank; the
    first dim is the batch axis), and other names data may give it (a TFLite signature's
    input key)."""

    name: str
    dtype: np.dtype
    shape: tuple | None
    aliases: tuple[str, ...] = ()

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the input insists on, if its first dimension is fixed."""
        return self.shape[0] if self.shape and self.shape[0] is not None else None


# -- .npz files --------------------------------------------------------------------------------

def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of an .npz file by key (member name less `.npy`), validated on the way in.

    Raises FormatError naming the file for anything that is not an .npz of plain numeric
    arrays: not a zip, a member that is not a .npy, a corrupt or truncated member, object,
    structured or string dtypes, sizes that disagree."""
    source = os.fspath(path)
    try:
        archive = zipfile.ZipFile(source)
    except FileNotFoundError:
        raise FormatError("no such file", source=source) from None
    except IsADirectoryError:
        raise FormatError("is a directory, not an .npz file", source=source) from None
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error):
        raise FormatError("not an .npz file (a zip archive of .npy arrays)", source=source) from None
    except NotImplementedError as exc:  # e.g. a zip version zipfile does not read
        raise FormatError(f"unsupported zip archive: {exc}", source=source) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=source) from None
    arrays: dict[str, np.ndarray] = {}
    with archive:
        for info in archive.infolist():
            where = f"member {info.filename!r}"
            if not info.filename.endswith(".npy"):
                raise FormatError("not a .npy array (an .npz holds only NAME.npy members)", source, where)
            key = info.filename[: -len(".npy")]
            if key in arrays:
                raise FormatError("appears twice", source, where)
            arrays[key] = _read_member(archive, info, source, where)
    if not arrays:
        raise FormatError("holds no arrays", source=source)
    return arrays


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, where: str) -> np.ndarray:
    if info.compress_type not in SUPPORTED_COMPRESSION:
        raise FormatError(f"compressed with zip method {info.compress_type}; .npz members are stored "
                          "or deflated", source, where)
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise FormatError(f"stored member claims {info.file_size} bytes in {info.compress_size}", source, where)
    if info.file_size > max(RATIO_FREE_BYTES, MAX_RATIO * info.compress_size):
        raise FormatError(f"expands {info.compress_size:,} compressed bytes to {info.file_size:,}, more than "
                          f"{MAX_RATIO}x (a deflate bomb?)", source, where)
    try:
        with archive.open(info) as member:
            shape, fortran, dtype = _read_header(member, source, where)
            nbytes = math.prod(shape) * dtype.itemsize
            header = member.tell()
            if header + nbytes != info.file_size:
                raise FormatError(f"header says {list(shape)} {dtype} ({nbytes} bytes) but the member "
                                  f"holds {info.file_size - header} bytes of data", source, where)
            array = np.empty(math.prod(shape), dtype)
            _read_into(member, memoryview(array).cast("B"), source, where)
    except FormatError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError, NotImplementedError,
            struct.error) as exc:
        raise FormatError(f"unreadable: {exc}", source, where) from None
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_into(member: IO[bytes], target: memoryview, source: str, where: str) -> None:
    """Fill `target` from `member` chunk by chunk; the member must end exactly there (reading
    to its end makes zipfile check the CRC)."""
    done = 0
    while done < len(target):
        chunk = member.read(min(CHUNK_BYTES, len(target) - done))
        if not chunk:
            raise FormatError("truncated", source, where)
        target[done:done + len(chunk)] = chunk
        done += len(chunk)
    if member.read(1):
        raise FormatError("holds more data than its header says", source, where)


def _read_header(member: IO[bytes], source: str, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from a .npy header, parsed here as a Python literal —
    never evaluated, never unpickled — and checked field by field."""
    magic = member.read(8)
    if len(magic) != 8 or magic[:6] != NPY_MAGIC:
        raise FormatError("not a .npy array (bad magic)", source, where)
    major = magic[6]
    if major not in (1, 2, 3):
        raise FormatError(f".npy format version {major}.{magic[7]} is not supported", source, where)
    length_bytes = member.read(2 if major == 1 else 4)
    if len(length_bytes) != (2 if major == 1 else 4):
        raise FormatError("truncated .npy header", source, where)
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_HEADER_BYTES:
        raise FormatError(f".npy header of {length} bytes (at most {MAX_HEADER_BYTES})", source, where)
    text = member.read(length)
    if len(text) != length:
        raise FormatError("truncated .npy header", source, where)
    try:
        header = ast.literal_eval(text.decode("utf-8" if major == 3 else "latin-1"))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError):
        raise FormatError("unreadable .npy header", source, where) from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError(".npy header must hold exactly descr, fortran_order and shape", source, where)
    shape, fortran, descr = header["shape"], header["fortran_order"], header["descr"]
    if (not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape)
            or not isinstance(fortran, bool)):
        raise FormatError(f".npy header has shape {shape!r}, fortran_order {fortran!r}", source, where)
    if not isinstance(descr, str):
        raise FormatError(f"has structured dtype {descr!r}; calibration needs plain numeric arrays", source, where)
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, OverflowError):
        raise FormatError(f"has unknown dtype {descr!r}", source, where) from None
    _check_dtype(dtype, source, where)
    return shape, fortran, dtype


def _check_dtype(dtype: np.dtype, source: str, where: str) -> None:
    if dtype.hasobject:
        raise FormatError("holds Python objects (pickled data is never loaded)", source, where)
    if dtype.names is not None or dtype.subdtype is not None:
        raise FormatError(f"has structured dtype {dtype}; calibration needs plain numeric arrays", source, where)
    if dtype.kind not in NUMERIC_KINDS:
        raise FormatError(f"has dtype {dtype}; calibration needs bool, integer or float arrays", source, where)


# -- checking samples against the model's inputs ------------------------------------------------

def check_samples(arrays: Mapping[str, Any], inputs: Sequence[InputSpec], source: str,
                  where: str | None = None) -> dict[str, np.ndarray]:
    """`arrays` (keyed by input name, `name:0` or an alias also accepted) checked against `inputs` and
    converted to each input's dtype: every input present, no unknown key, shapes agreeing
    after the sample axis, one sample count, finite floats. FormatError otherwise."""
    by_key = {}
    for key, value in arrays.items():
        spec = _input_for(str(key), inputs)
        if spec is None:
            raise FormatError(f"array {key!r} names no input of the model (inputs: "
                              f"{', '.join(s.name for s in inputs)})", source, where)
        if spec.name in by_key:
            raise FormatError(f"input {spec.name!r} given twice", source, where)
        by_key[spec.name] = (str(key), value)
    missing = [s.name for s in inputs if s.name not in by_key]
    if missing:
        raise FormatError(f"no array for input {missing[0]!r} (arrays: {', '.join(k for k, _ in by_key.values()) or 'none'})",
                          source, where)
    checked = {spec.name: _check_array(by_key[spec.name][0], by_key[spec.name][1], spec, source, where)
               for spec in inputs}
    counts = {name: len(array) for name, array in checked.items()}
    if len(set(counts.values())) > 1:
        raise FormatError("inputs hold different numbers of samples: " +
                          ", ".join(f"{name} {count}" for name, count in counts.items()), source, where)
    if not any(counts.values()):
        raise FormatError("holds no samples", source, where)
    return checked


def _input_for(key: str, inputs: Sequence[InputSpec]) -> InputSpec | None:
    for spec in inputs:
        if key in (spec.name, f"{spec.name}:0", *spec.aliases):
            return spec
    return None


def _check_array(key: str, value: Any, spec: InputSpec, source: str, where: str | None) -> np.ndarray:
    label = f"array {key!r}"
    if not isinstance(value, np.ndarray):
        raise FormatError(f"{label} is a {type(value).__name__}, not a numpy array", source, where)
    _check_dtype(value.dtype, source, f"{where + ': ' if where else ''}{label}")
    if value.ndim == 0:
        raise FormatError(f"{label} is a scalar; samples go on the first axis", source, where)
    if spec.shape is not None:
        wanted = ["N", *("?" if d is None else d for d in spec.shape[1:])]
        if value.ndim != len(spec.shape) or any(d is not None and d != got
                                                for d, got in zip(spec.shape[1:], value.shape[1:])):
            raise FormatError(f"{label} has shape {list(value.shape)}; input {spec.name!r} takes "
                              f"[{', '.join(map(str, wanted))}] (N samples)", source, where)
    return _converted(label, value, spec, source, where)


def _converted(label: str, value: np.ndarray, spec: InputSpec, source: str, where: str | None) -> np.ndarray:
    want = spec.dtype
    mismatch = FormatError(f"{label} is {value.dtype}; input {spec.name!r} is {want}", source, where)
    if want.kind == "f":
        if value.dtype.kind != "f":
            raise mismatch
        with np.errstate(over="ignore", invalid="ignore"):
            converted = value.astype(want, copy=False)
        if not _all_finite(converted):
            raise FormatError(f"{label} holds NaN or infinity (as {want})", source, where)
        return converted
    if want.kind in "iu":
        if value.dtype.kind not in "iu":
            raise mismatch
        info = np.iinfo(want)
        if value.size and (value.min() < info.min or value.max() > info.max):
            raise FormatError(f"{label} holds values outside {want}'s range", source, where)
        return value.astype(want, copy=False)
    if want.kind == "b":
        if value.dtype.kind != "b":
            raise mismatch
        return value
    raise FormatError(f"input {spec.name!r} is {want}: calibration feeds numeric inputs only", source, where)


def _all_finite(array: np.ndarray) -> bool:
    """No NaN or infinity, checked a chunk at a time (no temporary as large as the array)."""
    flat = array.ravel(order="K")
    step = max(1, CHUNK_BYTES // array.itemsize)
    return all(np.isfinite(flat[start:start + step]).all() for start in range(0, flat.size, step))


# -- batches -----------------------------------------------------------------------------------

def split_batches(samples: dict[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Consecutive batches of `batch_size` samples (the last may be smaller)."""
    count = len(next(iter(samples.values())))
    for start in range(0, count, batch_size):
        yield {name: array[start:start + batch_size] for name, array in samples.items()}


def sample_batches(data: Any, inputs: Sequence[InputSpec], batch_size: int
                   ) -> tuple[Iterator[dict[str, np.ndarray]], int | None]:
    """(batches keyed by input name, total sample count when known) from `data`: an .npz
    path, a mapping of arrays keyed by input name, or an iterable of batches (or a callable
    returning one, like TFLite's representative_dataset) whose items are mappings, sequences
    in input order, or a bare array for a one-input model."""
    if isinstance(data, (str, os.PathLike)):
        samples = check_samples(read_npz(data), inputs, os.fspath(data))
        return split_batches(samples, batch_size), len(next(iter(samples.values())))
    if isinstance(data, Mapping):
        samples = check_samples(data, inputs, "calibration data")
        return split_batches(samples, batch_size), len(next(iter(samples.values())))
    if callable(data):
        data = data()
    if not isinstance(data, Iterable) or isinstance(data, (bytes, np.ndarray)):
        raise FormatError(f"calibration data must be an .npz path, a mapping of arrays or an iterable of "
                          f"batches, not {type(data).__name__}")
    return _iterated(data, inputs), None


def _iterated(data: Iterable, inputs: Sequence[InputSpec]) -> Iterator[dict[str, np.ndarray]]:
    for index, item in enumerate(data):
        where = f"batch {index}"
        if isinstance(item, Mapping):
            arrays = item
        elif isinstance(item, np.ndarray) and len(inputs) == 1:
            arrays = {inputs[0].name: item}
        elif isinstance(item, (list, tuple)) and len(item) == len(inputs):
            arrays = {spec.name: value for spec, value in zip(inputs, item)}
        else:
            raise FormatError(f"is a {type(item).__name__}; give a mapping by input name or a list of "
                              f"{len(inputs)} array(s) in input order", "calibration data", where)
        yield check_samples(arrays, inputs, "calibration data", where)


def count_of(batch: Mapping[str, np.ndarray]) -> int:
    """Samples in a batch."""
    return len(next(iter(batch.values())))
