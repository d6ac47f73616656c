"""The compiled program engine (sim.engines.program_lifetimes) against the calendar engine (sim.engines.calendar).

Both take the same keyed draws in the same per-customer order with the same formulas, so on every scenario
the compiled engine runs they must give the same numbers up to the order of floating-point sums: every
monthly flow and stock, month by month, every cohort sum and every member sum, to 1e-9 relative to the
largest value of the metric (1e-9 absolute near 0). The exact bookkeeping identities are checked on the
compiled engine's own results.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.scenarios import ROOT
from test_policy import policy_scenarios

from sim.accounting.tables import replication_result
from sim.engines.calendar import Engine
from sim.engines.program_lifetimes import (
    ProgramLifetimes,
    balanced_cuts,
    compiled_program_gap,
    fast_engine_class,
)
from sim.experiments.replications import fast_engine
from sim.input.scenarios import load_scenario
from sim.schema import Scenario

TOLERANCE = 1e-9


def assert_same_ledgers(scenario: Scenario, replication: int = 0, shard: tuple[int, int] | None = None) -> None:
    """The compiled engine's ledger equals the calendar engine's, metric by metric and month by month."""
    calendar = Engine(scenario, replication, shard=shard).simulate()
    compiled = ProgramLifetimes(scenario, replication, shard=shard).simulate()
    for part in ("monthly", "cohort"):
        for name, expected in getattr(calendar, part).items():
            got = getattr(compiled, part)[name]
            scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE * scale, err_msg=f"{part} {name}")
    for name, expected in calendar.member.items():
        assert abs(compiled.member[name] - expected) <= TOLERANCE * max(abs(expected), 1.0), name


def with_discounts(sc: Scenario, discounts: list[dict], response: dict | None = None) -> Scenario:
    """``sc`` with its blanket windows kept and ``discounts`` instead of its personal offers."""
    data = sc.model_dump(mode="python", exclude_unset=True)
    policy = dict(data.get("policy") or {})
    policy["discounts"] = [d for d in policy.get("discounts", []) if d["kind"] == "blanket"] + discounts
    data["policy"] = policy
    data["response"] = {**data.get("response", {}), **(response or {})}
    return Scenario.model_validate(data)


def test_dispatch() -> None:
    points = load_scenario(ROOT / "scenarios" / "points_program.yaml")
    assert compiled_program_gap(points) is None
    assert fast_engine_class(points) is ProgramLifetimes
    assert fast_engine_class(points, record_transactions=True) is Engine   # the log comes from the calendar
    assert isinstance(fast_engine(points, 0), ProgramLifetimes)
    tiers = load_scenario(ROOT / "scenarios" / "tiered_referral.yaml")
    assert fast_engine_class(tiers) is ProgramLifetimes
    windows = load_scenario(ROOT / "scenarios" / "discount_heavy.yaml")
    assert fast_engine_class(windows) is ProgramLifetimes
    existing = load_scenario(ROOT / "scenarios" / "retailer_existing_base.yaml")
    assert fast_engine_class(existing) is ProgramLifetimes
    winback = load_scenario(ROOT / "scenarios" / "winback_campaign.yaml")   # win-back and targeted offers
    assert compiled_program_gap(winback) is None
    assert fast_engine_class(winback) is ProgramLifetimes
    assert fast_engine_class(winback, record_transactions=True) is Engine
    baseline = load_scenario(ROOT / "scenarios" / "baseline_retail.yaml")
    assert compiled_program_gap(baseline) == "no program"


def test_points_example_agrees_at_a_smaller_size() -> None:
    path = ROOT / "scenarios" / "points_program.yaml"
    small = load_scenario(path, ["existing_customers.count=2000", "acquisition.0.new_per_month=200",
                                 "acquisition.1.new_per_month=80"])
    assert_same_ledgers(small, 1)


@pytest.mark.slow
@pytest.mark.parametrize("example", ["points_program", "tiered_referral", "discount_heavy", "retailer_existing_base",
                                     "winback_campaign"])
@pytest.mark.parametrize("replication", [0, 3])
def test_examples_agree(example: str, replication: int) -> None:
    assert_same_ledgers(load_scenario(ROOT / "scenarios" / f"{example}.yaml"), replication)


def test_tiers_and_referral_bonuses_agree_at_a_smaller_size() -> None:
    small = load_scenario(ROOT / "scenarios" / "tiered_referral.yaml",
                          ["existing_customers.count=3000", "acquisition.0.new_per_month=200",
                           "acquisition.1.new_per_month=80", "policy.tiers.0.min_spend_12m=150"])
    assert_same_ledgers(small, 2)


@pytest.mark.parametrize("overrides", [
    ["response.goal_gradient=0.4", "response.member_frequency_lift=0.2", "response.member_dropout_multiplier=0.7"],
    ["policy.points.expiry_months_inactive=1", "policy.points.reward_threshold=60", "policy.enrollment.probability=1"],
    ["policy.points.expiry_months_inactive=null", "policy.costs.per_member_per_year=0", "seed=11"],
])
def test_points_example_variants_agree(overrides: list[str]) -> None:
    base = ["existing_customers.count=3000", "acquisition.0.new_per_month=150", "acquisition.1.new_per_month=50"]
    assert_same_ledgers(load_scenario(ROOT / "scenarios" / "points_program.yaml", base + overrides))


def test_windows_dips_and_habituation_with_tiers_agree() -> None:
    windows = ("[{name: sale, kind: blanket, depth: 0.2, start_month: 2, every_months: 3, duration_days: 10},"
               " {name: long, kind: blanket, depth: 0.1, start_month: 3, every_months: 5, duration_days: 40}]")
    small = load_scenario(ROOT / "scenarios" / "tiered_referral.yaml",
                          ["existing_customers.count=2500", "acquisition.0.new_per_month=150",
                           "acquisition.1.new_per_month=60", f"policy.discounts={windows}",
                           "response.habituation=0.05", "response.pull_forward=0.5"])
    assert_same_ledgers(small, 1)


def test_an_existing_base_with_points_balances_tiers_and_a_sale_agrees(tmp_path) -> None:
    """The retailer's base with a points balance added to its table (members of a program already running):
    opening balances, tiers from the trailing year, expiry of overdue points at the start."""
    import pandas as pd

    table = pd.read_parquet(ROOT / "scenarios" / "data" / "retailer_customers.parquet")
    table.assign(points_balance=(table["spend_12m"] * 2).astype("int64")).to_parquet(tmp_path / "base.parquet")
    text = (ROOT / "scenarios" / "retailer_existing_base.yaml").read_text()
    path = tmp_path / "existing.yaml"
    path.write_text(text.replace("data/retailer_customers.parquet", str(tmp_path / "base.parquet")))
    sc = load_scenario(path, ["policy.points.expiry_months_inactive=3", "response.habituation=0.05"])
    assert_same_ledgers(sc, 1)


def test_a_simulated_base_agrees() -> None:
    sc = load_scenario(ROOT / "scenarios" / "tiered_referral.yaml",
                       ["acquisition.0.initial_customers=0", "acquisition.0.new_per_month=100",
                        "acquisition.1.new_per_month=40", "existing_customers={count: 4000, history_months: 18, segments: {regular: 0.7, loyal: 0.3}}"])
    assert_same_ledgers(sc, 0)


WINBACK = "{name: back, kind: winback, inactive_days: 40, depth: 0.25, valid_days: 20, message_cost: 0.3}"


def test_winback_alone_agrees() -> None:
    """The example's win-back offer without its targeted rounds, many more of the dropped-out coming back:
    coupons to the alive, reactivations, new lifetimes, referrals over every alive spell."""
    example = load_scenario(ROOT / "scenarios" / "winback_campaign.yaml", [
        "existing_customers.count=3000", "acquisition.0.new_per_month=200", "acquisition.1.new_per_month=80",
        "segments.regular.referrals_per_year.mean=0.4"])
    small = with_discounts(example, [example.policy.discounts[0].model_dump()], {"winback_reactivation": 0.3})
    assert_same_ledgers(small, 1)
    ledger = ProgramLifetimes(small, 1).simulate()
    assert ledger.monthly["customers_reactivated"].sum() > 100 and ledger.monthly["message_cost"].sum() > 0


@pytest.mark.parametrize(("example", "overrides"), [
    ("tiered_referral", ["existing_customers.count=2500", "acquisition.0.new_per_month=150",
                         "acquisition.1.new_per_month=60", "response.habituation=0.05", "response.pull_forward=0.5",
                         "response.winback_reactivation=0.6",
                         "policy.discounts=[{name: sale, kind: blanket, depth: 0.2, start_month: 2, every_months: 3,"
                         f" duration_days: 10}}, {WINBACK}]"]),
    ("points_program", ["existing_customers.count=3000", "acquisition.0.new_per_month=150",
                        "acquisition.1.new_per_month=50", f"policy.discounts=[{WINBACK}]",
                        "response.winback_reactivation=0.8", "policy.points.expiry_months_inactive=1"]),
    ("retailer_existing_base", [f"policy.discounts=[{WINBACK}]", "response.winback_reactivation=0.5"]),
])
def test_winback_with_members_tiers_windows_points_and_a_base_agrees(example: str, overrides: list[str]) -> None:
    """Win-back with membership costs (the closed spell's part of a month), tiers evaluated while the
    dropped-out wait for their offer, coupons against open windows, points expiring, existing customers
    (those gone before the start come back too)."""
    assert_same_ledgers(load_scenario(ROOT / "scenarios" / f"{example}.yaml", overrides), 1)


TARGETED = ("{name: aim, kind: targeted, target: top_predicted_clv, share: 0.3, start_month: 1, every_months: 2,"
            " depth: 0.2, valid_days: 30, message_cost: 0.05}")


def test_the_winback_example_at_a_smaller_size_agrees() -> None:
    """Win-back and quarterly at-risk rounds together (the example, smaller)."""
    small = load_scenario(ROOT / "scenarios" / "winback_campaign.yaml", [
        "existing_customers.count=3000", "acquisition.0.new_per_month=200", "acquisition.1.new_per_month=80"])
    assert_same_ledgers(small, 1)
    assert ProgramLifetimes(small, 1).simulate().monthly["message_cost"].sum() > 0


@pytest.mark.parametrize(("example", "overrides"), [
    # a round at the start (those arriving then buy first, in the sale opening then), two offers' rounds at once
    ("tiered_referral", ["existing_customers.count=2500", "acquisition.0.new_per_month=150",
                         "acquisition.1.new_per_month=60", "response.winback_reactivation=0.5",
                         "policy.discounts=[{name: sale, kind: blanket, depth: 0.2, start_month: 1, every_months: 3,"
                         f" duration_days: 10}}, {WINBACK}, {TARGETED}, {TARGETED.replace('aim', 'keep')}]"]),
    ("points_program", ["existing_customers.count=3000", "acquisition.0.new_per_month=150",
                        "acquisition.1.new_per_month=50", f"policy.discounts=[{TARGETED}]"]),
    ("retailer_existing_base", [f"policy.discounts=[{TARGETED.replace('top_predicted_clv', 'at_risk')}]"]),
])
def test_targeted_rounds_with_members_tiers_points_and_a_base_agree(example: str, overrides: list[str]) -> None:
    """Targeted rounds on the examples: membership, tiers, points, referrals, existing customers ranked from
    their history."""
    assert_same_ledgers(load_scenario(ROOT / "scenarios" / f"{example}.yaml", overrides), 1)


def test_parts_are_cut_where_the_expected_work_is_halved() -> None:
    """A group's parts at rounds: a rare segment (1 purchase a year, a 0.5 dropout chance) then a frequent
    one (20 a year, a hazard lifetime beyond the horizon): the cut falls where the work (10 + x / (1 + x p)
    each, x = rate x years left) is halved, not at the middle; the degenerate groups keep their parts."""
    def group(rate, dropout, death):
        n = len(rate)
        return {"key": np.arange(n, dtype=np.uint64), "rate": np.asarray(rate, dtype=np.float32),
                "dropout_p": np.asarray(dropout, dtype=np.float32), "death": np.asarray(death, dtype=np.float64),
                "arrival": np.zeros(n)}

    rare, frequent = 600, 400
    mixed = group([1.0] * rare + [20.0] * frequent, [0.5] * rare + [0.0] * frequent, [np.inf] * rare + [9.0] * frequent)
    work = np.array([10 + 3 / (1 + 3 * 0.5)] * rare + [10 + 60.0] * frequent)   # horizon 3 years
    cuts = balanced_cuts(mixed, 3.0, 2)
    assert cuts[0] == 0 and cuts[-1] == rare + frequent and len(cuts) == 3
    first = work[:cuts[1]].sum()
    assert abs(first - work.sum() / 2) <= work.max()   # halved to within one customer
    assert cuts[1] > rare   # every rare customer and some frequent ones in the first part
    even = group([2.0] * 10, [0.1] * 10, [np.inf] * 10)
    assert balanced_cuts(even, 3.0, 2) == [0, 5, 10]   # equal work: the middle
    gone = group([2.0] * 4, [0.0] * 4, [-np.inf] * 4)   # existing customers gone before the start: 10 each
    assert balanced_cuts(gone, 3.0, 2) == [0, 2, 4]
    assert balanced_cuts(group([], [], []), 3.0, 2) == [0]   # nobody: no part
    assert balanced_cuts(group([3.0], [0.2], [np.inf]), 3.0, 2) == [0, 1]   # one customer: one part


def test_shards_add_up_to_the_calendar_engine_shard_by_shard() -> None:
    small = load_scenario(ROOT / "scenarios" / "points_program.yaml",
                          ["existing_customers.count=1500", "acquisition.0.new_per_month=100"])
    for shard in range(2):
        assert_same_ledgers(small, 0, shard=(shard, 2))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_scenarios(), st.integers(0, 3))
def test_random_programs_agree(sc: Scenario, replication: int) -> None:
    assert compiled_program_gap(sc) is None
    assert_same_ledgers(sc, replication)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_scenarios(), st.integers(0, 3), st.floats(5, 200), st.floats(0, 0.9), st.floats(1, 90),
       st.floats(0.2, 1))
def test_random_programs_with_a_winback_offer_agree(sc: Scenario, replication: int, inactive_days: float,
                                                    depth: float, valid_days: float, comeback: float) -> None:
    """Every random program with a win-back offer, many of the dropped-out coming back (among them the
    referrers whose dropout and revival fall in one interval of the calendar engine)."""
    assert_same_ledgers(with_discounts(sc, [
        {"name": "back", "kind": "winback", "inactive_days": inactive_days, "depth": depth, "valid_days": valid_days,
         "message_cost": 0.5}], {"winback_reactivation": comeback}), replication)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_scenarios(), st.integers(0, 3), st.sampled_from(["top_predicted_clv", "at_risk"]), st.floats(0.01, 1),
       st.integers(1, 4), st.integers(1, 3), st.booleans())
def test_random_programs_with_targeted_rounds_agree(sc: Scenario, replication: int, target: str, share: float,
                                                    start: int, every: int, winback: bool) -> None:
    """Every random program with targeted-offer rounds (at the start, every month or more), a win-back offer
    beside them or not: everyone stopped before each round, ranked, the chosen given their offer."""
    offers = [{"name": "aim", "kind": "targeted", "target": target, "share": share, "start_month": start,
               "every_months": every, "depth": 0.2, "valid_days": 25, "message_cost": 0.1}]
    if winback:
        offers.append({"name": "back", "kind": "winback", "inactive_days": 30, "depth": 0.3, "valid_days": 20})
    assert_same_ledgers(with_discounts(sc, offers, {"winback_reactivation": 0.4}), replication)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_scenarios())
def test_identities_hold_on_the_compiled_engine(sc: Scenario) -> None:
    engine = ProgramLifetimes(sc, 0)
    ledger = engine.simulate()
    result = replication_result(sc, 0, ledger, engine.events, None)
    totals = result.totals
    for name in ("points_earned", "points_redeemed", "points_expired", "points_outstanding"):
        assert totals[name] == int(totals[name]) and totals[name] >= 0, name
    assert totals["points_earned"] == (totals["points_redeemed"] + totals["points_expired"]
                                       + totals["points_outstanding"])
    assert totals["purchases"] == totals["repeat_purchases"] + totals["customers_acquired"]


def test_the_learning_part_agrees_over_the_spells_of_won_back_customers() -> None:
    """CLV's learning part counts every alive spell of a customer won back, not the time it was gone: the
    compiled loop books each closed spell at the reactivation, as the calendar engine does."""
    sc = load_scenario(ROOT / "scenarios" / "winback_campaign.yaml", [
        "existing_customers.count=1500", "acquisition.0.new_per_month=100", "acquisition.1.new_per_month=40",
        "response.winback_reactivation=0.6", "economics.learning_value_per_customer_year=5"])
    assert_same_ledgers(sc, 2)
    ledger = ProgramLifetimes(sc, 2).simulate()
    assert ledger.monthly["customers_reactivated"].sum() > 0 and ledger.cohort["learning"].sum() > 0


def test_clv_parts_agree_with_an_existing_base() -> None:
    """CLV's growth and learning parts (cohort sums ``clv_growth`` and ``learning``) agree too: new customers
    from their arrival, the existing base from the start (those gone before it learn nothing)."""
    sc = load_scenario(ROOT / "scenarios" / "retailer_existing_base.yaml",
                       ["economics.learning_value_per_customer_year=6", "segments.retail.order_value.growth_per_year=0.04"])
    assert_same_ledgers(sc, 1)
    ledger = ProgramLifetimes(sc, 1).simulate()
    assert ledger.cohort["learning"][ledger.existing_cohorts].sum() > 0 and ledger.cohort["clv_growth"].sum() > 0
