r"""L-BFGS for the smooth case ``alpha = 0``, ``l2 > 0`` (numpy backend).

Without the group penalty the objective is smooth and ``l2``-strongly convex: the
L2 refit of Head2Toe, and ``GroupLassoClassifier(alpha=0, l2=...)``. Proximal
methods gain nothing there, and on Head2Toe's refits (thousands of kept features,
a ridge of ``1e-4`` to ``1e-6``) the condition number ``L / l2`` is ``1e4`` to
``1e6``: FISTA needs thousands of steps, quasi-Newton a few hundred.

The stopping rule is the same certificate as everywhere else: the duality gap of
:func:`._objective.dual_gap`. For an ``l2``-strongly convex function the gap at
``W`` is about ``||grad||^2 / (2 l2)``, so L-BFGS runs to the gradient norm that
this predicts for the target gap, then the gap is computed exactly; if it is still
above the target, L-BFGS continues from there with a tighter gradient tolerance.
"""

import math

import numpy as np
from scipy.optimize import minimize

from ._objective import NUMPY_OPS, dual_gap, softmax_loss

__all__ = ["lbfgs_smooth"]

_ROUNDS = 12  # L-BFGS restarts, each with a 10x tighter gradient tolerance
_MEMORY = 20  # curvature pairs kept by L-BFGS


def _fun_grad(X, stats, l2, fit_intercept, d, K):
    """Objective and gradient of the smooth problem on the flat ``(W, b)``."""

    def fun(v):
        W = v[: d * K].reshape(d, K)
        b = v[d * K :] if fit_intercept else 0.0
        loss, P = softmax_loss(NUMPY_OPS, X @ W + b, stats.Yc, stats.c)
        loss += 0.5 * l2 * float(np.vdot(W, W))
        R = stats.c[:, None] * P - stats.Yc
        G = X.T @ R + l2 * W
        grad = np.concatenate([G.ravel(), R.sum(0)]) if fit_intercept else G.ravel()
        return float(loss), grad

    return fun


def lbfgs_smooth(X, stats, groups, l2, fit_intercept, W, b, tol, max_iter):
    """Minimise the ``alpha = 0`` objective by L-BFGS to a duality gap of ``tol``.

    Same contract as the other inner solvers (``_solver._apg``,
    ``_newton.prox_newton``): returns ``(W, b, primal, gap, n_iter, None)``, stops
    once the duality gap is at most ``tol`` (absolute) or after ``max_iter``
    gradient evaluations.
    """
    if l2 <= 0:
        raise ValueError("lbfgs_smooth needs l2 > 0 (a strongly convex problem).")
    d, K = W.shape
    fun = _fun_grad(X, stats, l2, fit_intercept, d, K)
    v = np.concatenate([W.ravel(), b]) if fit_intercept else W.ravel().copy()
    # the gap of an l2-strongly convex function is about ||grad||^2 / (2 l2)
    gtol = math.sqrt(2.0 * l2 * tol)
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
        b = v[d * K :] if fit_intercept else b
        _, P = softmax_loss(NUMPY_OPS, X @ W + b, stats.Yc, stats.c)
        primal = float(res.fun)
        gap, _ = dual_gap(
            NUMPY_OPS, X, primal, P, stats, groups, 0.0, l2, fit_intercept
        )
        if gap <= tol:
            break
        gtol *= 0.1
    return W.copy(), np.array(b, dtype=np.float64), primal, gap, n_iter, None
