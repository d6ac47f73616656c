"""Randomness, explicit and keyed (``docs/model.md``, section 7): SplitMix64 streams per customer and
purpose (:mod:`~sim.random.streams`), the compiled draws every engine calls (:mod:`~sim.random.compiled`),
and the keyed Gamma tables (:mod:`~sim.random.gamma_table`, their quantiles kept on disk by
:mod:`~sim.random.quantile_cache`).
"""
