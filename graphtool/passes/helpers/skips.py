"""The one way a transform records a match it leaves alone: a reason (the key of its
stats["skipped"]) and, for the log, the node and what made it so."""
from __future__ import annotations

import logging
from collections import Counter

from ...errors import GraphtoolError


class Skip(GraphtoolError):
    """Raised while planning a rewrite that cannot be made: `reason` is the stats key,
    `detail` says where and why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Skips:
    """Matches a transform left alone: counted by reason, each logged at DEBUG (on the
    pipeline's logger, "graphtool.passes", for a pass run from a pipeline)."""

    def __init__(self, transform: str, log: logging.Logger):
        self.transform = transform
        self.log = log
        self.reasons: Counter[str] = Counter()

    def __call__(self, node: str, reason: str, detail: str = "") -> None:
        self.log.debug("%s: %s left alone: %s%s", self.transform, node, reason, f" ({detail})" if detail else "")
        self.reasons[reason] += 1

    def add(self, node: str, skip: Skip) -> None:
        """Record a Skip raised while planning `node`."""
        self(node, skip.reason, skip.detail)

    def stats(self) -> dict[str, int]:
        """Reason -> count, sorted by reason: the transform's stats["skipped"]."""
        return dict(sorted(self.reasons.items()))
