"""The program engine's compiled loop alone (sim/engines/program_loops.py ``program_lives``), before and after.

Runs a scenario of bench/bench_engine.py once (a points program or every lever; with --no-policy, the retail
mix without a policy, whose loop is sim/engines/loops.py ``lives``) and records every call of the loop with a
copy of its arguments; then replays each call on a fresh copy, on one thread, and reports the best
of --repeat replays (the loop's own CPU time: no imports, population draws, rankings or thread scheduling).
With --before REV, the loop of that git revision replays the same calls, interleaved with this one, and the
two must book the same sums up to the order of floating-point additions (1e-9 relative).
On a machine whose speed drifts within minutes, the interleaved ratio is the figure to quote.

    .venv/bin/python bench/bench_program_loop.py                                  # points program, 0.5M
    .venv/bin/python bench/bench_program_loop.py --levers --customers 250000 --before d7a20f6 --repeat 7
    .venv/bin/python bench/bench_program_loop.py --no-policy --customers 1000000 --before a445f3d
    .venv/bin/python bench/bench_program_loop.py --levers --untargeted --customers 300000 --repeat 3

Instructions a purchase (docs/speed.md): the same run under ``valgrind --tool=cachegrind --cache-sim=no``
with --repeat 1 and --repeat 3 (2 replays more), the difference of their instruction counts over twice the
purchases printed.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_engine import scenario_dict
from revisions import module_at

from sim.engines import loops, program_loops
from sim.experiments.replications import run_scenario
from sim.schema import Scenario


def copied(value):
    """A deep copy of a loop argument: arrays, tuples of them, the typed lists of spell records."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(copied(member) for member in value)
    if isinstance(value, numba.typed.List):
        out = numba.typed.List.empty_list(value._dtype)
        for item in value:
            out.append(item)
        return out
    return value


def recorded_calls(scenario: Scenario) -> list[tuple]:
    """The arguments of every call of the loop in a run of ``scenario``, as each call received them."""
    calls = []
    if scenario.policy is None:   # the engine without a program calls loops.lives through the module
        lives = loops.lives

        def recording_lives(*args):
            calls.append(copied(args))
            return lives(*args)

        loops.lives = recording_lives
        try:
            run_scenario(scenario)
        finally:
            loops.lives = lives
        return calls
    call = program_loops.call

    def recording(function, *args):
        if function is program_loops.program_lives:
            calls.append(copied(args))
        return call(function, *args)

    program_loops.call = recording
    try:
        run_scenario(scenario)
    finally:
        program_loops.call = call
    return calls


def replay(module, calls: list[tuple]) -> tuple[float, list[tuple]]:
    """Every recorded call replayed by ``module``'s loop on a copy (``program_lives``, or ``lives`` for a
    module of the engine without a program): CPU seconds of this thread, and the accounts the calls booked."""
    copies = [copied(args) for args in calls]
    plain = not hasattr(module, "program_lives")
    if not plain and "targeted" not in inspect.signature(module.program_lives.py_func).parameters:
        # a loop from before it gave the targeted offers itself (a separate pass did): the calls without any
        if any(len(args[10][0]) for args in copies):
            raise SystemExit("that revision's loop does not give targeted offers (give_offers did, apart): "
                             "compare a scenario without targeted offers, or a revision whose program_lives takes them")
        copies = [args[:10] for args in copies]
    start = time.thread_time()
    for args in copies:
        if plain:
            module.lives(*args)
        else:
            module.call(module.program_lives, *args)
    return time.thread_time() - start, [args[4] if plain else args[7] for args in copies]


def largest_difference(first: list[tuple], second: list[tuple]) -> float:
    """The largest difference between two replays' accounts, relative to each sum's largest value."""
    worst = 0.0
    for ours, theirs in zip(first, second, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            scale = max(float(np.abs(a).max(initial=0.0)), 1.0)
            worst = max(worst, float(np.abs(np.asarray(a) - np.asarray(b)).max(initial=0.0)) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", action="store_true", help="every lever (default: a points program)")
    parser.add_argument("--untargeted", action="store_true", help="with --levers: without the targeted offer")
    parser.add_argument("--no-policy", action="store_true", help="no policy: the loop of the engine without a program")
    parser.add_argument("--customers", type=int, default=500_000, help="customers acquired at the start")
    parser.add_argument("--repeat", type=int, default=5, help="replays of each loop; the best is shown")
    parser.add_argument("--before", help="git revision of sim/engines/program_loops.py (and of the helpers it takes "
                        "from sim/engines/loops.py) to time against")
    args = parser.parse_args()
    kind = ({} if args.no_policy else {"levers": True, "targeted": not args.untargeted} if args.levers
            else {"points": True})
    calls = recorded_calls(Scenario.model_validate(scenario_dict(args.customers, **kind)))
    with tempfile.TemporaryDirectory() as folder:
        timed = {"after": loops if args.no_policy else program_loops}
        if args.before:
            before = (module_at(args.before, "sim/engines/loops.py", Path(folder)) if args.no_policy else
                      module_at(args.before, "sim/engines/program_loops.py", Path(folder),
                                together=("sim.engines.loops",)))   # with the helpers it calls, as they were
            timed = {"before": before, **timed}
        best = dict.fromkeys(timed, float("inf"))
        for _ in range(args.repeat):
            booked = {}
            for name, module in timed.items():
                seconds, booked[name] = replay(module, calls)
                best[name] = min(best[name], seconds)
    what = ("no policy" if args.no_policy else "every lever" + (" but the targeted offer" if args.untargeted else "")
            if args.levers else "points program")
    purchases = sum(float(accounts[0][0].sum()) for accounts in booked["after"])   # (row 0: purchases)
    print(f"{what}, {args.customers:,} customers acquired: {len(calls)} calls of the loop, {purchases:,.0f} "
          f"purchases, best of {args.repeat} on one thread")
    for name, seconds in best.items():
        print(f"  {name:6} {seconds:.3f} s, {seconds / purchases * 1e9:.0f} ns a purchase")
    if args.before:
        difference = largest_difference(booked["before"], booked["after"])
        print(f"  speed-up {best['before'] / best['after']:.2f}x; sums differ by at most {difference:.1e} relative")
        if difference > 1e-9:
            raise SystemExit(f"the loops of {args.before} and of this tree book different sums")


if __name__ == "__main__":
    main()
