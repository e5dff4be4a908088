"""The ``cofee`` command line.

Each subcommand lives in ``cofee_lib/commands/<name>.py`` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed args and returning an exit status or None). Command modules
must import heavy libraries (torch, transformers) inside ``func``, not at the
top, so that ``cofee --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = args.func(args)
    except CofeeError as exc:
        print(f"cofee {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"cofee {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
