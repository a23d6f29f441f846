"""The `digitrec` command: a thin dispatcher over one module per sub-command.

Each module in `digitrec.cli` has `add_parser(subparsers)` and
`run(args) -> int`. User mistakes (`DigitrecError`) become one line on stderr
and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from digitrec.errors import DigitrecError

COMMANDS = [  # one per line, so branches that add commands merge cleanly
    "train",
    "ensemble",
    "evaluate",
    "predict",
    "serve",
    "export",
    "import-keras",
    "report",
    "show",
    "summary",
    "models",
]


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.split(" ", 1)[1:]  # "digitrec train" → ["train"]
        print(f"digitrec: error: {': '.join(command + [message])}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from digitrec import __version__

    parser = Parser(prog="digitrec", description="Recognise handwritten digits with convolutional networks.")
    parser.add_argument("--version", action="version", version=f"digitrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"digitrec.cli.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except DigitrecError as exc:
        print(f"digitrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `digitrec evaluate | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
