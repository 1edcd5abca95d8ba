"""Calibration inputs: .npz sample files (the fixture's digits_test.npz and small stored /
deflated archives made here) mutated byte-wise, in their zip records (sizes, methods,
names, offsets), in their .npy headers (dtypes, shapes, versions, Python-looking header
text, pickled objects) and as deflate bombs; and calibration .json files (what
Calibration.save writes) mutated as text."""
from __future__ import annotations

import functools
import io
import json
import random
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import mutate_bytes
from .hostile import HOSTILE_STRINGS, PWNED_MARKER

# A pickle that, if anything ever unpickled it, would create PWNED_MARKER.
PICKLE_BOMB = b"c__builtin__\nopen\n(S'" + PWNED_MARKER.encode() + b"'\nS'w'\ntR."
DESCRS = ["'<f4'", "'<i4'", "'|b1'", "'>f8'", "'<f2'", "'|O'", "'<U5'", "'|S3'", "'<c8'", "'|V4'", "'<M8[s]'",
          "[('a', '<f4')]", "('<f4', (2,))", "'<f16'", "'x'", "__import__('os').getcwd()"]
SHAPES = ["(360, 8, 8, 1)", "(2, 8, 8, 1)", "()", "(0,)", "(0, 8, 8, 1)", "(2**40, 8, 8, 1)", "(-1, 8, 8, 1)",
          "(1099511627776, 8, 8, 1)", "(2, 8, 8)", "(2, 8, 8, 1, 1)", "('a',)", "(1.5,)", "[2, 8, 8, 1]",
          "(9223372036854775807, 2)"]


def _npy(descr: str, fortran: str, shape: str, data: bytes, version: tuple[int, int] = (1, 0),
         extra: str = "") -> bytes:
    header = "{" + f"'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, {extra}" + "}"
    header = header.encode("latin1", "replace")
    width = 2 if version[0] == 1 else 4
    pad = (-(6 + 2 + width + len(header) + 1)) % 64
    header += b" " * pad + b"\n"
    size = struct.pack("<H" if width == 2 else "<I", len(header))
    return b"\x93NUMPY" + bytes(version) + size + header + data


def _zip(members: list[tuple[str, bytes]], compression: int) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # duplicate names are on purpose
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def _samples(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    images = np.asarray([[rng.random() for _ in range(64)] for _ in range(count)], np.float32).reshape(count, 8, 8, 1)
    labels = np.arange(count, dtype=np.int32)
    out = []
    for name, array in (("images", images), ("labels", labels)):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        out.append((name + ".npy", buffer.getvalue()))
    return out


@functools.cache
def _bomb(count: int) -> bytes:
    """A deflated member of `count` float32 zeros (about 1000x smaller than it claims)."""
    buffer = io.BytesIO()
    info = zipfile.ZipInfo("images.npy")
    info.compress_type = zipfile.ZIP_DEFLATED
    labels = _samples(random.Random(0), count // 64)[1] if count // 64 <= 4096 else _samples(random.Random(0), 2)[1]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(_npy("'<f4'", "False", f"({count // 64}, 8, 8, 1)", b""))
            chunk = bytes(1 << 20)
            for _ in range(count * 4 // len(chunk)):
                member.write(chunk)
        archive.writestr(zipfile.ZipInfo(labels[0]), labels[1])
    return buffer.getvalue()


def crafted(rng: random.Random) -> tuple[bytes, str]:
    """An archive built from scratch with one odd .npy member (or odd member names)."""
    members = _samples(rng, 2) if rng.random() < 0.9 else _samples(random.Random(0), 2)
    how = rng.choice(["header", "header", "header", "pickle", "names", "bomb", "method", "many", "version"])
    if how == "header":
        descr, shape = rng.choice(DESCRS), rng.choice(SHAPES)
        fortran = rng.choice(["False", "True", "1", "'yes'"])
        data = bytes(rng.choice([0, 8, 64 * 4 * 2, 512, 4096]))
        extra = rng.choice(["", "", "'extra': 1, ", f"'x': {rng.choice(HOSTILE_STRINGS)!r}, "])
        members[0] = ("images.npy", _npy(descr, fortran, shape, data, extra=extra))
        recipe = f"npy header descr={descr} shape={shape} fortran={fortran}"
    elif how == "pickle":
        members[0] = ("images.npy", _npy("'|O'", "False", "(2, 8, 8, 1)", PICKLE_BOMB))
        recipe = "object member holding a pickle that would create a file"
    elif how == "names":
        name = rng.choice(["../../etc/passwd.npy", "/abs.npy", "images.npy", "images", "dir/", "images.npz",
                           "\u202eyp n.npy", "images\x00.npy", "labels.npy"])
        members.append((name, members[0][1]))
        recipe = f"member named {name!r}"
    elif how == "bomb":
        count = rng.choice([2**20, 2**24, 2**26])
        return _bomb(count), f"deflate bomb: {count * 4:,} bytes of zeros"
    elif how == "method":
        data = _zip(members, zipfile.ZIP_DEFLATED)
        method = rng.choice([1, 9, 12, 14, 99])
        data = bytearray(data)
        for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
            pos = data.find(signature)
            if pos >= 0:
                struct.pack_into("<H", data, pos + offset, method)
        return bytes(data), f"compression method {method}"
    elif how == "many":
        members = [(f"m{i}.npy", members[1][1]) for i in range(rng.choice([100, 2000]))]
        recipe = f"{len(members)} members"
    else:
        version = rng.choice([(2, 0), (3, 0), (0, 0), (9, 9)])
        members[0] = ("images.npy", _npy("'<f4'", "False", "(2, 8, 8, 1)", bytes(512), version=version))
        recipe = f".npy format version {version}"
    compression = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    return _zip(members, compression), recipe


def zip_fields(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Patch one field of a local header, central directory entry or end record."""
    out = bytearray(data)
    records = {b"PK\x03\x04": [(8, "H", "method"), (14, "I", "crc"), (18, "I", "compressed size"),
                               (22, "I", "size"), (26, "H", "name length"), (28, "H", "extra length"),
                               (6, "H", "flags")],
               b"PK\x01\x02": [(10, "H", "method"), (16, "I", "crc"), (20, "I", "compressed size"),
                               (24, "I", "size"), (28, "H", "name length"), (30, "H", "extra length"),
                               (42, "I", "header offset"), (8, "H", "flags")],
               b"PK\x05\x06": [(8, "H", "entries on disk"), (10, "H", "entries"), (12, "I", "directory size"),
                               (16, "I", "directory offset"), (20, "H", "comment length")]}
    signature = rng.choice(list(records))
    positions = [i for i in range(len(out)) if out.startswith(signature, i)]
    if not positions:
        return mutate_bytes.mutate(rng, data, rounds=1)[0], "zip: no record, byte mutation"
    pos = rng.choice(positions)
    offset, fmt, name = rng.choice(records[signature])
    value = rng.choice([0, 1, 2, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, len(out), 8]) % (1 << (16 if fmt == "H" else 32))
    if pos + offset + struct.calcsize(fmt) <= len(out):
        struct.pack_into("<" + fmt, out, pos + offset, value)
    return bytes(out), f"zip {signature!r} @{pos}: {name} -> {value:#x}"


def json_mutation(rng: random.Random, seed: dict) -> tuple[bytes, str]:
    data = json.loads(json.dumps(seed))
    how = rng.choice(["format", "version", "method", "range", "range", "counts", "options", "deep", "text"])
    if how == "format":
        data["format"] = rng.choice([None, "x", 1, []])
    elif how == "version":
        data["version"] = rng.choice([0, 2, "1", None, 1.0, True])
    elif how == "method":
        data["method"] = rng.choice(["", "eval", None, ["minmax"], "__import__('os')"])
    elif how == "range":
        key = rng.choice(list(data["ranges"]) + [rng.choice(HOSTILE_STRINGS)])
        data["ranges"][key] = rng.choice([[1, 0], [float("nan"), 1], ["0", "1"], [0], [0, 1, 2], None, {},
                                          [True, False], [1e309, 0], [-1e308, 1e308]])
    elif how == "counts":
        data[rng.choice(["samples", "batches"])] = rng.choice([-1, 1.5, "3", True, 10**100])
    elif how == "options":
        data["options"] = rng.choice([[], "x", {"batch_size": -1}, {"decay": "nan"}])
    elif how == "deep":
        depth = rng.choice([100, 5000, 100000])
        return ('{"format": "graphtool.calibration", "ranges": ' + "[" * depth + "]" * depth + "}").encode(), \
            f"json nested {depth} deep"
    else:
        text = json.dumps(data)
        pos = rng.randrange(len(text))
        return (text[:pos] + rng.choice(["{", "]", "\"", "\\u", "NaN", "\x00", "\udcff"]) + text[pos:]).encode(
            "utf-8", "surrogatepass"), "json text mutation"
    return json.dumps(data, allow_nan=True).encode(), f"json {how}"


class CalibrationInputs:
    """generate(rng) -> (bytes, suffix, recipe): .npz sample files and calibration .json files."""

    def __init__(self, fixtures: Path):
        rng = random.Random(0)
        self.seeds = [("digits_test.npz", (fixtures / "digits_test.npz").read_bytes()),
                      ("stored.npz", _zip(_samples(rng, 4), zipfile.ZIP_STORED)),
                      ("deflated.npz", _zip(_samples(rng, 3), zipfile.ZIP_DEFLATED))]
        self.calibration = {"format": "graphtool.calibration", "version": 1, "method": "minmax",
                            "options": {"batch_size": 32}, "samples": 4, "batches": 1,
                            "ranges": {"conv:0": [-1.0, 2.5], "dense": [0.0, 6.0]}}

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        roll = rng.random()
        if roll < 0.15:
            data, recipe = json_mutation(rng, self.calibration)
            return data, ".json", recipe
        if roll < 0.45:
            data, recipe = crafted(rng)
            return data, ".npz", recipe
        name, data = rng.choice(self.seeds)
        if roll < 0.70:
            data, recipe = zip_fields(rng, data)
            return data, ".npz", f"{name}: {recipe}"
        data, steps = mutate_bytes.mutate(rng, data, [d for _, d in self.seeds])
        return data, ".npz", f"{name}: " + "; ".join(steps)
