r"""The working-set outer loop, written once for numpy and torch.

Every outer iteration makes one pass over the full ``X``: it computes the duality gap
(the stopping certificate) and ranks the groups by how much they violate the
optimality conditions. It then solves the problem restricted to a *working set* (the
active groups and the worst violators; twice as many groups as are active) with an
inner solver: accelerated proximal gradient (:mod:`._apg`), proximal Newton steps
(:mod:`._newton`) or, for the smooth ``alpha = 0`` problems, L-BFGS (:mod:`._lbfgs`).
The restricted problem is solved to 0.3 times the current full gap, so the full gap
shrinks geometrically; the solution of a group-lasso problem has few active groups,
so most of the work touches a small slice of ``X``.

The restricted solve always runs in float64, whatever the dtype of ``X``: only the one
pass per outer iteration runs in the dtype of ``X`` (float32 halves its cost).
"""

import math
import time

import numpy as np

from ._apg import apg
from ._lbfgs import FLOAT32_MIN_SIZE, lbfgs_smooth
from ._newton import newton_applies, prox_newton
from ._problem import Groups, Problem, group_norms
from ._results import SolverResult

__all__ = ["solve", "solve_arrays"]

_INNER_TOL_RATIO = 0.3  # inner solves stop at this fraction of the current full gap
_COMPLETE_RATIO = 1.5  # full gap within this factor of the restricted one: go on
_LOOSE_RGAP = 1e-5  # targets of at least this fraction of the objective: loose
_MIN_WS_SIZE = 10  # smallest working set, in groups
_FLOOR_CHECKS = 3  # outer rounds with a solved working set and a stuck gap


def solve_arrays(
    ops, X, onehot, c, groups, *, alpha, l2=0.0, fit_intercept=True, **params
):
    """Build the :class:`~._problem.Problem` from arrays and :func:`solve` it.

    Parameters
    ----------
    ops, X, onehot, c, groups, alpha, l2, fit_intercept
        The problem's (see :class:`~._problem.Problem`).
    **params : dict
        Keyword arguments of :func:`solve`.

    Returns
    -------
    result : SolverResult
        The solution and its certificate.
    """
    problem = Problem(
        ops, X, onehot, c, groups, alpha=alpha, l2=l2, fit_intercept=fit_intercept
    )
    return solve(problem, **params)


def _start(problem, coef_init, intercept_init):
    """The starting point: the warm start, else zeros and the log class proportions."""
    ops, f64 = problem.ops, problem.ops.float64
    d, K = problem.X.shape[1], problem.onehot.shape[1]
    W = ops.zeros((d, K), f64) if coef_init is None else ops.asarray(coef_init, f64)
    if intercept_init is not None:
        return W, ops.asarray(intercept_init, dtype=f64)
    if problem.fit_intercept:
        logpi = np.log(np.maximum(ops.to_numpy(problem.pi), 1e-300))
        return W, ops.asarray(logpi - logpi.mean(), dtype=f64)
    return W, ops.zeros(K, f64)


def _certify(problem, W, b, P_dual):
    """One pass over the full ``X``: objective, duality gap, gradient information.

    Returns ``(primal, gap, V, active)``: ``V = X^T Theta`` ranks the groups (minus
    the data term's gradient at the intercept-corrected point), ``active`` holds
    the non-zero groups. The extrapolated dual point of the last inner solve, if
    any, competes for the gap.
    """
    ops, groups = problem.ops, problem.groups
    norms = group_norms(ops, W, groups)
    active = ops.nonzero(norms > 0)
    rows = ops.nonzero(ops.isin(groups.ids, active))
    Z = ops.cast(_columns(problem, rows), ops.float64) @ W[rows] + b
    f, P = problem.smooth(Z, W)
    primal = f + problem.alpha * ops.vdot(groups.weights, norms)
    gap, V = problem.dual_gap(primal, P)
    if P_dual is not None:
        gap = min(gap, problem.dual_gap(primal, P_dual)[0])
    return primal, gap, V, active


def _columns(problem, idx):
    """The columns ``idx`` (sorted) of ``X``: ``X`` itself, not a copy, if all."""
    if idx.shape[0] == problem.X.shape[1]:
        return problem.X
    return problem.ops.take_columns(problem.X, idx)


def _working_set(problem, W, V, active):
    """Features of the working set: the active groups and the worst KKT violators.

    Returns the feature indices and their restricted :class:`~._problem.Groups`.
    """
    ops, groups = problem.ops, problem.groups
    grad = problem.l2 * W - V if problem.l2 else V
    scores = group_norms(ops, grad, groups) / groups.weights
    scores[active] = math.inf
    size = max(_MIN_WS_SIZE, 2 * len(active))
    if problem.alpha == 0:
        size = groups.n_groups
    ws_groups = ops.top_k(scores, min(size, groups.n_groups))
    features = ops.nonzero(ops.isin(groups.ids, ws_groups))
    sub_groups = Groups(
        ops.searchsorted(ws_groups, groups.ids[features]), groups.weights[ws_groups]
    )
    return features, sub_groups


def _solve_inner(
    sub, W, b, *, target, budget, final_tol, inner, random_state, loose=False
):
    """Solve the working-set problem ``sub`` from ``(W, b)`` to a gap of ``target``.

    ``inner="newton"`` runs L-BFGS on smooth problems and proximal Newton where it
    applies; accelerated proximal gradient runs otherwise, and as the fallback when
    the (quasi-)Newton steps stalled short of the target (nearly separable data with
    a tiny ridge: the model's Hessian is almost singular far from the optimum),
    from where they stopped. Returns the last result, with ``n_iter`` summed.

    Accelerated proximal gradient runs its steps' products in float32 (``fast``
    of :func:`~._apg.apg`) when the fit's final target is ``loose`` (at least
    ``_LOOSE_RGAP`` of the objective, as at the default ``tol=1e-4``) and the
    working set has at least ``FLOAT32_MIN_SIZE`` entries: about twice as fast
    per step. Towards a tight final target even the early rounds' float32
    steps made the fit slower (2-3x to ``tol=1e-6`` at ``K = 100``).
    """
    result, n_iter = None, 0
    m, K = W.shape
    if inner == "newton" and sub.alpha == 0 and sub.l2 > 0:
        # smooth and strongly convex: quasi-Newton on all the features. The working
        # set is everything, so solve to the final certificate at once: handing
        # back at 0.3 x gap restarts L-BFGS without its memory.
        target = min(target, final_tol)
        result = lbfgs_smooth(sub, W, b, tol=target, max_iter=budget)
    elif inner == "newton" and newton_applies(sub.groups, m, K):
        result = prox_newton(
            sub, W, b, tol=target, max_iter=budget, final_tol=final_tol
        )
    if result is not None:
        if result.gap <= target:
            return result
        W, b, n_iter = result.coef, result.intercept, result.n_iter
    L = sub.lipschitz(random_state=random_state)
    fast = None
    if loose and sub.X.shape[0] * sub.X.shape[1] >= FLOAT32_MIN_SIZE:
        fast = sub.restrict(sub.ops.cast(sub.X, sub.ops.float32), sub.groups)
    result = apg(
        sub, W, b, L=L, tol=target, max_iter=max(1, budget - n_iter), fast=fast
    )
    return result._replace(n_iter=result.n_iter + n_iter)


def _inner_target(gap, last, final_tol, loose):
    """Gap target of the next working-set solve, given the full ``gap`` now.

    A fraction of the full gap, so the working set can change before much work
    is spent on it; but the final target at once when the last solve's working
    set was complete, that is when the full gap is within ``_COMPLETE_RATIO`` of
    the restricted gap it reached (``last``: no group outside it adds to the
    gap). With many classes the working set stops changing a few rounds before
    the end, and each restart of accelerated proximal gradient loses its
    momentum: going on saved 15 % of the steps and 30 % of the time at
    ``K = 100`` to ``tol=1e-4`` (``benchmarks/bench_solvers.py``, d = 20,000,
    0.1 alpha_max). Only for a ``loose`` final target (at least ``_LOOSE_RGAP``
    of the objective): towards a tight one, fresh rounds (momentum,
    extrapolation history) close the gap faster than one long solve (32 s
    against 43 s to ``tol=1e-6`` on the same problem).
    """
    complete = last is not None and gap <= _COMPLETE_RATIO * last.gap
    if complete and loose:
        return min(_INNER_TOL_RATIO * gap, final_tol)
    return _INNER_TOL_RATIO * gap


def _centre(problem, X_ws, W_ws, b):
    """Centre the working-set columns on their weighted means ``mu``.

    ``X W + b`` equals ``(X - mu) W + (b + mu W)``: the same problem, far better
    conditioned when features are not centred (the intercept decouples from
    ``W``). Returns the centred columns, the shifted intercept and ``mu``.
    """
    mu = problem.c @ X_ws
    return X_ws - mu[None, :], b + mu @ W_ws, mu


def _inner_round(
    problem, W, b, V, active, *, target, budget, final_tol, options, loose=False
):
    """Solve one working set.

    Returns the new full ``(W, b)``, the inner result (its steps and dual point)
    and the working set's size in groups.
    """
    ops = problem.ops
    features, sub_groups = _working_set(problem, W, V, active)
    X_ws = ops.cast(_columns(problem, features), ops.float64)
    W_ws = W[features]
    if problem.fit_intercept:
        X_ws, b, mu = _centre(problem, X_ws, W_ws, b)
    result = _solve_inner(
        problem.restrict(X_ws, sub_groups),
        W_ws,
        b,
        target=target,
        budget=budget,
        final_tol=final_tol,
        loose=loose,
        **options,
    )
    b = result.intercept
    if problem.fit_intercept:
        b = b - mu @ result.coef
    W = ops.zeros(W.shape, ops.float64)
    W[features] = result.coef
    return W, b, result, sub_groups.n_groups


def solve(
    problem,
    *,
    coef_init=None,
    intercept_init=None,
    tol=1e-4,
    max_iter=10_000,
    verbose=0,
    random_state=0,
    inner="fista",
):
    """Minimise the group-lasso multinomial objective with working sets.

    Parameters
    ----------
    problem : Problem
        The problem, on its backend.
    coef_init : array of shape (d, K), default=None
        Warm start for the coefficients (zeros if None).
    intercept_init : array of shape (K,), default=None
        Warm start for the intercept (log class proportions if None).
    tol : float, default=1e-4
        Stop when the duality gap is at most ``tol`` times the objective.
    max_iter : int, default=10000
        Budget of iterations (certificate passes plus inner steps).
    verbose : int, default=0
        Print one line per outer iteration when positive.
    random_state : int, default=0
        Seed of the power iteration estimating the Lipschitz constant.
    inner : {"fista", "newton"}, default="fista"
        Solver of the working-set problems: accelerated proximal gradient
        (:func:`._apg.apg`), or (numpy backend only) proximal Newton steps where
        :func:`._newton.newton_applies` and L-BFGS (:func:`._lbfgs.lbfgs_smooth`)
        for the smooth case ``alpha = 0`` (an L2 fit, e.g. Head2Toe's refit),
        with accelerated proximal gradient as the fallback.

    Returns
    -------
    result : SolverResult
        The solution, its certificate and the history of the outer loop.
    """
    start = time.perf_counter()
    W, b = _start(problem, coef_init, intercept_init)
    options = dict(inner=inner, random_state=random_state)
    n_iter, history, floor_checks, floored, converged = 0, [], 0, False, False
    last_gap, inner_iter, ws_size, P_dual = math.inf, None, 0, None
    last = None  # the last working set's inner result
    while True:
        primal, gap, V, active = _certify(problem, W, b, P_dual)
        n_iter += 1
        history.append((time.perf_counter() - start, n_iter, primal, gap, ws_size))
        if verbose:
            print(
                f"[group-lasso] iter {n_iter:6d}  objective {primal:.10e}  "
                f"gap {gap:.3e}  active groups {len(active)}  working set {ws_size}"
            )
        if gap <= tol * abs(primal):
            converged = True
            break
        # The working set was already solved (no inner step) and the full gap did
        # not fall: it is at its rounding floor (e.g. the float32 pass over X), and
        # another round would do the same again.
        stuck = inner_iter == 0 and gap > 0.9 * last_gap
        floor_checks = floor_checks + 1 if stuck else 0
        if floor_checks >= _FLOOR_CHECKS:
            floored = True
            break
        last_gap = gap
        if n_iter >= max_iter:
            break
        final_tol = 0.5 * tol * abs(primal)
        loose = final_tol >= _LOOSE_RGAP * abs(primal)
        W, b, last, ws_size = _inner_round(
            problem,
            W,
            b,
            V,
            active,
            target=_inner_target(gap, last, final_tol, loose),
            loose=loose,
            budget=max_iter - n_iter,
            final_tol=final_tol,
            options=options,
        )
        inner_iter, P_dual = last.n_iter, last.dual_point
        n_iter += inner_iter
    b_np = problem.ops.to_numpy(b)
    return SolverResult(
        coef=problem.ops.to_numpy(W),
        intercept=b_np - b_np.mean(),
        primal=float(primal),
        dual_gap=float(gap),
        n_iter=int(n_iter),
        converged=converged,
        history=history,
        floored=floored,
    )
