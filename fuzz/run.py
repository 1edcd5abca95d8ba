"""Fuzz graphtool's readers, transform-string parser and calibration loader.

    python fuzz/run.py --target tflite|graphdef|spec|calibration|all --inputs N --seconds S --seed K

A campaign stops after N inputs per target or S seconds in all (shared evenly by the
targets), whichever comes first. Inputs are mutations of the fixtures (fixtures/graphdef/*,
fixtures/tflite/*) and generated transform strings; each is checked in a worker process
(see fuzz/oracle.py for what must hold). Failing inputs are saved to tests/fuzz_corpus/<target>/ (with a .why file saying
what failed), and tests/test_fuzz_corpus.py replays them. Exit status: 0 when nothing
failed, 1 otherwise.

    python fuzz/run.py --replay tests/fuzz_corpus/graphdef/0123abcd.pb   # check saved inputs again
    python fuzz/run.py --target tflite --seed 1 --only 1234 --dump x.tflite  # make one input again
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.campaign import Limits, Report, Target, input_rng, replay, run_campaign  # noqa: E402

FIXTURES = ROOT / "fixtures"
CORPUS = ROOT / "tests" / "fuzz_corpus"
SPEC_MODELS = (FIXTURES / "graphdef" / "keras2_cnn.pb", FIXTURES / "tflite" / "float_cnn.tflite")


def _tflite_inputs():
    from fuzz.tflite_gen import TfliteInputs

    return TfliteInputs(FIXTURES / "tflite")


def _graphdef_inputs():
    from fuzz.graphdef_gen import GraphdefInputs

    return GraphdefInputs(FIXTURES / "graphdef")


def _spec_inputs():
    from fuzz.spec_gen import SpecInputs

    return SpecInputs()


def _model_checker():
    from fuzz.oracle import check_model

    return check_model


def _spec_checker():
    from fuzz.oracle import SpecChecker

    return SpecChecker([(p.suffix.lstrip("."), p.read_bytes()) for p in SPEC_MODELS])


def _calibration_inputs():
    from fuzz.calibration_gen import CalibrationInputs

    return CalibrationInputs(FIXTURES / "tflite")


def _calibration_checker():
    from fuzz.oracle import CalibrationChecker

    return CalibrationChecker()


def _differential_inputs():
    from fuzz.differential import DifferentialInputs

    return DifferentialInputs(FIXTURES)


def _differential_checker():
    from fuzz.differential import DifferentialChecker

    return DifferentialChecker()


# The target table. Each target: how to make inputs, and the oracle that checks one.
TARGETS: dict[str, Target] = {
    "tflite": Target("tflite", _tflite_inputs, _model_checker),
    "graphdef": Target("graphdef", _graphdef_inputs, _model_checker),
    "spec": Target("spec", _spec_inputs, _spec_checker),
    "calibration": Target("calibration", _calibration_inputs, _calibration_checker),
    # LiteRT and TensorFlow judge graphtool's verdicts (needs the test extras); not part of "all"
    "differential": Target("differential", _differential_inputs, _differential_checker),
}
ALL = [name for name in TARGETS if name != "differential"]


def _command_target(name: str) -> Target:
    def inputs():
        from fuzz.transform_gen import CommandInputs

        return CommandInputs(name)

    def checker():
        from fuzz.transform_gen import CommandChecker

        return CommandChecker()
    return Target(name, inputs, checker, runtimes=True)


# The transforms and commands added since the campaign was written, one target each (their
# workers may load the runtimes: quantize_nodes calibrates, check --fix verifies).
COMMANDS = ["quantize_nodes", "target_sqnr", "set_io_types", "set_input_shape", "rename_node", "rename_signature",
            "strip_unused_nodes", "split", "thin_channels", "prune_channels", "check_fix"]
TARGETS.update({name: _command_target(name) for name in COMMANDS})
GROUPS = {"all": ALL, "commands": COMMANDS}


def limits_for(target: str, limits: Limits) -> Limits:
    """The differential target waits for runtimes in other processes (up to ORACLE_TIMEOUT
    each, three times an input at most, plus a restart): its hard limit makes room for them.
    graphtool's own time is still held to `limits.seconds`."""
    if target != "differential":
        return limits
    from fuzz.runtime_oracle import ORACLE_TIMEOUT

    return replace(limits, hard_seconds=limits.hard_seconds + 4 * ORACLE_TIMEOUT)


def regenerate(target: str, seed: int, index: int) -> tuple[bytes, str, str]:
    """Input `index` of the campaign (target, seed), made again."""
    return TARGETS[target].inputs().generate(input_rng(seed, target, index))


def replay_files(paths: list[Path], limits: Limits = Limits()) -> list:
    """Check saved inputs again, each in a worker as in a campaign (the target is the name
    of the folder an input is in: tests/fuzz_corpus/<target>/)."""
    results = []
    for name in dict.fromkeys(p.parent.name for p in paths):
        if name not in TARGETS:
            raise SystemExit(f"{name}: no such fuzz target (inputs live in tests/fuzz_corpus/<target>/)")
        group = [p for p in paths if p.parent.name == name]
        results += zip(group, replay(TARGETS[name], group, limits_for(name, limits)))
    return results


def summary_lines(report: Report) -> list[str]:
    failed = report.outcomes.get("failed", 0)
    lines = [f"{report.target}: {report.inputs:,} inputs in {report.seconds:.0f} s (seed {report.seed}); "
             f"{failed} failed; outcomes {dict(report.outcomes)}",
             f"  errors: {dict(report.errors.most_common())}",
             f"  slowest: {report.slowest.get('seconds', 0):.3f} s (input {report.slowest.get('index')}: "
             f"{report.slowest.get('recipe', '')[:120]})",
             f"  peak memory added by one input: {report.peak_rss_mb:.1f} MB resident"
             + (f", {report.peak_traced_mb:.1f} MB traced" if report.peak_traced_mb else "")]
    judged = {runtime: {key.split(": ", 1)[1]: count for key, count in report.allowed.items()
                        if key.startswith(runtime + ": ")} for runtime in ("litert", "tensorflow")}
    for runtime, answers in judged.items():
        if answers:
            lines.append(f"  judged by {runtime}: {sum(answers.values()):,} inputs ({', '.join(f'{a} {n:,}' for a, n in sorted(answers.items()))})")
    if report.worker_restarts:
        lines.append(f"  worker restarts: {report.worker_restarts}")
    for key, count in report.failures.most_common():
        lines.append(f"  FAILURE x{count}: {key}\n    {report.failure_examples[key].splitlines()[0][:400]}")
    for path in report.saved:
        lines.append(f"  saved {path}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="all", choices=[*TARGETS, *GROUPS],
                        help="a target, or a group: all (the readers, specs and calibration files), commands "
                             "(every command target)")
    parser.add_argument("--inputs", type=int, default=None, help="inputs per target (default 1000 if no --seconds)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of the whole campaign (shared evenly by the targets)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    parser.add_argument("--time-limit", type=float, default=Limits.seconds, help="seconds one input may take")
    parser.add_argument("--memory-limit", type=float, default=Limits.megabytes, help="MB one input may allocate")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also measure each input's Python/numpy allocations exactly (about 5x slower)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="where failing inputs are saved")
    parser.add_argument("--no-save", action="store_true", help="do not save failing inputs")
    parser.add_argument("--json", type=Path, help="write the reports as JSON here")
    parser.add_argument("--only", type=int, help="make input ONLY of the campaign again (with --dump) and check it")
    parser.add_argument("--dump", type=Path, help="with --only: where to write that input")
    parser.add_argument("--replay", type=Path, nargs="+", help="check saved inputs again and print the verdicts")
    args = parser.parse_args(argv)
    limits = Limits(seconds=args.time_limit, megabytes=args.memory_limit, trace_python=args.tracemalloc)

    if args.replay:
        status = 0
        for path, result in replay_files(args.replay, limits):
            print(f"{path}: {result.verdict.outcome} {result.verdict.error or ''} ({result.seconds:.3f} s, "
                  f"{max(result.traced_mb, result.rss_mb):.1f} MB)")
            for problem in result.verdict.problems:
                print("  " + problem.replace("\n", "\n  "))
            status |= bool(result.verdict.problems)
        return status

    names = GROUPS.get(args.target, [args.target])

    if args.only is not None:
        data, suffix, recipe = regenerate(names[0], args.seed, args.only)
        path = args.dump or Path(f"fuzz-input-{args.only}{suffix}")
        if not path.name.endswith(suffix):  # the suffix decides how graphtool reads it
            path = path.with_name(path.name.split(".")[0] + suffix)
        path.write_bytes(data)
        print(f"input {args.only}: {recipe}\nwritten to {path}")
        return 0

    max_inputs = args.inputs if args.inputs is not None else (None if args.seconds else 1000)
    seconds = None if args.seconds is None else args.seconds / len(names)
    reports, status = [], 0
    for name in names:
        report = run_campaign(TARGETS[name], args.seed, max_inputs, seconds, limits_for(name, limits), args.jobs,
                              None if args.no_save else args.corpus,
                              progress=lambda r: print(f"  ... {r.target}: {r.inputs:,} inputs, {r.seconds:.0f} s, "
                                                       f"{r.outcomes.get('failed', 0)} failed", file=sys.stderr))
        print("\n".join(summary_lines(report)), flush=True)
        reports.append(report)
        status |= bool(report.outcomes.get("failed"))
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
