"""Which files of a results directory are ours, and the rules that keep the user's files safe there.

A results directory may hold the files of a run, a comparison or a sweep (SPEC "Results directory").
Only these names are ever removed (:func:`remove_stale`), and an input of the command (its scenario,
baseline or sweep file) that sits at one of them is refused before anything is written
(:func:`refuse_inputs_among_results`): writing the results would overwrite it, or clearing stale ones
would delete it. Kept free of numpy and pandas, so that the CLI can check before the heavy imports.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from sim.input.errors import InputError, Problem

#: The scenario as simulated, in every run directory (and the baseline's).
SCENARIO_FILE = "scenario.yaml"
#: Result files of a run, beside its baseline's in BASELINE_FOLDER.
RUN_FILES = (SCENARIO_FILE, "summary.json", "timeseries.parquet", "cohorts.parquet", "transactions.parquet")
BASELINE_FOLDER = "baseline"
#: Result files of a comparison, beside one run folder per scenario in SCENARIOS_FOLDER.
COMPARE_FILES = ("compare.json", "comparison.parquet")
SCENARIOS_FOLDER = "scenarios"
#: Result files of a sweep (the scenario it starts from is SCENARIO_FILE), and its folder of point files.
SWEEP_FILES = ("sweep.json", "sensitivity.json")
SWEEP_POINTS_FOLDER = "results.parquet"
SWEEP_POINT_PATTERN = "point-*.parquet"


def result_files(out: str | os.PathLike[str]) -> list[Path]:
    """Every file of ours in ``out``, as a run, comparison or sweep writes it (only those that exist)."""
    out = Path(out)
    runs = [out, out / BASELINE_FOLDER]
    scenarios = out / SCENARIOS_FOLDER
    if _is_folder(scenarios):
        for folder in sorted(p for p in scenarios.iterdir() if _is_folder(p)):
            runs += [folder, folder / BASELINE_FOLDER]
    candidates = [run / name for run in runs for name in RUN_FILES]
    candidates += [out / name for name in COMPARE_FILES + SWEEP_FILES]
    if _is_folder(out / SWEEP_POINTS_FOLDER):
        candidates += sorted((out / SWEEP_POINTS_FOLDER).glob(SWEEP_POINT_PATTERN))
    return [path for path in candidates if _is_ours(path)]


def remove_stale(out: str | os.PathLike[str], written: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Remove the files of ours in ``out`` that are not in ``written`` (left by an earlier run, comparison
    or sweep into the same directory), then the folders of ours left empty. Nothing else is touched.
    Returns the files removed."""
    keep = {os.path.abspath(p) for p in written}
    removed = [path for path in result_files(out) if os.path.abspath(path) not in keep]
    for path in removed:
        path.unlink()
    out = Path(out)
    scenarios = out / SCENARIOS_FOLDER
    folders = [out / BASELINE_FOLDER, out / SWEEP_POINTS_FOLDER]
    if _is_folder(scenarios):
        folders += [f / BASELINE_FOLDER for f in scenarios.iterdir() if _is_folder(f)]
        folders += [f for f in scenarios.iterdir() if _is_folder(f)]
    for folder in [*folders, scenarios]:
        if _is_folder(folder) and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def refuse_inputs_among_results(out: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]],
                                option: str = "--out") -> None:
    """Raise :class:`InputError` when an input file is (or is linked from) a result file of ours in ``out``.

    Such an input would be overwritten by the results or removed as a stale result: ``run scenario.yaml
    --out .`` would replace the user's scenario with the resolved copy.
    """
    identities = {}
    for path in inputs:
        try:
            info = os.stat(path)
        except OSError:
            continue
        identities[info.st_dev, info.st_ino] = path
    candidates = [Path(out) / name for name in RUN_FILES + COMPARE_FILES + SWEEP_FILES] + result_files(out)
    problems = []
    for result in dict.fromkeys(candidates):
        try:
            info = os.stat(result)
        except OSError:
            continue
        source = identities.get((info.st_dev, info.st_ino))
        if source is not None:
            problems.append(Problem(str(source), (), (
                f"is an input of this command, and {option} {out} would overwrite it with a result file "
                f"({result}); choose another {option}")))
    if problems:
        raise InputError(problems)


def folder_name(name: str, fallback: str) -> str:
    """A plain folder name made of ``name`` (a scenario's or sweep's): letters, digits, '.', '_' and '-', not
    starting or ending with '.' or '-' (so never '.', '..' or hidden), nor empty (then ``fallback``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or fallback


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _is_ours(path: Path) -> bool:
    """A regular file (or a link) at one of our names; a pipe or device there is left alone."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)
