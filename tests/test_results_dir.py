"""Hostile results directories and faults: outputs never replace what is not ours to replace."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import main
from sim.input.errors import InputError
from sim.output.files import atomic_write

CDNOW = ROOT / "scenarios" / "cdnow_baseline.yaml"
SMALL = ["--replications", "2", "--workers", "1", "--set", "acquisition.0.new_per_month=200"]


def _run(scenario: Path | str, out: Path | None, *extra: str):
    args = ["run", str(scenario), *SMALL, *extra] + (["--out", str(out)] if out is not None else [])
    return CliRunner().invoke(main, args)


# -- outputs never replace devices, pipes or links to them -------------------------------------------------

def test_atomic_write_refuses_a_fifo_and_a_link_to_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="pipe: is a named pipe"):
        atomic_write(fifo, lambda p: p.write_text("x"))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    null = tmp_path / "null"
    null.symlink_to(os.devnull)
    with pytest.raises(InputError, match="null: is a character device"):
        atomic_write(null, lambda p: p.write_text("x"))
    assert null.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe"]   # no temporary file left


def test_atomic_write_follows_a_link_to_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    atomic_write(tmp_path / "link.txt", lambda p: p.write_text("new"))
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"


def test_a_planted_pipe_at_the_temporary_name_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".out.txt.tmp")
    atomic_write(tmp_path / "out.txt", lambda p: p.write_text("done"))
    assert (tmp_path / "out.txt").read_text() == "done"


def test_run_refuses_to_replace_a_pipe_in_the_results_directory(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "summary.json")
    result = _run(CDNOW, tmp_path)
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'summary.json'}: is a named pipe (FIFO)" in result.output
    assert "Traceback" not in result.output
    assert stat.S_ISFIFO((tmp_path / "summary.json").lstat().st_mode)


@pytest.fixture(scope="module")
def cdnow_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample as a transaction CSV: a log calibrate fits."""
    raw = pd.read_csv(ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      dtype={2: str}, names=["master_id", "customer_id", "date", "cds", "amount"])
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    raw[["customer_id", "date", "amount"]].to_csv(path, index=False)
    return path


def test_calibrate_refuses_a_link_to_a_device(tmp_path: Path, cdnow_log: Path) -> None:
    (tmp_path / "out.yaml").symlink_to(os.devnull)
    result = CliRunner().invoke(main, ["calibrate", str(cdnow_log), "-o", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'out.yaml'}: is a character device" in result.output
    assert (tmp_path / "out.yaml").is_symlink()


def test_every_output_goes_through_atomic_write() -> None:
    """One implementation of the atomic write: no other module renames files into place."""
    renaming = [str(p.relative_to(ROOT)) for p in (ROOT / "sim").rglob("*.py")
                if "os.replace(" in p.read_text() or "os.rename(" in p.read_text()]
    assert renaming == ["sim/output/files.py"]


# -- one writer per results directory -----------------------------------------------------------------------

HOLD = ("import sys, time; from sim.output.lock import ResultsLock; ResultsLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(600)")


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock, as a run writing there would."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout.readline().strip() == "locked"
    return process


def _sweep_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(f"sweep:\n  name: tiny\n  scenario: {CDNOW}\n  replications: 1\n"
                    "  set: {acquisition.0.new_per_month: 100}\n"
                    "  parameters:\n    economics.gross_margin: [0.2, 0.3]\n")
    return path


@pytest.mark.parametrize("command", ["run", "compare", "sweep"])
def test_a_results_directory_in_use_is_refused(tmp_path: Path, command: str) -> None:
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        if command == "run":
            result = _run(CDNOW, out)
        elif command == "compare":
            other = tmp_path / "other.yaml"
            other.write_text(CDNOW.read_text().replace("name: cdnow-baseline", "name: other"))
            result = CliRunner().invoke(main, ["compare", str(CDNOW), str(other), "--replications", "1",
                                               "--workers", "1", "--out", str(out)])
        else:
            result = CliRunner().invoke(main, ["sweep", str(_sweep_file(tmp_path)), "--workers", "1",
                                               "--out", str(out)])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2, result.output
    assert f"{out}: is in use: another loyalty-sim process (pid {holder.pid})" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == [".loyalty-sim.lock"]   # nothing written, nothing removed


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """A killed run leaves no stale lock: the next run into the same directory goes ahead."""
    holder = _holder(tmp_path)
    holder.kill()
    holder.wait()
    result = _run(CDNOW, tmp_path)
    assert result.exit_code == 0, result.output
    again = _run(CDNOW, tmp_path)   # and a finished run released its own lock
    assert again.exit_code == 0, again.output


# -- stored replications: data with a fingerprint, never code, never another run's ---------------------------

POLICY = "policy:\n  points: {reward_threshold: 100, reward_value: 5}\n"


def _policy_scenario(tmp_path: Path) -> Path:
    path = tmp_path / "with_policy.yaml"
    path.write_text(CDNOW.read_text() + POLICY)
    return path


def _interrupted(tmp_path: Path, monkeypatch, out: Path, *extra: str) -> list[Path]:
    """Run the policy scenario (3 replications and its baseline's 3) into ``out``, killed at the 4th; the
    stored replications."""
    import sim.experiments.replications

    real = sim.experiments.replications.run_replication
    calls = []

    def dies_on_the_fourth(scenario, replication, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(scenario, replication, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sim.experiments.replications, "run_replication", dies_on_the_fourth)
        died = _run(_policy_scenario(tmp_path), out, "--replications", "3", *extra)
    assert died.exit_code != 0
    stored = sorted(p for p in (out / ".partial").iterdir() if p.name != "fingerprint")
    assert len(stored) == 3
    return stored


def _resume(tmp_path: Path, monkeypatch, out: Path, *extra: str) -> tuple[object, int]:
    """--resume into ``out``; the result and how many replications were simulated."""
    import sim.experiments.replications

    real = sim.experiments.replications.run_replication
    counted = []
    with monkeypatch.context() as patch:
        patch.setattr(sim.experiments.replications, "run_replication",
                      lambda scenario, replication, **kw: counted.append(1) or real(scenario, replication, **kw))
        result = _run(_policy_scenario(tmp_path), out, "--replications", "3", "--resume", *extra)
    return result, len(counted)


def _same_results(a: Path, b: Path) -> None:
    assert (a / "summary.json").read_text() == (b / "summary.json").read_text()
    for name in ("timeseries.parquet", "cohorts.parquet", "baseline/cohorts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))


class Planted:
    """Unpickling this runs code: it creates the file named by ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_planted_pickle_never_runs_on_resume(tmp_path: Path, monkeypatch) -> None:
    import pickle

    out = tmp_path / "out"
    stored = _interrupted(tmp_path, monkeypatch, out)
    marker = tmp_path / "code-ran"
    stored[0].write_bytes(pickle.dumps(Planted(marker)))
    result, simulated = _resume(tmp_path, monkeypatch, out)
    assert not marker.exists()
    assert result.exit_code == 0, result.output
    assert simulated == 4   # the 3 never finished and the planted one
    assert "1 stored replication(s) discarded and simulated again: 1 damaged" in result.output


def test_damaged_stored_replications_are_simulated_again(tmp_path: Path, monkeypatch) -> None:
    whole = _run(_policy_scenario(tmp_path), tmp_path / "whole", "--replications", "3")
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "out"
    stored = _interrupted(tmp_path, monkeypatch, out)
    stored[0].write_bytes(stored[0].read_bytes()[:-200])    # cut short
    content = bytearray(stored[1].read_bytes())
    content[len(content) // 2] ^= 0xFF                      # one byte altered
    stored[1].write_bytes(bytes(content))
    result, simulated = _resume(tmp_path, monkeypatch, out)
    assert result.exit_code == 0, result.output
    assert "resuming: 1 finished replication(s) reused" in result.output
    assert "2 stored replication(s) discarded and simulated again: 2 damaged" in result.output
    assert simulated == 5
    _same_results(tmp_path / "whole", out)


def test_a_replication_of_other_work_is_never_reused(tmp_path: Path, monkeypatch) -> None:
    """A stored replication carries the fingerprint of its own run: one of another seed, dropped into the
    folder of this run, is recomputed, not mixed into the results."""
    whole = _run(_policy_scenario(tmp_path), tmp_path / "whole", "--replications", "3")
    assert whole.exit_code == 0, whole.output
    other = _interrupted(tmp_path, monkeypatch, tmp_path / "other", "--seed", "99")
    out = tmp_path / "out"
    mine = _interrupted(tmp_path, monkeypatch, out)
    stray = out / ".partial" / other[0].name
    assert stray in mine
    stray.write_bytes(other[0].read_bytes())
    result, simulated = _resume(tmp_path, monkeypatch, out)
    assert result.exit_code == 0, result.output
    assert "1 stored replication(s) discarded and simulated again: 1 from other work" in result.output
    assert simulated == 4
    _same_results(tmp_path / "whole", out)


def test_a_stored_replication_round_trips_exactly(tmp_path: Path) -> None:
    from sim.experiments.checkpoint import Checkpoint
    from sim.experiments.replications import run_replication
    from sim.input.scenarios import load_scenario

    scenario = load_scenario(str(ROOT / "scenarios" / "points_program.yaml"),
                             ["existing_customers.count=200", "acquisition.0.new_per_month=20",
                              "acquisition.1.new_per_month=20"], transactions=True)
    original = run_replication(scenario, 1, record_transactions=True)
    Checkpoint(tmp_path, "key").start(resume=False)
    Checkpoint(tmp_path, "key").save(1, original)
    checkpoint = Checkpoint(tmp_path, "key")
    back = checkpoint.start(resume=True)[1, 1]
    assert not checkpoint.discarded
    assert back.replication == 1 and back.events == original.events and back.totals == original.totals
    for table in ("monthly", "cohorts", "transactions"):
        mine, theirs = getattr(back, table), getattr(original, table)
        assert list(mine) == list(theirs)
        for name in theirs:
            assert mine[name].dtype == theirs[name].dtype
            assert (mine[name] == theirs[name]).all()
    assert Checkpoint(tmp_path, "another key").start(resume=True) == {}


def test_sweep_resume_discards_a_damaged_stored_replication(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".partial").mkdir(parents=True)
    (out / ".partial" / "0-0.npz").write_bytes(b"PK\x03\x04 not really a zip")
    result = CliRunner().invoke(main, ["sweep", str(_sweep_file(tmp_path)), "--workers", "1", "--out", str(out),
                                       "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming: 1 stored replication(s) discarded and simulated again: 1 damaged" in result.output
    assert not (out / ".partial").exists()


# -- never write over an input ---------------------------------------------------------------------------

def test_run_refuses_an_out_that_would_overwrite_the_scenario(tmp_path: Path, monkeypatch) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(CDNOW.read_text())
    monkeypatch.chdir(tmp_path)
    result = _run("scenario.yaml", Path("."))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: scenario.yaml: is an input of this command, and --out . would "
                                    "overwrite it")
    assert scenario.read_text() == CDNOW.read_text()
    assert not (tmp_path / "summary.json").exists()


def test_run_refuses_an_out_that_would_overwrite_the_baseline(tmp_path: Path) -> None:
    (tmp_path / "baseline").mkdir()
    base = tmp_path / "baseline" / "scenario.yaml"
    base.write_text(CDNOW.read_text())
    scenario = tmp_path / "program.yaml"
    scenario.write_text(CDNOW.read_text() + "baseline: baseline/scenario.yaml\n" + POLICY)
    result = _run(scenario, tmp_path)
    assert result.exit_code == 2, result.output
    assert f"{base}: is an input of this command" in result.output
    assert base.read_text() == CDNOW.read_text()


def test_a_result_file_linked_to_the_scenario_is_refused(tmp_path: Path) -> None:
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(CDNOW.read_text())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").symlink_to(scenario)
    result = _run(scenario, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{scenario}: is an input of this command" in result.output
    assert scenario.read_text() == CDNOW.read_text()


def test_sweep_refuses_an_out_that_would_overwrite_its_scenario(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(CDNOW.read_text())
    sweep = _sweep_file(tmp_path)
    sweep.write_text(sweep.read_text().replace(str(CDNOW), "scenario.yaml"))
    result = CliRunner().invoke(main, ["sweep", str(sweep), "--workers", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'scenario.yaml'}: is an input of this command" in result.output
    assert (tmp_path / "scenario.yaml").read_text() == CDNOW.read_text()


@pytest.mark.parametrize("name", ["..", ".", "../..", "/", "..."])
def test_a_scenario_name_never_leaves_the_results_folder(tmp_path: Path, monkeypatch, name: str) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    scenario = work / "odd.yaml"
    scenario.write_text(CDNOW.read_text().replace("name: cdnow-baseline", f"name: '{name}'"))
    monkeypatch.chdir(work)
    result = _run(scenario, None)
    assert result.exit_code == 0, result.output
    assert (work / "results" / "run" / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.rglob("summary.json")) == ["summary.json"]


def test_folder_names_are_plain() -> None:
    from sim.output.layout import folder_name

    assert [folder_name(n, "x") for n in ("..", ".", "", " ", "a/../b", ".hidden", "v1.2", "-a-")] == [
        "x", "x", "x", "x", "a-..-b", "hidden", "v1.2", "a"]


def test_a_compared_scenario_named_dot_dot_stays_in_its_folder(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text(CDNOW.read_text().replace("name: cdnow-baseline", "name: '..'"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", str(CDNOW), str(odd), "--replications", "1", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "scenarios" / "scenario" / "summary.json").is_file()
    assert not (out / "summary.json").exists()


# -- no stale files ----------------------------------------------------------------------------------------

def test_a_run_removes_the_earlier_runs_files_it_does_not_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(_policy_scenario(tmp_path), out, "--transactions").exit_code == 0
    (out / "notes.txt").write_text("mine")
    (out / "baseline" / "notes.txt").write_text("mine too")
    assert (out / "transactions.parquet").is_file() and (out / "baseline" / "summary.json").is_file()
    result = _run(CDNOW, out)   # no --transactions, no policy hence no baseline
    assert result.exit_code == 0, result.output
    assert not (out / "transactions.parquet").exists()
    assert sorted(p.name for p in (out / "baseline").iterdir()) == ["notes.txt"]   # only ours went
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "baseline", "cohorts.parquet", "notes.txt", "scenario.yaml", "summary.json", "timeseries.parquet"]


def test_a_run_into_a_sweeps_directory_leaves_no_sweep_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sweep = CliRunner().invoke(main, ["sweep", str(_sweep_file(tmp_path)), "--workers", "1", "--out", str(out)])
    assert sweep.exit_code == 0, sweep.output
    assert (out / "sweep.json").is_file() and list((out / "results.parquet").glob("point-*.parquet"))
    result = _run(CDNOW, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "cohorts.parquet", "scenario.yaml", "summary.json", "timeseries.parquet"]
    from sim.report.inputs import detect_kind

    assert detect_kind(out) == "run"


def test_a_comparison_removes_the_folders_of_scenarios_it_no_longer_compares(tmp_path: Path) -> None:
    files = {}
    for name in ("a", "b", "c"):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(CDNOW.read_text().replace("name: cdnow-baseline", f"name: {name}"))
    out = tmp_path / "out"
    for pair in (("a", "b"), ("a", "c")):
        result = CliRunner().invoke(main, ["compare", *(str(files[n]) for n in pair), "--replications", "1",
                                           "--workers", "1", "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "scenarios").iterdir()) == ["a", "c"]


def test_calibrate_refuses_to_write_over_its_log(tmp_path: Path, cdnow_log: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_bytes(cdnow_log.read_bytes())
    result = CliRunner().invoke(main, ["calibrate", str(log), "-o", str(log)])
    assert result.exit_code == 2, result.output
    assert f"{log}: is the transaction log read; -o would overwrite it" in result.output
    assert log.read_bytes() == cdnow_log.read_bytes()


def test_a_resume_after_an_edit_says_why_it_starts_over(tmp_path: Path, monkeypatch) -> None:
    """Was: "resuming: 0 finished replication(s) reused" and nothing about why none were."""
    out = tmp_path / "out"
    _interrupted(tmp_path, monkeypatch, out, "--seed", "99")
    result, simulated = _resume(tmp_path, monkeypatch, out)
    assert result.exit_code == 0, result.output
    assert ("resuming: the stored replications are of other work (the scenario or its options changed since): "
            "starting over") in result.output
    assert "0 finished replication(s) reused" not in result.output
    assert simulated == 6
