"""What thin_channels shares between formats: which channels of which tensors can go.

A format's pass walks its graph once, in execution order, and describes it here as channels:
each tensor whose last axis is a channel axis is `add`ed with what is known of its channels'
values (a float per channel, NaN where the channel is not the same for every input); ops that
carry a channel through (activations, pooling, padding, bias adds, depthwise convolutions,
concatenations, residual adds) `link` an input channel to the output channel it becomes; a
reader that cannot lose a channel `block`s it, saying why. `solve` then groups linked
channels: a group goes when every channel in it is a constant and none is blocked. A tensor
never loses its last channel. The format's pass rewrites weights, biases, constants, shapes
and quantization to match the plan. prune_channels asks the same question of a copy with
every candidate layer zeroed, and gets back which channels may go together (`Plan.groups`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Hashable, Iterable

import numpy as np

Channel = tuple[Hashable, int]  # (tensor key, channel index)


@dataclass
class Plan:
    """The result of `ChannelGraph.solve`: per tensor key, a boolean mask of the channels
    that go (only tensors that lose some), and why constant channels stayed, by reason."""

    removed: dict[Hashable, np.ndarray] = field(default_factory=dict)
    kept: Counter = field(default_factory=Counter)
    groups: list[list[Channel]] = field(default_factory=list)  # the channels that go, linked ones together

    def mask(self, key: Hashable) -> np.ndarray | None:
        return self.removed.get(key)

    def __bool__(self) -> bool:
        return bool(self.removed)


class ChannelGraph:
    """Tensors' channels, what is known of their values, and how ops tie them together."""

    def __init__(self) -> None:
        self.values: dict[Hashable, np.ndarray] = {}
        self._order: list[Hashable] = []
        self._position: dict[Hashable, int] = {}
        self._parent: dict[Channel, Channel] = {}
        self._blocked: dict[Channel, str] = {}

    def __contains__(self, key: Hashable) -> bool:
        return key in self.values

    def count(self, key: Hashable) -> int:
        return int(self.values[key].size)

    def add(self, key: Hashable, values: np.ndarray) -> None:
        """A tensor with len(values) channels; values[c] is channel c's value wherever it is
        computed, NaN when it varies."""
        if key not in self.values:
            self._position[key] = len(self._order)
            self._order.append(key)
        self.values[key] = np.asarray(values, np.float64).reshape(-1)

    def add_varying(self, key: Hashable, channels: int) -> None:
        self.add(key, np.full(channels, np.nan))

    def link(self, a: Hashable, ca: int, b: Hashable, cb: int) -> None:
        """Channel ca of a and channel cb of b go together or stay together."""
        ra, rb = self._find((a, ca)), self._find((b, cb))
        if ra != rb:
            self._parent[max(ra, rb, key=self._rank)] = min(ra, rb, key=self._rank)

    def link_all(self, a: Hashable, b: Hashable, offset: int = 0) -> None:
        """Channel c of a goes with channel offset + c of b, for every channel of a."""
        for channel in range(self.count(a)):
            self.link(a, channel, b, offset + channel)

    def block(self, key: Hashable, reason: str, channels: Iterable[int] | None = None) -> None:
        """These channels of `key` (all when None) must stay, for `reason`."""
        if key not in self.values:
            return
        for channel in range(self.count(key)) if channels is None else channels:
            self._blocked.setdefault((key, int(channel)), reason)

    def solve(self) -> Plan:
        """The channels that go: groups of linked channels, every one a constant, none
        blocked, and no tensor left without channels."""
        groups: dict[Channel, list[Channel]] = {}
        for key in self._order:
            for channel in range(self.count(key)):
                groups.setdefault(self._find((key, channel)), []).append((key, channel))
        plan = Plan()
        going: list[Channel] = []
        for root, members in groups.items():
            reasons = [self._blocked[m] for m in members if m in self._blocked]
            constant = [not np.isnan(self.values[k][c]) for k, c in members]
            if not any(constant):
                continue
            if not all(constant):
                plan.kept["varies_on_another_path"] += 1
            elif reasons:
                plan.kept[min(reasons)] += 1
            else:
                going.append(root)
        masks = {key: np.zeros(self.count(key), bool) for key in self._order}
        for root in going:
            for key, channel in groups[root]:
                masks[key][channel] = True
        while True:  # a tensor keeps at least one channel: its first constant group stays
            empty = [key for key in self._order if masks[key].size and masks[key].all()]
            if not empty:
                break
            root = self._find((empty[0], 0))
            for key, channel in groups[root]:
                masks[key][channel] = False
            plan.kept["last_channel"] += 1
        plan.removed = {key: masks[key] for key in self._order if masks[key].any()}
        plan.groups = [groups[root] for root in going if masks[root[0]][root[1]]]
        return plan

    def _rank(self, channel: Channel) -> tuple[int, int]:
        return self._position[channel[0]], channel[1]

    def _find(self, channel: Channel) -> Channel:
        root = channel
        while self._parent.get(root, root) != root:
            root = self._parent[root]
        while channel != root:  # path compression
            following = self._parent[channel]
            self._parent[channel] = root
            channel = following
        return root


# Elementwise functions on a constant channel's value, by a neutral name each format maps its
# ops to (LEAKY_RELU / LeakyRelu take their alpha).
FUNCTIONS = {
    "relu": lambda v, alpha: np.maximum(v, 0),
    "relu6": lambda v, alpha: np.clip(v, 0, 6),
    "relu_n1_to_1": lambda v, alpha: np.clip(v, -1, 1),
    "relu_0_to_1": lambda v, alpha: np.clip(v, 0, 1),
    "sigmoid": lambda v, alpha: 1 / (1 + np.exp(-v)),
    "tanh": lambda v, alpha: np.tanh(v),
    "hard_swish": lambda v, alpha: v * np.clip(v + 3, 0, 6) / 6,
    "leaky_relu": lambda v, alpha: np.where(v >= 0, v, v * alpha),
    "elu": lambda v, alpha: np.where(v >= 0, v, np.expm1(np.minimum(v, 0))),
    "abs": lambda v, alpha: np.abs(v),
    "neg": lambda v, alpha: -v,
    "identity": lambda v, alpha: v,
}
KEEPS_ZERO = frozenset(FUNCTIONS) - {"sigmoid"}  # f(0) == 0


def binary(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b, a - b or a * b by a neutral name ("add", "sub", "mul")."""
    return a + b if op == "add" else a - b if op == "sub" else a * b


def keep_mask(removed: np.ndarray | None, channels: int) -> np.ndarray:
    """Indices of the channels that stay, out of `channels`."""
    if removed is None:
        return np.arange(channels)
    return np.flatnonzero(~removed)


def take(array: np.ndarray, removed: np.ndarray | None, axis: int) -> np.ndarray:
    """`array` without the removed channels along `axis` (a new array)."""
    if removed is None:
        return array
    return np.take(array, np.flatnonzero(~removed), axis=axis)


def concat_offsets(counts: list[int]) -> list[int]:
    """Where each input of a concatenation along channels starts in its output."""
    return [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])] if counts else []
