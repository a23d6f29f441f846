"""The `digitrec` command: a thin dispatcher over one module per sub-command.

Each command module has `add_parser(subparsers)` and `run(args) -> int`; what
they share lives in `common`. User mistakes (`DigitrecError`) become one line on
stderr and exit code 2, with the field they are about spelled as the command's
own option (`--threshold: …`); anything else is a bug and keeps its traceback.
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
    "fonts",
]
# Library fields whose option has another name (Settings.model_file is --model, and so on).
FIELD_OPTIONS = {"model_file": "model", "max_upload_bytes": "max_upload_mb", "measure_test": "no_test"}


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
        sub.choices[name].set_defaults(parser=sub.choices[name])
    return parser


def option_label(parser: argparse.ArgumentParser | None, field: str) -> str:
    """How the user spelled `field` on this command line: its option (`--max-upload-mb`), its
    positional argument's name (`MODEL`), or the field itself when the command has no such option."""
    dest = FIELD_OPTIONS.get(field, field)
    for action in parser._actions if parser is not None else []:
        if action.dest in (dest, field) and action.option_strings:
            return max(action.option_strings, key=len)
        if action.dest in (dest, field):
            return str(action.metavar or action.dest).upper()
    return field


def render(exc: DigitrecError, parser: argparse.ArgumentParser | None = None) -> str:
    if exc.field is None:
        return exc.message
    return f"{option_label(parser, exc.field)}: {exc.message}"


def file_size_limit_is_an_error() -> None:
    """Past a file-size limit (`ulimit -f`, RLIMIT_FSIZE) the kernel kills a process with SIGXFSZ unless it
    ignores that signal; ignored, the write fails with EFBIG and is reported in one line, like a full disk."""
    import signal
    import threading

    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    file_size_limit_is_an_error()
    try:
        return int(args.run(args) or 0)
    except DigitrecError as exc:
        print(f"digitrec: error: {render(exc, getattr(args, 'parser', None))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digitrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `digitrec evaluate | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
