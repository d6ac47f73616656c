"""Runs every shipped example (each scenario, the two compared, each sweep and search) and compares result folders.

For a change that must not move any number (a refactoring): produce the results before and after it, then
compare them. Every ``summary.json``, ``compare.json``, ``sweep.json`` and ``optimize.json`` must be equal value
for value and every Parquet table equal cell for cell (no tolerance).

    python scripts/compare_results.py produce OUT [--replications 3]   # with the code on the Python path
    python scripts/compare_results.py diff BEFORE AFTER                 # exit 1 on any difference

To produce the results of another checkout, put it first on the path:
``PYTHONPATH=/path/to/other/checkout python scripts/compare_results.py produce OUT``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
#: Files whose content is the time or the place of a run, not its numbers.
IGNORED_KEYS = {"elapsed_seconds", "created", "started", "finished", "version", "path", "out", "source"}


def _cli(*args: str) -> None:
    command = [sys.executable, "-m", "sim.cli", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def produce(out: Path, replications: int) -> None:
    """Every example at ``replications`` replications, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    sweeps, searches, scenarios = [], [], []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        (sweeps if "sweep" in document else searches if "optimize" in document else scenarios).append(path)
    for path in scenarios:
        print("run", path.name, flush=True)
        _cli("run", str(path), "--out", str(out / "run" / path.stem), "--replications", str(replications),
             "--workers", "1", "--transactions")
    print("compare", flush=True)
    _cli("compare", str(SCENARIOS / "points_program.yaml"), str(SCENARIOS / "tiered_referral.yaml"),
         "--baseline", str(SCENARIOS / "baseline_retail.yaml"), "--out", str(out / "compare"),
         "--replications", str(replications), "--workers", "1")
    for path in sweeps:
        print("sweep", path.name, flush=True)
        _cli("sweep", str(path), "--out", str(out / "sweep" / path.stem), "--replications", "2", "--workers", "2")
    for path in searches:
        print("optimize", path.name, flush=True)
        _cli("optimize", str(path), "--out", str(out / "optimize" / path.stem), "--trials", "3",
             "--replications", "2", "--workers", "2")


def _plain(document):
    if isinstance(document, dict):
        return {k: _plain(v) for k, v in document.items() if k not in IGNORED_KEYS}
    if isinstance(document, list):
        return [_plain(v) for v in document]
    return document


def diff(before: Path, after: Path) -> int:
    """Number of files that differ (or exist on one side only)."""
    names = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    names |= {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    differences = compared = 0
    for name in sorted(names):
        a, b = before / name, after / name
        if name.suffix not in (".json", ".parquet"):
            continue
        compared += 1
        if not (a.exists() and b.exists()):
            print(f"only on one side: {name}")
            differences += 1
            continue
        if name.suffix == ".json":
            same = _plain(json.loads(a.read_text())) == _plain(json.loads(b.read_text()))
        else:
            left, right = pd.read_parquet(a), pd.read_parquet(b)
            try:
                pd.testing.assert_frame_equal(left, right, check_exact=True)
                same = True
            except AssertionError as error:
                print(error)
                same = False
        if not same:
            print(f"differs: {name}")
            differences += 1
    print(f"{compared} result files compared, {differences} differ")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("produce")
    make.add_argument("out", type=Path)
    make.add_argument("--replications", type=int, default=3)
    check = commands.add_parser("diff")
    check.add_argument("before", type=Path)
    check.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "produce":
        produce(args.out, args.replications)
    else:
        sys.exit(1 if diff(args.before, args.after) else 0)


if __name__ == "__main__":
    main()
