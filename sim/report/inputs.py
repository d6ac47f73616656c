"""Reading a results directory for a report: a run, a comparison or a sweep (``docs/results.md``).

Every problem (no such file, not JSON, not Parquet, a key or column missing) is an
:class:`sim.input.errors.InputError` naming the file, which the CLI turns into exit status 2.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sim.input.errors import InputError, Problem
from sim.output.layout import folder_name

#: Columns a report needs (the writers add more; extra columns are fine).
TIMESERIES_COLUMNS = ("replication", "month", "customers_acquired", "active_customers_end",
                      "customers_dropped_out", "purchases", "net_revenue", "gross_margin", "cost_to_serve",
                      "program_cost", "acquisition_cost", "profit")
COHORT_COLUMNS = ("replication", "acquisition_month", "channel", "segment", "customers", "clv", "cac",
                  "active_end")
SWEEP_RESULT_COLUMNS = ("point", "replication")
#: Metrics of summary.json (and of each scenario in compare.json) that a report reads.
SUMMARY_METRICS = ("customers_acquired", "customers_dropped_out", "purchases", "net_revenue", "gross_margin",
                   "cost_to_serve", "program_cost", "acquisition_cost", "profit", "clv_per_customer",
                   "clv_minus_cac_per_customer")


@dataclass
class RunData:
    """One run directory: summary.json, timeseries.parquet, cohorts.parquet, and baseline/ when present."""

    path: Path
    summary: dict[str, Any]
    timeseries: pd.DataFrame
    cohorts: pd.DataFrame
    scenario: dict[str, Any] | None = None
    source: str | None = None
    baseline: RunData | None = None

    @property
    def name(self) -> str:
        """The scenario's name, as summary.json gives it."""
        return str(self.summary["scenario"])

    def metric(self, name: str, part: str = "mean") -> float | None:
        """A metric's ``mean``, ``ci_low`` or ``ci_high`` from summary.json (None when undefined)."""
        return (self.summary["metrics"].get(name) or {}).get(part)


@dataclass
class ComparisonData:
    """A comparison directory: compare.json, comparison.parquet and each scenario's run directory."""

    path: Path
    content: dict[str, Any]
    table: pd.DataFrame
    runs: dict[str, RunData] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """The scenario every other is compared with."""
        return str(self.content["reference"])


@dataclass
class SweepData:
    """A sweep directory: sweep.json, results.parquet, and sensitivity.json once the sweep finished."""

    path: Path
    design: dict[str, Any]
    results: pd.DataFrame
    sensitivity: dict[str, Any] | None = None
    scenario: dict[str, Any] | None = None
    scenario_source: str | None = None

    @property
    def parameters(self) -> list[str]:
        """The swept parameters' dotted keys, in the sweep's order."""
        return list(self.design["parameters"])


def detect_kind(directory: Path) -> str:
    """'run', 'comparison' or 'sweep', from the files the directory holds."""
    if not directory.exists():
        raise InputError([Problem(str(directory), (), "no such directory")])
    if not directory.is_dir():
        raise InputError([Problem(str(directory), (), "is a file; give a results directory")])
    if (directory / "sweep.json").exists():
        return "sweep"
    if (directory / "compare.json").exists():
        return "comparison"
    if (directory / "summary.json").exists():
        return "run"
    raise InputError([Problem(str(directory), (), "not a results directory: it holds no summary.json (run), "
                                                 "compare.json (comparison) or sweep.json (sweep)")])


def read_results(directory: str | Path) -> RunData | ComparisonData | SweepData:
    """Read whichever kind of results directory ``directory`` is."""
    path = Path(directory)
    kind = detect_kind(path)
    if kind == "sweep":
        return read_sweep(path)
    if kind == "comparison":
        return read_comparison(path)
    return read_run(path)


def read_run(path: Path) -> RunData:
    """A run directory and, when its summary names a baseline, the baseline/ directory within it."""
    summary = read_json(path / "summary.json", required=("scenario", "replications", "horizon_months", "metrics"))
    _require_metrics(path / "summary.json", ("metrics",), summary.get("metrics"))
    run = RunData(path, summary, read_parquet(path / "timeseries.parquet", TIMESERIES_COLUMNS),
                  read_parquet(path / "cohorts.parquet", COHORT_COLUMNS))
    run.scenario, run.source = read_scenario_yaml(path / "scenario.yaml")
    if "vs_baseline" in summary:
        _require_metrics(path / "summary.json", ("vs_baseline",), summary.get("vs_baseline"),
                         ("profit", "program_cost", "roi", "payback_month"))
        if not (path / "baseline" / "summary.json").exists():
            raise InputError([Problem(str(path / "baseline" / "summary.json"), (),
                                      "no such file (summary.json compares with a baseline, whose files "
                                      "belong in baseline/)")])
        run.baseline = read_run(path / "baseline")
    return run


def read_comparison(path: Path) -> ComparisonData:
    """compare.json, comparison.parquet and every scenario's folder under scenarios/."""
    content = read_json(path / "compare.json", required=("scenarios", "reference", "replications",
                                                         "horizon_months", "metrics", "differences"))
    for key in ("metrics", "differences"):
        _require_mapping(path / "compare.json", content, key)
    for name, metrics in content["metrics"].items():
        _require_metrics(path / "compare.json", ("metrics", name), metrics)
    for name, differences in content["differences"].items():
        _require_metrics(path / "compare.json", ("differences", name), differences, ("profit", "roi"))
    table = read_parquet(path / "comparison.parquet", ("scenario", "replication", "profit"))
    folders = content.get("folders") or {name: folder_name(name, "scenario") for name in content["metrics"]}
    runs = {name: read_run(path / "scenarios" / folder) for name, folder in folders.items()}
    return ComparisonData(path, content, table, runs)


def read_sweep(path: Path) -> SweepData:
    """sweep.json, results.parquet and (when present) sensitivity.json; the base scenario when found."""
    design = read_json(path / "sweep.json", required=("parameters", "points"))
    _require_mapping(path / "sweep.json", design, "parameters")
    if not isinstance(design["points"], list):
        raise InputError([Problem(str(path / "sweep.json"), ("points",), "must be a list of points")])
    results = read_parquet(path / "results.parquet", SWEEP_RESULT_COLUMNS + tuple(design["parameters"]),
                           numeric=SWEEP_RESULT_COLUMNS)
    sensitivity = None
    if (path / "sensitivity.json").exists():
        sensitivity = read_json(path / "sensitivity.json", required=("metric",))
    sweep = SweepData(path, design, results, sensitivity)
    for candidate in _scenario_candidates(path, design.get("scenario")):
        if candidate.is_file():
            sweep.scenario, sweep.scenario_source = read_scenario_yaml(candidate)
            sweep.scenario_source = sweep.scenario_source or str(candidate)
            break
    return sweep


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object, with the keys ``required``."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([Problem(str(path), (), "no such file")]) from None
    except UnicodeDecodeError:
        raise InputError([Problem(str(path), (), "is not UTF-8 text")]) from None
    except json.JSONDecodeError as exc:
        raise InputError([Problem(str(path), (), f"not valid JSON: {exc.msg}", exc.lineno)]) from None
    except OSError as exc:
        raise InputError([Problem(str(path), (), f"cannot be read: {exc.strerror}")]) from None
    if not isinstance(content, dict):
        raise InputError([Problem(str(path), (), "must hold a JSON object")])
    missing = [key for key in required if key not in content]
    if missing:
        raise InputError([Problem(str(path), (), f"missing key(s): {', '.join(missing)}")])
    return content


def read_parquet(path: Path, required: tuple[str, ...] = (), numeric: tuple[str, ...] | None = None
                 ) -> pd.DataFrame:
    """A Parquet table (a file, or a folder of files as a sweep writes it) with the columns ``required``;
    those in ``numeric`` (default: all but channel, segment and scenario) must hold numbers."""
    if not path.exists():
        raise InputError([Problem(str(path), (), "no such file")])
    if path.is_dir() and not any(path.glob("*.parquet")):
        raise InputError([Problem(str(path), (), "holds no Parquet files (no point has finished yet)")])
    import pyarrow

    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        raise InputError([Problem(str(path), (), f"cannot be read as Parquet: {str(exc)[:200]}")]) from None
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise InputError([Problem(str(path), (), f"missing column(s): {', '.join(missing)}")])
    if numeric is None:
        numeric = tuple(c for c in required if c not in ("channel", "segment", "scenario"))
    wrong = [c for c in numeric if not pd.api.types.is_numeric_dtype(table[c])]
    if wrong:
        raise InputError([Problem(str(path), (), f"column(s) not numeric: {', '.join(wrong)}")])
    if table.empty:
        raise InputError([Problem(str(path), (), "holds no rows")])
    return table


def read_scenario_yaml(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The scenario written beside the results (plain data) and the source named in its header."""
    if not path.is_file():
        return None, None
    try:
        text = path.read_text(encoding="utf-8")
        content = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError([Problem(str(path), (), f"cannot be read as YAML: {exc}")]) from None
    if not isinstance(content, dict):
        raise InputError([Problem(str(path), (), "must hold a YAML mapping")])
    match = re.search(r"^# source: (.*)$", text, flags=re.MULTILINE)
    return content, match.group(1).strip() if match else None


def _scenario_candidates(path: Path, scenario: object) -> list[Path]:
    candidates = [path / "scenario.yaml"]
    if isinstance(scenario, str) and scenario:
        target = Path(scenario)
        candidates += [target] if target.is_absolute() else [path / target, target]
    return candidates


def _require_metrics(path: Path, where: tuple[str, ...], metrics: Any, names: tuple[str, ...] = SUMMARY_METRICS
                     ) -> None:
    """``metrics`` must map each of ``names`` to an object with a ``mean``."""
    if not isinstance(metrics, dict):
        raise InputError([Problem(str(path), where, "must be a JSON object of metrics")])
    missing = [name for name in names if not isinstance(metrics.get(name), dict) or "mean" not in metrics[name]]
    if missing:
        raise InputError([Problem(str(path), where, f"missing metric(s): {', '.join(missing)}")])


def _require_mapping(path: Path, content: dict[str, Any], key: str) -> None:
    if not isinstance(content.get(key), dict):
        raise InputError([Problem(str(path), (key,), "must be a JSON object")])
