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
    from sim.loading import load_scenario

    return _guarded(lambda: load_scenario(path, overrides))


def _guarded(action):
    """Run ``action``; bad input (sim.loading.InputError) becomes its messages and exit status 2."""
    from sim.loading import InputError

    try:
        return action()
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
@click.option("--resume", is_flag=True, help="Reuse the replications an interrupted run of the same "
              "scenario into the same --out had finished (kept in DIR/.partial).")
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast", show_default=True,
              help="reference: one simpy process per customer, the executable specification (small "
                   "populations only; same laws, other random numbers).")
def run(scenario_file: str, out_dir: str | None, replications: int | None, seed: int | None,
        overrides: tuple[str, ...], transactions: bool, workers: int | None, resume: bool, engine: str) -> None:
    """Simulate one scenario (and its baseline) and write summary.json, timeseries.parquet and cohorts.parquet.

    Each replication is kept in DIR/.partial as it finishes, so a killed run loses nothing finished:
    run again with --resume to simulate only what is missing.
    """
    extra = list(overrides)
    if replications is not None:
        extra.append(f"replications={replications}")
    if seed is not None:
        extra.append(f"seed={seed}")
    scenario = _load(scenario_file, extra)
    baseline = _guarded(lambda: _baseline(scenario, scenario_file))
    out = Path(out_dir) if out_dir else Path("results") / _slug(scenario.name)
    _check_writable(out)

    from sim.checkpoint import Checkpoint, fingerprint

    arms = [scenario] if baseline is None else [scenario, baseline]
    checkpoint = Checkpoint(out, fingerprint(arms, transactions, engine))
    finished = checkpoint.start(resume=resume)
    if resume:
        click.echo(f"resuming: {len(finished)} finished replication(s) found in {checkpoint.folder}", err=True)
    result = _run_with_progress(scenario, baseline, transactions, workers or os.cpu_count() or 1,
                                checkpoint, finished, engine)

    from sim.results import summary, write_run

    write_run(result, out, with_transactions=transactions)
    checkpoint.finish()
    _print_summary(summary(result), out)


def _progress():
    """A progress bar of replications with ETA, shown only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, transient=True, disable=not sys.stderr.isatty())


def _baseline(scenario, scenario_file: str):
    from sim.loading import resolve_baseline

    return resolve_baseline(scenario, scenario_file)


def _run_with_progress(scenario, baseline, transactions: bool, workers: int, checkpoint, finished: dict,
                       engine: str = "fast"):
    from sim.experiment import run_scenario

    total = scenario.replications * (1 if baseline is None else 2)
    label = scenario.name if baseline is None else f"{scenario.name} and its baseline"
    with _progress() as progress:
        task = progress.add_task(f"{label}: replications", total=total, completed=len(finished))

        def done(arm: int, replication) -> None:
            checkpoint.save(arm, replication)
            progress.advance(task)

        return run_scenario(scenario, baseline=baseline, record_transactions=transactions, workers=workers,
                            on_replication=done, finished=finished, engine=engine)


def _print_summary(content: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{content['scenario']}: {content['replications']} replications, "
                        f"{content['horizon_months']} months (95% CI)")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    vs = content.get("vs_baseline")
    if vs is not None:
        table.add_column("vs baseline", justify="right")
        table.add_column("95% CI", justify="right")
    for name in HEADLINE_METRICS:
        row = [name, *_mean_and_interval(content["metrics"][name])]
        if vs is not None:
            row += _mean_and_interval(vs[name])
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    if vs is not None:
        roi, payback = vs["roi"], vs["payback_month"]
        console.print(f"vs {content['baseline']} (same customers, paired): "
                      f"roi {' '.join(_mean_and_interval(roi))}; payback month "
                      + (' '.join(_mean_and_interval(payback)) if payback["mean"] is not None else
                         f"not reached in {content['replications'] - payback['replications_paid_back']} "
                         f"of {content['replications']} replications"))
    console.print(f"results written to {out}/")


def _mean_and_interval(value: dict) -> list[str]:
    low, high = value["ci_low"], value["ci_high"]
    return [_number(value["mean"]), "-" if low is None else f"{_number(low)} .. {_number(high)}"]


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
@click.argument("scenario_files", metavar="A.yaml B.yaml ...", nargs=-1, required=True)
@click.option("--baseline", "baseline_file", metavar="BASE.yaml",
              help="Compare every scenario with this one [default: compare B, C ... with A].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Results directory [default: results/compare-<names>].")
@click.option("--replications", type=click.IntRange(min=1), help="Replications of every scenario "
              "[default: the first scenario's].")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed of every scenario "
              "[default: the first scenario's].")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: the number of cores].")
def compare(scenario_files: tuple[str, ...], baseline_file: str | None, out_dir: str | None,
            replications: int | None, seed: int | None, workers: int | None) -> None:
    """Paired comparison of scenarios on common random numbers: differences with 95% CIs.

    All scenarios run with the same seed and replications, so they face the same customers. With several
    comparisons the intervals are Bonferroni-adjusted so that they hold together at 95%.
    """
    from sim.loading import Problem, read_yaml

    files = list(scenario_files) + ([baseline_file] if baseline_file else [])
    if len(files) < 2:
        _fail([Problem(scenario_files[0], (), "compare needs two scenarios, or one and --baseline")])
    scenarios = [_load(f) for f in files]
    first = scenarios[0]
    common = {"seed": first.seed if seed is None else seed,
              "replications": first.replications if replications is None else replications}
    problems = []
    names: dict[str, str] = {}
    for path, scenario in zip(files, scenarios):
        if scenario.horizon_months != first.horizon_months:
            problems.append(read_yaml(path).problem(("horizon_months",), (
                f"{scenario.horizon_months} months, but {files[0]} runs {first.horizon_months}; "
                "a paired comparison needs the same horizon")))
        if scenario.name in names:
            problems.append(read_yaml(path).problem(("name",), (
                f"'{scenario.name}' is also the name of {names[scenario.name]}; compared scenarios need "
                "distinct names")))
        names.setdefault(scenario.name, path)
    if problems:
        _fail(problems)
    scenarios = [s.model_copy(update=common) for s in scenarios]
    out = Path(out_dir) if out_dir else Path("results") / _slug("compare-" + "-vs-".join(s.name for s in scenarios))
    _check_writable(out)

    from sim.compare import Comparison, write_comparison
    from sim.experiment import run_many

    with _progress() as progress:
        task = progress.add_task("compare: replications", total=len(scenarios) * common["replications"])
        results = run_many(scenarios, workers=workers or os.cpu_count() or 1,
                           on_replication=lambda *_: progress.advance(task))
    if baseline_file:
        comparison = Comparison(results[:-1], results[-1], reference_is_baseline=True)
    else:
        comparison = Comparison(results, results[0], reference_is_baseline=False)
    write_comparison(comparison, out)
    _print_comparison(comparison.content(), out)


def _print_comparison(content: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    level = f"{content['confidence']:.1%}".replace(".0%", "%")
    console = Console(width=None if sys.stdout.isatty() else 140)
    reference = content["reference"]
    means = Table(title=f"{content['replications']} replications, seed {content['seed']}, "
                        f"{content['horizon_months']} months: means")
    means.add_column("metric")
    for name in content["metrics"]:
        means.add_column(name, justify="right")
    for metric in HEADLINE_METRICS:
        means.add_row(metric, *(_number(content["metrics"][name][metric]["mean"]) for name in content["metrics"]))
    console.print(means)
    diffs = Table(title=f"paired differences vs {reference} ({level} CIs"
                        + (f", Bonferroni over {content['comparisons']} comparisons)" if content["comparisons"] > 1
                           else ")"))
    diffs.add_column("metric")
    for name in content["differences"]:
        diffs.add_column(f"{name} - {reference}", justify="right")
    for metric in HEADLINE_METRICS + ("roi", "payback_month"):
        diffs.add_row(metric, *(_with_interval(content["differences"][name][metric])
                                for name in content["differences"]))
    console.print(diffs)
    console.print(f"results written to {out}/")


def _with_interval(value: dict) -> str:
    mean, low = _mean_and_interval(value)
    return mean if low == "-" else f"{mean} [{low}]"


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
