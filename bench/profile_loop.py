"""Where the program engine's compiled loop spends its time, line by line (Linux, with perf and objdump).

Runs a scenario of bench/bench_engine.py once, recording every call of ``program_lives``
(sim/engines/program_loops.py), as bench/bench_program_loop.py does; then compiles the loop afresh with line
tables, replays the calls on one thread for --seconds under ``perf record`` (sampling this process only),
and attributes the samples that fall in the loop to the source lines of its instructions.

The line tables come from numba's debug info, which also stops LLVM from inlining the loop's helpers (it
marks every function ``noinline``): this script lifts that mark, so the code profiled is the code the
engine runs (its helpers, the random draws among them, inlined), only compiled with line tables. It uses a
cache folder of its own, so the engine's compiled functions are neither used nor replaced.

A sample falls on the instruction after the one that held the processor (a division, a load from memory),
so a line's share is that of the instructions just after it as much as its own; lines such as a module's
constants stand for instructions the compiler moved out of their line (register reloads, hoisted loads).

    .venv/bin/python bench/profile_loop.py --levers --untargeted --customers 300000
    .venv/bin/python bench/profile_loop.py --customers 1000000 --top 60      # the points program
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levers", action="store_true", help="every lever (default: a points program)")
    parser.add_argument("--untargeted", action="store_true", help="with --levers: without the targeted offer")
    parser.add_argument("--customers", type=int, default=300_000, help="customers acquired at the start")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to replay the calls under perf")
    parser.add_argument("--top", type=int, default=40, help="lines shown")
    args = parser.parse_args()
    missing = [tool for tool in ("perf", "objdump") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {' and '.join(missing)} on the PATH")
    with tempfile.TemporaryDirectory() as folder:
        # before numba is imported: line tables, and a cache of our own (these builds are not the engine's)
        os.environ.update(NUMBA_DEBUGINFO="1", NUMBA_CACHE_DIR=str(Path(folder) / "cache"))
        profile(args, Path(folder))


def profile(args: argparse.Namespace, folder: Path) -> None:
    """Records the calls, replays them under perf and prints the loop's lines by their share of the samples."""
    import numba.core.lowering

    lower = numba.core.lowering.BaseLower.pre_lower

    def inlinable(self) -> None:   # numba's full debug info marks every function noinline: lift it
        lower(self)
        self.builder.function.attributes.discard("noinline")

    numba.core.lowering.BaseLower.pre_lower = inlinable
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    from bench_engine import scenario_dict
    from bench_program_loop import recorded_calls, replay

    from sim.engines import program_loops
    from sim.schema import Scenario

    kind = {"levers": True, "targeted": not args.untargeted} if args.levers else {"points": True}
    calls = recorded_calls(Scenario.model_validate(scenario_dict(args.customers, **kind)))
    compiled = program_loops.program_lives.overloads[
        tuple(program_loops.program_lives.typeof_pyval(arg) for arg in calls[0])]
    start = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
    objects = folder / "loop.o"
    objects.write_bytes(compiled.library._get_compiled_object())
    samples = folder / "perf.data"
    perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-p", str(os.getpid()),
                             "-o", str(samples)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)   # (perf attaches)
    began, replays = time.perf_counter(), 0
    while time.perf_counter() - began < args.seconds:
        replay(program_loops, calls)
        replays += 1
    perf.send_signal(signal.SIGINT)
    perf.wait()
    addresses = subprocess.run(["perf", "script", "-i", str(samples), "-F", "ip"], capture_output=True, text=True,
                               check=True).stdout.split()
    listing = subprocess.run(["objdump", "-dl", "--no-show-raw-insn", "-j", ".ltext", str(objects)],
                             capture_output=True, text=True, check=True).stdout
    lines = source_lines(listing)
    offsets = sorted(lines)
    counts: collections.Counter = collections.Counter()
    for address in addresses:
        offset = int(address, 16) - start
        if offsets and 0 <= offset <= offsets[-1]:
            counts[lines[offsets[bisect.bisect_right(offsets, offset) - 1]]] += 1
    inside = sum(counts.values())
    print(f"{replays} replays of {len(calls)} calls in {args.seconds:.0f} s; {len(addresses)} samples, "
          f"{inside} in the loop")
    texts: dict[str, list[str]] = {}
    for place, count in counts.most_common(args.top):
        path, number = place.rsplit(":", 1)
        if path not in texts:
            texts[path] = Path(path).read_text().splitlines() if Path(path).is_file() else []
        text = texts[path][int(number) - 1].strip() if int(number) <= len(texts[path]) else ""
        shown = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else Path(path).name
        print(f"{count / max(inside, 1):6.1%}  {shown}:{number:<5} {text[:100]}")


def source_lines(listing: str) -> dict[int, str]:
    """The source line (``path:number``) of each instruction's offset in an ``objdump -dl`` listing."""
    lines, current = {}, "?:0"
    for row in listing.splitlines():
        place = re.match(r"^(/\S+\.py):(\d+)", row)
        if place:
            current = f"{place.group(1)}:{place.group(2)}"
            continue
        instruction = re.match(r"^\s+([0-9a-f]+):", row)
        if instruction:
            lines[int(instruction.group(1), 16)] = current
    return lines


if __name__ == "__main__":
    main()
