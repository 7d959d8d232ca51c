r"""L-BFGS for the smooth case ``alpha = 0``, ``l2 > 0`` (numpy backend).

Without the group penalty the objective is smooth and ``l2``-strongly convex: the
L2 refit of Head2Toe, and ``GroupLassoClassifier(alpha=0, l2=...)``. Proximal
methods gain nothing there, and on Head2Toe's refits (thousands of kept features,
a ridge of ``1e-4`` to ``1e-6``) the condition number ``L / l2`` is ``1e4`` to
``1e6``: FISTA needs thousands of steps, quasi-Newton a few hundred.

The stopping rule is the same certificate as everywhere else: the duality gap of
:meth:`._problem.Problem.dual_gap`. For an ``l2``-strongly convex function the gap at
``W`` is about ``||grad||^2 / (2 l2)``, so L-BFGS runs to the gradient norm that
this predicts for the target gap, then the gap is computed exactly; if it is still
above the target, L-BFGS continues from there with a tighter gradient tolerance.
"""

import math

import numpy as np
from scipy.optimize import minimize

from ._results import InnerResult

__all__ = ["lbfgs_smooth"]

_ROUNDS = 12  # L-BFGS restarts, each with a 10x tighter gradient tolerance
_MEMORY = 20  # curvature pairs kept by L-BFGS


def _fun_grad(problem, d, K):
    """Objective and gradient of the smooth problem on the flat ``(W, b)``."""

    def fun(v):
        W = v[: d * K].reshape(d, K)
        b = v[d * K :] if problem.fit_intercept else 0.0
        value, P = problem.smooth(problem.X @ W + b, W)
        G, gb = problem.gradient(P, W)
        grad = G.ravel() if gb is None else np.concatenate([G.ravel(), gb])
        return float(value), grad

    return fun


def lbfgs_smooth(problem, W, b, *, tol, max_iter):
    """Minimise the ``alpha = 0`` objective by L-BFGS to a duality gap of ``tol``.

    Parameters
    ----------
    problem : Problem
        A numpy problem with ``alpha = 0`` and ``l2 > 0``.
    W : ndarray of shape (m, K)
        Starting coefficients.
    b : ndarray of shape (K,)
        Starting intercept.
    tol : float
        Stop once the duality gap is at most ``tol`` (absolute).
    max_iter : int
        Most gradient evaluations.

    Returns
    -------
    result : InnerResult
        The solution and its gap.
    """
    if problem.l2 <= 0 or problem.alpha != 0:
        raise ValueError("lbfgs_smooth needs alpha = 0 and l2 > 0 (a smooth problem).")
    d, K = W.shape
    fun = _fun_grad(problem, d, K)
    v = np.concatenate([W.ravel(), b]) if problem.fit_intercept else W.ravel().copy()
    # the gap of an l2-strongly convex function is about ||grad||^2 / (2 l2)
    gtol = math.sqrt(2.0 * problem.l2 * tol)
    n_iter, gap, primal = 0, math.inf, math.inf
    for _ in range(_ROUNDS):
        if n_iter >= max_iter:
            break
        res = minimize(
            fun,
            v,
            jac=True,
            method="L-BFGS-B",
            options={
                "maxcor": _MEMORY,
                "gtol": gtol,
                "ftol": 0.0,
                "maxiter": max_iter - n_iter,
                "maxfun": 2 * (max_iter - n_iter),
            },
        )
        v = res.x
        n_iter += int(res.nfev)
        W = v[: d * K].reshape(d, K)
        b = v[d * K :] if problem.fit_intercept else b
        _, P = problem.loss(problem.X @ W + b)
        primal = float(res.fun)
        gap, _ = problem.dual_gap(primal, P)
        if gap <= tol:
            break
        gtol *= 0.1
    return InnerResult(W.copy(), np.array(b, dtype=np.float64), primal, gap, n_iter)
