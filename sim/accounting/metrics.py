"""Names of the result metrics (``docs/results.md``), importable without numpy or pandas."""

#: Metrics in the order of ``docs/results.md`` (customers_dropped_out is ours, for the identity
#: customers_acquired = active_customers_end + customers_dropped_out).
METRICS = (
    "customers_acquired", "referred_customers", "active_customers_end", "customers_dropped_out",
    "customers_reactivated", "members_end",
    "purchases", "repeat_purchases", "gross_revenue", "discount_cost", "net_revenue", "gross_margin",
    "cost_to_serve", "reward_cost", "tier_benefit_cost", "referral_bonus_cost", "message_cost", "member_cost",
    "program_fixed_cost", "program_cost", "acquisition_cost", "profit", "npv_profit", "clv_per_customer",
    "clv_minus_cac_per_customer", "points_earned", "points_redeemed", "points_expired", "points_outstanding",
    "points_liability", "breakage_rate", "existing_customers", "clv_per_existing_customer",
)
MONTHLY_METRICS = tuple(m for m in METRICS if m not in ("clv_per_customer", "clv_minus_cac_per_customer",
                                                        "breakage_rate", "existing_customers",
                                                        "clv_per_existing_customer"))


#: Metrics that are counts, points or ratios rather than amounts of money (every other metric is an amount
#: in the scenario's currency).
NOT_MONEY = frozenset({
    "customers_acquired", "referred_customers", "active_customers_end", "customers_dropped_out",
    "customers_reactivated", "members_end", "purchases", "repeat_purchases", "points_earned", "points_redeemed",
    "points_expired", "points_outstanding", "breakage_rate", "roi", "payback_month", "existing_customers",
})
#: The headline of a run, in this order: the CLI's table and the report's headline table.
HEADLINE_METRICS = (
    "profit", "npv_profit", "program_cost", "gross_margin", "net_revenue", "acquisition_cost", "clv_per_customer",
    "clv_minus_cac_per_customer", "customers_acquired", "active_customers_end", "purchases", "points_liability",
)

#: The parts of ``program_cost``, in the order of ``docs/results.md``.
PROGRAM_COSTS = ("discount_cost", "reward_cost", "tier_benefit_cost", "referral_bonus_cost", "message_cost",
                 "member_cost", "program_fixed_cost")
#: Program costs attributable to a customer (they lower its CLV); fixed costs and referral bonuses are not.
ATTRIBUTABLE_PROGRAM_COSTS = ("discount_cost", "reward_cost", "tier_benefit_cost", "message_cost", "member_cost")

#: Paired-difference entries of ``vs_baseline`` beyond the metrics: ``profit_net_of_liability`` is the prudent
#: incremental profit, the incremental profit minus the incremental points liability (points outstanding at the
#: horizon are a debt that profit does not charge yet).
VS_BASELINE_EXTRA = ("profit_net_of_liability", "roi", "payback_month")

#: Metrics that are per customer or ratios: the same for a population as for a sample of it
#: (``population_scale``); every other total is a count or an amount, K times the sample's.
SCALE_FREE = frozenset({"clv_per_customer", "clv_minus_cac_per_customer", "breakage_rate",
                        "clv_per_existing_customer"})
