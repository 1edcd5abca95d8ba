"""Format-blind byte mutations: bit flips, overwrites, truncation, splices, insertions."""
from __future__ import annotations

import random
import struct

INTERESTING_U32 = (0, 1, 2, 3, 4, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                   0x3FFFFFFF, 0x40000000, 0x40000001, 0x7FFFFFFE, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFC, 0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING_U8 = (0, 1, 0x7F, 0x80, 0xFF)


def flip_bits(rng: random.Random, data: bytearray) -> str:
    count = rng.randint(1, 8)
    for _ in range(count):
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
    return f"flip {count} bit(s)"


def set_bytes(rng: random.Random, data: bytearray) -> str:
    count = rng.randint(1, 4)
    for _ in range(count):
        data[rng.randrange(len(data))] = rng.choice(INTERESTING_U8 + (rng.randrange(256),))
    return f"set {count} byte(s)"


def set_u32(rng: random.Random, data: bytearray, size_hint: int | None = None) -> str:
    """Overwrite an aligned little-endian word: offsets and lengths in flatbuffers are u32."""
    if len(data) < 4:
        return "u32 skipped (too short)"
    pos = rng.randrange(0, len(data) - 3)
    if rng.random() < 0.7:
        pos -= pos % 4
    size = size_hint or len(data)
    value = rng.choice(INTERESTING_U32 + (size, size - 4, size + 4, rng.randrange(2**32)))
    struct.pack_into("<I", data, pos, value % 2**32)
    return f"u32 @{pos} = {value % 2**32:#x}"


def truncate(rng: random.Random, data: bytearray) -> str:
    cut = rng.choice([rng.randrange(len(data)), rng.randrange(min(len(data), 64)), len(data) - rng.randint(1, 8)])
    cut = max(0, cut)
    del data[cut:]
    return f"truncate to {cut}"


def splice(rng: random.Random, data: bytearray) -> str:
    """Copy a chunk of the file over another place (aliases tables, duplicates records)."""
    n = len(data)
    length = rng.randint(1, max(1, min(n // 2, 256)))
    src, dst = rng.randrange(n - length + 1), rng.randrange(n - length + 1)
    data[dst:dst + length] = data[src:src + length]
    return f"splice {length} bytes {src}->{dst}"


def insert(rng: random.Random, data: bytearray) -> str:
    """Insert bytes (shifts everything after, so offsets that cross it go wrong)."""
    pos = rng.randrange(len(data) + 1)
    length = rng.choice([1, 2, 3, 4, 8, rng.randint(1, 64)])
    filler = rng.choice([bytes(length), bytes([0xFF]) * length, rng.randbytes(length)])
    data[pos:pos] = filler
    return f"insert {length} bytes @{pos}"


def delete(rng: random.Random, data: bytearray) -> str:
    pos = rng.randrange(len(data))
    length = rng.choice([1, 2, 4, rng.randint(1, 64)])
    del data[pos:pos + length]
    return f"delete {length} bytes @{pos}"


def append(rng: random.Random, data: bytearray) -> str:
    length = rng.choice([1, 4, 16, rng.randint(1, 4096)])
    data.extend(rng.randbytes(length))
    return f"append {length} bytes"


def zero_range(rng: random.Random, data: bytearray) -> str:
    pos = rng.randrange(len(data))
    length = rng.randint(1, 64)
    data[pos:pos + length] = bytes(len(data[pos:pos + length]))
    return f"zero {length} bytes @{pos}"


def crossover(rng: random.Random, data: bytearray, other: bytes) -> str:
    """Replace a chunk with one from another seed of the same format."""
    if not other:
        return "crossover skipped"
    length = rng.randint(1, min(len(other), 512))
    src = rng.randrange(len(other) - length + 1)
    dst = rng.randrange(len(data) + 1)
    data[dst:dst + length] = other[src:src + length]
    return f"crossover {length} bytes @{dst}"


MUTATORS = (flip_bits, set_bytes, set_u32, truncate, splice, insert, delete, append, zero_range)
WEIGHTS = (6, 3, 6, 2, 2, 1, 1, 1, 1)


def mutate(rng: random.Random, data: bytes, others: list[bytes] = (), rounds: int | None = None) -> tuple[bytes, list[str]]:
    """`data` after 1-3 random byte mutations, and what they were."""
    out = bytearray(data)
    steps = []
    for _ in range(rounds or rng.choice([1, 1, 1, 2, 3])):
        if not out:
            out.extend(rng.randbytes(rng.randint(1, 16)))
            steps.append("regrow")
            continue
        if others and rng.random() < 0.05:
            steps.append(crossover(rng, out, rng.choice(others)))
            continue
        mutator = rng.choices(MUTATORS, WEIGHTS)[0]
        steps.append(mutator(rng, out))
    return bytes(out), steps
