"""`loyalty-sim run` end to end: every example scenario runs, and the result files follow docs/results.md."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support.scenarios import EXAMPLE_SCENARIOS, ROOT

from sim.cli import main
from sim.output.run_files import METRICS

EXAMPLES = EXAMPLE_SCENARIOS   # the example sweeps are tested in test_sweep.py


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_scenarios_run(example: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(example), "--out", str(tmp_path), "--replications", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["replications"] == 2
    assert set(summary["metrics"]) == set(METRICS)
    assert summary["metrics"]["customers_acquired"]["ci_low"] <= summary["metrics"]["customers_acquired"]["mean"]


def test_result_files_follow_the_spec(tmp_path: Path) -> None:
    scenario = ROOT / "scenarios" / "cdnow_baseline.yaml"
    args = ["run", str(scenario), "--out", str(tmp_path), "--replications", "3", "--seed", "5", "--transactions",
            "--set", "acquisition.0.new_per_month=1000"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {k: summary[k] for k in ("scenario", "replications", "seed", "horizon_months")} == {
        "scenario": "cdnow-baseline", "replications": 3, "seed": 5, "horizon_months": 18}
    assert "vs_baseline" not in summary  # no policy: nothing to compare with
    assert summary["metrics"]["breakage_rate"]["mean"] is None  # undefined without points

    ts = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert list(ts.columns[:2]) == ["replication", "month"]
    assert len(ts) == 3 * 18 and ts["month"].max() == 17
    totals = ts.groupby("replication")["purchases"].sum().to_numpy()
    assert np.isclose(totals.mean(), summary["metrics"]["purchases"]["mean"])

    cohorts = pd.read_parquet(tmp_path / "cohorts.parquet")
    assert list(cohorts.columns) == ["replication", "acquisition_month", "channel", "segment", "customers",
                                     "repeat_purchases", "net_revenue", "clv", "cac", "active_end", "network_value",
                                     "clv_base", "clv_growth", "clv_learning", "clv_total"]
    paid = cohorts[cohorts["channel"] == "web"]
    assert paid.groupby("replication")["customers"].sum().eq(3000).all()

    tx = pd.read_parquet(tmp_path / "transactions.parquet")
    assert list(tx.columns) == ["replication", "customer_id", "time", "date", "amount", "discount",
                                "points_earned", "points_redeemed"]
    per_rep = tx.groupby("replication").size().to_numpy()
    np.testing.assert_array_equal(per_rep, ts.groupby("replication")["purchases"].sum().to_numpy())
    assert (tx["time"] >= 0).all() and (tx["time"] < 18 / 12 * 365.25).all()
    assert tx["date"].min() == pd.Timestamp("2000-01-01")


def test_same_seed_same_files(tmp_path: Path) -> None:
    scenario = str(ROOT / "scenarios" / "cdnow_baseline.yaml")
    for name in ("a", "b"):
        result = CliRunner().invoke(main, ["run", scenario, "--out", str(tmp_path / name), "--replications", "2"])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "summary.json").read_text() == (tmp_path / "b" / "summary.json").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "cohorts.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "cohorts.parquet"))


def test_workers_do_not_change_the_numbers(tmp_path: Path) -> None:
    scenario = str(ROOT / "scenarios" / "cdnow_baseline.yaml")
    for workers in ("1", "2"):
        args = ["run", scenario, "--out", str(tmp_path / workers), "--replications", "3", "--workers", workers,
                "--set", "acquisition.0.new_per_month=2000"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "1" / "summary.json").read_text() == (tmp_path / "2" / "summary.json").read_text()
    for name in ("timeseries.parquet", "cohorts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "1" / name), pd.read_parquet(tmp_path / "2" / name))


def _policy_scenario(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "with_policy.yaml"
    text = (ROOT / "scenarios" / "cdnow_baseline.yaml").read_text().replace("replications: 20", "replications: 3")
    path.write_text(text + extra + "policy:\n  points: {reward_threshold: 100, reward_value: 5}\n")
    return path


def test_run_with_a_policy_compares_with_its_baseline(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(_policy_scenario(tmp_path)), "--out", str(tmp_path / "out"),
                                       "--replications", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    vs = summary["vs_baseline"]
    assert set(vs) == set(summary["metrics"]) | {"profit_net_of_liability", "roi", "payback_month"}
    assert summary["baseline"].endswith("(baseline)")
    base = json.loads((tmp_path / "out" / "baseline" / "summary.json").read_text())
    # paired differences of means are differences of the two arms' means
    for name in ("profit", "purchases", "program_cost"):
        assert math.isclose(vs[name]["mean"], summary["metrics"][name]["mean"] - base["metrics"][name]["mean"],
                            rel_tol=1e-9, abs_tol=1e-6)
    assert base["metrics"]["program_cost"]["mean"] == 0
    assert "vs baseline" in result.output
    # the prudent incremental profit: incremental profit minus incremental points liability, paired by replication
    from sim.accounting.estimates import estimate

    def totals(folder: Path) -> pd.DataFrame:
        table = pd.read_parquet(folder / "timeseries.parquet").sort_values(["replication", "month"])
        grouped = table.groupby("replication")
        return pd.DataFrame({"profit": grouped["profit"].sum(), "liability": grouped["points_liability"].last()})

    mine, theirs = totals(tmp_path / "out"), totals(tmp_path / "out" / "baseline")
    paired = (mine["profit"] - theirs["profit"]) - (mine["liability"] - theirs["liability"])
    expected = estimate(paired.to_numpy())
    prudent = vs["profit_net_of_liability"]
    assert summary["metrics"]["points_liability"]["mean"] > 0
    assert math.isclose(prudent["mean"], expected.mean, rel_tol=1e-9)
    assert math.isclose(prudent["ci_low"], expected.ci_low, rel_tol=1e-9)
    assert math.isclose(prudent["ci_high"], expected.ci_high, rel_tol=1e-9)
    assert "profit_net_of_liability" in result.output


def test_baseline_none_skips_the_comparison(tmp_path: Path) -> None:
    path = _policy_scenario(tmp_path, "baseline: none\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "vs_baseline" not in json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not (tmp_path / "out" / "baseline").exists()


def test_baseline_file_with_another_horizon_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "short.yaml"
    other.write_text((ROOT / "scenarios" / "cdnow_baseline.yaml").read_text().replace(
        "horizon_months: 18", "horizon_months: 12"))
    path = _policy_scenario(tmp_path, "baseline: short.yaml\n")
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "with_policy.yaml" in result.output and "baseline" in result.output and "horizon" in result.output


def test_set_values_go_to_a_file_baseline_too(tmp_path: Path) -> None:
    """`--set` scaling the customers down applies to a file baseline as well (not to its levers), so the
    comparison is on the same customers; a baseline whose customers still differ is refused."""
    (tmp_path / "plain.yaml").write_text((ROOT / "scenarios" / "cdnow_baseline.yaml").read_text()
                                         .replace("name: cdnow-baseline", "name: plain"))
    path = _policy_scenario(tmp_path, "baseline: plain.yaml\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--replications", "2", "--workers", "1",
                                       "--set", "acquisition.0.new_per_month=100",
                                       "--set", "policy.points.reward_value=6"])
    assert result.exit_code == 0, result.output
    assert "vs the baseline plain (same customers, paired)" in result.output.replace("\n", " ")
    from sim.input.scenarios import load_scenario

    baseline = load_scenario(out / "baseline" / "scenario.yaml")
    assert baseline.name == "plain" and baseline.acquisition[0].new_per_month == 100
    assert baseline.policy is None
    summary = json.loads((out / "summary.json").read_text())
    base = json.loads((out / "baseline" / "summary.json").read_text())
    assert base["metrics"]["customers_acquired"]["mean"] == summary["metrics"]["customers_acquired"]["mean"] == 300

    other = (tmp_path / "plain.yaml").read_text().replace("p: 6.25", "p: 7.0")
    (tmp_path / "plain.yaml").write_text(other)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--set", "acquisition.0.new_per_month=100"])
    assert result.exit_code == 2, result.output
    assert "with_policy.yaml" in result.output and "plain.yaml" in result.output
    assert "segments.cdnow.order_value.p" in result.output and "different customers" in result.output
    result = CliRunner().invoke(main, ["validate", str(path), "--set", "acquisition.0.new_per_month=100"])
    assert result.exit_code == 2 and "different customers" in result.output, result.output


def test_validate_and_help_stay_light() -> None:
    """The CLI answers --help and validate without importing the numerical libraries."""
    code = ("import sys; from click.testing import CliRunner; from sim.cli import main; "
            f"r = CliRunner().invoke(main, ['validate', {str(EXAMPLES[0])!r}]); assert r.exit_code == 0, r.output; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0; "
            "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'simpy', 'matplotlib', 'pyarrow', 'numba') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_schema_is_json_schema() -> None:
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["title"] == "loyalty-sim scenario"
    assert {"horizon_months", "segments", "acquisition", "policy", "response"} <= set(document["properties"])
    assert document["additionalProperties"] is False
    # every number may be written as a distribution; the loader's own `uncertain` field is not for users
    assert "uncertain" not in document["properties"]
    margin = document["$defs"]["Economics"]["properties"]["gross_margin"]
    assert {"$ref": "#/$defs/Distribution"} in margin["anyOf"]
    assert document["properties"]["horizon_months"]["type"] == "integer"      # the run's own settings stay fixed
    assert document["$defs"]["Response"]["properties"]["uncertain"] == {
        "enum": ["evidence"], "description": document["$defs"]["Response"]["properties"]["uncertain"]["description"]}


def _frames_equal(a: Path, b: Path) -> None:
    assert json.loads((a / "summary.json").read_text()) == json.loads((b / "summary.json").read_text())
    for name in ("timeseries.parquet", "cohorts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))


def test_interrupted_run_resumes_without_redoing_finished_replications(tmp_path: Path, monkeypatch) -> None:
    """A run that dies keeps its finished replications; --resume simulates only the missing ones and ends
    with the same files as an uninterrupted run."""
    import sim.experiments.replications

    path = str(_policy_scenario(tmp_path))
    args = ["run", path, "--replications", "3", "--workers", "1"]
    whole = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    assert not (tmp_path / "whole" / ".partial").exists()  # cleaned up after a finished run

    real = sim.experiments.replications.run_replication
    calls = []

    def dies_on_the_fourth(scenario, replication, **kwargs):
        calls.append((scenario.name, replication))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(scenario, replication, **kwargs)

    monkeypatch.setattr(sim.experiments.replications, "run_replication", dies_on_the_fourth)
    died = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "cut")])
    assert died.exit_code != 0
    assert len(list((tmp_path / "cut" / ".partial").glob("*.npz"))) == 3

    counted = []
    monkeypatch.setattr(sim.experiments.replications, "run_replication",
                        lambda scenario, replication, **kw: counted.append(1) or real(scenario, replication, **kw))
    resumed = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "cut"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert len(counted) == 3  # 6 replications (scenario and baseline) minus the 3 finished
    _frames_equal(tmp_path / "whole", tmp_path / "cut")

    # other work (here another seed) never reuses them
    counted.clear()
    (tmp_path / "cut" / ".partial").mkdir()
    again = CliRunner().invoke(main, [*args, "--seed", "99", "--out", str(tmp_path / "cut"), "--resume"])
    assert again.exit_code == 0, again.output
    assert len(counted) == 6


def test_killed_run_resumes(tmp_path: Path) -> None:
    """kill -9 in the middle of a run, then --resume: the same files as a run never interrupted."""
    import signal
    import time

    path = str(_policy_scenario(tmp_path))
    command = [sys.executable, "-m", "sim.cli", "run", path, "--replications", "8", "--workers", "1"]
    subprocess.run([*command, "--out", str(tmp_path / "whole")], check=True, capture_output=True)
    process = subprocess.Popen([*command, "--out", str(tmp_path / "cut")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    partial = tmp_path / "cut" / ".partial"
    deadline = time.monotonic() + 120
    while len(list(partial.glob("*.npz"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = len(list(partial.glob("*.npz")))
    assert 2 <= kept < 16, "the run should have been killed half-way"
    resumed = subprocess.run([*command, "--out", str(tmp_path / "cut"), "--resume"], capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{kept} finished replication(s)" in resumed.stderr
    _frames_equal(tmp_path / "whole", tmp_path / "cut")


def test_run_with_the_reference_engine(tmp_path: Path) -> None:
    """--engine reference runs the plain one-process-per-customer engine and writes the same files."""
    result = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / "cdnow_baseline.yaml"), "--engine",
                                       "reference", "--replications", "2", "--workers", "1",
                                       "--set", "acquisition.0.new_per_month=100", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["metrics"]["customers_acquired"]["mean"] == 300
    assert (tmp_path / "timeseries.parquet").is_file() and (tmp_path / "cohorts.parquet").is_file()


TINY = """\
name: {name}
horizon_months: 12
replications: 1
economics: {{gross_margin: 0.3}}
segments:
  only:
    purchases_per_year: {{mean: 4, cv: 0.5}}
    dropout: {{model: per_purchase, mean: 0.1}}
    order_value: {{mean: 50}}
acquisition:
  - {{channel: web, cac: 10, initial_customers: 200}}
policy:
  points: {{reward_threshold: 100, reward_value: 5}}
"""


@pytest.mark.parametrize("name", ["'[/]'", "'[bold]x'", "'a [link=file:///x]b[/link]'"])
def test_rich_markup_in_a_name_is_printed_as_written(tmp_path: Path, name: str) -> None:
    """Was: rich read the name as markup and raised MarkupError after the results were written."""
    path = tmp_path / "marked.yaml"
    path.write_text(TINY.format(name=name))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out[/]"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    shown = name.strip("'")
    assert f"{shown}: 1 replications" in result.output
    assert f"vs the baseline ({shown} without its levers)" in result.output
    assert f"{tmp_path / 'out[/]'}/" in result.output.replace("\n", "")


def test_rich_markup_in_compared_names(tmp_path: Path) -> None:
    for file, name in (("a.yaml", "'[/]a'"), ("b.yaml", "'[bold]b'")):
        (tmp_path / file).write_text(TINY.format(name=name))
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                                       "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "[bold]b - [/]a" in result.output


@pytest.mark.parametrize("name", ["'1e3'", "'yes'", "'0o17'"])
def test_written_scenario_reads_back_with_the_same_strings(tmp_path: Path, name: str) -> None:
    """scenario.yaml beside the results is quoted for YAML 1.1 and the 1.2 core schema alike. Was: a name
    '1e3' (a string to PyYAML's 1.1 writer) was written bare and read back as the number 1000."""
    path = tmp_path / "named.yaml"
    path.write_text(TINY.format(name=name))
    assert CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--workers", "1"]).exit_code == 0
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "out" / "scenario.yaml")])
    assert result.exit_code == 0, result.output
    assert f"valid scenario {name}" in result.output
