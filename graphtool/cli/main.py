"""The `graphtool` command: argparse front end, one module per subcommand."""
from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from typing import Sequence

from .. import __version__
from ..errors import GraphtoolError, GraphtoolWarning, one_line
from . import (
    check_cmd,
    convert_cmd,
    diff_cmd,
    draw_cmd,
    inspect_cmd,
    sensitivity_cmd,
    split_cmd,
    transform_cmd,
    transforms_cmd,
    verify_cmd,
)
from .common import UsageError

COMMANDS = (inspect_cmd, transform_cmd, transforms_cmd, diff_cmd, check_cmd, verify_cmd, draw_cmd, convert_cmd,
            split_cmd, sensitivity_cmd)
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + error
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphtool",
                     description="Inspect, transform and check TensorFlow GraphDefs and TFLite models.")
    parser.add_argument("--version", action="version", version=f"graphtool {__version__}")
    for command_parser in (parser, *_commands(parser)):  # these go before or after the command
        default = False if command_parser is parser else argparse.SUPPRESS
        command_parser.add_argument("--debug", action="store_true", default=default,
                                    help="show the full traceback on errors")
        try:
            command_parser.add_argument("--verbose", "-v", action="store_true", default=default,
                                        help="show the runtimes' own log lines (TensorFlow, LiteRT)")
        except argparse.ArgumentError:  # `transforms -v` has its own meaning: the full docs
            pass
    return parser


def _commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.register(sub)
    return list(sub.choices.values())


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    for stream in (sys.stdout, sys.stderr):  # names from model files need not be valid UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(argv, debug)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """graphtool's own warnings as one line; others as Python shows them."""
    if issubclass(category, GraphtoolWarning):
        print(f"graphtool: warning: {one_line(str(message))}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)


def _run(argv: list[str], debug: bool) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.verbose:
            from ..logs import show_runtime_logs

            show_runtime_logs()
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        return args.run(args)
    except GraphtoolError as exc:
        if debug:
            traceback.print_exc()
        print(f"graphtool: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("graphtool: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
