"""Experiments as units of work: replications and runs, comparisons, sweeps and their sensitivity analysis,
checkpoints, and the executors that run units anywhere with the same numbers.
"""
