"""``python -m engine <command>``: dispatches to the modules in engine/commands.

Each command module defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. A :class:`ChoreoError` becomes one ``error:`` line on
stderr and its exit code; it never becomes a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.errors import ChoreoError

COMMANDS = ("analyze", "metrics", "validate", "generate", "train", "pipeline")


def _load(name: str):
    try:
        return importlib.import_module(f"engine.commands.{name}")
    except ModuleNotFoundError as exc:  # a command not built yet
        if exc.name == f"engine.commands.{name}":
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Choreo dance engine")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ChoreoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
