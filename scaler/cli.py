"""The command line: ``scaler <command>``. Each command lives in :mod:`scaler.commands`.

Errors a user can fix (a bad file, a bad flag) print one line to stderr and exit 2; nothing
else is printed for them (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scaler.core.model import SpecError

# Command modules, each with ``add_parser(subparsers)`` and ``run(args) -> int``.
COMMANDS = ("place", "simulate", "trace", "run", "plan", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaler",
        description="Node autoscaler for Kubernetes on AWS: each pod on the cheapest node that fits.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"scaler.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"scaler.commands.{name}":
                continue  # a command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except SpecError as e:
        print(f"scaler {args.command}: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"scaler {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into head(1) and closed: not an error of ours.
        sys.stderr.close()
        return 0
