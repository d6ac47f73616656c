"""Engine speed benchmark: the no-policy model and every policy lever on, 3 years, one replication.

Each measurement runs in a fresh subprocess so that the figures are whole-process (imports, scenario
loading, simulation, results tables) and peak memory is that process's own. On a shared machine, repeat
(--repeat N: the plan is run N times over, in turns) and read the best wall time; the process's CPU time
is reported beside it. "x naive" is customers/s over the naive simpy script's, best against best, and with
repeats also turn by turn (each run against the naive run of its turn, minutes apart at most). There are
two naive scripts, one simpy process per customer each: ``naive``, the no-policy model of one BG/NBD segment
(the plain baseline of every row), and ``naive-points``, the points scenario's own model (both segments,
referrals, enrollment, points with the goal gradient, redemption and expiry, member costs; its agreement with
the engine is tested in tests/test_bench_naive.py), the baseline of the points rows. Prints a table and
writes bench/out/bench_engine.json (every run's figures, in the order taken).

    .venv/bin/python bench/bench_engine.py                 # 1M and 10M customers, the naive scripts at 20k,
                                                           # the CDNOW example at 10M, a points program
                                                           # at 2M, every lever at 1M and 4M, with and
                                                           # without the targeted offer
    .venv/bin/python bench/bench_engine.py --repeat 3      # best of 3 of each, taken in turns
    .venv/bin/python bench/bench_engine.py --sizes 100000 --cdnow-sizes --lever-sizes 100000 \
        --untargeted-sizes                                 # quick
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: A retail mix: BG/NBD and Pareto/NBD segments, heterogeneous spend, organic referrals.
SEGMENTS = {
    "regular": {
        "purchases_per_year": {"mean": 4.0, "cv": 0.9},
        "dropout": {"model": "per_purchase", "mean": 0.15, "cv": 0.6},
        "order_value": {"mean": 55.0, "cv": 0.5, "between_cv": 0.4, "growth_per_year": 0.03},
        "referrals_per_year": {"mean": 0.05},
    },
    "loyal": {
        "purchases_per_year": {"mean": 9.0, "cv": 0.6},
        "dropout": {"model": "hazard", "annual_churn": 0.2, "cv": 0.8},
        "order_value": {"mean": 75.0, "cv": 0.4, "between_cv": 0.3},
        "referrals_per_year": {"mean": 0.15},
    },
}


#: Every lever of the policy block at once.
POLICY = {
    "enrollment": {"probability": 0.6, "self_selection": 1.0},
    "points": {"earn_per_currency": 1, "reward_threshold": 500, "reward_value": 10, "reward_cost_ratio": 0.7,
               "redeemer_share": 0.75, "expiry_months_inactive": 12},
    "tiers": [{"name": "silver", "min_spend_12m": 300, "earn_multiplier": 1.25, "frequency_lift": 0.02},
              {"name": "gold", "min_spend_12m": 800, "earn_multiplier": 1.5, "frequency_lift": 0.05,
               "dropout_multiplier": 0.85, "benefit_cost_per_year": 15}],
    "discounts": [
        {"name": "black-friday", "kind": "blanket", "depth": 0.2, "start_month": 11, "every_months": 12,
         "duration_days": 4},
        {"name": "win-back", "kind": "winback", "inactive_days": 120, "depth": 0.15, "valid_days": 30,
         "message_cost": 0.1},
        {"name": "vip", "kind": "targeted", "target": "top_predicted_clv", "share": 0.2, "every_months": 3,
         "depth": 0.1, "valid_days": 30, "message_cost": 0.05},
    ],
    "referral": {"referrer_bonus": 10, "referee_bonus": 10},
    "costs": {"fixed_per_month": 5000, "per_member_per_year": 1.5},
}


#: A plain points program (the levers each customer meets on its own): membership, points with expiry,
#: member and fixed costs.
POINTS_POLICY = {key: POLICY[key] for key in ("enrollment", "points", "costs")}
#: Every lever but the targeted offer: no round ranks the customers against each other, so each one's life
#: runs in one go. Beside the every-lever rows, what the quarterly rankings cost.
UNTARGETED_POLICY = {**POLICY, "discounts": [offer for offer in POLICY["discounts"] if offer["kind"] != "targeted"]}


def scenario_dict(customers: int, levers: bool = False, points: bool = False, targeted: bool = True) -> dict:
    extra = ({"policy": POLICY if targeted else UNTARGETED_POLICY} if levers else {"policy": POINTS_POLICY} if points
             else {})
    return {
        **extra,
        "name": f"bench-{customers}",
        "horizon_months": 36,
        "replications": 1,
        "seed": 1,
        "economics": {"gross_margin": 0.3, "cost_to_serve_per_order": 4.0},
        "segments": SEGMENTS,
        "acquisition": [{"channel": "web", "cac": 30.0, "initial_customers": customers,
                         "segments": {"regular": 0.8, "loyal": 0.2}}],
    }


def child_fast(customers: int, levers: bool = False, points: bool = False, targeted: bool = True) -> dict:
    """Runs inside the subprocess: the fast engine on the retail mix (timed from its imports to its last table)."""
    start = time.perf_counter()
    from sim.schema import Scenario

    return _run_timed(start, Scenario.model_validate(scenario_dict(customers, levers, points, targeted)))


def child_cdnow(customers: int) -> dict:
    """The shipped CDNOW example (BG/NBD and Gamma-Gamma at CDNOW's published parameters, no referrals), all
    ``customers`` acquired at the start, 36 months: about 3.8 purchases a customer, near the event density of
    the numpy prototype of the vectorised engine, against about 9 in the retail mix."""
    start = time.perf_counter()
    from sim.input.scenarios import load_scenario

    return _run_timed(start, load_scenario(HERE.parent / "scenarios" / "cdnow_baseline.yaml", [
        f"acquisition.0.initial_customers={customers}", "acquisition.0.new_per_month=0", "horizon_months=36",
        "replications=1"]))


def _run_timed(start: float, scenario) -> dict:
    """Runs ``scenario`` on the fast engine; ``start`` is when the child began importing."""
    from sim.experiments.replications import run_scenario

    imported = time.perf_counter()
    result = run_scenario(scenario)
    totals = result.replications[0].totals
    return {"import_s": imported - start, "simulate_s": time.perf_counter() - imported, "purchases": totals["purchases"],
            "customers": totals["customers_acquired"], "events": result.events}


def child_naive(customers: int) -> dict:
    """One simpy process per customer (the approach docs/model.md, section 6, explains we avoid), same BG/NBD segment."""
    import numpy as np
    import simpy

    start = time.perf_counter()
    gen = np.random.default_rng(1)
    seg = SEGMENTS["regular"]
    shape = 1 / seg["purchases_per_year"]["cv"] ** 2
    rates = gen.gamma(shape, seg["purchases_per_year"]["mean"] / shape, customers)
    mean_p, cv_p = seg["dropout"]["mean"], seg["dropout"]["cv"]
    total = (1 - mean_p) / (cv_p**2 * mean_p) - 1
    drop = gen.beta(mean_p * total, (1 - mean_p) * total, customers)
    env = simpy.Environment()
    purchases = [0]

    def customer(rate: float, p: float):
        purchases[0] += 1  # acquisition purchase
        while True:
            yield env.timeout(gen.exponential(1 / rate))
            purchases[0] += 1
            if gen.random() < p:
                return

    for rate, p in zip(rates, drop):
        env.process(customer(rate, p))
    env.run(until=3.0)
    return {"simulate_s": time.perf_counter() - start, "purchases": purchases[0], "customers": customers,
            "events": purchases[0]}


def naive_points_model(customers: int) -> dict:
    """The points scenario's parameters as the naive points script reads them (:func:`child_naive_points`):
    computed here by the package (the segments' laws, the enrollment curve's intercepts, the response
    defaults), outside the script's timing, so that the script simulates the model and does not derive it."""
    from sim.model.population import segment_laws
    from sim.model.program import Program
    from sim.schema import Scenario

    scenario = Scenario.model_validate(scenario_dict(customers, points=True))
    laws = segment_laws(scenario)
    program = Program(scenario, laws)
    policy, mix = scenario.policy, scenario.segment_mix(scenario.acquisition[0])
    response = scenario.response
    assert None in (response.member_frequency_lift, response.member_dropout_multiplier, response.goal_gradient) \
        and not policy.tiers and not policy.discounts and policy.referral is None, "the script's model: value curves"

    def gamma(law) -> dict:
        return {"mean": law.mean, "shape": law.shape}

    segments = [{"share": mix.get(law.name, 0.0), "rate": gamma(law.purchase_rate),
                 "beta": None if law.dropout is None else [law.dropout.a, law.dropout.b],
                 "hazard": None if law.hazard is None else gamma(law.hazard),
                 "spend": {"mean": law.spend.mean, "p": law.spend.p, "q": law.spend.q,
                           "growth": law.spend.growth_per_year},
                 "referral": gamma(law.referral_rate), "referral_segment": law.referral_segment,
                 "intercept": program.enrollment_intercept[index]}
                for index, law in enumerate(laws)]
    assert all(law.dropout is None or law.dropout.a is not None for law in laws)
    points, costs = policy.points, policy.costs
    return {
        "customers": customers, "horizon": scenario.horizon_years, "segments": segments,
        "join": {"probability": policy.enrollment.probability, "selection": policy.enrollment.self_selection},
        "response": {name: getattr(response, name) for name in (
            "heavy_buyer_damping", "reward_reach_years", "half_reward_rate", "member_max_lift",
            "member_max_retention", "goal_gradient_max")},
        "points": {name: getattr(points, name) for name in (
            "earn_per_currency", "reward_threshold", "reward_value", "reward_cost_ratio", "redeemer_share",
            "expiry_months_inactive")},
        "economics": {"gross_margin": scenario.economics.gross_margin,
                      "cost_to_serve": scenario.economics.cost_to_serve_per_order,
                      "cac": scenario.acquisition[0].cac, "fixed_per_month": costs.fixed_per_month,
                      "per_member_per_year": costs.per_member_per_year, "months": scenario.horizon_months},
    }


def child_naive_points(model: dict, seed: int = 1) -> dict:
    """The points program's model (the benchmark's points scenario: the retail mix with its referrals,
    enrollment with self-selection, points with the goal gradient, redemption and expiry, member and fixed
    costs) as a throwaway script would simulate it: one simpy process per customer, plain floats, draws from
    one numpy Generator, totals summed as it goes. ``model``: :func:`naive_points_model`. The responses are
    the value curves of docs/levers.md (section 3), at the customer's own rate and order value."""
    import math

    import numpy as np
    import simpy

    start = time.perf_counter()
    gen = np.random.default_rng(seed)
    env = simpy.Environment()
    horizon, segments, join = model["horizon"], model["segments"], model["join"]
    response, points, economics = model["response"], model["points"], model["economics"]
    threshold, earn = points["reward_threshold"], points["earn_per_currency"]
    expiry = points["expiry_months_inactive"] / 12.0
    totals = dict.fromkeys(("customers_acquired", "referred_customers", "purchases", "gross_revenue",
                            "reward_cost", "points_earned", "points_redeemed", "points_expired", "member_cost",
                            "members_acquired", "events"), 0.0)

    def trait(law: dict) -> float:
        return law["mean"] if law["shape"] is None else gen.gamma(law["shape"], law["mean"] / law["shape"])

    def customer(segment: int, referred: bool):
        seg = segments[segment]
        born = env.now
        rate, spend = trait(seg["rate"]), seg["spend"]
        dropout_p = 0.0 if seg["beta"] is None else gen.beta(*seg["beta"])
        hazard = 0.0 if seg["hazard"] is None else trait(seg["hazard"])
        spend_mean = spend["mean"] * (spend["q"] - 1.0) / gen.standard_gamma(spend["q"])
        within, growth = spend["p"], 1.0 + spend["growth"]
        referral_rate = trait(seg["referral"])
        mean_rate = seg["rate"]["mean"]
        joining = join["probability"] if seg["intercept"] is None else \
            1.0 / (1.0 + math.exp(-(seg["intercept"] + join["selection"] * math.log(rate / mean_rate))))
        member = gen.random() < joining
        redeemer = gen.random() < points["redeemer_share"]
        lift, gradient, retention = 1.0, 0.0, 1.0
        if member:   # the value offered at the customer's own pace, and how much this customer reacts to it
            x = rate / mean_rate
            weight = (1.0 + response["heavy_buyer_damping"]) / (1.0 + response["heavy_buyer_damping"] * x * x)
            reach = max(0.0, 1.0 - threshold / (rate * spend_mean * earn) / response["reward_reach_years"])
            value = earn * points["reward_value"] / threshold * reach
            share = value / (value + response["half_reward_rate"])
            lift = 1.0 + response["member_max_lift"] * weight * share
            gradient = response["goal_gradient_max"] * weight * share if redeemer else 0.0
            retention = 1.0 / (1.0 + response["member_max_retention"] * weight * share)
        drop = min(1.0, dropout_p * retention)
        death = born + gen.exponential(1.0 / (hazard * retention)) if hazard > 0 else math.inf
        referral_at = born + gen.exponential(1.0 / referral_rate) if referral_rate > 0 else math.inf
        balance, made, revenue, earned, redeemed, expired, events = 0, 0, 0.0, 0, 0, 0, 0
        now, last, alive = born, born, True
        purchase_at = born   # the acquisition purchase
        while True:
            expires = last + expiry if balance else math.inf
            when = min(purchase_at, referral_at, death, expires) if alive else expires   # gone: points still expire
            if when >= horizon:
                break
            if when > now:
                yield env.timeout(when - now)
            now = when
            events += 1
            if when == expires:
                expired += balance
                balance = 0
                purchase_at = now + gen.exponential(1.0 / (rate * lift))   # the goal gradient gone: at the new rate
            elif when == purchase_at:
                value = spend_mean * gen.standard_gamma(within) / within * growth ** (now - born)
                revenue += value
                if member:
                    if redeemer and balance >= threshold:
                        rewards = balance // threshold
                        balance -= rewards * threshold
                        redeemed += rewards * threshold
                    gained = math.floor(value * earn)
                    balance += gained
                    earned += gained
                last, made = now, made + 1
                if made > 1 and gen.random() < drop:
                    death = now   # BG/NBD: a coin after each repeat purchase
                else:
                    pulled = lift * (1.0 + gradient * min(balance / threshold, 1.0))
                    purchase_at = now + gen.exponential(1.0 / (rate * pulled))
            elif when == referral_at:
                env.process(customer(seg["referral_segment"], True))
                referral_at = now + gen.exponential(1.0 / referral_rate)
            if alive and death <= now:
                alive = False
        for name, amount in (("customers_acquired", 1), ("referred_customers", referred), ("purchases", made),
                             ("members_acquired", member), ("gross_revenue", revenue), ("points_earned", earned),
                             ("points_redeemed", redeemed), ("points_expired", expired), ("events", events)):
            totals[name] += amount
        if member:   # for its time alive
            totals["member_cost"] += (min(death, horizon) - born) * economics["per_member_per_year"]

    shares = [seg["share"] for seg in segments]
    counts = [math.floor(share * model["customers"]) for share in shares]
    counts[int(np.argmax(shares))] += model["customers"] - sum(counts)
    for segment, count in enumerate(counts):
        for _ in range(count):
            env.process(customer(segment, False))
    env.run(until=horizon)
    totals["reward_cost"] = totals["points_redeemed"] / threshold * points["reward_value"] * points["reward_cost_ratio"]
    totals["profit"] = (economics["gross_margin"] * totals["gross_revenue"]
                        - economics["cost_to_serve"] * totals["purchases"] - totals["reward_cost"]
                        - totals["member_cost"] - economics["fixed_per_month"] * economics["months"]
                        - economics["cac"] * model["customers"])
    return {"simulate_s": time.perf_counter() - start, "purchases": totals["purchases"],
            "customers": totals["customers_acquired"], "events": totals.pop("events"), "totals": totals}


def measure(kind: str, customers: int) -> dict:
    model = ""   # the naive points script's parameters, from the package in a process of its own (untimed), so
    # that this one's memory stays small: a child's peak memory starts from its parent's
    if kind == "naive-points":
        model = subprocess.run([sys.executable, __file__, "--child", "naive-model", str(customers)],
                               capture_output=True, text=True, check=True).stdout
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(customers)], capture_output=True,
                         text=True, check=True, input=model)
    wall = time.perf_counter() - start
    figures = json.loads(out.stdout)
    figures.update(kind=kind, wall_s=wall, customers_per_s=figures["customers"] / wall,
                   events_per_s=figures["events"] / wall, purchases_per_s=figures["purchases"] / wall,
                   bytes_per_customer=figures["peak_rss_bytes"] / figures["customers"])
    return figures


def interleaved(repeat: int, plan: list[tuple[str, int]]) -> list[list[dict]]:
    """``repeat`` runs of each measurement of ``plan``, taken in turn (the whole plan once, then again), so
    that a machine that slows down or speeds up over the minutes of a benchmark touches every measurement
    alike; each measurement's runs in the order they were taken."""
    runs: list[list[dict]] = [[] for _ in plan]
    for _ in range(repeat):
        for taken, (kind, customers) in zip(runs, plan, strict=True):
            taken.append(measure(kind, customers))
    return runs


def times_naive(runs: list[dict], naive: list[dict]) -> list[float]:
    """Customers/s over the naive script's, run by run: each run against the naive run of the same turn."""
    return [run["customers_per_s"] / script["customers_per_s"] for run, script in zip(runs, naive, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--lever-sizes", type=int, nargs="*", default=[1_000_000, 4_000_000])
    parser.add_argument("--untargeted-sizes", type=int, nargs="*", default=[1_000_000, 4_000_000],
                        help="every lever but the targeted offer (no ranking rounds)")
    parser.add_argument("--points-sizes", type=int, nargs="*", default=[2_000_000])
    parser.add_argument("--cdnow-sizes", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--naive-size", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is shown")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, customers = args.child[0], int(args.child[1])
        if kind == "naive-model":
            print(json.dumps(naive_points_model(customers)))
            return
        child = {"fast": child_fast, "levers": lambda n: child_fast(n, levers=True),
                 "untargeted": lambda n: child_fast(n, levers=True, targeted=False),
                 "points": lambda n: child_fast(n, points=True), "naive": child_naive,
                 "naive-points": lambda n: child_naive_points(json.load(sys.stdin)), "cdnow": child_cdnow}[kind]
        figures = child(customers)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        figures.update(peak_rss_bytes=usage.ru_maxrss * 1024, cpu_s=usage.ru_utime + usage.ru_stime)
        print(json.dumps(figures))
        return
    # The package's bytecode, as an installed package has it: a machine that sets PYTHONDONTWRITEBYTECODE
    # would otherwise compile every module again in every child (0.04-0.06 s a process here).
    compileall.compile_dir(HERE.parent / "sim", quiet=1)
    naive_plan = [("naive", args.naive_size)] if args.naive_size else []
    if args.naive_size and args.points_sizes:
        naive_plan.append(("naive-points", args.naive_size))
    plan = naive_plan + [("fast", n) for n in args.sizes] + [("cdnow", n) for n in args.cdnow_sizes] \
        + [("points", n) for n in args.points_sizes] + [("levers", n) for n in args.lever_sizes] \
        + [("untargeted", n) for n in args.untargeted_sizes]
    measured = interleaved(args.repeat, plan)
    scripts = {runs[0]["kind"]: runs for runs in measured[:len(naive_plan)]}
    print(f"{'engine':12} {'customers':>11} {'wall s':>8} {'cpu s':>7} {'sim s':>7} {'customers/s':>12} "
          f"{'events/s':>11} {'purchases/s':>12} {'peak MiB':>9} {'B/customer':>10} {'x naive':>8}")
    for runs in measured:
        r = min(runs, key=lambda run: run["wall_s"])   # the best of the runs
        # against the naive script of the same model where there is one (the points program), else the plain one
        naive = scripts.get("naive-points" if r["kind"] in ("points", "naive-points") else "naive")
        best_naive = min(naive, key=lambda run: run["wall_s"]) if naive else None
        ratio = f"{r['customers_per_s'] / best_naive['customers_per_s']:>8.1f}" if naive else ""
        print(f"{r['kind']:12} {r['customers']:>11,.0f} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['simulate_s']:>7.2f} "
              f"{r['customers_per_s']:>12,.0f} {r['events_per_s']:>11,.0f} {r['purchases_per_s']:>12,.0f} "
              f"{r['peak_rss_bytes'] / 2**20:>9,.0f} {r['bytes_per_customer']:>10,.0f} {ratio}")
        if len(runs) > 1:
            walls = ", ".join(f"{run['wall_s']:.2f}" for run in runs)
            print(f"{'':12} {'':>11} walls in the order taken: {walls}")
        for name, script in scripts.items():
            if runs is script or (r["kind"] != "points" and script is not naive):
                continue
            best = min(script, key=lambda run: run["wall_s"])["customers_per_s"]
            turns = ", ".join(f"{ratio:.1f}" for ratio in times_naive(runs, script))
            print(f"{'':12} {'':>11} x {name}: {r['customers_per_s'] / best:.1f} best against best; "
                  f"turn by turn {turns}")
        if r["kind"] == "naive-points":   # the same model: its totals against the engine's, per customer acquired
            print(f"{'':12} {'':>11} purchases per customer acquired {r['purchases'] / r['customers']:.3f} "
                  f"(tests/test_bench_naive.py checks it simulates the engine's model)")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_engine.json").write_text(json.dumps([run for runs in measured for run in runs], indent=2) + "\n")


if __name__ == "__main__":
    main()
