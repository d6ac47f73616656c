"""Existing customers (``existing_customers: {file, segment, channel}``): drawn from their posterior given their
history, they make what the fitted models' conditional expectations say (``docs/validation.md``, "The
existing customers of CDNOW"), start without a day-0 spike, and pair between a scenario and its baseline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.scenarios import ROOT, assert_within

from sim.calibration.customers import customer_table, write_customer_table
from sim.calibration.log import read_log
from sim.calibration.pipeline import calibrate
from sim.experiments.replications import run_replication
from sim.input.scenarios import load_scenario
from sim.model import theory
from sim.schema.units import WEEKS_PER_YEAR

CDNOW_CSV = ROOT / "tests" / "data" / "cdnow" / "cdnow_sample.csv"
CALIBRATION_END = dt.date(1997, 9, 30)
#: Published parameters of the CDNOW sample (tests/data/cdnow/README.md), times in weeks.
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
#: 9 months forward: 39.13 weeks (the holdout of the CDNOW sample is 39 weeks).
MONTHS = 9
#: Groups of calibration-period repeat purchases (the last one open).
GROUPS = (0, 1, 2, 3, 4, 5, 7)


def _segment(model: str) -> str:
    spend = "order_value: {p: 6.25, q: 3.74, gamma: 15.44}"
    if model == "bgnbd":
        return ("purchases_per_year: {r: 0.243, alpha: 4.414, alpha_unit: week}\n"
                "    dropout: {model: per_purchase, a: 0.793, b: 2.426}\n    " + spend)
    return ("purchases_per_year: {r: 0.553, alpha: 10.578, alpha_unit: week}\n"
            "    dropout: {model: hazard, s: 0.606, beta: 11.669, beta_unit: week}\n    " + spend)


def write_scenario(folder: Path, table: str, model: str, *, months: int = MONTHS, replications: int = 1,
                   extra: str = "") -> Path:
    path = folder / f"{Path(table).stem}-{model}.yaml"
    path.write_text(f"""name: existing-{model}
horizon_months: {months}
replications: {replications}
seed: 11
economics: {{gross_margin: 0.25, annual_discount_rate: 0.1}}
segments:
  cdnow:
    {_segment(model)}
acquisition: []
existing_customers: {{file: {table}, segment: cdnow}}
{extra}""")
    return path


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, tuple[Path, pd.DataFrame, np.ndarray]]:
    """The customer tables of the CDNOW sample at 1997-09-30 under each model, and the actual holdout
    repeat purchases of each customer."""
    folder = tmp_path_factory.mktemp("existing")
    purchases = read_log(CDNOW_CSV)
    found = {}
    for model in ("bgnbd", "paretonbd"):
        calibration = calibrate(purchases, CALIBRATION_END, model=model)
        table = customer_table(calibration, purchases)
        path = folder / f"customers-{model}.parquet"
        write_customer_table(table, path, calibration, margin=1.0, annual_discount_rate=0.1)
        found[model] = (path, table, calibration.summary.holdout)
    return found


def _group_of(x: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(GROUPS), x, side="right") - 1


def _expected(model: str, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per customer: E[X(t) | x, t_x, T] over the horizon and the Gamma-Gamma E[M | x, m_x] (population mean
    for x = 0)."""
    t = MONTHS / 12 * WEEKS_PER_YEAR
    args = (t, table["repeat_purchases"], table["recency_weeks"], table["age_weeks"])
    purchases = (theory.bgnbd_conditional_expected_purchases(*args, **BGNBD) if model == "bgnbd"
                 else theory.paretonbd_conditional_expected_purchases(*args, **PARETO))
    x = table["repeat_purchases"].to_numpy()
    spend = np.where(x > 0, theory.gamma_gamma_conditional_mean_spend(
        x=np.maximum(x, 1), mean_spend=table["mean_repeat_spend"], **SPEND), theory.gamma_gamma_mean_spend(**SPEND))
    return np.asarray(purchases), spend


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bgnbd", "paretonbd"])
def test_cdnow_base_makes_the_conditional_expectations(tables, tmp_path, model) -> None:
    """Without a program, the CDNOW customers at 1997-09-30 simulated 9 months (39.1 weeks) forward with the
    published parameters make, in total and per group of calibration-period purchases, the sum of the
    model's E[X(t) | x, t_x, T] within 4 standard errors (SE at most 2% of it in total), and spend the sum
    of E[X(t) | ...] x E[M | x, m_x] (Gamma-Gamma; purchases and spend are independent given the history)."""
    path, table, holdout = tables[model]
    expected_purchases, expected_spend = _expected(model, table)
    groups = _group_of(table["repeat_purchases"].to_numpy())
    replications = 30
    purchases = np.zeros((replications, len(GROUPS)))
    revenue = np.zeros((replications, len(GROUPS)))
    for g in range(len(GROUPS)):   # a table per group: customers are keyed by id, so they are the same
        part = path.parent / f"{path.stem}-group{g}.parquet"
        pd.read_parquet(path)[groups == g].to_parquet(part, index=False)
        scenario = load_scenario(write_scenario(tmp_path, str(part), model))
        for replication in range(replications):
            totals = run_replication(scenario, replication).totals
            assert totals["purchases"] == totals["repeat_purchases"]   # no acquisition purchase
            purchases[replication, g] = totals["purchases"]
            revenue[replication, g] = totals["gross_revenue"]
    lines = [f"{model}: group, simulated, expected, SE, actual holdout (39 weeks)"]
    for g, low in enumerate(GROUPS):
        chosen = groups == g
        mean, se = purchases[:, g].mean(), purchases[:, g].std(ddof=1) / np.sqrt(replications)
        lines.append(f"{low}: {mean:.1f} {expected_purchases[chosen].sum():.1f} {se:.1f} {holdout[chosen].sum()}")
        assert_within(mean, expected_purchases[chosen].sum(), se, max_std_error=np.inf)
    total = purchases.sum(axis=1)
    expected = expected_purchases.sum()
    lines.append(f"total: {total.mean():.1f} {expected:.1f} {total.std(ddof=1) / np.sqrt(replications):.1f} "
                 f"{holdout.sum()}")
    print("\n".join(lines))
    assert_within(total.mean(), expected, total.std(ddof=1) / np.sqrt(replications), max_std_error=0.02 * expected)
    spend = revenue.sum(axis=1)
    expected_revenue = float((expected_purchases * expected_spend).sum())
    print(f"revenue: {spend.mean():.0f} expected {expected_revenue:.0f}")
    assert_within(spend.mean(), expected_revenue, spend.std(ddof=1) / np.sqrt(replications),
                  max_std_error=0.03 * expected_revenue)


def test_existing_customers_start_without_a_purchase_and_keep_apart(tables, tmp_path) -> None:
    """No purchase at time 0, every purchase a repeat purchase, the base in its own cohort (channel
    ``existing``) with its own CLV, and a customer's draws keyed by its id (the row order is irrelevant)."""
    path, table, _ = tables["bgnbd"]
    scenario = load_scenario(write_scenario(tmp_path, str(path), "bgnbd"))
    result = run_replication(scenario, 0, record_transactions=True)
    log = result.transactions
    assert log["time"].min() > 0 and result.totals["purchases"] == result.totals["repeat_purchases"]
    assert result.totals["customers_acquired"] == 0 and result.totals["existing_customers"] == len(table)
    assert list(result.cohorts["channel"]) == ["existing"] and result.cohorts["customers"][0] == len(table)
    assert result.totals["clv_per_existing_customer"] == pytest.approx(result.cohorts["clv"][0])
    reversed_table = path.parent / "reversed.parquet"
    pd.read_parquet(path).iloc[::-1].to_parquet(reversed_table, index=False)
    again = run_replication(load_scenario(write_scenario(tmp_path, str(reversed_table), "bgnbd")), 0).totals
    assert again["purchases"] == result.totals["purchases"]
    assert again["gross_revenue"] == pytest.approx(result.totals["gross_revenue"], rel=1e-12)


def test_a_program_without_response_pairs_with_its_baseline_on_an_existing_base(tables, tmp_path) -> None:
    """The calendar engine draws the same existing customers as the engine without a program: a program
    that changes no behaviour reproduces its baseline's purchases and revenue exactly."""
    path, _, _ = tables["bgnbd"]
    extra = ("policy:\n  enrollment: {probability: 0.5}\n  costs: {fixed_per_month: 10}\n"
             "response: {member_frequency_lift: 0, member_dropout_multiplier: 1}\n")
    scenario = load_scenario(write_scenario(tmp_path, str(path), "bgnbd", extra=extra))
    program = run_replication(scenario, 3).totals
    baseline = run_replication(scenario.without_policy(), 3).totals
    for name in ("purchases", "repeat_purchases", "active_customers_end", "existing_customers"):
        assert program[name] == baseline[name], name
    assert program["gross_revenue"] == pytest.approx(baseline["gross_revenue"], rel=1e-12)


def test_month_zero_sale_costs_what_a_later_window_costs(tables, tmp_path) -> None:
    """A blanket sale every 3 months from month 1 (month 0 included): without day-0 purchases, the first
    window's discount cost is that of the later ones (within their spread as the base thins out), and points
    expiry has no spike 12 months after the start."""
    path, _, _ = tables["bgnbd"]
    extra = ("policy:\n  points: {earn_per_currency: 1, reward_threshold: 500, reward_value: 5,\n"
             "           reward_cost_ratio: 0.7, redeemer_share: 0.8, expiry_months_inactive: 12}\n"
             "  discounts:\n    - {name: sale, kind: blanket, depth: 0.2, start_month: 1, every_months: 3,"
             " duration_days: 14}\n")
    scenario = load_scenario(write_scenario(tmp_path, str(path), "bgnbd", months=15, replications=6, extra=extra))
    monthly = np.array([run_replication(scenario, r).monthly["discount_cost"] for r in range(6)]).sum(axis=0)
    windows = monthly[[0, 3, 6, 9, 12]]
    assert windows[0] <= 1.5 * windows[1:].mean() and windows[0] >= 0.5 * windows[1:].mean()
    expired = np.array([run_replication(scenario, r).monthly["points_expired"] for r in range(6)]).sum(axis=0)
    assert expired[12] <= 3 * max(expired[11], expired[13], 1.0)


# -- bad input ------------------------------------------------------------------------------------------------

def _validate(scenario: Path):
    from click.testing import CliRunner

    from sim.cli import main

    return CliRunner().invoke(main, ["validate", str(scenario)])


@pytest.mark.parametrize(("change", "column", "row"), [
    (lambda t: t.drop(columns=["age_weeks"]), "age_weeks", None),
    (lambda t: t.assign(loyalty_score=1.0), "loyalty_score", None),
    (lambda t: t.assign(repeat_purchases=np.where(np.arange(len(t)) == 6, -1, t["repeat_purchases"])),
     "repeat_purchases", 7),
    (lambda t: t.assign(recency_weeks=np.where(np.arange(len(t)) == 2, t["age_weeks"] + 1, t["recency_weeks"])),
     "recency_weeks", 3),
    (lambda t: t.assign(customer_id=np.where(np.arange(len(t)) == 4, t["customer_id"].iloc[0], t["customer_id"])),
     "customer_id", 5),
    (lambda t: t.assign(points_balance=np.where(np.arange(len(t)) == 9, 2.5, 10.0)), "points_balance", 10),
])
def test_bad_tables_exit_2_naming_file_column_and_row(tables, tmp_path, change, column, row) -> None:
    path, _, _ = tables["bgnbd"]
    bad = tmp_path / "bad.parquet"
    change(pd.read_parquet(path)).to_parquet(bad, index=False)
    result = _validate(write_scenario(tmp_path, str(bad), "bgnbd"))
    assert result.exit_code == 2, result.output
    assert f"{bad}: {column}:" in result.output, result.output
    if row is not None:
        assert f"row {row} " in result.output, result.output
    assert "Traceback" not in result.output


def test_a_table_of_another_model_an_unknown_segment_or_no_file_exit_2(tables, tmp_path) -> None:
    path, _, _ = tables["paretonbd"]
    result = _validate(write_scenario(tmp_path, str(path), "bgnbd"))
    assert result.exit_code == 2 and f"{path}:" in result.output and "Pareto/NBD model" in result.output
    scenario = write_scenario(tmp_path, str(path), "paretonbd")
    scenario.write_text(scenario.read_text().replace("segment: cdnow}", "segment: cdnwo}"))
    result = _validate(scenario)
    assert result.exit_code == 2 and "existing_customers.segment" in result.output and "did you mean 'cdnow'" \
        in result.output, result.output
    result = _validate(write_scenario(tmp_path, "missing.parquet", "bgnbd"))
    assert result.exit_code == 2 and "existing_customers.file" in result.output and "does not exist" in result.output
    no_acquisition = write_scenario(tmp_path, str(path), "paretonbd")
    no_acquisition.write_text("\n".join(line for line in no_acquisition.read_text().splitlines()
                                        if not line.startswith("existing_customers:")))
    result = _validate(no_acquisition)
    assert result.exit_code == 2 and "acquisition" in result.output


# -- a base without a log: {count, history_months, segments} --------------------------------------------------

SEGMENT = {"only": {"purchases_per_year": {"mean": 4.0, "cv": 0.8},
                    "dropout": {"model": "per_purchase", "mean": 0.1, "cv": 0.6},
                    "order_value": {"mean": 40.0, "cv": 0.5, "between_cv": 0.4}}}


def _history_scenarios(dropout: dict) -> tuple:
    """A base of 6,000 customers with 12 months of history, and the scenario that acquired them over those 12
    months (500 a month) and ran on."""
    from support.scenarios import scenario

    segment = {"purchases_per_year": {"mean": 4.0, "cv": 0.8}, "dropout": dropout,
               "order_value": {"mean": 40.0, "cv": 0.5, "between_cv": 0.4}}
    base = scenario(horizon_months=12, segments={"only": segment}, acquisition=[],
                    existing_customers={"count": 6000, "history_months": 12})
    earlier = scenario(horizon_months=24, segments={"only": segment},
                       acquisition=[{"channel": "web", "cac": 0.0, "new_per_month": 500, "months": 12}])
    return base, earlier


@pytest.mark.slow
@pytest.mark.parametrize("dropout", [{"model": "per_purchase", "mean": 0.1, "cv": 0.6},
                                     {"model": "hazard", "annual_churn": 0.3, "cv": 0.7}])
def test_a_simulated_base_is_the_customers_of_a_scenario_that_ran_earlier(dropout) -> None:
    """In distribution, the base built with history_months: 12 is the customers of a scenario that acquired
    them over the 12 months before: the same customers alive, purchases and spend in the following year
    (independent samples: each difference within 4 standard errors, each SE under 2% of the mean)."""
    base, earlier = _history_scenarios(dropout)
    replications = 30
    ours = {"active": [], "purchases": [], "spend": []}
    theirs = {"active": [], "purchases": [], "spend": []}
    for replication in range(replications):
        result = run_replication(base, replication)
        assert result.totals["purchases"] == result.totals["repeat_purchases"]
        ours["active"].append(result.totals["active_customers_end"])
        ours["purchases"].append(result.totals["purchases"])
        ours["spend"].append(result.totals["gross_revenue"])
        monthly = run_replication(earlier, 1000 + replication).monthly
        theirs["active"].append(monthly["active_customers_end"][-1])
        theirs["purchases"].append(monthly["purchases"][12:].sum())
        theirs["spend"].append(monthly["gross_revenue"][12:].sum())
    for name in ours:
        a, b = np.array(ours[name]), np.array(theirs[name])
        se = np.sqrt(a.var(ddof=1) / replications + b.var(ddof=1) / replications)
        print(f"{name}: base {a.mean():.1f}, earlier scenario {b.mean():.1f}, SE {se:.1f}")
        assert_within(a.mean(), b.mean(), se, max_std_error=0.02 * b.mean())


def test_a_simulated_base_has_its_history_and_pairs_with_its_baseline() -> None:
    """Every simulated customer has its first purchase in the history window, a recency within its age and a
    spend over the last year no larger than its whole spend; a program without response reproduces its
    baseline on it exactly (both engines draw the same histories)."""
    from support.scenarios import scenario

    from sim.engines.draws import Draws
    from sim.model.existing import opening_base
    from sim.model.population import segment_laws

    base, _ = _history_scenarios(SEGMENT["only"]["dropout"])
    laws = segment_laws(base)
    [(segment, histories, traits)] = opening_base(base, 0, laws, Draws(laws))
    assert segment == 0 and histories.size == 6000
    assert (histories.age_years > 0).all() and (histories.age_years < 1).all()
    assert (histories.recency_years <= histories.age_years).all()
    assert (traits["pending"][traits["alive"]] >= 0).all() and np.isinf(traits["pending"][~traits["alive"]]).all()
    program = scenario(horizon_months=12, segments=SEGMENT, acquisition=[],
                       existing_customers={"count": 6000, "history_months": 12},
                       policy={"enrollment": {"probability": 0.5}, "costs": {"fixed_per_month": 10}},
                       response={"member_frequency_lift": 0, "member_dropout_multiplier": 1})
    with_program, without = run_replication(program, 2).totals, run_replication(base, 2).totals
    for name in ("purchases", "active_customers_end", "existing_customers"):
        assert with_program[name] == without[name], name
    assert with_program["gross_revenue"] == pytest.approx(without["gross_revenue"], rel=1e-12)


# -- the reference engine: the same base, written independently -----------------------------------------------

AGREEMENT_METRICS = ("purchases", "repeat_purchases", "gross_revenue", "active_customers_end", "profit", "npv_profit",
                     "existing_customers", "clv_per_existing_customer", "customers_dropped_out",
                     "customers_reactivated", "discount_cost", "message_cost", "tier_benefit_cost", "members_end",
                     "points_earned", "points_redeemed", "points_expired", "points_outstanding", "reward_cost")
PROGRAM = ("policy:\n  enrollment: {probability: 0.6, self_selection: 1.0}\n"
           "  points: {earn_per_currency: 1, reward_threshold: 200, reward_value: 5, reward_cost_ratio: 0.7,\n"
           "           redeemer_share: 0.8, expiry_months_inactive: 6}\n"
           "  tiers:\n    - {name: vip, min_spend_12m: 120, earn_multiplier: 1.5, frequency_lift: 0.1,"
           " dropout_multiplier: 0.7, benefit_cost_per_year: 12}\n"
           "  discounts:\n    - {name: sale, kind: blanket, depth: 0.2, start_month: 1, every_months: 3,"
           " duration_days: 10}\n"
           "    - {name: win-back, kind: winback, inactive_days: 120, depth: 0.15, valid_days: 30,"
           " message_cost: 0.1}\n"
           "    - {name: care, kind: targeted, target: at_risk, share: 0.2, every_months: 4, depth: 0.1,"
           " valid_days: 30, message_cost: 0.05}\n"
           "response: {winback_reactivation: 0.2}\n")


def _assert_engines_agree(name: str, scenario, replications: int) -> None:
    from support.agreement import assert_agree, assert_curves_agree, compare, register

    register(name, scenario, replications)
    moved = tuple(m for m in AGREEMENT_METRICS if any(value != 0 for value in compare(name, m)[:2]))
    assert {"purchases", "active_customers_end", "clv_per_existing_customer"} <= set(moved)
    assert_agree(name, moved)
    assert_curves_agree(name)


@pytest.mark.slow
def test_reference_engine_agrees_on_a_pareto_base_with_a_program(tables, tmp_path) -> None:
    """The CDNOW base under Pareto/NBD (posterior traits, gone customers' departure times), with points
    expiring from the last purchase, a tier from the trailing year, sales, win-back and at-risk offers:
    the fast engine and the reference engine agree within 4 SE on every metric they move, and month by month."""
    path, _, _ = tables["paretonbd"]
    points = tmp_path / "with_points.parquet"
    table = pd.read_parquet(path)
    table.assign(points_balance=(table["spend_12m"] // 2).astype("int64")).to_parquet(points, index=False)
    scenario = load_scenario(write_scenario(tmp_path, str(points), "paretonbd", months=12, replications=12,
                                            extra=PROGRAM))
    _assert_engines_agree("existing:pareto-program", scenario, 12)


@pytest.mark.slow
def test_reference_engine_agrees_on_a_simulated_base() -> None:
    """A base without a log (two segments, per-purchase and hazard dropout), with and without a program."""
    from support.scenarios import scenario

    segments = {"occasional": {"purchases_per_year": {"mean": 3.0, "cv": 0.9},
                               "dropout": {"model": "per_purchase", "mean": 0.15, "cv": 0.6},
                               "order_value": {"mean": 40.0, "cv": 0.5, "between_cv": 0.4}},
                "steady": {"purchases_per_year": {"mean": 6.0, "cv": 0.6},
                           "dropout": {"model": "hazard", "annual_churn": 0.3, "cv": 0.7},
                           "order_value": {"mean": 60.0, "cv": 0.4, "between_cv": 0.3}}}
    existing = {"count": 1500, "history_months": 18, "segments": {"occasional": 0.6, "steady": 0.4}}
    plain = scenario(horizon_months=12, segments=segments, acquisition=[], existing_customers=existing, seed=3)
    _assert_engines_agree("existing:simulated", plain, 12)
    import yaml

    program = yaml.safe_load(PROGRAM)
    with_program = scenario(horizon_months=12, segments=segments, acquisition=[], existing_customers=existing,
                            seed=4, **program)
    _assert_engines_agree("existing:simulated-program", with_program, 12)


def test_a_million_existing_customers_pass_the_memory_check_and_a_billion_do_not() -> None:
    """The memory check counts existing customers (bench/bench_existing.py measures their bytes)."""
    from support.scenarios import scenario

    from sim.engines.memory import memory_shortfall

    for policy in ({}, {"policy": {"enrollment": {"probability": 0.5}}}):
        million = scenario(horizon_months=12, segments=SEGMENT, acquisition=[],
                           existing_customers={"count": 1_000_000, "history_months": 12}, **policy)
        assert memory_shortfall(million) is None
        billion = scenario(horizon_months=12, segments=SEGMENT, acquisition=[],
                           existing_customers={"count": 1_000_000_000, "history_months": 12}, **policy)
        assert "GiB" in memory_shortfall(billion)


@pytest.mark.parametrize("replication", [0, 1])
def test_points_and_customers_add_up_exactly_with_an_opening_balance(tables, tmp_path, replication) -> None:
    """Invariants with a base and new customers: points earned + the opening balances = redeemed + expired +
    outstanding, and customers acquired + alive at the start + reactivated = active at the end + dropped
    out, exactly; a balance makes a member."""
    from sim.engines.calendar import Engine

    path, _, _ = tables["bgnbd"]
    points = tmp_path / "with_points.parquet"
    table = pd.read_parquet(path)
    opening = (table["spend_12m"] * 3).astype("int64")
    table.assign(points_balance=opening).to_parquet(points, index=False)
    file = write_scenario(tmp_path, str(points), "bgnbd", months=15, extra=PROGRAM)
    file.write_text(file.read_text().replace("acquisition: []", "acquisition: [{channel: web, new_per_month: 50}]"))
    engine = Engine(load_scenario(file), replication)
    ledger = engine.simulate()
    totals = ledger.totals()
    base = engine.pop.view("cohort") == engine.pop.cohort[0]
    assert base.sum() == len(table) and engine.pop.member[: len(table)][opening.to_numpy() > 0].all()
    assert totals["points_earned"] + int(opening.sum()) == (totals["points_redeemed"] + totals["points_expired"]
                                                            + totals["points_outstanding"])
    assert totals["customers_acquired"] + ledger.opening_active + totals["customers_reactivated"] == \
        totals["active_customers_end"] + totals["customers_dropped_out"]
    assert totals["existing_customers"] == len(table) and totals["customers_acquired"] >= 750
    assert totals["points_expired"] > 0 and totals["customers_reactivated"] > 0


@pytest.mark.parametrize(("value", "expected"), [
    ("[1, 2]", "existing_customers: Input should be a valid dictionary"),
    ("{count: 0, history_months: 12}", "existing_customers.count: Input should be greater than or equal to 1"),
    ("{count: 10}", "existing_customers.history_months: required key is missing"),
    ("{file: x.parquet}", "existing_customers.segment: required key is missing"),
    ("{count: 10, history_months: 12, segments: {cdnow: 0.5}}", "segment shares must sum to 1"),
    ("{count: 10, history_months: 12, channel: referral}", "'referral' is reserved"),
])
def test_bad_existing_blocks_exit_2_naming_the_key(tmp_path, value, expected) -> None:
    scenario = write_scenario(tmp_path, "unused.parquet", "bgnbd")
    scenario.write_text("\n".join(f"existing_customers: {value}" if line.startswith("existing_customers:")
                                  else line for line in scenario.read_text().splitlines()))
    result = _validate(scenario)
    assert result.exit_code == 2 and expected in result.output and f"{scenario}:12:" in result.output, result.output


def test_uncertain_values_keep_the_existing_customers(tables, tmp_path) -> None:
    """A replication's scenario with its uncertain values drawn still carries the customer table it read."""
    path, table, _ = tables["bgnbd"]
    extra = ("policy:\n  enrollment: {probability: 0.5}\n"
             "  costs: {fixed_per_month: {dist: uniform, low: 0, high: 100}}\n")
    scenario = load_scenario(write_scenario(tmp_path, str(path), "bgnbd", extra=extra))
    assert scenario.uncertain
    costs = set()
    for replication in (0, 1):
        totals = run_replication(scenario, replication).totals
        assert totals["existing_customers"] == len(table)
        costs.add(totals["program_fixed_cost"])
    assert len(costs) == 2   # the fixed cost was drawn anew in each replication


def test_population_scale_with_a_customer_table_is_refused(tables, tmp_path) -> None:
    """A sample of acquired customers cannot be scaled back with a whole customer table in it: exit 2."""
    path, _, _ = tables["bgnbd"]
    scenario = write_scenario(tmp_path, str(path), "bgnbd", extra="population_scale: 10\n")
    result = _validate(scenario)
    assert result.exit_code == 2 and "population_scale" in result.output
    assert "a customer table" in result.output and "is simulated whole" in result.output
