"""``loyalty-sim optimize``: the policy with the best objective over the uncertain assumptions
(``docs/scenarios.md``, "Optimize files"; ``docs/results.md``, "An optimization's directory").

The levers (keys under ``policy``: what the firm chooses) are searched with Optuna's TPE sampler (Bergstra et
al. 2011, "Algorithms for hyper-parameter optimization", NeurIPS; constraints after Watanabe & Hutter 2023),
the study kept in ``optuna.journal`` beside the results so that an interrupted search resumes. Every trial
runs the same replications on the same seed, so every policy meets the same customers and the same
assumption draws (common random numbers), and is scored against one baseline run. The objective is the
expected incremental profit, or a quantile of it; constraints are a least chance of paying and a most
expected program cost. The search ends by running the chosen policy and its runners-up again on fresh
replications (the next seed) and saying whether the chosen one is separable from each runner-up
(paired differences of incremental profit, Bonferroni-adjusted 95% intervals).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.accounting.decision import decision_block, drawn_values
from sim.accounting.estimates import estimate
from sim.experiments.replications import run_many
from sim.experiments.sweep_plan import Parameter, Setting, _key_path, _parameter, _scenario_with
from sim.input.documents import Document, is_file, read_yaml
from sim.input.errors import InputError
from sim.input.scenarios import resolve_baseline
from sim.input.validation import validate
from sim.output.files import atomic_write
from sim.schema import Scenario
from sim.schema.optimize import OptimizeBody, OptimizeFile

RESULT_FILE = "optimize.json"
JOURNAL_FILE = "optuna.journal"
FAMILY_CONFIDENCE = 0.95


@dataclass
class OptimizePlan:
    """A validated optimize file: the scenario, its levers and the baseline every trial is scored against."""

    source: str
    body: OptimizeBody
    doc: Document
    scenario_doc: Document
    scenario_path: Path
    levers: list[Parameter]
    settings: list[Setting]
    base: Scenario
    baseline: Scenario

    def scenario_at(self, values: dict[str, Any], label: str, seed: int | None = None,
                    replications: int | None = None) -> Scenario:
        """The scenario with the levers at ``values`` (validated like a scenario file; its problems name the
        optimize file's lever line)."""
        point = self.settings + [Setting(p.path, values[p.key], ("optimize", "levers", p.key), p.key)
                                 for p in self.levers]
        scenario = _scenario_with(self.scenario_doc, self.scenario_path, self.doc, label, point)
        update = {k: v for k, v in (("seed", seed), ("replications", replications)) if v is not None}
        return scenario.model_copy(update=update) if update else scenario


def plan_optimize(path: str | os.PathLike[str], *, replications: int | None = None, seed: int | None = None,
                  trials: int | None = None) -> OptimizePlan:
    """Read and check an optimize file and its scenario before anything runs.

    Raises
    ------
    InputError
        Naming the file, the key (``optimize.levers.policy.points.reward_value``) and its line.
    """
    doc = read_yaml(path)
    if "optimize" not in doc.data:
        raise InputError([doc.problem((), "not an optimize file (no top-level `optimize:` key)")])
    body: OptimizeBody = validate(OptimizeFile, doc).optimize
    if trials is not None:
        body = body.model_copy(update={"trials": trials})
    scenario_path = Path(body.scenario)
    if not scenario_path.is_absolute():
        scenario_path = Path(path).parent / scenario_path
    if not is_file(scenario_path):
        raise InputError([doc.problem(("optimize", "scenario"), f"no such scenario file: {scenario_path}")])
    scenario_doc = read_yaml(scenario_path)
    settings = [Setting((name,), value, ("optimize", name), name)
                for name, value in (("replications", replications or body.replications),
                                    ("seed", seed if seed is not None else body.seed)) if value is not None]
    base = _scenario_with(scenario_doc, scenario_path, doc, None, settings)
    if base.policy is None:
        raise InputError([doc.problem(("optimize", "scenario"), f"{scenario_path} has no policy: nothing to choose")])
    values = base.model_dump()
    levers = []
    for key, spec in body.levers.items():
        where = ("optimize", "levers", key)
        if not key.startswith("policy."):
            raise InputError([doc.problem(where, "a lever is what the firm chooses: a key under policy "
                                                 "(customers' reactions and the market are uncertain "
                                                 "assumptions: write them {dist: ...} in the scenario)")])
        _key_path(key, values, doc, where)
        levers.append(_parameter(key, spec, values, doc))
    baseline = resolve_baseline(base, scenario_path)
    if baseline is None:
        raise InputError([doc.problem(("optimize", "scenario"), "the scenario has `baseline: none`; the search "
                                                                "scores policies by incremental profit")])
    return OptimizePlan(str(path), body, doc, scenario_doc, scenario_path, levers, settings, base, baseline)


@dataclass
class Evaluation:
    """What one trial scored: its objective, its constraints (feasible when all are <= 0) and its figures."""

    objective: float
    constraints: list[float] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def search(evaluate: Callable[[dict[str, Any]], Evaluation], levers: Sequence[Parameter], *, trials: int,
           seed: int, journal: Path | None = None, name: str = "optimize",
           on_trial: Callable[[int, Evaluation], None] | None = None):
    """Maximise ``evaluate`` over the levers with Optuna's TPE sampler (seeded; constraints honoured), the
    study kept in ``journal`` when given (trials already there count, so a rerun resumes). Returns the study."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna 5 reads the constraints a trial sets itself; earlier versions ask the sampler's constraints_func
    modern = hasattr(optuna.trial.Trial, "set_constraint")
    options = {} if modern else {"constraints_func": lambda t: t.user_attrs["constraints"] or [0.0]}
    sampler = optuna.samplers.TPESampler(seed=seed % 2**32, multivariate=True, **options)
    storage = None if journal is None else JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name=name, direction="maximize", sampler=sampler, storage=storage,
                                load_if_exists=True)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    def objective(trial) -> float:
        values = {p.key: _suggest(trial, p) for p in levers}
        result = evaluate(values)
        trial.set_user_attr("constraints", result.constraints)
        if modern:
            for index, value in enumerate(result.constraints):
                trial.set_constraint(f"constraint {index}", value)
        trial.set_user_attr("figures", result.figures)
        if on_trial is not None:
            on_trial(trial.number, result)
        return result.objective

    if trials > done:
        study.optimize(objective, n_trials=trials - done)
    return study


def _suggest(trial, lever: Parameter) -> Any:
    if lever.values is not None:
        return trial.suggest_categorical(lever.key, list(lever.values))
    if lever.integer:
        return trial.suggest_int(lever.key, int(np.ceil(lever.low)), int(np.floor(lever.high)), log=lever.log)
    return trial.suggest_float(lever.key, lever.low, lever.high, log=lever.log)


def feasible_trials(study) -> list:
    """Completed trials that meet every constraint, best objective first (the first of equal values kept)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
            and all(c <= 0 for c in t.user_attrs.get("constraints", []))]
    return sorted(done, key=lambda t: (-t.value, t.number))


def objective_of(incremental: np.ndarray, body: OptimizeBody) -> float:
    """The mean incremental profit, or its ``quantile`` (the replications' empirical quantile)."""
    if body.objective == "quantile":
        return float(np.quantile(incremental, body.quantile))
    return float(np.mean(incremental))


def _scored(plan: OptimizePlan, incremental: np.ndarray, program_cost: np.ndarray) -> Evaluation:
    body = plan.body
    p_positive = float(np.mean(incremental > 0))
    cost = float(np.mean(program_cost))
    constraints = []
    if body.min_p_positive is not None:
        constraints.append(body.min_p_positive - p_positive)
    if body.max_program_cost is not None:
        constraints.append(cost - body.max_program_cost)
    figures = {"mean_incremental_profit": float(np.mean(incremental)), "p_positive": p_positive,
               "mean_program_cost": cost}
    return Evaluation(objective_of(incremental, body), constraints, figures)


def run_optimize(plan: OptimizePlan, out: str | os.PathLike[str], *, workers: int = 1, resume: bool = False,
                 on_trial: Callable[[int, Evaluation], None] | None = None) -> dict[str, Any]:
    """Search, confirm on fresh replications, write ``optimize.json``; returns its content."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    journal = out / JOURNAL_FILE
    if journal.exists() and not resume:
        journal.unlink()
    baseline_profit = run_many([plan.baseline], workers=workers)[0].metric_values("profit")

    def evaluate(values: dict[str, Any]) -> Evaluation:
        result = run_many([plan.scenario_at(values, "a trial")], workers=workers)[0]
        return _scored(plan, result.metric_values("profit") - baseline_profit, result.metric_values("program_cost"))

    study = search(evaluate, plan.levers, trials=plan.body.trials, seed=plan.base.seed, journal=journal,
                   name=plan.body.name, on_trial=on_trial)
    content = _trials_content(plan, study)
    ranked = _distinct(feasible_trials(study))
    if ranked:
        content["confirmation"] = confirm(plan, [t.params for t in ranked[:1 + plan.body.runners_up]], workers)
    atomic_write(out / RESULT_FILE, lambda p: p.write_text(json.dumps(content, indent=2) + "\n"))
    return content


def _distinct(trials: list) -> list:
    seen, kept = set(), []
    for trial in trials:
        key = json.dumps(trial.params, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(trial)
    return kept


def _trials_content(plan: OptimizePlan, study) -> dict[str, Any]:
    import optuna

    body = plan.body
    trials = [{"number": t.number, "levers": t.params, "objective": t.value,
               "feasible": all(c <= 0 for c in t.user_attrs.get("constraints", [])), **t.user_attrs.get("figures", {})}
              for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = feasible_trials(study)
    return {"name": body.name, "scenario": plan.base.name, "seed": plan.base.seed,
            "replications": plan.base.replications,
            "objective": body.objective if body.objective == "mean" else f"quantile {body.quantile:g}",
            "constraints": {"min_p_positive": body.min_p_positive, "max_program_cost": body.max_program_cost},
            "trials": trials, "best": None if not best else {"number": best[0].number, "levers": best[0].params,
                                                             "objective": best[0].value}}


def confirm(plan: OptimizePlan, candidates: list[dict[str, Any]], workers: int = 1) -> dict[str, Any]:
    """Run ``candidates`` (the chosen levers first) and the baseline again on fresh replications (the next
    seed): each option's objective and incremental profit with its interval, the decision block over them,
    and whether the chosen policy is separable from each runner-up (the paired difference of incremental
    profit has a Bonferroni 95% interval above zero)."""
    seed = (plan.base.seed + 1) % 2**63
    count = plan.body.confirm_replications or 2 * plan.base.replications
    names = ["chosen"] + [f"runner-up {i}" for i in range(1, len(candidates))]
    scenarios = [plan.scenario_at(values, name, seed=seed, replications=count).model_copy(update={"name": name})
                 for name, values in zip(names, candidates)]
    baseline = plan.baseline.model_copy(update={"seed": seed, "replications": count})
    results = run_many([*scenarios, baseline], workers=workers)
    reference = results[-1].metric_values("profit")
    incremental = {name: r.metric_values("profit") - reference for name, r in zip(names, results)}
    costs = {name: r.metric_values("program_cost") for name, r in zip(names, results)}
    confidence = 1.0 - (1.0 - FAMILY_CONFIDENCE) / max(1, len(names) - 1)
    options = {}
    for name, values in zip(names, candidates):
        options[name] = {"levers": values, "objective": objective_of(incremental[name], plan.body),
                         "incremental_profit": estimate(incremental[name]).as_dict()}
        if name != "chosen":
            difference = estimate(incremental["chosen"] - incremental[name], confidence)
            options[name]["chosen_minus_this"] = difference.as_dict()
            options[name]["separable"] = difference.ci_low is not None and difference.ci_low > 0
    tied = [name for name in names[1:] if not options[name]["separable"]]
    return {"seed": seed, "replications": count, "confidence": confidence, "options": options,
            "tied_with_chosen": tied,
            "decision": decision_block(incremental, costs, drawn_values(results), seed=seed)}
