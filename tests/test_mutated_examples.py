"""The bad-input corpus, generated: every scalar leaf of every example scenario deleted, retyped, made
negative, zero, huge or misspelt, and each mutant validated in-process: exit 0 or 2, never a traceback."""

from __future__ import annotations

import copy
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.scenarios import EXAMPLE_SCENARIOS

from sim.cli import main

WRONG = {"string": "abc", "list": [1, 2], "mapping": {"a": 1}, "negative": -1, "zero": 0, "huge": 1e300}


def _leaves(data: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [leaf for key, value in data.items() for leaf in _leaves(value, (*path, key))]
    if isinstance(data, list):
        return [leaf for i, value in enumerate(data) for leaf in _leaves(value, (*path, i))]
    return [path]


def _mutants(data: dict) -> list[tuple[str, dict]]:
    cases = []
    for path in _leaves(data):
        for kind in (*WRONG, "deleted", "typo"):
            mutant = copy.deepcopy(data)
            parent = mutant
            for key in path[:-1]:
                parent = parent[key]
            last = path[-1]
            if kind == "deleted":
                parent.pop(last) if isinstance(parent, dict) else parent.pop(last)
            elif kind == "typo":
                if not isinstance(parent, dict):
                    continue
                parent[f"{last}x"] = parent.pop(last)
            else:
                parent[last] = WRONG[kind]
            cases.append((f"{'.'.join(map(str, path))}:{kind}", mutant))
    return cases


@pytest.mark.slow
def test_mutated_examples_exit_0_or_2_and_accepted_ones_run(tmp_path: Path) -> None:
    accepted = []
    runner = CliRunner()
    for example in EXAMPLE_SCENARIOS:
        data = yaml.safe_load(Path(example).read_text())
        for label, mutant in _mutants(data):
            path = tmp_path / f"{Path(example).stem}.yaml"
            path.write_text(yaml.safe_dump(mutant))
            started = time.process_time()
            result = runner.invoke(main, ["validate", str(path)])
            assert time.process_time() - started < 5.0, label
            assert result.exception is None or isinstance(result.exception, SystemExit), (label, result.output)
            assert result.exit_code in (0, 2), (label, result.output)
            if result.exit_code == 0:
                accepted.append((Path(example).stem, label, mutant))
    for stem, label, mutant in random.Random(5).sample(accepted, min(20, len(accepted))):
        path = tmp_path / f"{stem}-run.yaml"
        path.write_text(yaml.safe_dump(mutant))
        scale = [f"--set=acquisition.{i}.{key}={max(0, int(c.get(key, 0)) // 100) if isinstance(c.get(key, 0), (int, float)) else 0}"
                 for i, c in enumerate(mutant.get("acquisition", [])) if isinstance(c, dict)
                 for key in ("initial_customers", "new_per_month") if key in c]
        existing = mutant.get("existing_customers")
        if isinstance(existing, dict) and isinstance(existing.get("count"), int) and existing["count"] >= 100:
            scale.append(f"--set=existing_customers.count={existing['count'] // 100}")   # a simulated base too
        out = tmp_path / f"out-{stem}"
        result = runner.invoke(main, ["run", str(path), "--replications", "1", "--workers", "1", "--out", str(out),
                                      *scale])
        assert result.exception is None or isinstance(result.exception, SystemExit), (label, result.output)
        assert result.exit_code in (0, 2), (label, result.output)
        if result.exit_code == 0:
            summary = json.loads((out / "summary.json").read_text())
            _finite_or_null(summary, label)


def _finite_or_null(value: Any, label: str) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _finite_or_null(item, label)
    elif isinstance(value, list):
        for item in value:
            _finite_or_null(item, label)
    elif isinstance(value, float):
        assert math.isfinite(value), label
