"""Public cluster traces -> scaler's workload format (pods with ``arrival_s``/``duration_s``).

Two importers, both for Alibaba's clusterdata GPU traces (research/study use; see
docs/traces.md for the mapping tables and the reasons behind them):

- ``alibaba-openb``: ``openb_pod_list_*.csv`` (Weng et al., "Beware of Fragmentation",
  USENIX ATC'23),
- ``alibaba-dlrm``: ``disaggregated_DLRM_trace.csv`` (Yang et al., NSDI'25).

The importers are pure apart from reading the CSV: they return the workload as a dict plus
counts, and never write. A row whose *times* are unusable (the event fell outside the trace
window, or the pod was deleted the second it was created) is skipped and counted by reason;
any other defect (a missing column, a resource that is not a number) stops the import with a
:class:`TraceFormatError` naming the file, the line and the column.

Times are the trace's own (seconds from the trace start, both traces start near 0), rounded
to the millisecond: re-basing would shift every pod of a ``--limit`` slice differently from
the full trace, and makes a pod harder to find again in the source.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from scaler.core.model import SpecError
from scaler.core.names import is_dns1123_label
from scaler.core.settings import MAX_TIME_S

REGION: Final = "us-east-1"
LICENSE_NOTE: Final = "Alibaba clusterdata, research/study use"

# openb's gpu_spec names -> AWS GPU model names (DescribeInstanceTypes GpuInfo.Name). P100 is
# not sold on EC2 any more; the V100 (p3) is its nearest successor. G1/G2/G3 are undisclosed
# models, so a spec naming one (or any name not listed) allows any GPU.
OPENB_GPU_MODELS: Final = {
    "V100M16": "V100",
    "V100M32": "V100",
    "P100": "V100",
    "T4": "T4",
    "A10": "A10G",
    "A100": "A100",
}

# Skip reasons, in the order they are checked.
NO_CREATION: Final = "no creation_time"
NO_DELETION: Final = "no deletion_time"
BAD_CREATION: Final = "creation_time not a number >= 0"
BAD_DELETION: Final = "deletion_time not a number"
DELETED_BEFORE: Final = "deleted before created"
ZERO_LIFETIME: Final = "deleted when created"
TOO_LATE: Final = f"time past {MAX_TIME_S:g} s"
"""A creation time or lifetime past the workload format's bound (about 10 years)."""
MAX_AMOUNT: Final = Decimal(10**9)
"""A resource column above this (a billion vCPUs, GiB or MiB) is no pod; refused."""


class TraceFormatError(SpecError):
    """A CSV that cannot be imported; ``where`` is ``file: line N, column C``."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an importer made of one CSV.

    ``document`` is a workload (version 1) whose pods are sorted by ``arrival_s`` (file order
    among equals); ``rows`` counts the data rows read (all of them, or up to the ``limit``-th
    usable one); ``skipped`` maps each skip reason to its count.
    """

    document: dict[str, Any]
    rows: int
    skipped: Mapping[str, int]

    @property
    def imported(self) -> int:
        return len(self.document["pods"])

    def summary(self) -> str:
        """One line for stderr: ``8,151 pods imported from 8,152 rows; skipped 1: ...``."""
        text = f"{_count(self.imported, 'pod')} imported from {_count(self.rows, 'row')}"
        total = sum(self.skipped.values())
        if total:
            reasons = ", ".join(f"{n:,} {why}" for why, n in self.skipped.items())
            text += f"; skipped {total:,}: {reasons}"
        return text


# ----------------------------------------------------------------------------- openb


OPENB_COLUMNS: Final = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "creation_time",
    "deletion_time",
)


def import_openb(
    path: str | Path, *, limit: int | None = None, namespace: str | None = None
) -> ImportResult:
    """An ``openb_pod_list_*.csv``; every pod in ``namespace`` (default ``openb``)."""
    ns = namespace or "openb"

    def pod(row: _Row) -> dict[str, Any]:
        gpus = _ceil(row.number("num_gpu"))
        # A GPU share (gpu_milli < 1000) still takes a whole GPU: scaler gives each pod its
        # own node, and the device plugin only hands out whole GPUs (DOMAIN.md).
        if gpus == 0 and row.number("gpu_milli") > 0:
            gpus = 1
        requests: dict[str, Any] = {
            "cpu": f"{_ceil(row.number('cpu_milli'))}m",
            "memory": f"{_ceil(row.number('memory_mib'))}Mi",
        }
        out: dict[str, Any] = {"name": row.name("name"), "namespace": ns, "requests": requests}
        if gpus:
            requests["nvidia.com/gpu"] = gpus
            models = openb_gpu_models(row.text("gpu_spec"))
            if models:
                out["gpu_models"] = list(models)
        qos = row.text("qos").strip()
        if qos:
            out["annotations"] = {"alibaba.com/qos": qos}
        return out

    return _import(
        path,
        OPENB_COLUMNS,
        pod,
        limit=limit,
        description="Alibaba openb GPU cluster trace (clusterdata alibaba_gpu_v2023, "
        "{file}). {license}; cite Weng et al., USENIX ATC'23.",
    )


def openb_gpu_models(spec: str) -> tuple[str, ...]:
    """``"V100M16|V100M32"`` -> ``("V100",)``; ``()`` (any GPU) if any name is not mapped."""
    names = [s.strip() for s in spec.split("|") if s.strip()]
    if not names or any(n.upper() not in OPENB_GPU_MODELS for n in names):
        return ()
    return tuple(sorted({OPENB_GPU_MODELS[n.upper()] for n in names}))


# ------------------------------------------------------------------------------ DLRM


DLRM_COLUMNS: Final = (
    "instance_sn",
    "role",
    "app_name",
    "cpu_request",
    "gpu_request",
    "memory_request",
    "creation_time",
    "deletion_time",
)


def import_dlrm(
    path: str | Path, *, limit: int | None = None, namespace: str | None = None
) -> ImportResult:
    """``disaggregated_DLRM_trace.csv``; one namespace per app unless ``namespace`` is given.

    rdma_* and disk_* are left out: RDMA NICs are not modelled, and local disk is sized per
    pool (its root volume), not chosen per node shape. max_instance_per_node is met trivially
    by scaler's one-pod-per-node default.
    """

    def pod(row: _Row) -> dict[str, Any]:
        app = row.text("app_name").strip()
        requests: dict[str, Any] = {
            "cpu": _cpu_from_vcpu(row.number("cpu_request")),
            "memory": _memory_from_gib(row.number("memory_request")),
        }
        gpus = _ceil(row.number("gpu_request"))
        if gpus:
            requests["nvidia.com/gpu"] = gpus
        return {
            "name": row.name("instance_sn"),
            "namespace": namespace or row.name("app_name", label=True),
            "requests": requests,
            "annotations": {"alibaba.com/app": app, "alibaba.com/role": row.text("role").strip()},
        }

    return _import(
        path,
        DLRM_COLUMNS,
        pod,
        limit=limit,
        description="Alibaba disaggregated DLRM inference trace (clusterdata alibaba_gpu_v2025, "
        "{file}). {license}; cite Yang et al., NSDI'25.",
    )


FORMATS: Final[Mapping[str, Callable[..., ImportResult]]] = {
    "alibaba-openb": import_openb,
    "alibaba-dlrm": import_dlrm,
}


# ------------------------------------------------------------------------------ common


class _Row:
    """One CSV row with the file and line, so every error can name them."""

    def __init__(self, path: Path, line: int, values: Mapping[str, str]) -> None:
        self.path, self.line, self.values = path, line, values

    def error(self, column: str, what: str) -> TraceFormatError:
        return TraceFormatError(f"{self.path}: line {self.line}, column {column}", what)

    def text(self, column: str) -> str:
        return self.values[column]

    def number(self, column: str) -> Decimal:
        """A resource amount: a finite number >= 0, or an error."""
        raw = self.values[column].strip()
        value = _decimal(raw)
        if value is None:
            raise self.error(column, f"expected a number, got {raw!r}")
        if value < 0:
            raise self.error(column, f"expected zero or more, got {raw!r}")
        if value > MAX_AMOUNT:
            raise self.error(column, f"expected at most {MAX_AMOUNT:,}, got {raw!r}")
        return value

    def name(self, column: str, *, label: bool = False) -> str:
        """A Kubernetes name from the column: lower case, ``_`` and other strays -> ``-``."""
        raw = self.values[column].strip()
        allowed = r"[^a-z0-9-]" if label else r"[^a-z0-9.-]"
        name = re.sub(allowed, "-", raw.lower()).strip("-.")
        if not label:
            # A DNS-1123 subdomain: each dot-separated part a label with alphanumeric ends.
            parts = (part.strip("-") for part in name.split("."))
            name = ".".join(part for part in parts if part)[:253].rstrip("-.")
        if not name:
            raise self.error(column, f"expected a name, got {raw!r}")
        return name[:63].rstrip("-.") if label else name


def _import(
    path: str | Path,
    columns: Sequence[str],
    make_pod: Callable[[_Row], dict[str, Any]],
    *,
    limit: int | None,
    description: str,
) -> ImportResult:
    p = Path(path)
    pods: list[tuple[float, dict[str, Any]]] = []
    skipped: Counter[str] = Counter()
    first_line: dict[tuple[str, str], int] = {}
    rows = 0
    for row in _read(p, columns):
        if limit is not None and len(pods) >= limit:
            break
        rows += 1
        times = _lifetime(row)
        if isinstance(times, str):
            skipped[times] += 1
            continue
        pod = make_pod(row)
        key = (pod["namespace"], pod["name"])
        if key in first_line:
            raise row.error(
                columns[0],
                f"pod {key[0]}/{key[1]} already imported from line {first_line[key]}",
            )
        first_line[key] = row.line
        pod["arrival_s"], pod["duration_s"] = times
        pods.append((times[0], pod))
    pods.sort(key=lambda ap: ap[0])  # stable: file order among equal arrivals
    document = {
        "version": 1,
        "region": REGION,
        "description": description.format(file=p.name, license=LICENSE_NOTE),
        "pods": [pod for _, pod in pods],
    }
    order = (
        NO_CREATION,
        NO_DELETION,
        BAD_CREATION,
        BAD_DELETION,
        DELETED_BEFORE,
        ZERO_LIFETIME,
        TOO_LATE,
    )
    return ImportResult(
        document=document,
        rows=rows,
        skipped={why: skipped[why] for why in order if skipped[why]},
    )


def _read(path: Path, columns: Sequence[str]) -> Iterator[_Row]:
    """The rows of a CSV with a header naming at least ``columns``; blank lines are skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TraceFormatError(str(path), "no such file") from None
    except OSError as e:
        raise TraceFormatError(str(path), f"cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise TraceFormatError(f"{path}: line {line}", f"not UTF-8 text: {e.reason}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise TraceFormatError(f"{path}: line 1", "empty file, expected a CSV header")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise TraceFormatError(
                f"{path}: line 1, column {missing[0]}",
                f"missing column(s) {', '.join(missing)} (the header has {', '.join(header)})",
            )
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                column = (
                    header[len(values)]
                    if len(values) < len(header)
                    else f"{len(header) + 1} (past the header)"
                )
                raise TraceFormatError(
                    f"{path}: line {reader.line_num}, column {column}",
                    f"expected {len(header)} fields, got {len(values)}",
                )
            yield _Row(path, reader.line_num, dict(zip(header, values, strict=True)))
    except csv.Error as e:
        raise TraceFormatError(f"{path}: line {reader.line_num}", f"not CSV: {e}") from None


def _lifetime(row: _Row) -> tuple[int | float, int | float] | str:
    """(arrival_s, duration_s) from creation/deletion times, or the reason to skip the row."""
    created_raw = row.text("creation_time").strip()
    deleted_raw = row.text("deletion_time").strip()
    # Empty means the event fell outside the trace window (the DLRM trace says so).
    if not created_raw:
        return NO_CREATION
    if not deleted_raw:
        return NO_DELETION
    created, deleted = _decimal(created_raw), _decimal(deleted_raw)
    if created is None or created < 0:
        return BAD_CREATION
    if deleted is None:
        return BAD_DELETION
    if deleted < created:
        return DELETED_BEFORE
    if deleted == created:
        # Deleted the second it was created: no demand a node (minutes to boot) could serve.
        return ZERO_LIFETIME
    if created > MAX_TIME_S or deleted - created > MAX_TIME_S:
        return TOO_LATE
    return _seconds(created), _seconds(deleted - created)


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _seconds(value: Decimal) -> int | float:
    """Whole seconds as an int (the openb times), else rounded to the millisecond."""
    ms = value.quantize(Decimal("0.001"))
    return int(ms) if ms == ms.to_integral_value() else float(ms)


def _cpu_from_vcpu(vcpu: Decimal) -> str:
    milli = _ceil(vcpu * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _memory_from_gib(gib: Decimal) -> str:
    mib = gib * 1024
    return f"{int(gib)}Gi" if gib == int(gib) else f"{_ceil(mib)}Mi"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def format_workload(document: Mapping[str, Any]) -> str:
    """Stable JSON text: keys sorted, one pod per line (diffable, byte-identical per input)."""
    parts = []
    for key, value in sorted(document.items()):
        if key == "pods" and value:
            pods = ",\n".join("    " + json.dumps(p, sort_keys=True) for p in value)
            parts.append(f'  "pods": [\n{pods}\n  ]')
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def is_dns_label(text: str) -> bool:
    """A valid namespace name (RFC 1123 label)."""
    return is_dns1123_label(text)
