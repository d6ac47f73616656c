"""The one door for input: YAML files read with their line numbers, ``--set`` overrides, baseline resolution,
and :class:`~sim.input.errors.InputError`, the error every bad input becomes (exit status 2).
"""
