"""``loyalty-sim export``: a results directory as tables for spreadsheets (``.xlsx`` or ``.csv``).

It lives with the reports because it reads a results directory the same way (:mod:`sim.report.inputs`);
the file itself is written through the one atomic write (:func:`sim.output.files.atomic_write`).

The tables of each kind of directory (``docs/results.md``):

- run: ``headline`` (every metric's mean and 95% CI), ``vs baseline`` (the paired differences, when the run
  has a baseline), ``monthly`` (the timeseries averaged over replications, by month), ``monthly by
  replication`` and ``cohorts`` (``cohorts.parquet`` as written);
- comparison: ``headline`` (every scenario's metrics), ``differences`` (the paired differences against the
  reference) and ``replications`` (``comparison.parquet``);
- sweep: ``points`` (every metric averaged over the replications of each point) and ``results``
  (``results.parquet``, one row per point and replication).

A sampled run (``population_scale`` above 1) adds a last ``scale`` table stating it.

``OUT.xlsx`` holds one sheet per table; ``OUT.csv`` holds the first table, and every further table is written
beside it as ``OUT-<table>.csv`` (spaces become dashes: ``OUT-vs-baseline.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.accounting.metrics import METRICS, VS_BASELINE_EXTRA
from sim.input.errors import InputError, Problem
from sim.output.files import atomic_write
from sim.report.inputs import ComparisonData, RunData, SweepData, read_results

SUFFIXES = (".xlsx", ".csv")
#: Columns and metrics holding money (formatted with thousands separators and two decimals).
MONEY = frozenset({
    "gross_revenue", "discount_cost", "net_revenue", "gross_margin", "cost_to_serve", "reward_cost",
    "tier_benefit_cost", "referral_bonus_cost", "message_cost", "member_cost", "program_fixed_cost",
    "program_cost", "acquisition_cost", "profit", "npv_profit", "clv_per_customer", "clv_minus_cac_per_customer",
    "points_liability", "profit_net_of_liability", "clv", "cac", "network_value",
    "clv_base", "clv_growth", "clv_learning", "clv_total",
})
#: Ratios, shown as percentages.
RATIOS = frozenset({"roi", "breakage_rate"})
#: Identifiers, written plainly (no thousands separator).
IDENTIFIERS = frozenset({"replication", "month", "acquisition_month", "point"})
MONEY_FORMAT = "#,##0.00"
NUMBER_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
RATIO_FORMAT = "0.0%"
STATISTICS = ("mean", "ci_low", "ci_high")


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote: the kind of directory and the files, in table order."""

    kind: str
    files: list[Path]


def export(results_dir: str | Path, out: str | Path) -> Exported:
    """Write the tables of ``results_dir`` to ``out`` (``.xlsx``: one sheet per table; ``.csv``: see module).

    Raises
    ------
    InputError
        When ``out`` has another suffix, or ``results_dir`` is missing or not a results directory.
    """
    target = Path(out)
    if target.suffix.lower() not in SUFFIXES:
        raise InputError([Problem(str(out), (), f"unknown output type {target.suffix or '(no suffix)'!r}; "
                                                "give a file ending in .xlsx or .csv")])
    data = read_results(results_dir)
    tables = tables_of(data)
    kind = {RunData: "run", ComparisonData: "comparison", SweepData: "sweep"}[type(data)]
    if target.suffix.lower() == ".xlsx":
        return Exported(kind, [atomic_write(target, lambda tmp: write_workbook(tables, tmp))])
    files = []
    for index, (name, table) in enumerate(tables.items()):
        path = target if index == 0 else target.with_name(f"{target.stem}-{name.replace(' ', '-')}.csv")
        files.append(atomic_write(path, lambda tmp, t=table: t.to_csv(tmp, index=False)))
    return Exported(kind, files)


def tables_of(data: RunData | ComparisonData | SweepData) -> dict[str, pd.DataFrame]:
    """The tables to export, by sheet name, for any kind of results directory; a sampled run
    (``population_scale`` above 1) gets a last ``scale`` table saying so."""
    if isinstance(data, RunData):
        tables, scale = run_tables(data), data.summary.get("population_scale")
    elif isinstance(data, ComparisonData):
        tables, scale = comparison_tables(data), data.content.get("population_scale")
    else:
        tables, scale = sweep_tables(data), (data.scenario or {}).get("population_scale")
    if int(scale or 1) > 1:
        tables["scale"] = pd.DataFrame({
            "population_scale": [int(scale)],
            "note": [f"one customer in {int(scale):,} simulated; every count and amount of money is at the "
                     "population's size, per-customer figures and ratios as simulated"]})
    return tables


def run_tables(run: RunData) -> dict[str, pd.DataFrame]:
    """headline, vs baseline (with a baseline), monthly, monthly by replication and cohorts of a run."""
    tables = {"headline": statistics_table(run.summary["metrics"])}
    if "vs_baseline" in run.summary:
        tables["vs baseline"] = statistics_table(run.summary["vs_baseline"])
    timeseries = run.timeseries.sort_values(["replication", "month"])
    monthly = timeseries.drop(columns="replication").groupby("month", as_index=False).mean()
    tables["monthly"] = monthly
    tables["monthly by replication"] = timeseries.reset_index(drop=True)
    tables["cohorts"] = run.cohorts.reset_index(drop=True)
    return tables


def comparison_tables(comparison: ComparisonData) -> dict[str, pd.DataFrame]:
    """headline (each scenario's metrics), differences (against the reference) and replications."""
    content = comparison.content
    return {"headline": _by_scenario(content["metrics"]),
            "differences": _by_scenario(content["differences"]),
            "replications": comparison.table.reset_index(drop=True)}


def sweep_tables(sweep: SweepData) -> dict[str, pd.DataFrame]:
    """points (each point's parameter values as written, and every metric averaged over its replications)
    and results (one row per point and replication). A parameter keeps its type: a sweep over
    ``horizon_months`` shows 240, not the 240.00 of an average."""
    results = sweep.results.sort_values(["point", "replication"]).reset_index(drop=True)
    parameters = [key for key in sweep.parameters if key in results.columns]
    by_point = results.groupby("point", sort=True)
    values = by_point[parameters].first() if parameters else pd.DataFrame(index=by_point.size().index)
    metrics = results.select_dtypes("number").drop(columns=["replication", "point", *parameters], errors="ignore")
    means = metrics.groupby(results["point"], sort=True).mean()
    points = pd.concat([values, means], axis=1).reset_index()
    return {"points": points, "results": results}


def statistics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per metric: its mean and 95% CI bounds (empty when undefined), in the documented order."""
    known = [m for m in (*METRICS, *VS_BASELINE_EXTRA) if m in metrics]
    order = known + [m for m in metrics if m not in known]
    rows = [{"metric": name, **{part: _number((metrics[name] or {}).get(part)) for part in STATISTICS}}
            for name in order if isinstance(metrics[name], dict)]
    return pd.DataFrame(rows, columns=["metric", *STATISTICS])


def _by_scenario(per_scenario: dict[str, dict[str, Any]]) -> pd.DataFrame:
    frames = [statistics_table(metrics).assign(scenario=name) for name, metrics in per_scenario.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[["scenario", "metric", *STATISTICS]]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def write_workbook(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """One sheet per table: bold frozen header, widths fitted to the content, money with thousands
    separators."""
    from openpyxl.styles import Font

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, table in tables.items():
            table.to_excel(writer, sheet_name=name[:31], index=False)
            sheet = writer.sheets[name[:31]]
            sheet.freeze_panes = "A2"
            for cell in sheet[1]:
                cell.font = Font(bold=True)
            for index, column in enumerate(table.columns, start=1):
                _format_column(sheet, index, str(column), table)


def _format_column(sheet, index: int, column: str, table: pd.DataFrame) -> None:
    from openpyxl.utils import get_column_letter

    letter = get_column_letter(index)
    by_row = table["metric"].tolist() if "metric" in table.columns and column in STATISTICS else None
    values = table[column]
    integers = pd.api.types.is_integer_dtype(values)
    for row, cell in enumerate(sheet[letter][1:]):
        name = by_row[row] if by_row is not None else column
        cell.number_format = _format(name, integers)
    longest = values.map(lambda v: len(f"{v:,.2f}") if isinstance(v, float) else len(str(v))).max()
    width = max(len(column), 0 if pd.isna(longest) else int(longest)) + 2
    sheet.column_dimensions[letter].width = min(width, 60)


def _format(name: str, integers: bool) -> str:
    if name in IDENTIFIERS:
        return "0"
    if name in MONEY:
        return MONEY_FORMAT
    if name in RATIOS:
        return RATIO_FORMAT
    return COUNT_FORMAT if integers else NUMBER_FORMAT
