"""``scaler trace import FORMAT CSV -o OUT.json``: a public cluster trace -> a workload file.

The importers live in :mod:`scaler.importers` (docs/traces.md has the mapping tables). The
output is checked with the workload parser before it is written, and written atomically (a
temporary file in the same directory, then a rename): a bad CSV or a failed write leaves no
file, or the previous one, behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from scaler.commands.outputs import check_output_path
from scaler.core.model import SpecError
from scaler.core.spec import parse_workload
from scaler.importers import FORMATS, format_workload, is_dns_label


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "trace",
        help="import public cluster traces as workload files",
        description="Work with workload traces (the workload format with arrival_s and "
        "duration_s per pod; docs/traces.md).",
    )
    actions = p.add_subparsers(dest="trace_action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="convert a public trace CSV into a workload file",
        description="Convert a public trace CSV into a workload file for `scaler simulate`. "
        "alibaba-openb: openb_pod_list_*.csv (Alibaba GPU trace 2023); alibaba-dlrm: "
        "disaggregated_DLRM_trace.csv (Alibaba GPU trace 2025). Rows without usable times are "
        "skipped and counted on stderr.",
    )
    imp.add_argument("format", choices=sorted(FORMATS), help="the trace's format")
    imp.add_argument("csv", metavar="CSV", help="the trace file")
    imp.add_argument(
        "-o", "--output", required=True, metavar="OUT.json", help="workload file to write"
    )
    imp.add_argument(
        "--limit", type=_positive_int, metavar="N", help="stop after the first N usable rows"
    )
    imp.add_argument(
        "--namespace",
        type=_namespace,
        metavar="NS",
        help="put every pod in NS (default: openb for alibaba-openb, one namespace per app "
        "for alibaba-dlrm)",
    )
    imp.set_defaults(run=run_import)


def run_import(args: argparse.Namespace) -> int:
    check_output_path("-o", args.output)
    result = FORMATS[args.format](args.csv, limit=args.limit, namespace=args.namespace)
    # The importers should only build valid workloads; this makes sure nothing else is written.
    parse_workload(result.document, source=args.output)
    write_atomically(Path(args.output), format_workload(result.document))
    print(f"scaler trace import: {args.output}: {result.summary()}", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename; on any failure ``path`` is untouched."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise SpecError(str(path), f"cannot write: {e.strerror or e}") from None
    try:
        # mkstemp makes the file 0600; give it the mode open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise SpecError(str(path), f"cannot write: {e.strerror or e}") from None
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def _namespace(text: str) -> str:
    if not is_dns_label(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a namespace name (lower-case letters, digits and '-', at most 63)"
        )
    return text
