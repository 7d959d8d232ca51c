"""What the solvers return, and the warning a caller gives when a solve falls short."""

import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["InnerResult", "SolverResult", "warn_if_not_converged"]


class InnerResult(NamedTuple):
    """What every inner solver returns on its (working-set) problem.

    Parameters
    ----------
    coef : array of shape (m, K)
        Coefficients of the restricted problem, float64, on the backend.
    intercept : array of shape (K,)
        Intercept, on the backend.
    primal : float
        Objective value at the solution.
    gap : float
        Duality gap of the restricted problem at the solution (absolute).
    n_iter : int
        Steps taken (proximal-gradient steps, Newton steps or gradient evaluations).
    dual_point : array of shape (n, K) or None
        A better dual point than the softmax of the solution (Anderson
        extrapolation), for the caller's full-data certificate; None if none.
    """

    coef: Any
    intercept: Any
    primal: float
    gap: float
    n_iter: int
    dual_point: Any = None


@dataclass
class SolverResult:
    """What a full solve (:func:`._working_set.solve`) returns.

    Parameters
    ----------
    coef : ndarray of shape (d, K)
        Coefficients, one row per feature (float64, numpy).
    intercept : ndarray of shape (K,)
        Intercept, centred to sum to zero (float64, numpy).
    primal : float
        Objective value at the solution.
    dual_gap : float
        Duality gap at the solution: an upper bound on ``primal - optimum``.
    n_iter : int
        Iterations: full-data certificate passes plus inner steps.
    converged : bool
        Whether ``dual_gap <= tol * primal`` was reached within ``max_iter``.
    history : list of tuple
        ``(seconds, n_iter, primal, dual_gap, working_set_size)`` per outer iteration.
    floored : bool
        Whether the solver stopped short of ``tol`` because the full-data gap no
        longer fell while the working set was solved: a rounding floor.
    """

    coef: np.ndarray
    intercept: np.ndarray
    primal: float
    dual_gap: float
    n_iter: int
    converged: bool
    history: list
    floored: bool = False


def warn_if_not_converged(result, what, *, tol, max_iter, stacklevel=3):
    """Give a ``ConvergenceWarning`` with advice when ``result`` missed ``tol``.

    Parameters
    ----------
    result : SolverResult
        The outcome of a solve.
    what : str
        What was solved, to start the message (e.g. ``"The group-lasso solver"``).
    tol : float
        The relative duality-gap tolerance asked for.
    max_iter : int
        The iteration budget it had.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`.
    """
    if result.converged:
        return
    rel = result.dual_gap / max(abs(result.primal), 1e-300)
    if result.floored:
        message = (
            f"{what} stopped at relative duality gap {rel:.2e} > tol={tol:.1e}: the "
            "gap no longer falls, a rounding floor of the passes over X. The "
            "solution is as accurate as the gap says; for a smaller gap use "
            "dtype='float64' (with float32 data) or loosen tol."
        )
    else:
        message = (
            f"{what} did not converge in max_iter={max_iter} iterations: relative "
            f"duality gap {rel:.2e} > tol={tol:.1e}. Increase max_iter, loosen tol, "
            "or increase alpha (a larger alpha gives a sparser, faster problem)."
        )
    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)
