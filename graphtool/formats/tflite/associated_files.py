"""The zip archive of associated files after a model's flatbuffer (TFLite Support metadata).

TFLite Support's metadata writer appends the files its metadata names (labels, vocabularies)
to the model as a zip archive, uncompressed, so the model file is a valid zip too. The reader
finds such an archive at the end of a file and keeps it as a standalone archive (offsets from
its own start); the writer appends it after the flatbuffer with offsets from the start of the
file, as Python's zipfile (and minizip) write an archive appended to another file, so a model
read and written again keeps its bytes. Parsed here with struct, every offset checked: no
zip64, no compression needed, and nothing but FormatError comes out of a broken archive.
"""
from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from ...errors import FormatError

_EOCD = struct.Struct("<4s4H2IH")        # end of central directory record
_CENTRAL = struct.Struct("<4s6H3I5H2I")  # central directory file header
_LOCAL = struct.Struct("<4s5H3I2H")      # local file header
EOCD_SIGNATURE, CENTRAL_SIGNATURE, LOCAL_SIGNATURE = b"PK\x05\x06", b"PK\x01\x02", b"PK\x03\x04"
_ZIP64_LOCATOR = b"PK\x06\x07"
_MAX_COMMENT = 0xFFFF
_UTF8_NAMES = 0x800
_STORED = 0
_VERSION = 20        # zip 2.0: what stored entries need
_DOS_DATE = 0x21     # 1980-01-01, the earliest a zip can say: the same bytes every time
_WHAT = "associated files (zip archive after the flatbuffer)"


@dataclass(frozen=True)
class Entry:
    """One file of an archive: its name, compression method, and where its data lie."""

    name: str
    method: int
    start: int  # of its (possibly compressed) data, from the start of the archive
    size: int   # bytes stored


@dataclass(frozen=True)
class _Layout:
    start: int    # the archive's first byte in the data (its first local header)
    concat: int   # what to add to an offset the archive records to get a position in the data
    eocd: int
    central: list[tuple[int, Entry]]  # (position of the central header, entry with data positions)


def locate(data: bytes | memoryview, floor: int) -> bytes | None:
    """The zip archive `data` ends with, starting at or after `floor`, as a standalone
    archive; None when `data` does not end with one. FormatError when it ends with what is
    clearly a zip archive that graphtool cannot keep (broken, zip64, overlapping the model)."""
    layout = _layout(data, floor)
    return None if layout is None else _rebase(data, layout, 0)


def placed(archive: bytes, position: int) -> bytes:
    """`archive` (standalone) with its offsets made right for it to start at `position` of a file."""
    layout = _layout(archive, 0)
    if layout is None or layout.start != 0:
        raise FormatError("is not a standalone zip archive", where=_WHAT)
    return _rebase(archive, layout, position)


def entries(archive: bytes) -> list[Entry]:
    """The files of a standalone archive, in archive order."""
    layout = _layout(archive, 0)
    if layout is None:
        raise FormatError("is not a zip archive", where=_WHAT)
    return [entry for _, entry in layout.central]


def read(archive: bytes, name: str) -> bytes:
    """The content of file `name` of a standalone archive (stored files only, as TFLite
    Support writes them)."""
    entry = next((e for e in entries(archive) if e.name == name), None)
    if entry is None:
        raise FormatError(f"has no file {name!r}", where=_WHAT)
    if entry.method != _STORED:
        raise FormatError(f"{name!r} is compressed (method {entry.method}); TFLite Support stores files",
                          where=_WHAT)
    return bytes(archive[entry.start: entry.start + entry.size])


def build(files: dict[str, bytes]) -> bytes:
    """A standalone archive of `files` (name -> content), stored, in the order given, with
    fixed dates: the same files give the same bytes."""
    if len(files) >= 0xFFFF:
        raise FormatError(f"{len(files)} files are more than a zip archive without zip64 holds", where=_WHAT)
    local, central = bytearray(), bytearray()
    for name, content in files.items():
        if len(content) >= 0xFFFFFFFF:
            raise FormatError(f"{name!r} is too large for a zip archive without zip64", where=_WHAT)
        encoded = name.encode("utf-8")
        flags = 0 if encoded.isascii() else _UTF8_NAMES
        crc = binascii.crc32(content)
        central += _CENTRAL.pack(CENTRAL_SIGNATURE, _VERSION, _VERSION, flags, _STORED, 0, _DOS_DATE, crc,
                                 len(content), len(content), len(encoded), 0, 0, 0, 0, 0, len(local)) + encoded
        local += _LOCAL.pack(LOCAL_SIGNATURE, _VERSION, flags, _STORED, 0, _DOS_DATE, crc, len(content),
                             len(content), len(encoded), 0) + encoded + content
    return bytes(local + central + _EOCD.pack(EOCD_SIGNATURE, 0, 0, len(files), len(files), len(central),
                                              len(local), 0))


# -- parsing -------------------------------------------------------------------------------
def _layout(data: bytes | memoryview, floor: int) -> _Layout | None:
    eocd = _find_eocd(data, floor)
    if eocd is None:
        return None
    _, disk, central_disk, here, count, size, offset, _ = _EOCD.unpack_from(data, eocd)
    if eocd >= 20 and bytes(data[eocd - 20:eocd - 16]) == _ZIP64_LOCATOR or 0xFFFF in (here, count) \
            or 0xFFFFFFFF in (size, offset):
        raise FormatError("is a zip64 archive, which graphtool does not read", where=_WHAT)
    central_start = eocd - size
    if central_start < floor or (count and bytes(data[central_start:central_start + 4]) != CENTRAL_SIGNATURE):
        return None  # the signature was something else's bytes, not a zip archive's
    if disk or central_disk or here != count:
        raise FormatError("spans several disks", where=_WHAT)
    concat = central_start - offset
    central, position = [], central_start
    for index in range(count):
        entry, length = _central_entry(data, position, eocd, concat, floor, index)
        central.append((position, entry))
        position += length
    if position != eocd:
        raise FormatError(f"central directory ends at {position}, not at its end record ({eocd})", where=_WHAT)
    start = min((_local_of(data, pos, concat) for pos, _ in central), default=central_start)
    return _Layout(start, concat, eocd, central)


def _find_eocd(data: bytes | memoryview, floor: int) -> int | None:
    """The position of the end record whose comment runs exactly to the end of `data`."""
    low = max(floor, len(data) - _EOCD.size - _MAX_COMMENT)
    tail = bytes(data[low:])
    found = tail.rfind(EOCD_SIGNATURE)
    while found >= 0:
        position = low + found
        if position + _EOCD.size <= len(data):
            comment = _EOCD.unpack_from(data, position)[-1]
            if position + _EOCD.size + comment == len(data):
                return position
        found = tail.rfind(EOCD_SIGNATURE, 0, found)
    return None


def _central_entry(data, position: int, end: int, concat: int, floor: int, index: int) -> tuple[Entry, int]:
    """Entry `index` of the central directory at `position`, with its data located, and the
    length of its central header."""
    where = f"{_WHAT}, file {index}"
    if position + _CENTRAL.size > end:
        raise FormatError("central directory runs past its end record", where=where)
    fields = _CENTRAL.unpack_from(data, position)
    signature, flags, method, stored = fields[0], fields[3], fields[4], fields[8]
    name_length, extra_length, comment_length, local = fields[10], fields[11], fields[12], fields[16]
    length = _CENTRAL.size + name_length + extra_length + comment_length
    if signature != CENTRAL_SIGNATURE or position + length > end:
        raise FormatError(f"central header at {position} is malformed", where=where)
    if 0xFFFFFFFF in (stored, local):
        raise FormatError("is a zip64 entry, which graphtool does not read", where=where)
    name_bytes = bytes(data[position + _CENTRAL.size: position + _CENTRAL.size + name_length])
    name = name_bytes.decode("utf-8", "replace") if flags & _UTF8_NAMES else name_bytes.decode("cp437")
    header = local + concat
    if header < floor or header + _LOCAL.size > end:
        raise FormatError(f"{name!r}: local header offset {local} lies outside the archive", where=where)
    if bytes(data[header:header + 4]) != LOCAL_SIGNATURE:
        raise FormatError(f"{name!r}: no local header at offset {local}", where=where)
    local_fields = _LOCAL.unpack_from(data, header)
    start = header + _LOCAL.size + local_fields[9] + local_fields[10]
    if start + stored > end:
        raise FormatError(f"{name!r}: its {stored} bytes run past the archive", where=where)
    return Entry(name, method, start, stored), length


def _local_of(data, central_position: int, concat: int) -> int:
    return _CENTRAL.unpack_from(data, central_position)[16] + concat


def _rebase(data: bytes | memoryview, layout: _Layout, position: int) -> bytes:
    """The archive's bytes with every recorded offset moved so that its first byte sits at
    `position` of the file it is written into."""
    shift = position - layout.start + layout.concat
    out = bytearray(data[layout.start:])
    fields = [central_position - layout.start + 42 for central_position, _ in layout.central]  # local header offsets
    for at in fields + [layout.eocd - layout.start + 16]:  # and the end record's central directory offset
        value = struct.unpack_from("<I", out, at)[0] + shift
        if not 0 <= value < 0xFFFFFFFF:
            raise FormatError(f"an offset of {value} does not fit a zip archive without zip64", where=_WHAT)
        struct.pack_into("<I", out, at, value)
    return bytes(out)
