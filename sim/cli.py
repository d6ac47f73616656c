"""The ``loyalty-sim`` command line.

Start-up stays light: ``--help``, ``validate`` and ``schema`` import neither numpy, pandas, scipy nor simpy;
``run`` imports them only once its input is known to be good. Bad input exits with status 2 and a message
naming the file, the key path and the line, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from sim.accounting.metrics import HEADLINE_METRICS  # names only: no numpy, --help stays light
from sim.schema.base import MAX_REPLICATIONS

EXIT_BAD_INPUT = 2

#: The prudent incremental profit: incremental profit minus the incremental points liability at the horizon,
#: shown wherever incremental profit is.
PRUDENT = "profit_net_of_liability"


def _with_prudent(metrics: Sequence[str]) -> tuple[str, ...]:
    """``metrics`` with the prudent incremental profit right after ``profit``."""
    return tuple(m for name in metrics for m in ((name, PRUDENT) if name == "profit" else (name,)))


def _fail(problems: Sequence[object]) -> None:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _load(path: str, overrides: Sequence[str] = ()):
    from sim.input.scenarios import load_scenario

    return _guarded(lambda: load_scenario(path, overrides))


def _warn(scenario, path: str, overrides: Sequence[str]) -> None:
    """Print the warnings about a valid scenario (:mod:`sim.input.advice`) on stderr; they stop nothing."""
    from sim.input.advice import scenario_warnings
    from sim.input.documents import read_yaml
    from sim.input.overrides import apply_overrides

    doc = read_yaml(path)
    apply_overrides(doc, overrides)
    for warning in scenario_warnings(scenario, doc):
        click.echo(f"warning: {warning}", err=True)


def _guarded(action):
    """Run ``action``; bad input (sim.input.errors.InputError) becomes its messages and exit status 2."""
    from sim.input.errors import InputError

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
@click.option("--replications", type=click.IntRange(min=1, max=MAX_REPLICATIONS), help="Override the scenario's replications.")
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
@click.option("--shards", type=click.IntRange(min=1, max=100_000), default=1, show_default=True,
              help="Split every replication into this many customer shards (whole acquisition batches "
                   "with the customers they refer), run apart and added up: for populations one worker "
                   "cannot hold.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on the Dask distributed cluster whose scheduler "
              "is at ADDRESS instead of local processes.")
@click.option("--hurdle", type=click.FloatRange(min=-1e15, max=1e15), default=0.0, show_default=True,
              metavar="AMOUNT", help="Also give the chance that incremental profit exceeds AMOUNT.")
@click.option("--scale", "population_scale", type=click.IntRange(min=1), metavar="K",
              help="Simulate one customer in K and report at the population's size (population_scale: K; "
                   "every count in the scenario must be a multiple of K).")
def run(scenario_file: str, out_dir: str | None, replications: int | None, seed: int | None,
        overrides: tuple[str, ...], transactions: bool, workers: int | None, resume: bool, engine: str,
        shards: int, scheduler: str | None, hurdle: float, population_scale: int | None) -> None:
    """Simulate one scenario (and its baseline) and write summary.json, timeseries.parquet and cohorts.parquet.

    Each replication is kept in DIR/.partial as it finishes, so a killed run loses nothing finished:
    run again with --resume to simulate only what is missing.
    """
    overrides = _with_scale(overrides, population_scale)
    extra = list(overrides)
    if replications is not None:
        extra.append(f"replications={replications}")
    if seed is not None:
        extra.append(f"seed={seed}")
    from sim.input.scenarios import load_scenario

    scenario = _guarded(lambda: load_scenario(scenario_file, extra, shards=shards, transactions=transactions))
    if shards > 1:
        _check_shards(scenario, scenario_file, transactions, engine)
    baseline = _guarded(lambda: _baseline(scenario, scenario_file, overrides))
    _warn(scenario, scenario_file, extra)   # once the input is known good: errors come alone
    from sim.input.scenarios import input_files

    out = Path(out_dir) if out_dir else Path("results") / _folder_name(scenario.name, "run")
    _claim(out, input_files(scenario, scenario_file))
    result = _run_with_progress(scenario, baseline, out, scenario_file, transactions=transactions,
                                workers=workers or os.cpu_count() or 1, resume=resume, engine=engine,
                                shards=shards, scheduler=scheduler, hurdle=hurdle)
    from sim.output.run_files import summary

    _print_summary(summary(result, hurdle), out)


def _progress():
    """A progress bar of replications with ETA, shown only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, transient=True, disable=not sys.stderr.isatty())


def _baseline(scenario, scenario_file: str, overrides: Sequence[str] = ()):
    """The scenario's baseline; a file baseline also gets the ``--set`` values (levers aside)."""
    from sim.input.scenarios import overrides_to_carry, resolve_baseline

    return resolve_baseline(scenario, scenario_file, overrides_to_carry(overrides))


def _check_shards(scenario, scenario_file: str, transactions: bool, engine: str) -> None:
    from sim.experiments.replications import check_shardable
    from sim.input.errors import Problem

    if transactions:
        _fail([Problem("--shards", (), "--transactions is not available in a sharded run")])
    if engine != "fast":
        _fail([Problem("--shards", (), "only the fast engine runs in shards")])
    reason = check_shardable(scenario)
    if reason is not None:
        from sim.input.documents import read_yaml

        doc = read_yaml(scenario_file)
        index = next(i for i, d in enumerate(scenario.policy.discounts) if d.kind == "targeted")
        _fail([doc.problem(("policy", "discounts", index, "kind"), f"--shards: {reason}")])


def _run_with_progress(scenario, baseline, out: Path, scenario_file: str, **options):
    """:func:`sim.experiments.run.run_to_directory` with a progress bar of replications on a terminal."""
    from rich.markup import escape

    from sim.experiments.checkpoint import OTHER_WORK, discarded_message
    from sim.experiments.run import RunProgress, run_to_directory

    label = escape(scenario.name if baseline is None else f"{scenario.name} and its baseline")
    with _progress() as bar:
        task = bar.add_task(f"{label}: replications", total=None)
        progress = RunProgress(on_replication=lambda: bar.advance(task))

        def started(reused: int, total: int) -> None:
            bar.update(task, total=total, completed=reused)
            if options["resume"] and not reused and set(progress.discarded) == {OTHER_WORK}:
                click.echo("resuming: the stored replications are of other work (the scenario or its options "
                           "changed since): starting over", err=True)
            elif options["resume"]:
                click.echo(f"resuming: {reused} finished replication(s) reused from {out / '.partial'}", err=True)
                if progress.discarded:
                    click.echo(f"resuming: {discarded_message(progress.discarded)}", err=True)

        progress.on_start = started
        return _guarded(lambda: run_to_directory(scenario, baseline, out, source=scenario_file,
                                                 progress=progress, **options))


def _with_scale(overrides: tuple[str, ...], population_scale: int | None) -> tuple[str, ...]:
    """``--scale K`` as the ``--set population_scale=K`` it stands for (carried to a file baseline too)."""
    return overrides if population_scale is None else (*overrides, f"population_scale={population_scale}")


def _scale_note(content: dict) -> str:
    """The sentence every output gives a sampled run: what was simulated and at what size it is reported."""
    scale = int(content.get("population_scale") or 1)
    return "" if scale == 1 else (f"simulated one customer in {scale:,} (population_scale {scale:,}); counts and "
                                  f"money are at the population's size, {scale:,} times the sample's")


def _baseline_label(name: str) -> str:
    """How the baseline is named in a sentence: 'referral (baseline)', the automatic baseline of scenario
    'referral', reads as if 'referral' were the baseline; it is 'the baseline (referral without its levers)'."""
    stem = name.removesuffix(" (baseline)")
    return f"the baseline ({stem} without its levers)" if stem != name else f"the baseline {name}"


def _print_summary(content: dict, out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{escape(content['scenario'])}: {content['replications']} replications, "
                        f"{content['horizon_months']} months (95% CI)")
    table.add_column("metric", overflow="fold")
    table.add_column("mean", justify="right", overflow="fold")
    table.add_column("95% CI", justify="right", overflow="fold")
    vs = content.get("vs_baseline")
    if vs is not None:
        table.add_column("vs baseline", justify="right", overflow="fold")
        table.add_column("95% CI", justify="right", overflow="fold")
    names = HEADLINE_METRICS
    if content["metrics"].get("existing_customers", {}).get("mean"):   # the base's CLV apart, when there is one
        names += ("existing_customers", "clv_per_existing_customer")
    for name in names:
        row = [name, *_mean_and_interval(content["metrics"][name])]
        if vs is not None:
            row += _mean_and_interval(vs[name])
        table.add_row(*row)
        if name == "profit" and vs is not None and PRUDENT in vs:
            table.add_row(PRUDENT, "", "", *_mean_and_interval(vs[PRUDENT]))
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    if vs is not None:
        roi, payback = vs["roi"], vs["payback_month"]
        console.print(f"vs {escape(_baseline_label(content['baseline']))} (same customers, paired): "
                      f"roi {' '.join(_mean_and_interval(roi))}; payback month "
                      + (' '.join(_mean_and_interval(payback)) if payback["mean"] is not None else
                         f"not reached in {content['replications'] - payback['replications_paid_back']} "
                         f"of {content['replications']} replications"))
    if _scale_note(content):
        console.print(_scale_note(content))
    if "decision" in content:
        _print_decision(content["decision"], console)
    console.print(f"results written to {escape(str(out))}/")


def _print_decision(decision: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from sim.report.decision import decision_rows

    table = Table(title="the decision, over the uncertain assumptions and the replications")
    table.add_column("question", overflow="fold")
    table.add_column("answer", justify="right", overflow="fold")
    for label, value in decision_rows(decision):
        table.add_row(escape(label), escape(value))
    console.print(table)


def _mean_and_interval(value: dict) -> list[str]:
    low, high = value["ci_low"], value["ci_high"]
    return [_number(value["mean"]), "-" if low is None else f"{_number(low)} .. {_number(high)}"]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _folder_name(name: str, fallback: str) -> str:
    from sim.output.layout import folder_name  # imported here: --help and validate stay light

    return folder_name(name, fallback)


def _claim(out: Path, inputs: Sequence[str | Path]) -> None:
    """Create the results directory and hold its lock until the command ends: exit 2 if another process
    writes there, or if a result file would overwrite one of the command's ``inputs``."""
    from sim.output.layout import refuse_inputs_among_results
    from sim.output.lock import ResultsLock

    _guarded(lambda: refuse_inputs_among_results(out, inputs))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from sim.input.errors import Problem

        _fail([Problem(str(out), (), f"cannot create the results directory: {exc.strerror}")])
    lock = _guarded(lambda: ResultsLock(out).acquire())
    click.get_current_context().call_on_close(lock.release)
    _guarded(lambda: refuse_inputs_among_results(out, inputs))   # again, now that nobody else writes there


@main.command()
@click.argument("scenario_files", metavar="A.yaml B.yaml ...", nargs=-1, required=True)
@click.option("--baseline", "baseline_file", metavar="BASE.yaml",
              help="Compare every scenario with this one [default: compare B, C ... with A].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Results directory [default: results/compare-<names>].")
@click.option("--replications", type=click.IntRange(min=1, max=MAX_REPLICATIONS), help="Replications of every scenario "
              "[default: the first scenario's].")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Seed of every scenario "
              "[default: the first scenario's].")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: the number of cores].")
@click.option("--set", "overrides", multiple=True, metavar="dotted.key=value",
              help="Override a value in every compared scenario and the --baseline (validated like the "
                   "files); repeatable.")
@click.option("--hurdle", type=click.FloatRange(min=-1e15, max=1e15), default=0.0, show_default=True,
              metavar="AMOUNT", help="Also give the chance that incremental profit exceeds AMOUNT.")
@click.option("--scale", "population_scale", type=click.IntRange(min=1), metavar="K",
              help="Simulate one customer in K of every scenario and report at the population's size.")
def compare(scenario_files: tuple[str, ...], baseline_file: str | None, out_dir: str | None,
            replications: int | None, seed: int | None, workers: int | None, overrides: tuple[str, ...],
            hurdle: float, population_scale: int | None) -> None:
    """Paired comparison of scenarios on common random numbers: differences with 95% CIs.

    All scenarios run with the same seed and replications, so they face the same customers. With several
    comparisons the intervals are Bonferroni-adjusted so that they hold together at 95%.
    """
    from sim.input.documents import read_yaml
    from sim.input.errors import Problem

    files = list(scenario_files) + ([baseline_file] if baseline_file else [])
    if len(files) < 2:
        _fail([Problem(scenario_files[0], (), "compare needs two scenarios, or one and --baseline")])
    overrides = _with_scale(overrides, population_scale)
    scenarios = [_load(f, overrides) for f in files]
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
        if scenario.population_scale != first.population_scale:
            problems.append(read_yaml(path).problem(("population_scale",), (
                f"{scenario.population_scale}, but {files[0]} simulates one customer in {first.population_scale}; "
                "a paired comparison needs the same sample (use --scale K for all)")))
        if scenario.name in names:
            problems.append(read_yaml(path).problem(("name",), (
                f"'{scenario.name}' is also the name of {names[scenario.name]}; compared scenarios need "
                "distinct names")))
        names.setdefault(scenario.name, path)
    if baseline_file and not problems:
        _guarded(lambda: _check_populations(files, scenarios))
    if problems:
        _fail(problems)
    scenarios = [s.model_copy(update=common) for s in scenarios]
    out = Path(out_dir) if out_dir else Path("results") / _folder_name("compare-" + "-vs-".join(s.name for s in scenarios),
                                                                "compare")
    _claim(out, files)

    from sim.experiments.compare import Comparison, write_comparison
    from sim.experiments.replications import run_many

    with _progress() as progress:
        task = progress.add_task("compare: replications", total=len(scenarios) * common["replications"])
        results = run_many(scenarios, workers=workers or os.cpu_count() or 1,
                           on_replication=lambda *_: progress.advance(task))
    if baseline_file:
        comparison = Comparison(results[:-1], results[-1], reference_is_baseline=True, hurdle=hurdle)
    else:
        comparison = Comparison(results, results[0], reference_is_baseline=False, hurdle=hurdle)
    _guarded(lambda: write_comparison(comparison, out, sources={s.name: f for f, s in zip(files, scenarios)}))
    _print_comparison(comparison.content(), out)


def _check_populations(files: list[str], scenarios: list) -> None:
    """Every scenario must simulate the customers of the ``--baseline`` (the last one)."""
    from sim.input.scenarios import check_same_population

    for path, scenario in zip(files[:-1], scenarios[:-1]):
        check_same_population(scenario, path, scenarios[-1], files[-1], ())


def _print_comparison(content: dict, out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    level = f"{content['confidence']:.1%}".replace(".0%", "%")
    console = Console(width=None if sys.stdout.isatty() else 140)
    reference = escape(content["reference"])
    means = Table(title=f"{content['replications']} replications, seed {content['seed']}, "
                        f"{content['horizon_months']} months: means")
    means.add_column("metric", overflow="fold")
    for name in content["metrics"]:
        means.add_column(escape(name), justify="right", overflow="fold")
    for metric in HEADLINE_METRICS:
        means.add_row(metric, *(_number(content["metrics"][name][metric]["mean"]) for name in content["metrics"]))
    console.print(means)
    diffs = Table(title=f"paired differences vs {reference} ({level} CIs"
                        + (f", Bonferroni over {content['comparisons']} comparisons)" if content["comparisons"] > 1
                           else ")"))
    diffs.add_column("metric", overflow="fold")
    for name in content["differences"]:
        diffs.add_column(f"{escape(name)} - {reference}", justify="right", overflow="fold")
    for metric in _with_prudent(HEADLINE_METRICS + ("roi", "payback_month")):
        diffs.add_row(metric, *(_with_interval(content["differences"][name][metric])
                                for name in content["differences"]))
    console.print(diffs)
    if _scale_note(content):
        console.print(_scale_note(content))
    if "decision" in content:
        _print_decision(content["decision"], console)
    console.print(f"results written to {escape(str(out))}/")


def _with_interval(value: dict) -> str:
    mean, low = _mean_and_interval(value)
    return mean if low == "-" else f"{mean} [{low}]"


@main.command()
@click.argument("optimize_file", metavar="FILE.yaml")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Results directory [default: results/<optimize name>].")
@click.option("--workers", type=click.IntRange(min=1), help="Processes running each trial's replications "
              "[default: the number of cores]. Results are the same whatever the number.")
@click.option("--trials", type=click.IntRange(min=1, max=100_000), help="Override the file's trials.")
@click.option("--replications", type=click.IntRange(min=2, max=MAX_REPLICATIONS), help="Override the file's replications per trial.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 2), help="Override the file's seed.")
@click.option("--resume", is_flag=True, help="Continue the search stored in --out (optuna.journal) up to "
              "--trials, instead of starting over.")
def optimize(optimize_file: str, out_dir: str | None, workers: int | None, trials: int | None,
             replications: int | None, seed: int | None, resume: bool) -> None:
    """Search the levers (keys under policy) for the best policy over the uncertain assumptions, then
    confirm the chosen policy and its runners-up on fresh replications (optimize.json)."""
    from rich.console import Console
    from rich.markup import escape

    from sim.experiments.optimize import plan_optimize, run_optimize

    plan = _guarded(lambda: plan_optimize(optimize_file, replications=replications, seed=seed, trials=trials))
    out = Path(out_dir) if out_dir else Path("results") / _folder_name(plan.body.name, "optimize")
    _claim(out, [Path(optimize_file), plan.scenario_path])
    with _progress() as bar:
        task = bar.add_task("optimize: trials", total=plan.body.trials)
        content = _guarded(lambda: run_optimize(plan, out, workers=workers or os.cpu_count() or 1, resume=resume,
                                                on_trial=lambda *_: bar.advance(task)))
    console = Console(width=None if sys.stdout.isatty() else 120)
    _print_optimize(content, console)
    console.print(f"results written to {escape(str(out))}/")


def _print_optimize(content: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    confirmation = content.get("confirmation")
    if confirmation is None:
        console.print("no trial met the constraints: nothing to recommend")
        return
    table = Table(title=f"{escape(content['name'])}: objective {content['objective']}, confirmed on "
                        f"{confirmation['replications']} fresh replications (seed {confirmation['seed']})")
    for column in ("option", "levers", "objective", "incremental profit [95% CI]", "chosen - this", "separable"):
        table.add_column(column, overflow="fold")
    for name, option in confirmation["options"].items():
        levers = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in option["levers"].items())
        difference = option.get("chosen_minus_this")
        table.add_row(escape(name), escape(levers), _number(option["objective"]),
                      _with_interval(option["incremental_profit"]),
                      "" if difference is None else _with_interval(difference),
                      "" if name == "chosen" else ("yes" if option["separable"] else "no: tied"))
    console.print(table)
    _print_decision(confirmation["decision"], console)


@main.command()
@click.argument("sweep_file", metavar="SWEEP.yaml")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Results directory [default: results/<sweep name>].")
@click.option("--workers", type=click.IntRange(min=1), help="Local processes [default: the number of cores]; "
              "with --scheduler, a hint for batching. Results are the same whatever the number.")
@click.option("--scheduler", metavar="ADDRESS", help="Run on the Dask distributed cluster whose scheduler "
              "is at ADDRESS (e.g. tcp://10.0.0.5:8786) instead of local processes.")
@click.option("--resume", is_flag=True, help="Keep the finished points (and replications) of an "
              "interrupted run of the same sweep into the same --out, and run only what is missing.")
@click.option("--replications", type=click.IntRange(min=1, max=MAX_REPLICATIONS), help="Override the sweep's replications.")
@click.option("--seed", type=click.IntRange(min=0, max=2**63 - 1), help="Override the sweep's seed.")
def sweep(sweep_file: str, out_dir: str | None, workers: int | None, scheduler: str | None, resume: bool,
          replications: int | None, seed: int | None) -> None:
    """Run a parameter sweep: every point is the scenario with the swept values, on common random numbers.

    Writes DIR/sweep.json (design, points, which are finished), DIR/results.parquet (a folder with one
    Parquet file per finished point; read it whole with pandas.read_parquet) and, once every point is
    finished, DIR/sensitivity.json (one-at-a-time effects, Sobol indices, Pareto front).
    """
    from sim.experiments.sweep_plan import plan_sweep

    plan = _guarded(lambda: plan_sweep(sweep_file, replications=replications, seed=seed))
    from sim.input.scenarios import input_files

    out = Path(out_dir) if out_dir else Path("results") / _folder_name(plan.body.name, "sweep")
    _claim(out, [Path(sweep_file), *(input_files(plan.base, plan.scenario_path) if plan.base else
                                     [plan.scenario_path])])
    manifest = _guarded(lambda: _sweep_with_progress(plan, out, workers or os.cpu_count() or 1, scheduler,
                                                     resume))
    _print_sweep(plan, manifest, out)


def _sweep_with_progress(plan, out: Path, workers: int, scheduler: str | None, resume: bool):
    from sim.experiments.sweep import SweepProgress, run_sweep

    where = f"on {scheduler}" if scheduler else f"{workers} worker(s)"
    from sim.experiments.sweep_plan import counted

    click.echo(f"sweep {plan.body.name}: {counted(len(plan.points), 'point')} x "
               f"{counted(plan.replications, 'replication')}, {counted(len(plan.scenarios), 'distinct scenario')} "
               f"to simulate, {where}", err=True)
    if plan.base is not None and _scale_note({"population_scale": plan.base.population_scale}):
        click.echo(_scale_note({"population_scale": plan.base.population_scale}), err=True)
    with _progress() as progress:
        task = progress.add_task("replications", total=None)

        def start(todo: int, stored: int) -> None:
            if stored:
                click.echo(f"resuming: {stored} replication(s) already finished", err=True)
            progress.update(task, total=todo)

        callbacks = SweepProgress(on_start=start, on_units=lambda n: progress.advance(task, n),
                                  on_discarded=lambda message: click.echo(f"resuming: {message}", err=True))
        return run_sweep(plan, out, workers=workers, scheduler=scheduler, resume=resume, progress=callbacks)


def _print_sweep(plan, manifest: dict, out: Path) -> None:
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from sim.accounting.estimates import estimate
    from sim.experiments.ranking import rank_points, ranked_unit, ranking_sentence, short_key
    from sim.experiments.sweep_plan import SENSITIVITY
    from sim.experiments.sweep_results import read_results

    metric = plan.metric
    results = read_results(out)
    ranking = rank_points(results, metric)
    unit = ranked_unit(bool(plan.body.levers))
    prudent = f"vs_baseline.{PRUDENT}"
    shown = [metric] + ([prudent] if metric == "vs_baseline.profit" and prudent in results else [])
    table = Table(title=f"{escape(plan.body.name)}: the top {unit}s of {len(plan.points)} by {escape(metric)} (means [95% CI] "
                        f"over {plan.replications} replications)")
    table.add_column(unit, justify="right", overflow="fold")
    for parameter in plan.parameters:      # a header may wrap after a dot; rich folds it only if it must
        table.add_column(escape(short_key(parameter.key)).replace(".", ".\n"), justify="right", overflow="fold")
    for name in shown:
        table.add_column(escape(name).replace(".", ".\n") + " [95% CI]", justify="right", overflow="fold")
    table.add_column("best?", overflow="fold")
    by_point = results.groupby("point")
    for point in ranking.order[:max(8, min(len(ranking.tied), 20))]:
        rows = by_point.get_group(point)
        cells = [_with_interval(estimate(rows[name].to_numpy()).as_dict()) for name in shown]
        table.add_row(str(point), *(_value(v) for v in plan.points[point].values()), *cells, ranking.status(point))
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print(f"{metric}: {ranking_sentence(ranking, plan.replications, unit)}")
    sensitivity = json.loads((out / SENSITIVITY).read_text())
    if sensitivity.get("oat"):
        swings = [f"{escape(p['parameter'])} {_number(p['low']['mean'])}..{_number(p['high']['mean'])}"
                  for p in sensitivity["oat"]["parameters"]]
        console.print(f"one at a time around the scenario's values ({escape(metric)} "
                      f"{_number(sensitivity['oat']['center']['mean'])}): " + "; ".join(swings))
    console.print(f"results written to {escape(str(out))}/")


def _value(value) -> str:
    """A parameter's value: whole numbers as such, other numbers to four significant digits; text escaped
    for rich."""
    if isinstance(value, str):
        from rich.markup import escape

        return escape(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return f"{value:,}" if not isinstance(value, bool) else str(value)


@main.command()
@click.argument("transactions_file", metavar="TRANSACTIONS")
@click.option("--calibration-end", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Last day of the calibration period; the rest of the log is the holdout check "
                   "[default: the whole log, no holdout].")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="SCENARIO.yaml",
              help="Write a scenario that runs as it is: the calibrated segments and, with --customers and one "
                   "segment, the customers of the table as its existing base (else the log's cohort replayed) "
                   "[default: print the segments: block].")
@click.option("--chart", type=click.Path(dir_okay=False), metavar="PNG", help="Chart of cumulative repeat "
              "purchases, predicted vs actual [default with -o and a holdout: beside it, NAME-holdout.png].")
@click.option("--model", type=click.Choice(["auto", "bgnbd", "paretonbd"]), default="auto", show_default=True,
              help="Purchase and dropout model; auto fits both and keeps the better likelihood.")
@click.option("--segments", type=click.IntRange(min=1, max=10), default=1, show_default=True,
              help="Number of RFM (recency, frequency, monetary) segments, each with its own laws drawn "
                   "from its customers' histories under the pooled fit.")
@click.option("--segment-name", default="calibrated", show_default=True, help="Name of the single segment.")
@click.option("--customer-column", default="customer_id", show_default=True)
@click.option("--date-column", default="date", show_default=True)
@click.option("--amount-column", default="amount", show_default=True)
@click.option("--date-format", metavar="FORMAT", help="strftime format of the dates, e.g. %d/%m/%Y "
              "[default: ISO 8601 or another unambiguous common form].")
@click.option("--customers", "customers_file", type=click.Path(dir_okay=False), metavar="CUSTOMERS.parquet",
              help="Also write one row per customer: its history, P(alive), expected purchases in the next "
                   "12 months and expected residual CLV (docs/calibration.md).")
@click.option("--margin", type=click.FloatRange(min=0.0, max=1.0), default=1.0, show_default=True,
              help="Margin rate on spend for the residual CLV of --customers (1: revenue).")
@click.option("--annual-discount-rate", type=click.FloatRange(min=0.0, max=1.0), default=0.10,
              show_default=True, help="Discount rate of the residual CLV of --customers, per year.")
def calibrate(transactions_file: str, calibration_end, output: str | None, chart: str | None, model: str,
              segments: int, segment_name: str, customer_column: str, date_column: str, amount_column: str,
              date_format: str | None, customers_file: str | None, margin: float,
              annual_discount_rate: float) -> None:
    """Fit BG/NBD or Pareto/NBD and Gamma-Gamma to a transaction log (CSV or transactions.parquet).

    Prints the parameters with standard errors, the log-likelihoods and the model chosen, and the holdout
    check; writes a segments: block in native parameters (or, with -o, a scenario that runs as it is).
    """
    from sim.calibration.command import run_calibrate
    from sim.calibration.log import LogColumns

    columns = LogColumns(customer=customer_column, date=date_column, amount=amount_column)
    _guarded(lambda: run_calibrate(transactions_file, calibration_end=calibration_end and calibration_end.date(),
                                   output=output, chart=chart, model=model, segments=segments,
                                   segment_name=segment_name, columns=columns, date_format=date_format,
                                   customers=customers_file, margin=margin,
                                   annual_discount_rate=annual_discount_rate))


@main.command()
@click.argument("results_dir", metavar="RESULTS_DIR")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="REPORT.html",
              help="HTML file to write [default: RESULTS_DIR/report.html]; the PNGs go beside it, "
                   "into REPORT_files/.")
def report(results_dir: str, output: str | None) -> None:
    """Self-contained HTML report with charts of a run, comparison or sweep directory.

    Images are embedded in the page, so it opens offline and can be mailed as one file; the same charts
    are written as PNG files beside it.
    """
    from sim.report import build_report

    written = _guarded(lambda: build_report(results_dir, output))
    click.echo(f"{written.kind} report with {len(written.files)} chart(s) written to {written.html} "
               f"(PNGs in {written.html.stem}_files/) in {written.seconds:.1f} s")


@main.command()
@click.argument("results_dir", metavar="RESULTS_DIR")
@click.argument("output", metavar="OUT.xlsx|OUT.csv")
def export(results_dir: str, output: str) -> None:
    """Tables of a run, comparison or sweep directory for spreadsheets.

    OUT.xlsx: one formatted sheet per table. OUT.csv: the first table (headline, or a sweep's points);
    every further table is written beside it as OUT-<table>.csv.
    """
    from sim.report.export import export as export_tables

    written = _guarded(lambda: export_tables(results_dir, output))
    click.echo(f"{written.kind} exported to " + ", ".join(str(path) for path in written.files))


@main.command()
@click.argument("file", metavar="SCENARIO.yaml")
@click.option("--set", "overrides", multiple=True, metavar="dotted.key=value", help="Check with overrides.")
def validate(file: str, overrides: tuple[str, ...]) -> None:
    """Check a scenario, sweep or optimize file without running it (a sweep: every point it implies)."""
    from sim.input.documents import read_yaml

    doc = _guarded(lambda: read_yaml(file))
    if "sweep" in doc.data:
        if overrides:
            _fail([f"{file}: --set applies to scenario files, not sweeps"])
        from sim.experiments.sweep_plan import counted, plan_sweep

        plan = _guarded(lambda: plan_sweep(file))
        click.echo(f"{file}: valid sweep '{plan.body.name}': {plan.body.design} design, "
                   f"{counted(len(plan.points), 'point')} x {counted(plan.replications, 'replication')}, "
                   f"{counted(len(plan.parameters), 'parameter')}; {counted(len(plan.scenarios), 'distinct scenario')} "
                   "to simulate")
        return
    if "optimize" in doc.data:
        if overrides:
            _fail([f"{file}: --set applies to scenario files, not optimize files"])
        from sim.experiments.optimize import plan_optimize

        found = _guarded(lambda: plan_optimize(file))
        click.echo(f"{file}: valid optimize file '{found.body.name}': {len(found.levers)} lever(s), "
                   f"{found.body.trials} trial(s) x {found.base.replications} replication(s), "
                   f"{len(found.base.uncertain)} uncertain value(s)")
        return
    scenario = _load(file, overrides)
    _guarded(lambda: _baseline(scenario, file, overrides))
    _warn(scenario, file, overrides)
    existing = scenario.existing_count()
    customers = scenario.planned_customers() - existing
    base = f"{existing:,} existing and " if scenario.existing_customers is not None else ""
    uncertain = f", {len(scenario.uncertain)} uncertain value(s)" if scenario.uncertain else ""
    click.echo(f"{file}: valid scenario '{scenario.name}': {len(scenario.segments)} segment(s), "
               f"{len(scenario.acquisition)} channel(s), {base}{customers:,} acquired customers over "
               f"{scenario.horizon_months} months, {scenario.replications} replication(s){uncertain}")
    if scenario.policy is not None:
        forms = scenario.response.forms()
        for tier in scenario.policy.tiers:
            fixed = [f"{name} {value:g}" for name, value in (("frequency_lift", tier.frequency_lift),
                                                             ("dropout_multiplier", tier.dropout_multiplier))
                     if value is not None]
            forms[f"tier {tier.name}"] = f"fixed {', '.join(fixed)}" if fixed else "value curve"
        click.echo("responses (docs/levers.md section 3): "
                   + "; ".join(f"{effect}: {form}" for effect, form in forms.items()))


@main.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion)."""
    import json

    from sim.schema import Scenario
    from sim.schema.uncertain import json_schema_with_distributions

    document = json_schema_with_distributions(Scenario.model_json_schema())
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "loyalty-sim scenario"
    click.echo(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
