"""Transform strings: generated from the registry's own transforms and parameters (valid
and ill-typed values, hostile text, huge numbers), then mutated character-wise (quotes,
parentheses, separators, Unicode, huge lengths)."""
from __future__ import annotations

import random

from graphtool.passes import all_passes

from .hostile import HOSTILE_STRINGS

SUFFIX = ".spec"
VALUES = ["true", "false", "1", "0", "-1", "1024", "1e3", "1.5", "nan", "inf", "-inf", "0x10", "1_000",
          "9" * 5000, "-" + "9" * 30, "١٢", "float", "int8", "Identity", "Conv2D", "1,224,224,3", "1,,2", "a,b",
          "-1", "/device:CPU:0", "CONV_2D", "dynamic", "weight_only", "float16", "*", "", " ",
          "serving_default", "image", "probs", "serving_default_image:0", "digits_cnn/maxpool/MaxPool",  # float_cnn's
          "float32", "uint8", "int16", "image:float16", "probs:uint8", "DEQUANTIZE", "RESHAPE", "HARD_SWISH",
          "LEAKY_RELU",  # set_io_types' types and names, remove_nodes' and decompose_ops' operators
          "4,8,8,1", "-1,8,8,1", "2,16,16,1", "?,8,8,1"]  # set_input_shape's shapes that fit float_cnn
CHARS = ["(", ")", "=", ",", "\"", "\"\"", " ", "\t", "\n", "\x00", "\\", "'", ";", ":", "\u3000", "\x1c",
         "é", "\ud800", "🙂", "ß", "İ", "\u202e"]


# Files transforms read (set_metadata's file=), from the repository's root, where campaigns run:
# metadata documents that fit float_cnn, and files that are not metadata documents.
FILES = ["fixtures/metadata/digits_classifier.json", "fixtures/metadata/audio_features.json",
         "fixtures/metadata/digits_labels.txt", "fixtures/tflite/float_cnn.tflite"]


def _value(rng: random.Random) -> str:
    text = rng.choice(VALUES + FILES + list(HOSTILE_STRINGS) * (rng.random() < 0.3)) if rng.random() < 0.8 else \
        "".join(rng.choice("abc019_-./,= ()") for _ in range(rng.randint(0, 12)))
    bare = text and all(c.isascii() and (c.isalnum() or c in "_-./") for c in text)
    if bare and rng.random() < 0.7:
        return text
    return '"' + text.replace('"', "") + '"' if rng.random() < 0.97 else '"' + text


class SpecInputs:
    """generate(rng) -> (bytes, suffix, recipe): the spec as UTF-8 (surrogates kept)."""

    def __init__(self):
        self.passes = all_passes()
        self.names = sorted({p.name for p in self.passes})

    def _call(self, rng: random.Random) -> str:
        if rng.random() < 0.85:
            transform = rng.choice(self.passes)
            name = transform.name
            keys = [p[0] for p in transform.parameters()] + ["ignore_errors"]
        else:
            name = rng.choice(["bogus", "eval", "__import__", "x" * rng.choice([1, 300]), "a-b", "0", "_"])
            keys = ["x", "type"]
        if rng.random() < 0.3:
            return name
        params = []
        for _ in range(rng.choice([0, 1, 1, 2, 3, 6])):
            key = rng.choice(keys) if rng.random() < 0.95 else rng.choice(["__class__", "x", "", "a b", "k" * 100])
            params.append(f"{key}{rng.choice(['=', '=', '=', '=', '=', ' = ', '==', ''])}{_value(rng)}")
        separator = rng.choice([", ", ",", " , ", ",,", ";"]) if rng.random() < 0.1 else ", "
        return f"{name}({separator.join(params)})"

    def text(self, rng: random.Random) -> tuple[str, list[str]]:
        calls = [self._call(rng) for _ in range(rng.choice([1, 1, 2, 3, 5]))]
        text = rng.choice([" ", "  ", "\n", "\t"]).join(calls)
        steps = [f"{len(calls)} call(s)"]
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(len(text) + 1)
                how = rng.choice(["insert", "delete", "duplicate"])
                if how == "insert":
                    text = text[:pos] + rng.choice(CHARS) + text[pos:]
                elif how == "delete":
                    text = text[:pos] + text[pos + rng.randint(1, 4):]
                else:
                    text = text[:pos] + text[pos:pos + rng.randint(1, 20)] * rng.choice([2, 3, 100]) + text[pos:]
                steps.append(how)
        if rng.random() < 0.01:  # about a megabyte: the parser must stay linear
            text = text * max(1, rng.choice([100_000, 1_000_000]) // max(1, len(text)))
            steps.append(f"repeated to {len(text):,} characters")
        return text, steps

    def generate(self, rng: random.Random) -> tuple[bytes, str, str]:
        text, steps = self.text(rng)
        return text.encode("utf-8", "surrogatepass"), SUFFIX, "; ".join(steps)
