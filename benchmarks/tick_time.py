"""``scaler simulate ARGS`` in this process, with the CPU its reconciler ticks take counted.

    python benchmarks/tick_time.py TRACE --policy scaler --capacity-types on-demand --json

The run is the command's own (same arguments, same output on stdout); on exit, one JSON line
on stderr: ``{"tick_split": {"ticks": N, "tick_cpu_s": S}}``. ``Reconciler.tick`` is wrapped
(process CPU before and after each call, about a microsecond a tick); the tick includes what
it awaits: the decision and the actions, down to the simulated cloud's answers. What is left
of the process's CPU is the rest: start-up, the trace, the simulated world's events,
admission, kube-scheduler, the scorecard. ``benchmarks/simulate_speed.py --split`` runs it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from scaler.cli import main as scaler_main
from scaler.loop.reconciler import Reconciler


def main(argv: Sequence[str]) -> int:
    ticks, spent = 0, 0.0
    tick = Reconciler.tick
    clock = time.process_time

    async def timed(self: Reconciler, *args: Any, **kwargs: Any) -> Any:
        nonlocal ticks, spent
        t0 = clock()
        try:
            return await tick(self, *args, **kwargs)
        finally:
            spent += clock() - t0
            ticks += 1

    Reconciler.tick = timed  # type: ignore[method-assign]
    try:
        code = scaler_main(["simulate", *argv])
    finally:
        Reconciler.tick = tick  # type: ignore[method-assign]
    print(json.dumps({"tick_split": {"ticks": ticks, "tick_cpu_s": spent}}), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
