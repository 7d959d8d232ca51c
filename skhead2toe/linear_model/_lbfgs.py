r"""L-BFGS for the smooth case ``alpha = 0``, ``l2 > 0`` (numpy backend).

Without the group penalty the objective is smooth and ``l2``-strongly convex: the
L2 refit of Head2Toe, the probes, and ``GroupLassoClassifier(alpha=0, l2=...)``.
Proximal methods gain nothing there, and on Head2Toe's refits (thousands of kept
features, a ridge of ``1e-4`` to ``1e-6``) the condition number ``L / l2`` is
``1e4`` to ``1e6``: FISTA needs thousands of steps, quasi-Newton a few hundred.

The stopping rule is the same certificate as everywhere else: the duality gap of
:meth:`._problem.Problem.dual_gap`. For an ``l2``-strongly convex function the gap at
``W`` is about ``||grad||^2 / (2 l2)``, so L-BFGS runs to the gradient norm that
this predicts for the target gap, then the gap is computed exactly; if it is still
above the target, L-BFGS goes on, with its curvature memory, to a 10x smaller
gradient.

The quasi-Newton loop is written here rather than taken from scipy's L-BFGS-B:
with no bounds, the two-loop recursion and a backtracking (Armijo) line search are
all it needs, since strong convexity makes every curvature pair positive
(``s^T y >= l2 ||s||^2``). On the refits and probes (a few thousand variables,
about a millisecond per gradient) L-BFGS-B's Fortran step and its Python wrapper
cost about half a gradient per iteration; this loop's two-loop recursion about a
quarter (0.3 ms on the demo's refits, measured with cProfile).

Until the first gradient tolerance the two products with ``X`` run in float32
(on a float32 copy of ``X``, made once): they are most of a gradient's cost and
2.5x faster there. From that point on, everything, the certificate included, is
float64.
"""

import math
from collections import deque

import numpy as np

from ._results import InnerResult

__all__ = ["lbfgs_smooth"]

_ROUNDS = 12  # gap checks, each after a 3x tighter gradient tolerance
_MEMORY = 20  # curvature pairs kept by L-BFGS
_ARMIJO = 1e-4  # sufficient decrease of the line search
_F_ROUNDING = 1e-12  # relative rounding error of the objective
_FLAT_STEPS = 10  # accepted steps without a decrease of f before giving up
_BACKTRACKS = 30  # halvings of the step before the line search gives up
FLOAT32_MIN_SIZE = 1 << 16  # entries of X above which float32 products pay
_GAP_MARGIN = 0.7  # of the gradient norm that predicts the target gap


def _fun_grad(problem, d, K, X32=None):
    """Objective and gradient of the smooth problem on the flat ``(W, b)``.

    With ``X32``, a float32 copy of ``X``, the two products with ``X`` run in
    float32 (the rest in float64): the first phase of :func:`lbfgs_smooth`.
    """

    def fun(v):
        W = v[: d * K].reshape(d, K)
        b = v[d * K :] if problem.fit_intercept else 0.0
        if X32 is None:
            value, P = problem.smooth(problem.X @ W + b, W)
            G, gb = problem.gradient(P, W)
        else:
            value, P = problem.smooth(X32 @ W.astype(np.float32) + b, W)
            R = problem.residual(P)
            G = X32.T @ R.astype(np.float32) + problem.l2 * W
            gb = R.sum(0) if problem.fit_intercept else None
        grad = G.ravel() if gb is None else np.concatenate([G.ravel(), gb])
        return float(value), grad

    return fun


class _Memory:
    """The last curvature pairs ``(s, y, 1 / s^T y)`` and the two-loop recursion."""

    def __init__(self, size):
        self.pairs = deque(maxlen=size)

    def add(self, s, y):
        sy = float(s @ y)
        if sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):  # else: rounding noise
            self.pairs.append((s, y, 1.0 / sy))

    def direction(self, g):
        """``-H g`` for the L-BFGS inverse Hessian ``H`` (``-g`` when empty)."""
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q *= float(s @ y) / float(y @ y)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas), strict=True):
            q += (a - rho * float(y @ q)) * s
        return -q


def _minimize(fun, v, f, g, memory, *, gtol, max_fev):
    """L-BFGS from ``v`` (value ``f``, gradient ``g``) to ``||g|| <= gtol``.

    Returns ``(v, f, g, n_fev, stalled)``; ``stalled`` when the line search
    found no decrease (the rounding floor of the objective).
    """
    n_fev, flat = 0, 0
    while float(g @ g) > gtol * gtol and n_fev < max_fev:
        if flat >= _FLAT_STEPS:  # no decrease of f in a row: its rounding floor
            return v, f, g, n_fev, True
        p = memory.direction(g)
        slope = float(g @ p)
        if slope >= 0:  # not a descent direction (rounding): steepest descent
            memory.pairs.clear()
            p, slope = -g, -float(g @ g)
        step = 1.0 if memory.pairs else min(1.0, 1.0 / math.sqrt(-slope))
        for _ in range(_BACKTRACKS):
            v_new = v + step * p
            f_new, g_new = fun(v_new)
            n_fev += 1
            if f_new <= f + _ARMIJO * step * slope or (
                # at the rounding floor of f, Hager & Zhang's approximate Wolfe
                # test: f within rounding and the slope decreased enough
                f_new <= f + _F_ROUNDING * abs(f)
                and float(g_new @ p) <= -(1.0 - 2.0 * _ARMIJO) * slope
            ):
                break
            step *= 0.5
        else:
            return v, f, g, n_fev, True
        memory.add(v_new - v, g_new - g)
        flat = flat + 1 if f_new >= f else 0
        v, f, g = v_new, f_new, g_new
    return v, f, g, n_fev, False


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
    n_iter, memory = 1, _Memory(_MEMORY)
    # the gap of an l2-strongly convex function is about ||grad||^2 / (2 l2)
    gtol = _GAP_MARGIN * math.sqrt(2.0 * problem.l2 * tol)
    if problem.X.dtype == np.float64 and problem.X.size >= FLOAT32_MIN_SIZE:
        # float32 products to the first gradient tolerance, float64 from there
        fun32 = _fun_grad(problem, d, K, X32=problem.X.astype(np.float32))
        v, _, _, n_fev, _ = _minimize(
            fun32, v, *fun32(v), memory, gtol=gtol, max_fev=max_iter - 1
        )
        n_iter += n_fev
    f, g = fun(v)
    gap = math.inf
    for _ in range(_ROUNDS):
        v, f, g, n_fev, stalled = _minimize(
            fun, v, f, g, memory, gtol=gtol, max_fev=max(0, max_iter - n_iter)
        )
        n_iter += n_fev
        W = v[: d * K].reshape(d, K)
        b = v[d * K :] if problem.fit_intercept else b
        _, P = problem.loss(problem.X @ W + b)
        gap, _ = problem.dual_gap(f, P)
        if gap <= tol or stalled or n_iter >= max_iter:
            break
        gtol = min(gtol, math.sqrt(float(g @ g))) * 0.3
    return InnerResult(W.copy(), np.array(b, dtype=np.float64), f, gap, n_iter)
