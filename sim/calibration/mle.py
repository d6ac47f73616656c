"""Maximum likelihood for positive parameters: optimise in log space, check, and give standard errors.

The optimiser (L-BFGS-B, bounded in log space so that a diverging parameter cannot overflow) is followed by
Newton steps on a finite-difference Hessian, then by checks that turn any doubt into a :class:`FitError`:
a parameter at its bound (the likelihood keeps rising as it goes to 0 or infinity, so the model does not
describe the data), a Hessian that is not negative definite (parameters not identified), or a last Newton
step larger than 1% of a standard error (the maximum is not pinned down). Standard errors come from the
inverse of the observed information in log space, carried back to the natural parameters by the delta
method: ``se(theta) = theta * se(ln theta)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

#: Log-space bounds: parameters live in [e^-LOG_BOUND, e^LOG_BOUND] ~ [1e-9, 1e9].
LOG_BOUND = 20.7
#: A Newton step must be below this share of a standard error for the fit to count as converged.
STEP_TOLERANCE_SE = 0.01
_GRADIENT_STEP = 1e-6        # finite differences of the log-likelihood, log-space step
_HESSIAN_STEP = 1e-4         # central differences of the analytic gradient, log-space step
_VALUE_HESSIAN_STEP = 1e-3   # second differences of the log-likelihood, log-space step
_NEWTON_STEPS = 5


class FitError(ValueError):
    """The likelihood could not be maximised: there are no parameters worth reporting."""


@dataclass(frozen=True)
class Estimates:
    """Parameter estimates with their standard errors, by parameter name."""

    params: dict[str, float]
    std_errors: dict[str, float]


@dataclass(frozen=True)
class Fit(Estimates):
    """A maximum-likelihood fit.

    Attributes
    ----------
    params, std_errors : dict
        Estimates and their standard errors (delta method from the log-space information matrix).
    model : str
        Its name, e.g. ``BG/NBD``.
    log_likelihood : float
        Maximised log-likelihood, summed over the observations.
    observations : int
        Number of customers fitted.
    covariance_log : ndarray
        Covariance matrix of the log parameters (inverse observed information), in ``params`` order.
    """

    model: str = ""
    log_likelihood: float = float("nan")
    observations: int = 0
    covariance_log: np.ndarray = field(default=None, repr=False)

    @property
    def aic(self) -> float:
        """Akaike's information criterion, ``2k - 2 LL``."""
        return 2 * len(self.params) - 2 * self.log_likelihood


LogLik = Callable[[np.ndarray], float]
ValueAndGradient = Callable[[np.ndarray], tuple[float, np.ndarray]]


def maximize(model: str, names: tuple[str, ...], start: np.ndarray, *, observations: int,
             log_likelihood: LogLik | None = None, value_and_gradient: ValueAndGradient | None = None) -> Fit:
    """Maximise a log-likelihood over positive parameters (natural scale, in ``names`` order).

    Give either ``value_and_gradient(params)``, the log-likelihood and its analytic gradient with respect
    to the natural parameters, or ``log_likelihood(params)`` alone (gradients are then finite differences
    in log space: forward ones while optimising, central ones for the final checks).

    Raises
    ------
    FitError
        Non-convergence, a parameter going to 0 or infinity, or a flat likelihood (see the module docstring).
    """
    problem = _Problem(log_likelihood, value_and_gradient, observations)
    theta = np.log(np.asarray(start, dtype=np.float64))
    result = minimize(problem.objective, theta, jac=True, method="L-BFGS-B",
                      bounds=[(-LOG_BOUND, LOG_BOUND)] * len(names),
                      options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
    theta = result.x
    if not np.all(np.isfinite(theta)) or not np.isfinite(problem.value(theta)):
        raise FitError(f"{model}: the optimiser did not find a finite maximum ({result.message})")
    _check_bounds(model, names, theta)
    theta, information = _newton_polish(model, names, problem, theta)
    _check_bounds(model, names, theta)
    covariance = np.linalg.inv(information)
    params = np.exp(theta)
    std_errors = params * np.sqrt(np.diag(covariance))
    return Fit(model=model, params=dict(zip(names, params.tolist())),
               std_errors=dict(zip(names, std_errors.tolist())), log_likelihood=problem.value(theta),
               observations=observations, covariance_log=covariance)


@dataclass
class _Problem:
    """The log-likelihood in log space ``theta``, and the scaled objective the optimiser minimises."""

    log_likelihood: LogLik | None
    value_and_gradient: ValueAndGradient | None
    observations: int

    def value(self, theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            if self.value_and_gradient is not None:
                value = self.value_and_gradient(np.exp(theta))[0]
            else:
                value = self.log_likelihood(np.exp(theta))
        return float(value) if np.isfinite(value) else -np.inf

    def both(self, theta: np.ndarray, *, central: bool) -> tuple[float, np.ndarray]:
        """The log-likelihood and its gradient with respect to ``theta``."""
        if self.value_and_gradient is not None:
            with np.errstate(all="ignore"):
                value, gradient = self.value_and_gradient(np.exp(theta))
            return (float(value) if np.isfinite(value) else -np.inf), np.asarray(gradient) * np.exp(theta)
        value = self.value(theta)
        steps = np.eye(theta.size) * _GRADIENT_STEP
        if central:
            gradient = [(self.value(theta + h) - self.value(theta - h)) / (2 * _GRADIENT_STEP) for h in steps]
        else:
            gradient = [(self.value(theta + h) - value) / _GRADIENT_STEP for h in steps]
        return value, np.array(gradient)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.both(theta, central=True)[1]

    def objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Minus the mean log-likelihood per observation and its gradient (what L-BFGS-B minimises)."""
        value, gradient = self.both(theta, central=False)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return 1e300, np.zeros_like(theta)
        return -value / self.observations, -gradient / self.observations

    def information(self, theta: np.ndarray) -> np.ndarray:
        """Observed information (minus the Hessian of the log-likelihood) in log space, symmetrised.

        Central differences of the analytic gradient, or second differences of the log-likelihood.
        """
        k, eye = theta.size, np.eye(theta.size)
        if self.value_and_gradient is not None:
            hessian = np.array([(self.grad(theta + h) - self.grad(theta - h)) / (2 * _HESSIAN_STEP)
                                for h in eye * _HESSIAN_STEP])
            return -(hessian + hessian.T) / 2
        h, f = _VALUE_HESSIAN_STEP, self.value
        hessian = np.empty((k, k))
        centre = f(theta)
        for i in range(k):
            hessian[i, i] = (f(theta + h * eye[i]) - 2 * centre + f(theta - h * eye[i])) / h**2
            for j in range(i):
                corners = [f(theta + h * (si * eye[i] + sj * eye[j])) for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
                hessian[i, j] = hessian[j, i] = (corners[0] - corners[1] - corners[2] + corners[3]) / (4 * h**2)
        return -hessian


def _newton_polish(model: str, names: tuple[str, ...], problem: _Problem,
                   theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps from the optimiser's answer until the step is a negligible share of a standard error."""
    for _ in range(_NEWTON_STEPS):
        information = problem.information(theta)
        if not np.all(np.isfinite(information)) or not _positive_definite(information):
            raise FitError(f"{model}: the fit did not converge: the likelihood is flat or curved the wrong way "
                           "near the optimiser's answer, so "
                           f"{', '.join(names)} are not identified by this log (too few repeat purchases, "
                           "or behaviour the model cannot describe)")
        step = np.linalg.solve(information, problem.grad(theta))
        std_errors = np.sqrt(np.diag(np.linalg.inv(information)))
        if np.all(np.abs(step) <= STEP_TOLERANCE_SE * std_errors):
            return theta, information
        candidate = theta + step
        if problem.value(candidate) >= problem.value(theta) - 1e-9 * abs(problem.value(theta)):
            theta = candidate
        else:
            break
    worst = float(np.max(np.abs(step) / std_errors))
    raise FitError(f"{model}: the fit did not converge: the maximum is not pinned down (the last step was "
                   f"{worst:.2g} standard errors)")


def _positive_definite(matrix: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def _check_bounds(model: str, names: tuple[str, ...], theta: np.ndarray) -> None:
    for name, value in zip(names, theta):
        if abs(value) > LOG_BOUND - 1.0:
            direction = "infinity" if value > 0 else "zero"
            raise FitError(f"{model}: the fit did not converge: {name} runs off to {direction}, so the model "
                           "does not describe this log (its likelihood keeps rising at the edge of the "
                           "parameter space)")
