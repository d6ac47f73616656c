"""How long `loyalty-sim report` takes on a 200-point sweep (and on a run), whole process, imports included.

The sweep directory is synthetic (tests/test_report_sweep.py writes it from a known response surface:
200 points x 5 replications, six parameters, oat and Sobol sensitivity), so no simulation is timed.
Usage: ``.venv/bin/python bench/bench_report.py [--points 200] [--repeat 3] [--run RESULTS_DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def time_report(folder: Path, output: Path, repeat: int) -> list[float]:
    """Wall seconds of each of ``repeat`` fresh `loyalty-sim report` processes."""
    command = [sys.executable, "-m", "sim.cli", "report", str(folder), "-o", str(output)]
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    """Print the timings as a Markdown table row per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", type=Path, help="also time the report of this run or comparison directory")
    args = parser.parse_args()
    from support.reports import synthetic_sweep

    print("| case | charts | HTML size | wall s (median) | wall s (min) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"sweep, {args.points} points x {args.replications} replications",
                  synthetic_sweep(Path(tmp) / "sweep", points=args.points, replications=args.replications))]
        if args.run is not None:
            cases.append((f"run {args.run}", args.run))
        for label, folder in cases:
            output = Path(tmp) / f"{len(label)}.html"
            seconds = time_report(folder, output, args.repeat)
            charts = len(list(output.with_name(f"{output.stem}_files").glob("*.png")))
            size = output.stat().st_size / 2**20
            print(f"| {label} | {charts} | {size:.1f} MiB | {statistics.median(seconds):.2f} | {min(seconds):.2f} |")


if __name__ == "__main__":
    main()
