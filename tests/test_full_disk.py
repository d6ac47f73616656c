"""A full disk in run, sweep and report: exit 2 naming the file, no traceback, nothing finished lost.

The disk fills up at one chosen file: the atomic write of that file fails with ENOSPC, as it would on a
full file system (every output goes through :func:`sim.output.files.atomic_write`, which
tests/test_results_dir.py checks), so each case below is the moment that file is written.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import main

CDNOW = ROOT / "scenarios" / "cdnow_baseline.yaml"
POLICY = "policy:\n  points: {reward_threshold: 100, reward_value: 5}\n"
SMALL = ["--replications", "2", "--workers", "1", "--set", "acquisition.0.new_per_month=100"]
FULL = os.strerror(errno.ENOSPC)


def _full_disk_at(monkeypatch, pattern: str) -> None:
    """Writing a file whose path matches ``pattern`` fails as on a full disk (the others are written)."""
    import sim.output.files

    real = os.replace

    def replace(source, target, *args, **kwargs):
        if fnmatch.fnmatch(str(target), pattern):
            raise OSError(errno.ENOSPC, FULL)
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(sim.output.files.os, "replace", replace)


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "with_policy.yaml"
    path.write_text(CDNOW.read_text() + POLICY)
    return path


def _counting(monkeypatch) -> list[int]:
    """Count the replications simulated from now on."""
    import sim.experiments.replications

    real = sim.experiments.replications.run_replication
    counted: list[int] = []
    monkeypatch.setattr(sim.experiments.replications, "run_replication",
                        lambda scenario, replication, **kw: counted.append(1) or real(scenario, replication, **kw))
    return counted


def _run(tmp_path: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["run", str(_scenario(tmp_path)), *SMALL, "--out", str(out), *extra])


def _same_run(a: Path, b: Path) -> None:
    assert (a / "summary.json").read_text() == (b / "summary.json").read_text()
    for name in ("timeseries.parquet", "cohorts.parquet", "baseline/cohorts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))


@pytest.mark.parametrize("full_at", ["summary.json", "timeseries.parquet", "baseline/cohorts.parquet"])
def test_run_on_a_full_disk_keeps_its_replications_and_resumes(tmp_path: Path, monkeypatch, full_at: str) -> None:
    whole = _run(tmp_path, tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _full_disk_at(patch, f"*/out/{full_at}")
        result = _run(tmp_path, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{out / full_at}: cannot be written: {FULL}" in result.output
    assert (f"the 4 finished replication(s) are kept in {out / '.partial'}: make room and run the same "
            "command again with --resume" in result.output)
    assert len(list((out / ".partial").glob("*.npz"))) == 4
    with monkeypatch.context() as patch:
        simulated = _counting(patch)
        resumed = _run(tmp_path, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert simulated == []
    _same_run(tmp_path / "whole", out)


def test_run_whose_disk_fills_between_replications_keeps_the_finished_ones(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _full_disk_at(patch, "*/.partial/0-1.npz")
        result = _run(tmp_path, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{out / '.partial' / '0-1.npz'}: cannot be written: {FULL}" in result.output
    assert "finished replication(s) are kept" in result.output
    kept = {p.name for p in (out / ".partial").glob("*.npz")}
    assert "0-0.npz" in kept and "0-1.npz" not in kept
    with monkeypatch.context() as patch:
        simulated = _counting(patch)
        resumed = _run(tmp_path, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(simulated) == 4 - len(kept)
    whole = _run(tmp_path, tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    _same_run(tmp_path / "whole", out)


def _sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"sweep:\n  name: tiny\n  scenario: {_scenario(tmp_path)}\n  replications: 2\n"
                    "  set: {acquisition.0.new_per_month: 100}\n"
                    "  parameters:\n    economics.gross_margin: [0.2, 0.3, 0.4]\n")
    return path


def _sweep(tmp_path: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["sweep", str(_sweep_file(tmp_path)), "--workers", "1", "--out", str(out),
                                     *extra])


@pytest.mark.parametrize("full_at", ["results.parquet/point-0000001.parquet", "sensitivity.json"])
def test_sweep_on_a_full_disk_keeps_its_points_and_resumes(tmp_path: Path, monkeypatch, full_at: str) -> None:
    with monkeypatch.context() as patch:
        units = _counting(patch)
        whole = _sweep(tmp_path, tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _full_disk_at(patch, f"*/out/{full_at}")
        result = _sweep(tmp_path, out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{out / full_at}: cannot be written: {FULL}" in result.output
    assert "make room and run the same command again with --resume" in result.output
    assert (out / "results.parquet" / "point-0000000.parquet").is_file()
    kept = len(list((out / ".partial").glob("*.npz")))
    assert kept >= 4    # point 0 and its baseline, 2 replications each
    with monkeypatch.context() as patch:
        simulated = _counting(patch)
        resumed = _sweep(tmp_path, out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert len(simulated) == len(units) - kept   # only what was not stored is simulated again
    rows = pd.read_parquet(out / "results.parquet").sort_values(["point", "replication"], ignore_index=True)
    expected = pd.read_parquet(tmp_path / "whole" / "results.parquet").sort_values(["point", "replication"],
                                                                                   ignore_index=True)
    pd.testing.assert_frame_equal(rows, expected)


@pytest.mark.parametrize("full_at", ["report.html", "report_files/01-*.png"])
def test_report_on_a_full_disk_says_so_and_leaves_the_results_alone(tmp_path: Path, monkeypatch,
                                                                    full_at: str) -> None:
    out = tmp_path / "out"
    assert _run(tmp_path, out).exit_code == 0
    results = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with monkeypatch.context() as patch:
        _full_disk_at(patch, f"*/out/{full_at}")
        result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"cannot be written: {FULL}" in result.output
    assert not (out / "report.html").exists()
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and "report_files" not in p.parts}
    assert after == results
