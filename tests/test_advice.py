"""Warnings about valid scenarios (:mod:`sim.input.advice`): ``validate`` and ``run`` print them on stderr, name the
file, key and line, and exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import main
from sim.input.advice import INITIAL_SHARE, scenario_warnings
from sim.input.documents import read_yaml
from sim.input.overrides import apply_overrides
from sim.input.scenarios import load_scenario

EXAMPLE = ROOT / "scenarios" / "points_program.yaml"


def _as_initial_customers(text: str) -> str:
    """The program example with its existing base written as 20,000 initial customers of its first channel
    (what the examples did before they had existing_customers): 20,000 of 96,800 acquired, a policy."""
    start = text.index("existing_customers:")
    text = text[:start] + text[text.index("acquisition:", start):]
    return text.replace("    cac: 35\n", "    cac: 35\n    initial_customers: 20000\n", 1)


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("advice") / "points_program.yaml"
    path.write_text(_as_initial_customers(EXAMPLE.read_text()))
    return path


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)
#: A few hundred customers: the program example at 1/100 of its size, 6 months.
SMALL = ["acquisition.0.initial_customers=200", "acquisition.0.new_per_month=20", "acquisition.1.new_per_month=8",
         "horizon_months=6", "acquisition.0.months=6"]


def _warnings(path: Path, overrides: list[str]) -> list:
    doc = read_yaml(path)
    apply_overrides(doc, overrides)
    return scenario_warnings(load_scenario(path, overrides), doc)


def test_validate_warns_about_initial_customers_with_a_policy(program: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(program)])
    assert result.exit_code == 0, result.output
    assert "valid scenario 'points-program'" in result.stdout and "warning" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = _line_of(program, "initial_customers: 20000")
    assert lines[0].startswith(f"warning: {program}:{line}: acquisition.0.initial_customers: 20,000 of the 96,800 ")
    assert "existing_customers" in lines[0] and "docs/scenarios.md" in lines[0]


def test_run_warns_and_runs(program: Path, tmp_path: Path) -> None:
    args = ["run", str(program), "--out", str(tmp_path), "--replications", "1", "--workers", "1"]
    result = CliRunner().invoke(main, args + [arg for value in SMALL for arg in ("--set", value)])
    assert result.exit_code == 0, result.output
    assert "warning: --set: acquisition.0.initial_customers: 200 of the " in result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["replications"] == 1


@pytest.mark.parametrize(("path", "overrides"), [
    (ROOT / "scenarios" / "baseline_retail.yaml", []),            # the same customers, no policy
    (ROOT / "scenarios" / "retailer_existing_base.yaml", []),     # the base is existing_customers (a table)
    (EXAMPLE, []),                                                # the base is existing_customers (simulated)
    (EXAMPLE, ["acquisition.0.initial_customers=20000"]),         # beside an existing base, a choice
])
def test_no_warning_without_a_policy_initial_customers_or_with_existing_customers(path, overrides) -> None:
    assert _warnings(path, overrides) == []
    result = CliRunner().invoke(main, ["validate", str(path)] + [a for v in overrides for a in ("--set", v)])
    assert result.exit_code == 0 and result.stderr == "", result.output


def test_the_warning_starts_at_its_share(program: Path) -> None:
    """96,800 acquired with 20,000 initial: initial = n gives a share of n / (76,800 + n)."""
    at = int(INITIAL_SHARE * 76_800 / (1.0 - INITIAL_SHARE)) + 1
    assert len(_warnings(program, [f"acquisition.0.initial_customers={at}"])) == 1
    assert _warnings(program, [f"acquisition.0.initial_customers={at - 2}"]) == []
    # spread over channels, it is their sum that counts; the warning points at the largest
    found = _warnings(program, [f"acquisition.0.initial_customers={at // 3}",
                                f"acquisition.1.initial_customers={at - at // 3}"])
    assert [problem.path for problem in found] == [("acquisition", 1, "initial_customers")]
