"""The shipped example scenarios (scenarios/*.yaml) at a small scale, registered with
:func:`support.agreement.register` once, on first import, for every test file that compares the engines on
them (tests/test_validation_examples.py explains the overrides)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sim.input.scenarios import load_scenario
from sim.schema import Scenario
from support.agreement import register
from support.scenarios import ROOT, base_of

#: customers of each example divided by this (CDNOW's 23,571 become the 2,357 of its published sample)
SCALE = {"cdnow_baseline": 10, "points_uncertain": 10}   # points_uncertain is already a 1/10 sample
DEFAULT_SCALE = 100
REPLICATIONS = 12
EXAMPLES = [path for path in sorted((ROOT / "scenarios").glob("*.yaml"))
            if not {"sweep", "optimize"} & set(yaml.safe_load(path.read_text()) or {})]
def small(path: Path, seed: int) -> Scenario:
    """The example at 1/SCALE of its customers, with its own seed and REPLICATIONS replications."""
    full = load_scenario(path)
    scale = SCALE.get(path.stem, DEFAULT_SCALE)
    overrides = [f"seed={seed}", f"replications={REPLICATIONS}"]
    for index, channel in enumerate(full.acquisition):
        overrides += [f"acquisition.{index}.initial_customers={channel.initial_customers // scale}",
                      f"acquisition.{index}.new_per_month={channel.new_per_month // scale}"]
    overrides += base_of(path, full.existing_count() // scale)   # a simulated base, if any
    return load_scenario(path, overrides=overrides)


def example_name(path: Path) -> str:
    return f"example:{path.stem}"


for number, example in enumerate(EXAMPLES):
    register(example_name(example), small(example, seed=7000 + number), REPLICATIONS)
