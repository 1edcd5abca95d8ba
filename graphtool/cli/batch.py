"""Batch mode of `inspect` and `check`: several MODEL arguments, a directory or a glob give one
table row (with --json, one JSON line) per model, in input order, printed as each is ready, and
a progress bar on a terminal. Exit 0 when every model is fine, 1 when one is not (not
compatible, partially delegated, unreadable), 2 on bad usage (a glob matching nothing).

The analysis modules and the process pool are imported when a batch runs, not before: the
command's start stays fast."""
from __future__ import annotations

import argparse
import json
import os
import warnings
from collections import Counter
from contextlib import closing
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from ..errors import GraphtoolWarning
from .common import UsageError

if TYPE_CHECKING:
    from ..analysis.batch import CheckResult, InspectResult, ModelResult
    from ..runtime.progress import Progress

EXIT_NOT_ALL_FINE = 1
GAP = "  "
MODEL_HELP = (".pb, .pbtxt or .tflite file, or a SavedModel directory; several, a directory (walked for them) "
              "or a glob: one row (--json: one JSON line) per model")
JOBS_HELP = "with several models: how many to read at once, in worker processes (default: the number of CPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL... and --jobs, as inspect and check take them."""
    parser.add_argument("model", metavar="MODEL", nargs="+", help=MODEL_HELP)
    parser.add_argument("--jobs", "-j", type=_positive, metavar="N", help=JOBS_HELP)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def single_model(arguments: Sequence[str]) -> str | None:
    """The model path when the arguments name one model as before (a file, a SavedModel
    directory, or a path that does not exist: the one-model error); None for a batch."""
    if len(arguments) == 1 and os.path.isfile(arguments[0]):  # one model file: import no batch machinery
        return arguments[0]
    from ..analysis.batch import is_glob
    from ..formats.savedmodel import is_saved_model

    if len(arguments) != 1 or is_glob(arguments[0]):
        return None
    (path,) = arguments
    return None if os.path.isdir(path) and not is_saved_model(path) else path


class Column:
    """A table column: its header, its width, and whether it holds numbers (aligned right)."""

    __slots__ = ("header", "width", "right")

    def __init__(self, header: str, width: int, right: bool = False):
        self.header, self.width, self.right = header, width, right

    def cell(self, text: str) -> str:
        return text.rjust(self.width) if self.right else text.ljust(self.width)


def _line(columns: Sequence[Column], texts: Sequence[str], tail: str = "") -> str:
    """One table line: `texts` in the first columns, then `tail` (an error message) as it is."""
    cells = [column.cell(text) for column, text in zip(columns, texts)]
    return GAP.join(cells + ([tail] if tail else [])).rstrip()


def _model_column(paths: Sequence[str]) -> Column:
    return Column("model", max(len("model"), *(len(path) for path in paths)))


FORMAT = Column("format", len("graphdef"))


def run_check(args: argparse.Namespace) -> int:
    """`graphtool check MODEL... --target T`: a row per model, the verdicts counted."""
    from ..analysis.batch import ERROR, check_many, find_models
    from ..analysis.check import COMPATIBLE, INCOMPATIBLE, NONE, PARTIAL

    if args.outputs:
        raise UsageError("--outputs checks one GraphDef; it does not apply to several models")
    paths = find_models(args.model)
    numbers = [Column(header, len(header), right=True) for header in ("operators", "errors", "warnings", "notes")]
    columns = [_model_column(paths), FORMAT, Column("verdict", len(INCOMPATIBLE)), *numbers]

    def row(result: CheckResult) -> str:
        texts = [result.path, result.format or "-", result.verdict]
        if result.report is None:
            return _line(columns, texts, result.error or "")
        counts = result.report.counts
        return _line(columns, texts + [f"{n:,}" for n in (result.report.operators, *counts.values())])

    with _progress("checking", len(paths)) as bar:
        results = check_many(paths, args.target, jobs=args.jobs, on_finished=bar.update)
        tally = _emit(results, bar, args.json, _line(columns, [c.header for c in columns]), row,
                      lambda result: result.verdict)
    fine = tally[COMPATIBLE] == len(paths)
    if not args.json:
        counted = ", ".join(f"{tally[verdict]} {verdict}" + ("s" if verdict == ERROR and tally[verdict] > 1 else "")
                            for verdict in (COMPATIBLE, PARTIAL, NONE, INCOMPATIBLE, ERROR) if tally[verdict])
        print(f"{_models(len(paths))} checked against {args.target}: {counted}"
              + ("" if fine else " (NOT all compatible)"))
    return 0 if fine else EXIT_NOT_ALL_FINE


READ, UNREADABLE = "read", "unreadable"


def run_inspect(args: argparse.Namespace) -> int:
    """`graphtool inspect MODEL...`: a row per model (format, size, nodes, parameters, op types)."""
    from ..analysis.batch import find_models, inspect_many
    from .inspect_cmd import _size

    paths = find_models(args.model)
    columns = [_model_column(paths), FORMAT, Column("size", 8, right=True), Column("nodes", 7, right=True),
               Column("parameters", 11, right=True), Column("op types", 8, right=True)]

    def row(result: InspectResult) -> str:
        s = result.summary
        if s is None:
            return _line(columns, [result.path, result.format or "-"], f"error: {result.error}")
        return _line(columns, [result.path, s.format, _size(s.file_size), f"{s.num_nodes:,}",
                               f"{s.parameters.count:,}", f"{len(s.ops):,}"])

    with _progress("reading", len(paths)) as bar:
        results = inspect_many(paths, structure=args.structure, jobs=args.jobs, on_finished=bar.update)
        tally = _emit(results, bar, args.json, _line(columns, [c.header for c in columns]), row,
                      lambda result: READ if result.ok else UNREADABLE)
    if not args.json:
        print(f"{_models(len(paths))}: {tally[READ]} read" + (f", {tally[UNREADABLE]} unreadable"
                                                                  if tally[UNREADABLE] else ""))
    return 0 if tally[UNREADABLE] == 0 else EXIT_NOT_ALL_FINE


def _progress(label: str, total: int) -> Progress:
    from ..runtime.progress import Progress

    return Progress(label, total, unit="models")


def _emit(results: Iterator[ModelResult], bar: Progress, as_json: bool, header: str,
          row: Callable, status: Callable) -> Counter:
    """Print each result as it comes, a JSON line or a table row (after `header`), its warnings
    on stderr; the results counted by `status`. The progress bar is cleared before each line."""
    tally: Counter = Counter()
    with closing(results):  # left early (Ctrl-C, a closed pipe): the workers stop
        if not as_json:
            print(header, flush=True)
        for result in results:
            bar.clear()
            for text in result.warnings:
                warnings.warn(GraphtoolWarning(text), stacklevel=1)
            print(json.dumps(result.to_dict()) if as_json else row(result), flush=True)
            tally[status(result)] += 1
    bar.clear()
    return tally


def _models(count: int) -> str:
    return f"{count:,} model" + ("" if count == 1 else "s")
