"""The simulator's speed targets (issue 12), measured the way a user runs it: whole
``scaler simulate TRACE --policy P --capacity-types on-demand --json`` processes, one after
another, the policies interleaved round by round so that a drift in the machine's speed
falls on all of them alike::

    python benchmarks/simulate_speed.py                      # openb and DLRM, 3 rounds
    python benchmarks/simulate_speed.py --rounds 5 --density 8 --json
    python benchmarks/simulate_speed.py --bytecode both      # cached and as this shell has it
    python benchmarks/simulate_speed.py --instructions       # + callgrind, once per run (slow)
    python benchmarks/simulate_speed.py --split              # + where the CPU goes: ticks, rest
    python benchmarks/simulate_speed.py --trace traces/spot-batch.json --rounds 1

The traces are imported from the public data (``../shared/data``, looked for relative to the
working directory, then to the repository; ``--data DIR`` elsewhere) into a scratch
directory with ``scaler trace import``; a trace whose CSV is absent is skipped, and said so.
``--density K`` adds openb with every pod repeated K times (copy i arriving i seconds after
it), for the scaler policy.

Bytecode: a Python install writes each module's bytecode the first time it is imported and
reads it after, so a user's second run does not compile the package. ``cached`` (the default)
measures that: a scratch ``PYTHONPYCACHEPREFIX``, filled by one warm-up run. ``inherit``
runs with this shell's environment as it is (``PYTHONDONTWRITEBYTECODE=1`` here, so every run
compiles the package: about 0.15 s). ``both`` runs each round both ways.

Printed per run: wall time (median and min), user + system CPU (median), the run's ticks and
scale-ups from its own ``--json`` (the same in every round, or the benchmark stops: a run is
a pure function of its inputs), and the cost per tick and per node launched. Then the
targets: scaler <= 5 s (the issue asks it of a quiet machine: the load average is printed
before and after), scaler <= 1.25x karpenter-like (the median of each round's ratio, the two
runs of a round next to each other), and the denser openb no worse than linear. A fixed
pure-Python loop is timed before and after (best of 5): the machine's speed at the time, to
compare runs of different days by.

``--split`` runs each simulation once more per round through ``benchmarks/tick_time.py``
(the same command, with the CPU of the reconciler's ticks counted) and prints the process's
CPU as ticks and the rest, per policy, and for scaler against karpenter-like: the ratio of
the rest alone (what the whole-run ratio would be if every tick cost nothing), and the share
of their tick CPU the ticks would have to come down to for 1.25x: both policies' (the same
tick code runs both), and scaler's alone with karpenter-like's run as it is. It also counts
the admission webhook's chooser (part of the rest) and the ticks that decide nothing, and
prints the most a tick could cost in both policies for 1.25x were admission free too,
beside what a tick that decides nothing costs now.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = Path("../shared/data")
PUBLIC = {
    "openb": ("alibaba-openb", "traces/alibaba_gpu_v2023/openb_pod_list_default.csv"),
    "dlrm": ("alibaba-dlrm", "traces/alibaba_gpu_v2025/disaggregated_DLRM_trace.csv"),
}
TARGET_S = 5.0
TARGET_RATIO = 1.25
BASELINE = "karpenter-like"


@dataclass
class Run:
    """One ``scaler simulate`` process."""

    trace: str
    policy: str
    bytecode: str
    round: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    ticks: int
    scale_ups: int
    pods: int
    total_cost_usd: float


@dataclass
class Summary:
    trace: str
    policy: str
    bytecode: str
    runs: int
    wall_median_s: float
    wall_min_s: float
    cpu_median_s: float
    ticks: int
    scale_ups: int
    pods: int
    cpu_us_per_tick: float
    cpu_ms_per_launch: float
    max_rss_mb: float
    instructions: int | None = None
    walls: list[float] = field(default_factory=list)


@dataclass
class Split:
    """One run through ``benchmarks/tick_time.py``: the process's CPU (``wait4``) and the
    part of it its reconciler's ticks took."""

    trace: str
    policy: str
    round: int
    ticks: int
    cpu_s: float
    tick_cpu_s: float
    idle_ticks: int
    """Ticks whose decision holds no action (and closes no batch)..."""
    idle_tick_cpu_s: float
    """...and their CPU: what reading the world and deciding nothing costs."""
    admissions: int
    admission_cpu_s: float
    """The admission webhook's chooser, once per admitted pod (part of the rest)."""

    @property
    def rest_cpu_s(self) -> float:
        return self.cpu_s - self.tick_cpu_s

    @property
    def world_cpu_s(self) -> float:
        """The rest without admission."""
        return self.rest_cpu_s - self.admission_cpu_s


def reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python loop, best of 5: how fast this machine runs
    Python right now, printed before and after so that runs of different days (or minutes:
    a shared machine's speed drifts) can be told apart from changes in the code."""
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.process_time() - t0)
    return best * 1e3


def find_data(explicit: str | None) -> Path | None:
    """The public data directory: ``explicit``, else ``../shared/data`` relative to the
    working directory, then to the repository."""
    if explicit is not None:
        return Path(explicit)
    for base in (Path.cwd(), REPO):
        if (base / DATA).is_dir():
            return (base / DATA).resolve()
    return None


def import_public(data: Path | None, names: Iterable[str], work: Path) -> dict[str, Path]:
    """Each named public trace as a workload file in ``work``; absent ones are skipped."""
    traces: dict[str, Path] = {}
    for name in names:
        kind, rel = PUBLIC[name]
        csv = data / rel if data is not None else None
        if csv is None or not csv.is_file():
            print(f"skipped {name}: {csv or DATA / rel} not found", file=sys.stderr)
            continue
        out = work / f"{name}.json"
        subprocess.run(
            [sys.executable, "-m", "scaler", "trace", "import", kind, str(csv), "-o", str(out)],
            check=True, stdout=subprocess.DEVNULL,
        )
        traces[name] = out
    return traces


def denser(trace: dict[str, Any], k: int) -> dict[str, Any]:
    """The workload with every pod repeated ``k`` times: copy i named ``<pod>-c<i>``,
    arriving i seconds after it (how docs/benchmarks.md's density figures were made)."""
    pods = [
        dict(p, name=f"{p['name']}-c{i}", arrival_s=p["arrival_s"] + i)
        for p in trace["pods"]
        for i in range(k)
    ]
    return dict(trace, pods=pods)


def package_dirs() -> list[str]:
    """Where this interpreter finds the ``scaler`` and ``simulations`` packages."""
    dirs = []
    for package in ("scaler", "simulations"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            dirs += list(spec.submodule_search_locations)
    return dirs


def environment(bytecode: str, prefix: Path) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(prefix)
    return env


def simulate_args(trace: Path, policy: str, capacity: str) -> list[str]:
    """What follows ``scaler simulate`` in every run this benchmark makes."""
    return [str(trace), "--policy", policy, "--capacity-types", capacity, "--json"]


def command(trace: Path, policy: str, capacity: str) -> list[str]:
    return [sys.executable, "-m", "scaler", "simulate", *simulate_args(trace, policy, capacity)]


def split_command(trace: Path, policy: str, capacity: str) -> list[str]:
    """The same run through ``tick_time.py``, which counts its ticks' CPU."""
    return [sys.executable, str(REPO / "benchmarks" / "tick_time.py"),
            *simulate_args(trace, policy, capacity)]


SPLIT_COUNTS = ("ticks", "idle_ticks", "admissions")
SPLIT_SECONDS = ("tick_cpu_s", "idle_tick_cpu_s", "admission_cpu_s")


def tick_split(stderr: str) -> dict[str, Any]:
    """What ``tick_time.py``'s last line on stderr counted: :class:`Split`'s fields from
    ``ticks`` on, as keywords."""
    for line in reversed(stderr.splitlines()):
        if line.startswith('{"tick_split"'):
            split = json.loads(line)["tick_split"]
            try:
                return {**{k: int(split[k]) for k in SPLIT_COUNTS},
                        **{k: float(split[k]) for k in SPLIT_SECONDS}}
            except KeyError as e:
                raise SystemExit(f"benchmarks/tick_time.py's tick_split line has no {e}") from e
    raise SystemExit("benchmarks/tick_time.py printed no tick_split line")


def split_lines(splits: Sequence[Split]) -> list[str]:
    """Per (trace, policy): median CPU as ticks and the rest. Per trace, scaler against the
    baseline (medians of each round's pair): the ratio of the rests (the whole-run ratio
    were every tick free), of the ticks, and the share of their tick CPU that would meet
    ``TARGET_RATIO``: both policies' ticks, and scaler's alone with the baseline as it is.
    """
    groups: dict[tuple[str, str], list[Split]] = {}
    for s in splits:
        groups.setdefault((s.trace, s.policy), []).append(s)
    lines = []
    for (trace, policy), ss in groups.items():
        cpu = statistics.median(s.cpu_s for s in ss)
        tick = statistics.median(s.tick_cpu_s for s in ss)
        rest = statistics.median(s.rest_cpu_s for s in ss)
        lines.append(f"{trace} {policy}: {cpu:.2f} s CPU = ticks {tick:.2f} s "
                     f"({ss[0].ticks} ticks, {tick / ss[0].ticks * 1e6:.0f} us each) + rest "
                     f"{rest:.2f} s")
        idle = _idle_tick_us(ss)
        line = (f"{trace} {policy}: {ss[0].idle_ticks} ticks decided nothing, {idle:.0f} us each"
                if idle is not None else f"{trace} {policy}: no tick decided nothing")
        if ss[0].admissions:
            admitted = statistics.median(s.admission_cpu_s for s in ss)
            line += (f"; admission {admitted:.2f} s of the rest ({ss[0].admissions} pods, "
                     f"{admitted / ss[0].admissions * 1e6:.0f} us each)")
        lines.append(line)
    for trace in dict.fromkeys(s.trace for s in splits):
        pairs = [(a, b) for a in splits for b in splits
                 if a.trace == b.trace == trace and a.round == b.round
                 and a.policy == "scaler" and b.policy == BASELINE]
        if not pairs:
            continue
        rest = statistics.median(a.rest_cpu_s / b.rest_cpu_s for a, b in pairs)
        ticks = statistics.median(a.tick_cpu_s / b.tick_cpu_s for a, b in pairs)
        # The share of their tick CPU both policies' ticks would have to come down to (one
        # tick code runs both) for scaler's whole run to be TARGET_RATIO times the
        # baseline's: rest_s + x tick_s = TARGET_RATIO (rest_b + x tick_b).
        both = statistics.median(_shared_share(a, b) for a, b in pairs)
        # ...and scaler's alone, with the baseline's run as it is.
        alone = statistics.median(
            (TARGET_RATIO * b.cpu_s - a.rest_cpu_s) / a.tick_cpu_s for a, b in pairs)
        whole = statistics.median(a.cpu_s / b.cpu_s for a, b in pairs)
        if whole <= TARGET_RATIO:
            room = "nothing: met as it is"
        elif rest > TARGET_RATIO:
            room = "not even with every tick free"
        else:
            room = (f"both policies' ticks at {both:.0%} of their CPU now, or scaler's alone "
                    f"at {alone:.0%}")
        lines.append(f"{trace} scaler / {BASELINE}: rest {rest:.2f}x, ticks {ticks:.2f}x; "
                     f"{TARGET_RATIO:g}x would need {room}")
        lines.append(_tick_budget_line(trace, pairs))
    return lines


def _idle_tick_us(splits: Iterable[Split]) -> float | None:
    """Median CPU microseconds of a tick that decided nothing; None if none did."""
    each = [s.idle_tick_cpu_s / s.idle_ticks * 1e6 for s in splits if s.idle_ticks]
    return statistics.median(each) if each else None


def _tick_budget_line(trace: str, pairs: Sequence[tuple[Split, Split]]) -> str:
    """The most a tick could cost, the same in both policies (one tick code runs both), for
    scaler's run to be ``TARGET_RATIO`` times the baseline's were admission free too:
    ``world_s + ticks_s c = TARGET_RATIO (world_b + ticks_b c)``; beside it what a tick
    that decides nothing costs now (medians of each round's pair)."""
    world = statistics.median(a.world_cpu_s / b.world_cpu_s for a, b in pairs)
    idle = [_idle_tick_us(s for s, _ in pairs), _idle_tick_us(b for _, b in pairs)]
    head = f"{trace} scaler / {BASELINE}, admission free too: rest {world:.2f}x; "
    now = ("(a tick that decides nothing costs "
           f"{' / '.join('-' if us is None else f'{us:.0f}' for us in idle)} us now)")
    if all(a.ticks <= TARGET_RATIO * b.ticks for a, b in pairs):
        return head + f"scaler ticks at most {TARGET_RATIO:g}x as often: no tick cost bars it"
    budget = statistics.median(
        (TARGET_RATIO * b.world_cpu_s - a.world_cpu_s) / (a.ticks - TARGET_RATIO * b.ticks)
        for a, b in pairs)
    if budget <= 0:
        return head + f"{TARGET_RATIO:g}x is out of reach even with every tick free {now}"
    return (head + f"{TARGET_RATIO:g}x would need every tick at most {budget * 1e6:.1f} us "
            f"in both policies {now}")


def _shared_share(a: Split, b: Split) -> float:
    """x with ``a.rest + x a.ticks = TARGET_RATIO (b.rest + x b.ticks)``; 1.0 where scaler's
    ticks are no dearer than that ratio of the baseline's (cutting both then gains nothing)."""
    over = a.tick_cpu_s - TARGET_RATIO * b.tick_cpu_s
    if over <= 0:
        return 1.0
    return (TARGET_RATIO * b.rest_cpu_s - a.rest_cpu_s) / over


def run_once(
    argv: Sequence[str], env: dict[str, str], work: Path
) -> tuple[float, float, float, bytes]:
    """Wall seconds, user + system CPU seconds, peak RSS (MB) and stdout of one process (its
    own resource usage, as ``wait4`` reports it)."""
    out_path, err_path = work / "stdout", work / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = err_path.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{tail}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out_path.read_bytes()


def instructions(argv: Sequence[str], env: dict[str, str], work: Path) -> int | None:
    """Instructions of one run under callgrind (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run(
        [valgrind, "--tool=callgrind", f"--callgrind-out-file={work / 'callgrind.out'}", *argv],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
    )
    for line in proc.stderr.decode().splitlines():
        if "Collected" in line:
            return int(line.rsplit(":", 1)[1].strip())
    return None


def summarise(runs: Sequence[Run]) -> list[Summary]:
    """One summary per (trace, policy, bytecode), in the order they were first run."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.trace, r.policy, r.bytecode), []).append(r)
    out = []
    for (trace, policy, bytecode), rs in groups.items():
        cpu = statistics.median(r.cpu_s for r in rs)
        first = rs[0]
        out.append(Summary(
            trace=trace, policy=policy, bytecode=bytecode, runs=len(rs),
            wall_median_s=statistics.median(r.wall_s for r in rs),
            wall_min_s=min(r.wall_s for r in rs), cpu_median_s=cpu,
            ticks=first.ticks, scale_ups=first.scale_ups, pods=first.pods,
            cpu_us_per_tick=cpu / first.ticks * 1e6 if first.ticks else 0.0,
            cpu_ms_per_launch=cpu / first.scale_ups * 1e3 if first.scale_ups else 0.0,
            max_rss_mb=max(r.max_rss_mb for r in rs),
            walls=[r.wall_s for r in rs],
        ))
    return out


def round_ratios(runs: Sequence[Run], trace: str, bytecode: str, policy: str) -> list[float]:
    """``policy``'s wall time over the baseline's, per round (the two ran back to back)."""
    walls: dict[tuple[int, str], float] = {
        (r.round, r.policy): r.wall_s for r in runs if r.trace == trace and r.bytecode == bytecode
    }
    return [
        walls[(rnd, policy)] / walls[(rnd, BASELINE)]
        for rnd in sorted({k[0] for k in walls})
        if (rnd, policy) in walls and (rnd, BASELINE) in walls
    ]


def targets(runs: Sequence[Run], summaries: Sequence[Summary], density: int) -> list[str]:
    lines = []
    by = {(s.trace, s.policy, s.bytecode): s for s in summaries}
    for (trace, policy, bytecode), s in by.items():
        if policy != "scaler" or trace not in PUBLIC:  # the targets name these traces
            continue
        verdict = "met" if s.wall_median_s <= TARGET_S else "not met"
        lines.append(f"{trace} scaler ({bytecode}) <= {TARGET_S:g} s: median {s.wall_median_s:.2f}"
                     f" s, min {s.wall_min_s:.2f} s: {verdict}")
        base = by.get((trace, BASELINE, bytecode))
        ratios = round_ratios(runs, trace, bytecode, "scaler")
        if base is None or not ratios:
            continue
        ratio = statistics.median(ratios)
        verdict = "met" if ratio <= TARGET_RATIO else "not met"
        per_launch = s.cpu_ms_per_launch / base.cpu_ms_per_launch
        per_tick = s.cpu_us_per_tick / base.cpu_us_per_tick
        lines.append(
            f"{trace} scaler / {BASELINE} ({bytecode}) <= {TARGET_RATIO:g}x: median of "
            f"{len(ratios)} rounds {ratio:.2f}x: {verdict}; nodes launched "
            f"{s.scale_ups / base.scale_ups:.2f}x, ticks {s.ticks / base.ticks:.2f}x; CPU per "
            f"node launched {per_launch:.2f}x, per tick {per_tick:.2f}x"
        )
    if density > 1:
        for bytecode in sorted({s.bytecode for s in summaries}):
            one, many = by.get(("openb", "scaler", bytecode)), by.get(
                (f"openb-x{density}", "scaler", bytecode))
            if one is None or many is None:
                continue
            growth = many.cpu_median_s / one.cpu_median_s
            verdict = "met" if growth <= density else "not met"
            lines.append(f"openb x{density} ({bytecode}): {many.pods} pods for {growth:.2f}x "
                         f"the CPU of {one.pods} (no worse than linear: <= {density}x): {verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", action="append", default=[], metavar="FILE",
                        help="a workload file to time instead of the public traces (repeatable)")
    parser.add_argument("--public", default="openb,dlrm",
                        help="public traces to import and time (default openb,dlrm)")
    parser.add_argument("--data", help="the public data directory (default ../shared/data)")
    parser.add_argument("--policies", default=f"scaler,{BASELINE}")
    parser.add_argument("--capacity-types", default="on-demand")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--density", type=int, default=1,
                        help="also time openb with every pod repeated K times (scaler policy)")
    parser.add_argument("--bytecode", choices=("cached", "inherit", "both"), default="cached")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each run's instructions under callgrind (minutes each)")
    parser.add_argument("--split", action="store_true",
                        help="also run each simulation once a round with its ticks' CPU "
                             "counted (benchmarks/tick_time.py): ticks and the rest")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.density < 1:
        parser.error("--rounds and --density must be at least 1")
    policies = [p for p in args.policies.split(",") if p]
    for path in args.trace:
        if not Path(path).is_file():
            parser.error(f"--trace {path}: no such file")

    with tempfile.TemporaryDirectory(prefix="simulate-speed-") as tmp:
        work = Path(tmp)
        traces = {Path(p).stem: Path(p) for p in args.trace}
        if not args.trace:
            names = [n for n in args.public.split(",") if n]
            unknown = [n for n in names if n not in PUBLIC]
            if unknown:
                parser.error(f"--public {','.join(unknown)}: not one of {', '.join(PUBLIC)}")
            traces = import_public(find_data(args.data), names, work)
        if not traces:
            print("nothing to time: no trace found", file=sys.stderr)
            return 0
        plan: list[tuple[str, Path, str]] = [
            (name, path, policy) for name, path in traces.items() for policy in policies
        ]
        if args.density > 1 and "openb" in traces:
            dense = work / f"openb-x{args.density}.json"
            dense.write_text(json.dumps(denser(json.loads(traces["openb"].read_text()),
                                               args.density)))
            plan.append((f"openb-x{args.density}", dense, "scaler"))
        modes = ["cached", "inherit"] if args.bytecode == "both" else [args.bytecode]
        prefix = work / "pycache"
        if "cached" in modes:
            # Bytecode for every module of the package, and for what a run imports besides:
            # later runs read it, as a user's second run does.
            warm = environment("cached", prefix)
            subprocess.run([sys.executable, "-m", "compileall", "-q", *package_dirs()],
                           env=warm, check=True, stdout=subprocess.DEVNULL)
            name, path, policy = plan[0]
            run_once([*command(path, policy, args.capacity_types), "--until", "1"],
                     environment("cached", prefix), work)

        load, reference = os.getloadavg(), reference_ms()
        runs: list[Run] = []
        splits: list[Split] = []
        outputs: dict[tuple[str, str], bytes] = {}
        for rnd in range(args.rounds):
            for name, path, policy in plan:
                for mode in modes:
                    wall, cpu, rss, out = run_once(
                        command(path, policy, args.capacity_types), environment(mode, prefix),
                        work)
                    if outputs.setdefault((name, policy), out) != out:
                        raise SystemExit(f"{name} {policy}: round {rnd + 1}'s --json differs "
                                         "from the first round's")
                    result = json.loads(out)["results"][0]
                    runs.append(Run(name, policy, mode, rnd, wall, cpu, rss, result["ticks"],
                                    result["scale_ups"], result["pods"],
                                    result["total_cost_usd"]))
                    if not args.json:
                        print(f"round {rnd + 1} {name} {policy} ({mode}): {wall:.2f} s wall, "
                              f"{cpu:.2f} s CPU", file=sys.stderr, flush=True)
                if args.split:
                    _, cpu, _, out = run_once(split_command(path, policy, args.capacity_types),
                                              environment(modes[0], prefix), work)
                    if out != outputs[(name, policy)]:
                        raise SystemExit(f"{name} {policy}: the run with its ticks timed "
                                         "printed another --json")
                    counted = tick_split((work / "stderr").read_text())
                    splits.append(Split(name, policy, rnd, cpu_s=cpu, **counted))
        load_after, reference_after = os.getloadavg(), reference_ms()
        summaries = summarise(runs)
        if args.instructions:
            for s in summaries:
                path = next(p for n, p, _ in plan if n == s.trace)
                s.instructions = instructions(
                    command(path, s.policy, args.capacity_types),
                    environment(s.bytecode, prefix), work)
        verdicts = targets(runs, summaries, args.density)
        split = split_lines(splits)

    if args.json:
        print(json.dumps({
            "load_before": load, "load_after": load_after, "reference_ms_before": reference,
            "reference_ms_after": reference_after, "rounds": args.rounds,
            "capacity_types": args.capacity_types, "python": sys.version.split()[0],
            "summaries": [asdict(s) for s in summaries], "runs": [asdict(r) for r in runs],
            "targets": verdicts, "splits": [asdict(s) for s in splits], "split": split,
        }, indent=2))
        return 0
    print(f"load average before {load[0]:.2f}, after {load_after[0]:.2f}; reference loop "
          f"{reference:.0f} ms before, {reference_after:.0f} ms after; {args.rounds} rounds; "
          f"--capacity-types {args.capacity_types}")
    w = max(len(s.trace) for s in summaries)
    print(f"{'trace':<{w}} {'policy':<15} {'bytecode':<8} {'wall med':>9} {'min':>7} "
          f"{'CPU med':>8} {'RSS MB':>7} {'ticks':>7} {'launches':>8} {'us/tick':>8} {'ms/launch':>9}"
          + (f" {'instr':>8}" if args.instructions else ""))
    for s in summaries:
        print(f"{s.trace:<{w}} {s.policy:<15} {s.bytecode:<8} {s.wall_median_s:8.2f}s "
              f"{s.wall_min_s:6.2f}s {s.cpu_median_s:7.2f}s {s.max_rss_mb:7.0f} {s.ticks:7d} {s.scale_ups:8d} "
              f"{s.cpu_us_per_tick:8.1f} {s.cpu_ms_per_launch:9.3f}"
              + (f" {s.instructions / 1e9:7.2f}G" if s.instructions else ""))
    for line in verdicts:
        print(line)
    for line in split:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
