"""The ``loyalty-sim`` command line.

Start-up stays light: ``--help``, ``validate`` and ``schema`` import neither numpy, pandas, scipy nor simpy;
``run`` imports them only once its input is known to be good. Bad input exits with status 2 and a message
naming the file, the key path and the line, never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import click

EXIT_BAD_INPUT = 2

#: Metrics shown in the short table after a run (everything is in summary.json).
HEADLINE_METRICS = (
    "customers_acquired", "active_customers_end", "purchases", "net_revenue", "gross_margin", "program_cost",
    "acquisition_cost", "profit", "npv_profit", "clv_per_customer", "clv_minus_cac_per_customer",
)


def _fail(problems: Sequence[object]) -> None:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _load(path: str, overrides: Sequence[str] = ()):
    from sim.loading import InputError, load_scenario

    try:
        return load_scenario(path, overrides)
    except InputError as exc:
        _fail(exc.problems)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loyalty-sim")
def main() -> None:
    """Simulate whether a loyalty program, discount policy or referral scheme pays for itself."""


@main.command()
@click.argument("scenario_file", metavar="SCENARIO.yaml")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Results directory "
              "[default: results/<scenario name>].")
@click.option("--replications", type=click.IntRange(min=1), help="Override the scenario's replications.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Override the scenario's seed.")
@click.option("--set", "overrides", multiple=True, metavar="dotted.key=value",
              help="Override any scenario value (validated like the file); repeatable.")
@click.option("--transactions", is_flag=True, help="Also write every purchase to transactions.parquet.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes running replications "
              "[default: the number of cores]; results are the same whatever the number.")
def run(scenario_file: str, out_dir: str | None, replications: int | None, seed: int | None,
        overrides: tuple[str, ...], transactions: bool, workers: int | None) -> None:
    """Simulate one scenario and write summary.json, timeseries.parquet and cohorts.parquet."""
    extra = list(overrides)
    if replications is not None:
        extra.append(f"replications={replications}")
    if seed is not None:
        extra.append(f"seed={seed}")
    scenario = _load(scenario_file, extra)
    if scenario.policy is not None:
        from sim.loading import Problem

        _fail([Problem(scenario_file, ("policy",), "the policy levers are not simulated by this version yet; "
                                                   "remove the `policy` block to run the no-program baseline")])
    out = Path(out_dir) if out_dir else Path("results") / _slug(scenario.name)
    _check_writable(out)
    result = _run_with_progress(scenario, transactions, workers or os.cpu_count() or 1)

    from sim.results import summary, write_run

    write_run(result, out, with_transactions=transactions)
    _print_summary(summary(result), out)


def _run_with_progress(scenario, transactions: bool, workers: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from sim.experiment import run_scenario

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task(f"{scenario.name}: replications", total=scenario.replications)
        return run_scenario(scenario, record_transactions=transactions, workers=workers,
                            on_replication=lambda _: progress.advance(task))


def _print_summary(content: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{content['scenario']}: {content['replications']} replications, "
                        f"{content['horizon_months']} months (95% CI)")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    for name in HEADLINE_METRICS:
        value = content["metrics"][name]
        low, high = value["ci_low"], value["ci_high"]
        interval = "-" if low is None else f"{_number(low)} .. {_number(high)}"
        table.add_row(name, _number(value["mean"]), interval)
    console = Console()
    console.print(table)
    console.print(f"results written to {out}/")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from sim.loading import Problem

        _fail([Problem(str(out), (), f"cannot create the results directory: {exc.strerror}")])


@main.command()
@click.argument("file", metavar="SCENARIO.yaml")
@click.option("--set", "overrides", multiple=True, metavar="dotted.key=value", help="Check with overrides.")
def validate(file: str, overrides: tuple[str, ...]) -> None:
    """Check a scenario file without running it."""
    scenario = _load(file, overrides)
    customers = scenario.planned_customers()
    click.echo(f"{file}: valid scenario '{scenario.name}': {len(scenario.segments)} segment(s), "
               f"{len(scenario.acquisition)} channel(s), {customers:,} acquired customers over "
               f"{scenario.horizon_months} months, {scenario.replications} replication(s)")


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    import json

    from sim.scenario import Scenario

    document = Scenario.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "loyalty-sim scenario"
    click.echo(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
