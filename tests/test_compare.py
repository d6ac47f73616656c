"""`loyalty-sim compare`: paired differences on common random numbers, Bonferroni intervals, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import main

CDNOW = (ROOT / "scenarios" / "cdnow_baseline.yaml").read_text()


def _variant(tmp_path: Path, name: str, policy: str = "", horizon: int = 18) -> str:
    path = tmp_path / f"{name}.yaml"
    text = CDNOW.replace("name: cdnow-baseline", f"name: {name}").replace("horizon_months: 18",
                                                                           f"horizon_months: {horizon}")
    path.write_text(text + policy)
    return str(path)


POINTS = "policy:\n  points: {reward_threshold: 100, reward_value: 5}\n"
DISCOUNT = ("policy:\n  enrollment: {probability: 0}\n  discounts:\n"
            "    - {name: sale, kind: blanket, depth: 0.2, start_month: 2, every_months: 3, duration_days: 7}\n")


def test_compare_with_a_baseline(tmp_path: Path) -> None:
    files = [_variant(tmp_path, "points", POINTS), _variant(tmp_path, "sale", DISCOUNT)]
    base = _variant(tmp_path, "plain")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", *files, "--baseline", base, "--out", str(out),
                                       "--replications", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    content = json.loads((out / "compare.json").read_text())
    assert content["reference"] == "plain" and content["comparisons"] == 2
    assert math.isclose(content["confidence"], 0.975)  # Bonferroni: two intervals hold together at 95%
    assert "Bonferroni over 2 comparisons" in result.output
    table = pd.read_parquet(out / "comparison.parquet")
    assert sorted(table["scenario"].unique()) == ["plain", "points", "sale"]
    for name in ("points", "sale"):
        mine = table[table["scenario"] == name].set_index("replication")
        theirs = table[table["scenario"] == "plain"].set_index("replication")
        diff = content["differences"][name]["profit"]
        paired = mine["profit"] - theirs["profit"]
        assert math.isclose(diff["mean"], paired.mean(), rel_tol=1e-9)
        assert diff["ci_low"] < diff["mean"] < diff["ci_high"]
        # every scenario also has its own result files
        assert (out / "scenarios" / name / "summary.json").is_file()
    assert content["differences"]["sale"]["discount_cost"]["mean"] > 0
    # the prudent incremental profit: profit difference minus points liability difference, replication by replication
    for name in ("points", "sale"):
        mine = table[table["scenario"] == name].set_index("replication")
        theirs = table[table["scenario"] == "plain"].set_index("replication")
        paired = (mine["profit"] - theirs["profit"]) - (mine["points_liability"] - theirs["points_liability"])
        prudent = content["differences"][name]["profit_net_of_liability"]
        assert math.isclose(prudent["mean"], paired.mean(), rel_tol=1e-9)
        assert prudent["ci_low"] < prudent["mean"] < prudent["ci_high"]
    assert content["differences"]["points"]["points_liability"]["mean"] > 0
    assert "profit_net_of_liability" in result.output
    # the program-less reference has no program cost: roi is undefined for it, defined for the others
    assert content["differences"]["points"]["roi"]["mean"] is not None


def test_compare_without_baseline_compares_with_the_first(tmp_path: Path) -> None:
    files = [_variant(tmp_path, "plain"), _variant(tmp_path, "points", POINTS)]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", *files, "--out", str(out), "--replications", "2",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    content = json.loads((out / "compare.json").read_text())
    assert content["reference"] == "plain" and list(content["differences"]) == ["points"]
    assert content["confidence"] == 0.95


def test_compare_refuses_other_horizons_and_repeated_names(tmp_path: Path) -> None:
    a = _variant(tmp_path, "a")
    short = _variant(tmp_path, "b", horizon=12)
    result = CliRunner().invoke(main, ["compare", a, short])
    assert result.exit_code == 2
    assert "b.yaml" in result.output and "horizon_months" in result.output

    twin = tmp_path / "twin.yaml"
    twin.write_text(Path(a).read_text())
    result = CliRunner().invoke(main, ["compare", a, str(twin)])
    assert result.exit_code == 2
    assert "twin.yaml" in result.output and "name" in result.output and "distinct" in result.output


def test_compare_needs_two_scenarios(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", _variant(tmp_path, "a")])
    assert result.exit_code == 2
    assert "two scenarios" in result.output


def test_compare_refuses_a_baseline_with_other_customers(tmp_path: Path) -> None:
    """A paired comparison with --baseline is about the policies: scenarios that simulate other customers than
    the baseline are refused, naming both files."""
    points = _variant(tmp_path, "points", POINTS)
    base = tmp_path / "plain.yaml"
    base.write_text(Path(_variant(tmp_path, "plain")).read_text().replace("new_per_month: 7857",
                                                                           "new_per_month: 1000"))
    result = CliRunner().invoke(main, ["compare", points, "--baseline", str(base), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "points.yaml" in result.output and "plain.yaml" in result.output
    assert "acquisition.0.new_per_month" in result.output and "different customers" in result.output


def test_compare_tables_wrap_long_scenario_names_instead_of_truncating(capsys) -> None:
    from sim.cli import HEADLINE_METRICS, _print_comparison

    value = {"mean": -94227.0, "ci_low": -99077.0, "ci_high": -89376.0}
    names = ["a-long-scenario-name-with-a-points-program", "a-second-long-name-with-heavy-discounts",
             "a-third-scenario-whose-name-is-long-too"]
    reference = "the-reference-scenario-with-a-long-name"
    metrics = {name: dict.fromkeys(HEADLINE_METRICS, value) for name in [*names, reference]}
    differences = {name: dict.fromkeys([*HEADLINE_METRICS, "profit_net_of_liability", "roi", "payback_month"], value)
                   for name in names}
    content = {"confidence": 0.95 / 3, "reference": reference, "replications": 3, "seed": 1, "horizon_months": 12,
               "comparisons": 3, "metrics": metrics, "differences": differences}
    _print_comparison(content, Path("out"))
    printed = capsys.readouterr().out
    assert "…" not in printed
    assert "profit_net_of_liability" in printed


def test_compare_set_applies_to_every_scenario_and_the_baseline(tmp_path: Path) -> None:
    files = [_variant(tmp_path, "points", POINTS), _variant(tmp_path, "plain", horizon=12)]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", files[0], "--baseline", files[1], "--out", str(out),
                                       "--replications", "2", "--workers", "1", "--set", "horizon_months=6",
                                       "--set", "economics.cost_to_serve_per_order=3"])
    assert result.exit_code == 0, result.output   # the horizons differ in the files, --set makes them agree
    content = json.loads((out / "compare.json").read_text())
    assert content["horizon_months"] == 6
    for name in ("points", "plain"):
        written = (out / "scenarios" / name / "scenario.yaml").read_text()
        assert "horizon_months: 6" in written and "cost_to_serve_per_order: 3" in written


def test_compare_set_is_validated_like_the_file(tmp_path: Path) -> None:
    files = [_variant(tmp_path, "a"), _variant(tmp_path, "b", POINTS)]
    result = CliRunner().invoke(main, ["compare", *files, "--out", str(tmp_path / "out"),
                                       "--set", "economics.gross_margin=2"])
    assert result.exit_code == 2
    assert "--set: economics.gross_margin" in result.output
