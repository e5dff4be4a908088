"""The ``cofee`` command line.

Each subcommand lives in ``cofee_lib/commands/<name>.py`` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed args and returning an exit status or None). Command modules
must import heavy libraries (torch, transformers) inside ``func``, not at the
top, so that ``cofee --help`` stays fast.

Errors the user causes are printed as one line on stderr,
``cofee <command>: error: <file>[:<line>]: <what was expected>``, with exit
status 2 and no traceback: every :class:`~cofee_lib.errors.CofeeError`, and
(as a safety net) any ``OSError`` a command lets through, printed with the
file it names and the OS reason.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from . import __version__
from .errors import CofeeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cofee", description="CoFEE reproduction kit: data, corpora, training, pre-training and evaluation for NER.")
    parser.add_argument("--version", action="version", version=f"cofee {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _command_name(args) -> str:
    """``corpus match``, ``gazetteer build``, ``train``: the command as the user typed it."""
    sub = getattr(args, f"{args.command.replace('-', '_')}_command", None)
    return f"{args.command} {sub}" if sub else args.command


def _os_error_text(exc: OSError) -> str:
    """``FILE: reason`` (``FILE -> OTHER: reason`` for a rename) for an OS error."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    where = str(exc.filename) if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
    return f"{where}: {reason}"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    name = _command_name(args)
    try:
        status = args.func(args)
    except CofeeError as exc:
        print(f"cofee {name}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # `cofee ... --out - | head`: the reader left; stop quietly, as cat does
        _silence_stdout()
        return 141
    except OSError as exc:
        print(f"cofee {name}: error: {_os_error_text(exc)}", file=sys.stderr)
        return CofeeError.exit_status
    except KeyboardInterrupt:
        print(f"cofee {name}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
