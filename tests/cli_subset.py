"""The real ``cofee`` command line restricted to the commands a test file exercises (test code).

``run(argv, predict, tag)`` is ``cofee_lib.cli.main(argv)`` -- its error handling and exit
statuses -- over a parser holding only those commands' real parsers, so that a test does not
depend on every other command importing cleanly.
"""
from __future__ import annotations

import argparse

from cofee_lib import cli


def run(argv, *commands) -> int:
    def parser():
        p = argparse.ArgumentParser(prog="cofee")
        sub = p.add_subparsers(dest="command")
        for command in commands:
            command.register(sub)
        return p

    real = cli.build_parser
    cli.build_parser = parser
    try:
        return cli.main([str(a) for a in argv])
    finally:
        cli.build_parser = real
