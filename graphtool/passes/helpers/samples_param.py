"""The type of a transform's `calibration` parameter: samples to run the model on."""
from __future__ import annotations

from typing import Any


class Samples(str):
    """A calibration parameter: an .npz of samples or a .json of ranges by file name, or (from
    Python) the samples themselves: a mapping of arrays, or an iterable (or callable returning
    one) of feed dicts keyed by input name or signature input key."""

    data: Any

    def __new__(cls, value: Any = "") -> "Samples":
        text = value if isinstance(value, str) else f"<{type(value).__name__}>"
        made = super().__new__(cls, text)
        made.data = value
        return made


def samples_of(value: Any) -> Any:
    """What a calibration parameter holds: a file name, or the samples given from Python ("" when unset)."""
    return getattr(value, "data", value)
