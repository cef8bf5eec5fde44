"""``scaler simulate ARGS`` in this process, with the CPU its reconciler ticks take counted.

    python benchmarks/tick_time.py TRACE --policy scaler --capacity-types on-demand --json

The run is the command's own (same arguments, same output on stdout); on exit, one JSON line
on stderr: ``{"tick_split": {...}}`` with

- ``ticks``, ``tick_cpu_s``: every ``Reconciler.tick`` call and its CPU (process CPU before
  and after each call, about a microsecond a tick). The tick includes what it awaits: the
  decision and the actions, down to the simulated cloud's answers;
- ``idle_ticks``, ``idle_tick_cpu_s``: those of them whose decision holds no action and
  closes no batch (a tick that decides nothing: what reading the world and deciding cost);
- ``admissions``, ``admission_cpu_s``: the admission webhook's chooser
  (:func:`scaler.loop.admission.choose_pin`), once per pod it admits.

What is left of the process's CPU besides the ticks is the rest: start-up, the trace, the
simulated world's events, admission, kube-scheduler, the scorecard.
``benchmarks/simulate_speed.py --split`` runs it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from scaler.cli import main as scaler_main
from scaler.core.actions import Decision
from scaler.loop import admission
from scaler.loop.reconciler import Reconciler


def main(argv: Sequence[str]) -> int:
    counts = {"ticks": 0, "tick_cpu_s": 0.0, "idle_ticks": 0, "idle_tick_cpu_s": 0.0,
              "admissions": 0, "admission_cpu_s": 0.0}
    tick, choose_pin = Reconciler.tick, admission.choose_pin
    clock = time.process_time

    async def timed_tick(self: Reconciler, *args: Any, **kwargs: Any) -> Decision:
        t0 = clock()
        decision = await tick(self, *args, **kwargs)
        spent = clock() - t0
        counts["ticks"] += 1
        counts["tick_cpu_s"] += spent
        if not decision.actions and not decision.batch_closed:
            counts["idle_ticks"] += 1
            counts["idle_tick_cpu_s"] += spent
        return decision

    async def timed_choose(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        try:
            return await choose_pin(*args, **kwargs)
        finally:
            counts["admission_cpu_s"] += clock() - t0
            counts["admissions"] += 1

    # The chooser make_chooser builds looks choose_pin up in its module at each call.
    Reconciler.tick = timed_tick  # type: ignore[method-assign]
    admission.choose_pin = timed_choose
    try:
        code = scaler_main(["simulate", *argv])
    finally:
        Reconciler.tick = tick  # type: ignore[method-assign]
        admission.choose_pin = choose_pin
    print(json.dumps({"tick_split": counts}), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
