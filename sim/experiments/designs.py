"""Sweep designs: points in the unit cube, mapped to the parameters' values by the plan.

``random`` draws uniformly, ``latin_hypercube`` by scipy.stats.qmc, ``sobol`` by Saltelli's scheme on scipy's
scrambled Sobol' sequence (SALib), so that Sobol indices can be estimated from its points
(:mod:`sim.experiments.sensitivity`). The sweep's seed fixes the design.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # numpy is imported where it is used, so that validating a sweep stays light
    import numpy as np


def problem(dimensions: int) -> dict[str, Any]:
    """SALib's description of ``dimensions`` parameters on [0, 1]."""
    return {"num_vars": dimensions, "names": [f"x{i}" for i in range(dimensions)],
            "bounds": [[0.0, 1.0]] * dimensions}


def unit_sample(design: str, dimensions: int, samples: int, seed: int) -> np.ndarray:
    """Points in the unit cube [0, 1)^d: scipy.stats.qmc for the quasi-random designs, SALib's Saltelli
    scheme (on scipy's scrambled Sobol' sequence) for ``sobol``, so that its indices can be estimated."""
    import numpy as np
    from scipy.stats import qmc

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1EC7]))
    if design == "random":
        return rng.random((samples, dimensions))
    if design == "latin_hypercube":
        return qmc.LatinHypercube(d=dimensions, rng=rng).random(samples)
    return sobol_sample(dimensions, samples, seed)


def sobol_sample(dimensions: int, samples: int, seed: int) -> np.ndarray:
    """Saltelli's sample of ``samples * (dimensions + 2)`` points in the unit cube (SALib, built on scipy's
    scrambled Sobol' sequence), in the order :func:`sim.experiments.sensitivity.sobol_indices` expects."""
    from SALib.sample import sobol

    return sobol.sample(problem(dimensions), samples, calc_second_order=False, seed=seed % 2**32)
