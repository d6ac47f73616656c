"""Where the money and counts go: the ledger of one replication (:mod:`~sim.accounting.ledger`), the metric
registry (:mod:`~sim.accounting.metrics`), the result tables (:mod:`~sim.accounting.tables`) and confidence
intervals over replications (:mod:`~sim.accounting.estimates`).
"""
