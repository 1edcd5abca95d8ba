"""Cold start: a new `graphtool check --target gpu` and `graphtool inspect` process against the
floor no command that reads a model can go below, `python -c "import numpy, networkx"` (the IR
is a networkx graph of numpy arrays), measured in the same run; `graphtool --help` and
`graphtool transforms`, which import neither, against a bare `python -c pass`.

Models: `efficientnetb0_int8w.tflite`, a deployed-size model built by bench/make_models.py
(Keras EfficientNetB0, int8 weights), and the committed fixtures/tflite/float_cnn.tflite.
Each command is the installed `graphtool` script (byte-compiled, as `pip install` leaves it),
run COLD_REPEATS times, every command interleaved with the others so that drift on the
machine hits all alike; the figures are medians of wall-clock time. "graphtool modules" is
how many of graphtool's own modules the command imported.

    python bench/bench_cold_start.py
    python bench/run.py bench_cold_start      # and rewrite its section of BENCHMARKS.md
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench_inspect import cold_medians, format_rows
from make_models import ensure_models, model_path

import graphtool

TITLE = "cold start: a new process per command"
BUILT_MODEL = "efficientnetb0_int8w.tflite"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "tflite" / "float_cnn.tflite"
COLD_REPEATS = 11
TARGET = 1.15  # check and inspect: at most this many times the floor
FLOOR = ("import numpy, networkx", '`python -c "import numpy, networkx"`')
PYTHON = ("pass", "`python -c pass`")
FROZEN_FLOOR = "import gc, numpy, networkx; gc.freeze()"  # the floor without its collection at exit
MODULES = ("import sys\nfrom graphtool.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:  # --help exits\n"
           "    print(sum(name.split('.')[0] == 'graphtool' for name in sys.modules))")

Row = dict[str, Any]


def graphtool_command() -> list[str]:
    """The `graphtool` script beside this interpreter (what users run), else `python -m graphtool`."""
    script = shutil.which("graphtool", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "graphtool"]


def _describe(path: Path) -> str:
    size = path.stat().st_size
    shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
    return f"`{path.name}` ({shown}, {graphtool.inspect(graphtool.load(path)).num_nodes:,} operators)"


def _modules(args: list[str]) -> int:
    """How many graphtool modules the command imports (one more run, in `python -c`)."""
    done = subprocess.run([sys.executable, "-c", MODULES, *args], capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def build_models() -> None:
    """Build the deployed-size model, if missing (TensorFlow, once)."""
    ensure_models(names=[BUILT_MODEL])


def run() -> list[Row]:
    build_models()
    models = [model_path(BUILT_MODEL), FIXTURE]
    commands: dict[str, tuple[list[str], tuple[str, str]]] = {}  # label -> (arguments, anchor)
    for path in models:
        about = _describe(path)
        commands[f"`graphtool check --target gpu` {about}"] = (["check", str(path), "--target", "gpu"], FLOOR)
        commands[f"`graphtool inspect` {about}"] = (["inspect", str(path)], FLOOR)
    commands["`graphtool --help`"] = (["--help"], PYTHON)
    commands["`graphtool transforms`"] = (["transforms"], PYTHON)
    script = graphtool_command()
    argvs = {label: script + args for label, (args, _) in commands.items()}
    argvs.update({code: [sys.executable, "-c", code] for code in (FLOOR[0], PYTHON[0], FROZEN_FLOOR)})
    results = cold_medians(argvs, COLD_REPEATS)
    return [_row(label, args, anchor, results[label], results[code], results[FROZEN_FLOOR]["seconds"])
            for label, (args, (code, anchor)) in commands.items()]


def _row(label: str, args: list[str], anchor: str, ours: dict, theirs: dict, frozen_floor_s: float) -> Row:
    """One command's row; the target is judged on the rows whose anchor is the floor."""
    seconds, floor = ours["seconds"], theirs["seconds"]
    met = seconds <= TARGET * floor if anchor == FLOOR[1] else None
    return {"benchmark": TITLE, "mode": f"{label} (median of {COLD_REPEATS})", "graphtool_s": seconds,
            "anchor": anchor, "anchor_s": floor, "ratio": floor / seconds, "target_met": met,
            "graphtool_peak_rss_mb": ours["peak_rss_mb"], "anchor_peak_rss_mb": theirs["peak_rss_mb"],
            "frozen_floor_s": frozen_floor_s,
            "columns": {"× the anchor": f"{seconds / floor:.2f}",
                        f"Target ≤ {TARGET}× the floor": "–" if met is None else "met" if met else "NOT met",
                        "graphtool modules": str(_modules(args))}}


def notes(rows: list[Row]) -> str:
    judged = [r for r in rows if r["target_met"] is not None]
    met = sum(r["target_met"] for r in judged)
    floor = next(r["anchor_s"] for r in judged)
    return (f"Target: each cold `check` and `inspect` at most {TARGET}× the floor measured beside it — "
            f"**{'met' if met == len(judged) else 'not met'}** ({met} of {len(judged)} rows). Above the floor "
            "a command pays for graphtool's own modules (those it needs: the command line, the IR, the "
            "model's format, its one analysis), reading the model and the analysis itself; nothing else is "
            "imported until used (tests/test_cold_start.py holds that). Before reading the model a command "
            "freezes what its imports made (`gc.freeze()`), so neither the read nor the interpreter's exit "
            "rescans them; the floor pays such a collection at exit, which is why a command can come close "
            f"to it: `{FROZEN_FLOOR}` took {judged[0]['frozen_floor_s']:.3f} s against the floor's "
            f"{floor:.3f} s. `--help` and `transforms` import neither numpy nor networkx: `transforms` lists "
            "the registry's index, importing no transform.")


if __name__ == "__main__":
    from run import byte_compile

    byte_compile()
    print(format_rows(run()))
