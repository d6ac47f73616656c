"""Accounting: monthly flows and cohort sums, accumulated round by round, and the metrics built from them.

Money follows ``docs/model.md`` section 5: ``gross_revenue`` is list price; ``net_revenue = gross_revenue - discount_cost``;
``gross_margin = margin rate x gross_revenue``; ``program_cost`` is the sum of its parts; ``profit =
gross_margin - cost_to_serve - program_cost - acquisition_cost``. Each cost is recorded once, where it occurs.
Discounting is continuous: a flow at time t (years) is worth ``exp(-delta t)`` with ``delta = ln(1 + rate)``,
from the scenario start for ``npv_profit`` and from the customer's acquisition for CLV.
"""

from __future__ import annotations

import math

import numpy as np

from sim.accounting.metrics import PROGRAM_COSTS

#: Flows recorded per month (summed), in the order they appear in timeseries.parquet.
FLOWS = (
    "customers_acquired", "referred_customers", "customers_dropped_out", "customers_reactivated", "purchases",
    "repeat_purchases",
    "gross_revenue", "discount_cost", "reward_cost", "tier_benefit_cost",
    "referral_bonus_cost", "message_cost", "member_cost", "program_fixed_cost", "acquisition_cost",
    "points_earned", "points_redeemed", "points_expired", "npv_profit",
)
#: Stocks read at each month's end.
STOCKS = ("active_customers_end", "members_end", "points_outstanding", "points_liability")
#: Per-cohort sums (cohorts.parquet; clv, cac and network_value are divided by customers at the end).
#: ``clv`` holds discounted contributions, ``program`` the discounted program costs attributable to customers,
#: ``clv_growth`` the part of ``clv``'s margin due to spend growth with tenure and ``learning`` the learning
#: value of the customers' discounted alive years (CLV in four parts, ``docs/model.md``).
COHORT_SUMS = ("customers", "repeat_purchases", "net_revenue", "clv", "program", "cac", "active_end",
               "network_value", "clv_growth", "learning")
#: Sums over members only, for the naive member-vs-non-member comparison (self-selection bias).
MEMBER_SUMS = ("members_acquired", "member_purchases", "member_repeat_purchases", "member_gross_revenue")


class Ledger:
    """Sums of one replication. ``month`` is the 0-based month index; ``cohort`` an index of the cohort table."""

    def __init__(self, horizon_months: int, cohort_count: int, margin_rate: float, cost_per_order: float,
                 annual_discount_rate: float, learning_value: float = 0.0) -> None:
        self.horizon_months = horizon_months
        self.margin_rate = margin_rate
        self.cost_per_order = cost_per_order
        self.delta = math.log1p(annual_discount_rate)
        #: ``economics.learning_value_per_customer_year``: money per discounted customer-year alive.
        self.learning_value = learning_value
        self.monthly = {name: np.zeros(horizon_months) for name in FLOWS + STOCKS}
        self.cohort = {name: np.zeros(cohort_count) for name in COHORT_SUMS}
        self.member = dict.fromkeys(MEMBER_SUMS, 0.0)
        self._member_arrivals = np.zeros(horizon_months)
        self._member_dropouts = np.zeros(horizon_months)
        self._member_reactivations = np.zeros(horizon_months)
        #: Existing customers (``existing_customers``): their cohorts, and how many were alive (and members)
        #: at the start, which the stocks start from.
        self.existing_cohorts: list[int] = []
        self.opening_active = 0
        self._opening_members = 0

    def discount(self, t: np.ndarray | float) -> np.ndarray | float:
        """Present value factor of a flow at time ``t`` years after the reference point."""
        return np.exp(-self.delta * t)

    def _add_by_cohort(self, name: str, cohort: np.ndarray, weights: np.ndarray | None = None) -> None:
        sums = np.bincount(cohort, weights=weights)
        self.cohort[name][: len(sums)] += sums

    def _add_value(self, name: str, cohort: np.ndarray, parent: np.ndarray | None, values: np.ndarray) -> None:
        """Add per-customer discounted values to their cohort and, for referred customers, to the
        network value of their referrer's cohort."""
        self._add_by_cohort(name, cohort, values)
        if parent is not None:
            referred = parent >= 0
            if referred.any():
                sign = 1.0 if name == "clv" else -1.0
                self._add_by_cohort("network_value", parent[referred], sign * values[referred])

    def record_arrivals(self, month: int, cohort: int, count: int, times: np.ndarray, cac: float, referred: bool,
                        *, referral_bonus: np.ndarray | None = None, members: int = 0) -> None:
        """New customers (their first purchase is recorded separately, as a purchase).

        ``referral_bonus`` (per referred customer) is program cost, shown as the referral cohort's cac.
        """
        self.monthly["customers_acquired"][month] += count
        self.cohort["customers"][cohort] += count
        if referred:
            self.monthly["referred_customers"][month] += count
        if cac:
            self.monthly["acquisition_cost"][month] += cac * count
            self.monthly["npv_profit"][month] -= cac * float(np.sum(self.discount(times)))
            self.cohort["cac"][cohort] += cac * count
        if referral_bonus is not None:
            bonus = float(referral_bonus.sum())
            self.monthly["referral_bonus_cost"][month] += bonus
            self.monthly["npv_profit"][month] -= float(np.sum(self.discount(times) * referral_bonus))
            self.cohort["cac"][cohort] += bonus
        if members:
            self.member["members_acquired"] += members
            self._member_arrivals[month] += members

    def record_member_arrivals(self, counts: np.ndarray) -> None:
        """Members among the arrivals, counted by month (engines that count them apart from the arrivals)."""
        self.member["members_acquired"] += int(counts.sum())
        self._member_arrivals += counts

    def record_alive_years(self, cohort: np.ndarray, acquired_at: np.ndarray, begin: np.ndarray,
                           end: np.ndarray) -> None:
        """The learning value of customers alive from ``begin`` to ``end`` (years; cut at the horizon, nothing
        when ``end <= begin``), discounted to their acquisition at ``acquired_at``: ``learning_value`` times
        their discounted alive years, ``integral exp(-delta (t - acquired_at)) dt`` over the spell
        (``docs/model.md``, "CLV in four parts"). Nothing is recorded at a learning value of 0."""
        if not self.learning_value or not len(cohort):
            return
        begin = np.asarray(begin, dtype=np.float64)
        alive = np.maximum(np.minimum(end, self.horizon_months / 12.0) - begin, 0.0)
        if self.delta:
            years = -np.expm1(-self.delta * alive) / self.delta * np.exp(-self.delta * (begin - acquired_at))
        else:
            years = alive
        self._add_by_cohort("learning", cohort, self.learning_value * years)

    def record_referral_bonuses(self, month: np.ndarray, cohort: np.ndarray, times: np.ndarray,
                                bonus: np.ndarray) -> None:
        """Referral bonuses paid for referred customers arriving at ``times`` (months ``month``, cohorts
        ``cohort``): program cost, shown as the referral cohorts' cac, as :meth:`record_arrivals` books them."""
        months = self.horizon_months
        self.monthly["referral_bonus_cost"] += np.bincount(month, weights=bonus, minlength=months)
        self.monthly["npv_profit"] -= np.bincount(month, weights=self.discount(times) * bonus, minlength=months)
        self._add_by_cohort("cac", cohort, bonus)

    def record_existing(self, cohort: int, count: int, alive: int, members: int = 0) -> None:
        """The firm's existing customers at the start: ``count`` in ``cohort``, ``alive`` of them still active
        (and ``members`` of those in the program). They are not acquisitions: no acquisition cost, not in
        ``customers_acquired``."""
        self.cohort["customers"][cohort] += count
        if cohort not in self.existing_cohorts:
            self.existing_cohorts.append(cohort)
        self.opening_active += alive
        self._opening_members += members

    def factors(self, times: np.ndarray, acquired_at: np.ndarray,
                arrival_discount: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Present-value factors of flows at ``times``: from the scenario start, from each acquisition.
        ``arrival_discount`` is :meth:`discount` of ``acquired_at`` if the caller keeps it."""
        from_start = self.discount(times)
        return from_start, from_start / (self.discount(acquired_at) if arrival_discount is None else arrival_discount)

    def record_purchases(self, month: int, cohort: np.ndarray, times: np.ndarray, acquired_at: np.ndarray,
                         list_value: np.ndarray, repeat: np.ndarray, *, parent: np.ndarray | None = None,
                         member: np.ndarray | None = None,
                         factors: tuple[np.ndarray, np.ndarray] | None = None,
                         growth: np.ndarray | None = None) -> None:
        """Orders at list price ``list_value`` at ``times`` (years); discounts are recorded as a cost.

        ``factors`` are :meth:`factors` of ``times`` and ``acquired_at`` if the caller has them already.
        ``growth``: each order's spend growth with tenure (:func:`sim.engines.loops.tenure_growth`, the factor
        ``list_value`` includes); the margin on ``list_value - list_value / growth`` goes to ``clv_growth``.
        """
        count = len(times)
        gross = float(list_value.sum())
        monthly = self.monthly
        monthly["purchases"][month] += count
        monthly["repeat_purchases"][month] += int(np.count_nonzero(repeat))
        monthly["gross_revenue"][month] += gross
        contribution = self.margin_rate * list_value - self.cost_per_order
        from_start, from_acquisition = factors if factors is not None else self.factors(times, acquired_at)
        # not np.dot: BLAS threads would spin on both cores and fight the process pool
        monthly["npv_profit"][month] += float(np.sum(from_start * contribution))
        self._add_value("clv", cohort, parent, from_acquisition * contribution)
        if growth is not None:
            grown = self.margin_rate * (list_value - list_value / growth)
            self._add_by_cohort("clv_growth", cohort, from_acquisition * grown)
        self._add_by_cohort("net_revenue", cohort, list_value)
        self._add_by_cohort("repeat_purchases", cohort, repeat)
        if member is not None and member.any():
            self.member["member_purchases"] += int(np.count_nonzero(member))
            self.member["member_repeat_purchases"] += int(np.count_nonzero(member & repeat))
            self.member["member_gross_revenue"] += float(np.sum(list_value * member))

    def record_cost(self, name: str, month: int, cohort: np.ndarray, times: np.ndarray, acquired_at: np.ndarray,
                    amounts: np.ndarray, *, parent: np.ndarray | None = None,
                    factors: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """A program cost attributable to customers (it lowers their CLV), incurred at ``times``."""
        self.monthly[name][month] += float(amounts.sum())
        from_start, from_acquisition = factors if factors is not None else self.factors(times, acquired_at)
        self.monthly["npv_profit"][month] -= float(np.sum(from_start * amounts))
        self._add_value("program", cohort, parent, from_acquisition * amounts)
        if name == "discount_cost":  # net revenue is list minus discounts
            self._add_by_cohort("net_revenue", cohort, -amounts)

    def record_costs(self, amounts: dict[str, np.ndarray], month: int, cohort: np.ndarray,
                     factors: tuple[np.ndarray, np.ndarray], *, parent: np.ndarray | None = None) -> None:
        """Several program costs (not discounts) of the same customers at the same times: :meth:`record_cost`
        each, with one pass over the cohorts for their total; ``factors`` as :meth:`factors` gives them."""
        from_start, from_acquisition = factors
        total = None
        for name, values in amounts.items():
            self.monthly[name][month] += float(values.sum())
            self.monthly["npv_profit"][month] -= float(np.sum(from_start * values))
            total = values if total is None else total + values
        if total is not None:
            self._add_value("program", cohort, parent, from_acquisition * total)

    def record_fixed_cost(self, name: str, month: int, amount: float, time: float) -> None:
        """A cost of the program as a whole (not in any customer's CLV)."""
        self.monthly[name][month] += amount
        self.monthly["npv_profit"][month] -= amount * float(self.discount(time))

    def record_points(self, month: int, *, earned: int = 0, redeemed: int = 0, expired: int = 0) -> None:
        self.monthly["points_earned"][month] += earned
        self.monthly["points_redeemed"][month] += redeemed
        self.monthly["points_expired"][month] += expired

    def record_reactivations(self, month: int, earlier_death_months: np.ndarray, members: np.ndarray) -> None:
        """Dropped-out customers won back: their earlier dropout is counted now (the final one at the end).
        A month of -1 is a dropout before the start (an existing customer), not counted in the horizon."""
        self.monthly["customers_reactivated"][month] += len(earlier_death_months)
        counted = earlier_death_months >= 0
        np.add.at(self.monthly["customers_dropped_out"], earlier_death_months[counted], 1)
        self._member_reactivations[month] += int(np.count_nonzero(members))
        np.add.at(self._member_dropouts, earlier_death_months[members & counted], 1)

    def record_member_reactivations(self, counts: np.ndarray) -> None:
        """Members won back, by month, whose earlier dropouts are already among the member dropouts
        (:mod:`sim.engines.program_lifetimes` counts reactivations in its loop)."""
        self._member_reactivations += counts

    def set_stock(self, name: str, month: int, value: float) -> None:
        self.monthly[name][month] = value

    def record_lives(self, monthly: np.ndarray, by_cohort: np.ndarray) -> None:
        """Whole lives summed (:mod:`sim.engines.lifetimes`, :func:`sim.engines.loops.lives`): by month, purchases,
        acquisition purchases, list-price revenue, contribution discounted to the scenario start and final
        dropouts; by cohort, repeat purchases, net revenue (list price: no program, no discount), CLV,
        network value (the CLV of the customers each cohort referred), customers active at the end and CLV's
        growth part."""
        purchases, acquisition_purchases, list_value, present_value, dropouts = monthly
        flows = self.monthly
        flows["purchases"] += purchases
        flows["repeat_purchases"] += purchases - acquisition_purchases
        flows["gross_revenue"] += list_value
        flows["npv_profit"] += present_value
        flows["customers_dropped_out"] += dropouts
        for name, sums in zip(("repeat_purchases", "net_revenue", "clv", "network_value", "active_end", "clv_growth"),
                              by_cohort, strict=True):
            self.cohort[name] += sums

    def record_referred_arrivals(self, month: np.ndarray, cohort: np.ndarray) -> None:
        """Referred customers without a program (no cost): counted by month and cohort."""
        arrivals = np.bincount(month, minlength=self.horizon_months)
        self.monthly["customers_acquired"] += arrivals
        self.monthly["referred_customers"] += arrivals
        self._add_by_cohort("customers", cohort)

    def record_exits(self, death_month: np.ndarray, alive_cohort: np.ndarray) -> None:
        """Final states: the months of the final dropouts (earlier dropouts of reactivated customers were
        recorded as they were won back), and the cohorts of the customers active at the end."""
        self.monthly["customers_dropped_out"] += np.bincount(death_month, minlength=self.horizon_months)
        self._add_by_cohort("active_end", alive_cohort)

    def close(self, member_death_month: np.ndarray | None = None) -> None:
        """Stocks from arrivals, reactivations and dropouts: active customers (and members) at every
        month's end. Call once every customer's exit is recorded."""
        monthly = self.monthly
        monthly["active_customers_end"][:] = (self.opening_active + np.cumsum(monthly["customers_acquired"])
                                              + np.cumsum(monthly["customers_reactivated"])
                                              - np.cumsum(monthly["customers_dropped_out"]))
        if member_death_month is not None:
            self._member_dropouts += np.bincount(member_death_month, minlength=self.horizon_months)
            monthly["members_end"][:] = (self._opening_members + np.cumsum(self._member_arrivals) + np.cumsum(self._member_reactivations)
                                         - np.cumsum(self._member_dropouts))

    @classmethod
    def for_scenario(cls, scenario, channels: int, segments: int) -> Ledger:
        """The ledger of one replication of ``scenario``: a cohort per month, channel and segment."""
        economics = scenario.economics
        return cls(scenario.horizon_months, scenario.horizon_months * channels * segments, economics.gross_margin,
                   economics.cost_to_serve_per_order, economics.annual_discount_rate,
                   economics.learning_value_per_customer_year)

    def merge(self, other: Ledger) -> None:
        """Add the closed ledger of another shard of the same replication: every sum is additive (the
        stocks too, being sums over customers), so the merged ledger is the whole population's."""
        for name, column in other.monthly.items():
            self.monthly[name] += column
        for name, column in other.cohort.items():
            self.cohort[name] += column
        for name, value in other.member.items():
            self.member[name] += value
        self._member_arrivals += other._member_arrivals
        self._member_dropouts += other._member_dropouts
        self._member_reactivations += other._member_reactivations
        self.existing_cohorts = sorted(set(self.existing_cohorts) | set(other.existing_cohorts))
        self.opening_active += other.opening_active
        self._opening_members += other._opening_members

    def totals(self) -> dict[str, float]:
        """Horizon totals of every metric of ``docs/results.md``."""
        total = {name: float(self.monthly[name].sum()) for name in FLOWS}
        for stock in STOCKS:
            total[stock] = float(self.monthly[stock][-1])
        total.update(derived_money(total, self.margin_rate, self.cost_per_order))
        total.update(self.member)
        customers = total["customers_acquired"]
        value = self.cohort["clv"] - self.cohort["program"]
        existing = np.zeros(len(value), dtype=bool)
        existing[self.existing_cohorts] = True
        base = float(self.cohort["customers"][existing].sum())
        clv = float(value[~existing].sum())   # the CLV of acquired customers; the base's apart
        total["existing_customers"] = base
        # 0 without a base (not NaN: a scenario without existing customers has nothing undefined here)
        total["clv_per_existing_customer"] = float(value[existing].sum()) / base if base else 0.0
        total["clv_per_customer"] = clv / customers if customers else math.nan
        total["clv_minus_cac_per_customer"] = (
            (clv - float(self.cohort["cac"].sum())) / customers if customers else math.nan
        )
        settled = total["points_redeemed"] + total["points_expired"]
        total["breakage_rate"] = total["points_expired"] / settled if settled else math.nan
        return total

    def monthly_table(self) -> dict[str, np.ndarray]:
        """Every metric month by month (flows summed over the month, stocks at its end)."""
        table = dict(self.monthly)
        table.update(derived_money(table, self.margin_rate, self.cost_per_order))
        return table


def derived_money(values: dict, margin_rate: float, cost_per_order: float) -> dict:
    """Money identities of ``docs/model.md`` section 5 (works on totals and on monthly arrays alike).

    Everything here is a function of recorded sums, so the identities hold exactly.
    """
    cost_to_serve = cost_per_order * values["purchases"]
    net_revenue = values["gross_revenue"] - values["discount_cost"]
    gross_margin = margin_rate * values["gross_revenue"]
    program_cost = sum(values[name] for name in PROGRAM_COSTS)
    profit = gross_margin - cost_to_serve - program_cost - values["acquisition_cost"]
    return {"net_revenue": net_revenue, "gross_margin": gross_margin, "cost_to_serve": cost_to_serve,
            "program_cost": program_cost, "profit": profit}
