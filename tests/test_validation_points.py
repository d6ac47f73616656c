"""Points expiry, redemption and the goal gradient: exact checks of each engine, then fast vs reference.

The equivalence tests saw points_expired higher in the fast engine than in the reference (z = +3.1 in
tests/test_reference.py's points_large, about +1.6 pooled in an earlier session). Expired points are a
deterministic function of what the transaction log shows (purchase times, points earned and redeemed), so
a difference can only come from one of two places, and each is checked exactly, in each engine on its own:

1. **The bookkeeping**: the points expired in each month and outstanding at the horizon must equal what
   the log implies under the rules of docs/levers.md 2.2 (``points_from_log``). Exact, no tolerance.
2. **The law of the log**: after each purchase, a member buys at rate lambda (1 + member lift) (1 + goal
   gradient x progress) for a redeemer, progress = min(balance / threshold, 1), until the balance expires,
   then at lambda (1 + member lift); it drops out at its hazard (x the member multiplier) meanwhile, or has
   survived the per-purchase coin right after the purchase. Given each customer's latent traits (read from
   the engine after the run), the log and these rules give the probability F(u) of a next purchase within u
   of every purchase (:func:`law_check`). So, by the time-rescaling theorem (Brown, Barbieri, Ventura, Kass &
   Frank 2002, Neural Computation 14), U = F(gap) / F(horizon - start) of the observed gaps are independent
   Uniform(0, 1) (a KS test pooled, a chi-square of the deciles of U within each state: non-redeemers,
   redeemers by progress quartile), and the number of purchases followed by another is the sum of the
   probabilities (1 - coin) F(horizon - start), within 4 SE.

Then fast vs reference on the totals, at higher power than tests/test_reference.py: a BG/NBD and a
Pareto/NBD segment, every new customer a member, fixed order values (50 points a purchase), half of them
redeemers, a 2-month expiry and goal gradient 0.5, so that about three quarters of all points expire.

Finding: both engines pass 1 and 2 at every seed tried, points_large's own replications included (550,000
gaps each), and the totals agree; the differences seen were in the customers drawn, not in how they behave
(docs/validation.md).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats
from support import examples  # noqa: F401 (registers the shipped examples this file checks too)
from support.agreement import WORKERS, assert_agree, compare, points_balances, register, runs

from sim.accounting.tables import ReplicationResult
from sim.engines.calendar import Engine
from sim.engines.reference import ReferenceEngine
from sim.model import response as curves
from sim.model.population import segment_laws
from sim.schema import Scenario

K = 4.0
SEGMENT = {"purchases_per_year": {"mean": 4.0, "cv": 0.5}, "order_value": {"mean": 50.0}}
EXPIRY = Scenario.model_validate({
    "name": "expiry", "horizon_months": 12, "replications": 1, "seed": 211,
    "economics": {"gross_margin": 0.3},
    "segments": {"regular": dict(SEGMENT, dropout={"model": "per_purchase", "mean": 0.2}),
                 "loyal": dict(SEGMENT, dropout={"model": "hazard", "annual_churn": 0.3, "cv": 0.5})},
    "acquisition": [{"channel": "web", "initial_customers": 1500, "new_per_month": 50,
                     "segments": {"regular": 0.5, "loyal": 0.5}}],
    "policy": {"enrollment": {"probability": 1.0},
               "points": {"earn_per_currency": 1, "reward_threshold": 200, "reward_value": 5,
                          "redeemer_share": 0.5, "expiry_months_inactive": 2}},
    "response": {"goal_gradient": 0.5},
})
FAST_REPLICATIONS = 24
REFERENCE_REPLICATIONS = 16
#: states of the chi-square: non-redeemers, then redeemers by progress quartile
PROGRESS_EDGES = (0.25, 0.5, 0.75)


def customer_traits(engine: Engine | ReferenceEngine) -> dict[str, np.ndarray]:
    """Latent purchase rate, dropout hazard and probability, member and redeemer flags of every customer, by
    customer id, after the run.

    The fast engine has no public per-customer output: this reads ``Engine.pop`` (read-only), the one place
    these tests depend on its internals (docs/validation.md describes the accessor that would replace it).
    """
    names = ("rate", "hazard", "dropout_p", "member", "redeemer", "spend_mean", "segment")
    if isinstance(engine, Engine):
        return {name: engine.pop.view(name).copy() for name in names}
    return {name: np.array([getattr(c, name) for c in engine.customers]) for name in names}


@dataclass
class LawCheck:
    """The log of one or more replications held to the model's law (module docstring)."""

    u: np.ndarray            # rescaled observed inter-purchase times
    state: np.ndarray        # 0 = no goal gradient, 1-4 = a redeeming member by progress quartile
    continued: int           # purchases followed by another one
    expected: float          # the sum over purchases of P(followed by another before the horizon)
    variance: float          # and of its Bernoulli variance
    expired: float           # points expired (from the log)
    expected_expired: float  # the sum over purchases of balance x P(it expires before the next purchase)
    expired_variance: float  # and of balance^2 x its Bernoulli variance

    @staticmethod
    def pooled(parts: list[LawCheck]) -> LawCheck:
        sums = [sum(getattr(p, name) for p in parts) for name in
                ("continued", "expected", "variance", "expired", "expected_expired", "expired_variance")]
        return LawCheck(np.concatenate([p.u for p in parts]), np.concatenate([p.state for p in parts]), *sums)


def member_responses(scenario: Scenario, traits: dict[str, np.ndarray], ids: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each purchase's member lift, goal gradient g and member dropout multiplier (0, 0, 1 for non-members),
    from the customer's latent traits: the fixed effects where the scenario sets them, else the value curves
    of levers.md section 3 (no tiers in the scenarios checked here)."""
    points, response = scenario.policy.points, scenario.response
    rate = traits["rate"][ids].astype(np.float64)
    mean_rate = np.array([law.purchase_rate.mean for law in segment_laws(scenario)])[traits["segment"][ids]]
    weight = curves.reaction_weight(rate / mean_rate, response.heavy_buyer_damping)
    value = curves.program_value(rate * traits["spend_mean"][ids], points.earn_per_currency, 1.0,
                                 points.reward_value, points.reward_threshold, response.reward_reach_years)
    half = response.half_reward_rate
    lift = (np.full(ids.size, response.member_frequency_lift) if response.member_frequency_lift is not None
            else curves.member_rate_factor(value, weight, response.member_max_lift, half) - 1.0)
    gradient = (np.full(ids.size, response.goal_gradient) if response.goal_gradient is not None
                else curves.goal_gradient_strength(value, weight, response.goal_gradient_max, half))
    dropout = (np.full(ids.size, response.member_dropout_multiplier) if response.member_dropout_multiplier
               is not None else curves.member_dropout_factor(value, weight, response.member_max_retention, half))
    member = traits["member"][ids]
    return np.where(member, lift, 0.0), np.where(member, gradient, 0.0), np.where(member, dropout, 1.0)


def law_check(tx: dict, scenario: Scenario, traits: dict[str, np.ndarray]) -> LawCheck:
    """After purchase j at t_j with balance b_j, an alive member buys at rate a1 = lambda (1 + lift)
    (1 + g min(b_j / threshold, 1)) (g for redeemers only) until the balance expires E later, then at a0 =
    lambda (1 + lift); a hazard customer dies at mu (x the member dropout multiplier) meanwhile, and a
    per-purchase one has already survived the coin min(1, p x multiplier) thrown right after a repeat purchase.
    So P(next purchase within u) = (1 - coin) F(u), F(u) = a1/(a1+mu) (1 - e^-(a1+mu) min(u,E)) +
    [u > E] e^-(a1+mu)E a0/(a0+mu) (1 - e^-(a0+mu)(u-E)); an observed gap gives U = F(gap) / F(H - t_j);
    and the balance b_j expires (before the horizon H) with probability [t_j + E < H] (1 - (1 - coin) F(E))."""
    points = scenario.policy.points
    expiry, horizon = points.expiry_months_inactive / 12.0, scenario.horizon_years
    balance, expires = points_balances(tx, expiry, horizon)
    ids, time = tx["customer_id"], tx["time"]
    member = traits["member"][ids]
    lift, gradient, dropout = member_responses(scenario, traits, ids)
    base = traits["rate"][ids] * (1.0 + lift)
    chasing = member & traits["redeemer"][ids]
    progress = np.minimum(balance / points.reward_threshold, 1.0)
    high = base * np.where(chasing, 1.0 + gradient * progress, 1.0)
    mu = traits["hazard"][ids] * dropout
    repeat = np.r_[False, ids[1:] == ids[:-1]]
    coin = np.where(repeat, np.minimum(1.0, traits["dropout_p"][ids] * dropout), 0.0)

    def within(u: np.ndarray) -> np.ndarray:   # F(u)
        first = high / (high + mu) * -np.expm1(-(high + mu) * np.minimum(u, expiry))
        later = (np.exp(-(high + mu) * expiry) * base / (base + mu)
                 * -np.expm1(-(base + mu) * np.maximum(u - expiry, 0.0)))
        return first + np.where(u > expiry, later, 0.0)

    cap = within(horizon - time)
    follows = np.r_[ids[1:] == ids[:-1], False]
    gap = np.r_[np.diff(time), 0.0]
    u = within(gap)[follows] / cap[follows]
    state = np.where(chasing, 1 + np.searchsorted(PROGRESS_EDGES, progress, side="left"), 0)[follows]
    chance = (1.0 - coin) * cap
    lapse = np.where(time + expiry < horizon, 1.0 - (1.0 - coin) * within(np.full(time.size, expiry)), 0.0)
    return LawCheck(u, state, int(follows.sum()), float(chance.sum()), float((chance * (1 - chance)).sum()),
                    float((balance * expires).sum()), float((balance * lapse).sum()),
                    float((balance**2 * lapse * (1 - lapse)).sum()))


def checked_replication(simulator: Engine | ReferenceEngine, result: ReplicationResult) -> LawCheck:
    """The law check of one replication of EXPIRY, after its run."""
    return law_check(result.transactions, EXPIRY, customer_traits(simulator))


register("expiry", EXPIRY, REFERENCE_REPLICATIONS, extra=checked_replication)


def _fast_replication(replication: int) -> tuple[dict, dict]:
    simulator = Engine(EXPIRY, replication, record_transactions=True)
    return simulator.run().transactions, customer_traits(simulator)


@functools.cache
def fast_runs() -> list[tuple[dict, dict]]:
    """(transactions, customer traits) of FAST_REPLICATIONS replications of EXPIRY by the fast engine
    (without the reference engine, so in the fast tests)."""
    if WORKERS > 1:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
        with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
            return list(pool.map(_fast_replication, range(FAST_REPLICATIONS)))
    return [_fast_replication(r) for r in range(FAST_REPLICATIONS)]


def fast_check(law: Scenario = EXPIRY) -> LawCheck:
    """The fast engine's :func:`fast_runs`, pooled, held to the law of ``law``."""
    return LawCheck.pooled([law_check(tx, law, traits) for tx, traits in fast_runs()])


def assert_law(check: LawCheck, label: str) -> None:
    """Pooled KS of U against Uniform(0, 1), a chi-square of the deciles of U within every state, and the
    number of purchases followed by another and the points expired within 4 SE of their expectations given
    the customers drawn."""
    u, state = check.u, check.state
    ks = stats.kstest(u, "uniform")
    assert ks.pvalue > 1e-3, f"{label}: rescaled gaps are not uniform, KS D = {ks.statistic:.4f}, p = {ks.pvalue:.2g}"
    chi2, df, table = 0.0, 0, []
    for s in np.unique(state):
        counts = np.histogram(u[state == s], bins=10, range=(0.0, 1.0))[0]
        assert counts.sum() >= 1000, f"{label}: state {s} has too few gaps for power"
        chi2 += stats.chisquare(counts).statistic
        df += 9
        table.append(np.round(counts / counts.sum() * 10, 3))
    p = stats.chi2.sf(chi2, df)
    assert p > 1e-3, f"{label}: U deciles by state differ from uniform, chi2 {chi2:.1f} on {df} df, p {p:.2g}\n{table}"
    z = (check.continued - check.expected) / math.sqrt(check.variance)
    assert abs(z) <= K, (f"{label}: {check.continued} purchases followed by another, "
                         f"{check.expected:.1f} expected, z = {z:.2f}")
    z = (check.expired - check.expected_expired) / math.sqrt(check.expired_variance)
    assert abs(z) <= K, (f"{label}: {check.expired:.0f} points expired, {check.expected_expired:.1f} expected "
                         f"given the customers, z = {z:.2f}")


# ---------------------------------------------------------------------------------------------------
# 1. the bookkeeping: exact
# ---------------------------------------------------------------------------------------------------
def assert_points_follow_the_log(name: str) -> None:
    for engine, reps in runs(name).items():
        for number, rep in enumerate(reps):
            (expired, outstanding), (engine_expired, engine_outstanding) = rep["points_log"], rep["points_engine"]
            assert np.array_equal(expired, engine_expired), f"{name} {engine} #{number}: expired by month"
            assert outstanding == engine_outstanding, f"{name} {engine} #{number}: outstanding"


def test_points_follow_the_transaction_log() -> None:
    """Both engines, every replication of tests/test_reference.py's points scenario (two segments, referrals,
    self-selected enrollment, 3-month expiry, goal gradient): month by month, exactly."""
    assert_points_follow_the_log("points")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["expiry", "everything", "example:points_program", "example:tiered_referral"])
def test_points_follow_the_transaction_log_every_lever(name: str) -> None:
    """The same with tiers (earn multipliers), blanket windows, win-back reactivation, targeted offers and
    referral bonuses (runs shared with the slow agreement tests)."""
    assert_points_follow_the_log(name)


# ---------------------------------------------------------------------------------------------------
# 2. the law of the log: exact, each engine on its own
# ---------------------------------------------------------------------------------------------------
def test_fast_engine_purchase_law_under_points() -> None:
    """24 replications of 2,100 customers, 150,000 gaps. Detectable (measured by holding the log to a wrong
    law, as test_law_check_detects_a_wrong_law does): every purchase rate 2% off, the goal gradient 20% off
    (0.4 or 0.6 for 0.5), the member lift 0 or 0.1 for 0.05, the reset by expiry a month early or late, every
    dropout (coin and hazard) 6% off; 4 SE of the purchases followed by another: 0.44%, of the points expired
    given the customers drawn: 1.2%."""
    check = fast_check()
    assert check.u.size >= 100_000
    assert_law(check, "fast engine")


@pytest.mark.slow
def test_reference_engine_purchase_law_under_points() -> None:
    """16 replications (shared with the agreement test below); detectable about 1.2 times the differences
    above."""
    check = LawCheck.pooled([rep["extra"] for rep in runs("expiry")["ref"]])
    assert check.u.size >= 60_000
    assert_law(check, "reference engine")


def misread(**changes) -> Scenario:
    """EXPIRY with some response or points keys changed (the law the log is then held to)."""
    response = {k: v for k, v in changes.items() if k in type(EXPIRY.response).model_fields}
    points = {k: v for k, v in changes.items() if k not in response}
    policy = EXPIRY.policy.model_copy(update={"points": EXPIRY.policy.points.model_copy(update=points)})
    return EXPIRY.model_copy(update={"response": EXPIRY.response.model_copy(update=response), "policy": policy})


@pytest.mark.parametrize("changes", [{"goal_gradient": 0.4}, {"expiry_months_inactive": 3},
                                     {"member_dropout_multiplier": 1.0}],
                         ids=["goal_gradient", "expiry", "dropout"])
def test_law_check_detects_a_wrong_law(changes: dict) -> None:
    """The check can fail: the fast engine's log held to a law with the goal gradient 20% lower, with the
    progress reset by expiry a month late, or with members dropping out like everybody else, is rejected."""
    with pytest.raises(AssertionError, match="not uniform|differ from uniform|followed by another"):
        assert_law(fast_check(misread(**changes)), "misread")


# ---------------------------------------------------------------------------------------------------
# 3. fast vs reference on the totals
# ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_points_expired_fast_vs_reference_high_power() -> None:
    """16 replications of EXPIRY by each engine (2,100 customers, about 300,000 points expired each).
    Detectable (4 combined SE / mean): points_expired 1.5% (tests/test_reference.py's points scenario: 7.4%),
    points_earned 2.0%, points_outstanding 6.8%, points_redeemed 13%; z of points_expired at these seeds:
    -1.6."""
    metrics = ("points_earned", "points_redeemed", "points_expired", "points_outstanding", "purchases",
               "members_end")
    assert_agree("expiry", metrics)
    _, ref, se, _ = compare("expiry", "points_expired")
    assert K * se <= 0.02 * ref, "the comparison must detect 2% of points_expired"


def test_expiry_scenario_expires_most_points() -> None:
    """The scenario is built so that expiry dominates: most points earned expire (reference-free check)."""
    result = Engine(EXPIRY, 0).run().totals
    assert result["points_expired"] > 0.6 * result["points_earned"]
    assert result["points_redeemed"] > 0
    assert math.isclose(result["points_earned"], result["points_redeemed"] + result["points_expired"]
                        + result["points_outstanding"])
