"""The engines that simulate one replication (``docs/model.md``, section 6): the calendar engine for programs
(:mod:`~sim.engines.calendar`), the per-customer lifetimes engine without one (:mod:`~sim.engines.lifetimes`),
and the plain reference engine (:mod:`~sim.engines.reference`); :mod:`~sim.engines.memory` sizes a run before
it starts.
"""
