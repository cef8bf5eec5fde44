"""The command line: ``scaler <command>``. Each command lives in :mod:`scaler.commands`.

Errors a user can fix print one line each to stderr and no traceback: a bad file or flag
exits 2; a cloud or cluster that cannot be reached or read (no AWS credentials, a bad
kubeconfig, an API server that refuses) exits 1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from scaler.core.model import SpecError
from scaler.ports import PortError

# Command modules, each with ``add_parser(subparsers)`` and ``run(args) -> int``.
COMMANDS = ("place", "simulate", "trace", "run", "plan", "status", "settings", "bench")


_USAGE = (SpecError, ValueError, FileNotFoundError)
"""A bad file, flag or input: the user's to fix (exit 2)."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (one of :data:`COMMANDS`), just that command's
    part of it, so running one command imports no other command's modules."""
    parser = argparse.ArgumentParser(
        prog="scaler",
        description="Node autoscaler for Kubernetes on AWS: each pod on the cheapest node that fits.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        try:
            module = importlib.import_module(f"scaler.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"scaler.commands.{name}":
                continue  # a command not built yet
            raise
        module.add_parser(sub)
    return parser


class _Version(argparse.Action):
    """``--version``, looked up only when asked: importlib.metadata would cost every command
    tens of milliseconds at start-up."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                         nargs=0, help="show program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"scaler {version()}")
        parser.exit()


def version() -> str:
    """The installed distribution's version (what ``pip`` installed), else the source's."""
    import importlib.metadata

    try:
        return importlib.metadata.version("scaler")
    except importlib.metadata.PackageNotFoundError:
        from scaler import __version__

        return __version__


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # A command's own parser parses and reports exactly as under the full one (its usage,
    # help and errors name only it); anything else (--help, --version, a typo) gets them all.
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except BrokenPipeError:
        # Output piped into head(1) and closed: not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again (Python's docs,
        # "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        # The live commands run in task groups, which wrap what fails at start-up.
        errors = _leaves(error)
        if not all(isinstance(e, (*_USAGE, PortError)) for e in errors):
            raise
        for e in errors:
            print(f"scaler {args.command}: {e}", file=sys.stderr)
        return 2 if all(isinstance(e, _USAGE) for e in errors) else 1
    except KeyboardInterrupt:
        return 130


def entry() -> int:
    """``scaler`` as a process (the console script, ``python -m scaler``): :func:`main`.
    After a simulation, what is alive is left out of the interpreter's final collection,
    which would walk all of it for nothing as the process ends (0.2 s after openb). Other
    commands end as they did: the live ones may leave objects whose finalizers should run."""
    code = main()
    if sys.argv[1:2] == ["simulate"]:
        gc.freeze()
    return code


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for e in error.exceptions for leaf in _leaves(e)]
    return [error]
