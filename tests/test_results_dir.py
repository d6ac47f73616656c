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
from conftest import ROOT

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


def test_calibrate_refuses_a_link_to_a_device_before_fitting(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    pd.DataFrame({"customer_id": [1, 1, 2, 2, 3], "date": ["2024-01-01", "2024-02-01", "2024-01-05", "2024-03-01",
                                                           "2024-01-09"],
                  "amount": [10.0, 12.0, 5.0, 6.0, 7.0]}).to_csv(log, index=False)
    (tmp_path / "out.yaml").symlink_to(os.devnull)
    result = CliRunner().invoke(main, ["calibrate", str(log), "-o", str(tmp_path / "out.yaml")])
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

