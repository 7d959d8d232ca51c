r"""Working-set accelerated proximal gradient, written once for numpy and torch.

The outer loop makes one pass over the full ``X`` per iteration: it computes the
duality gap (the stopping certificate) and ranks the groups by how much they violate
the optimality conditions. It then solves the problem restricted to a *working set*
(the active groups and the worst violators; twice as many groups as are active) with
FISTA: backtracking line search on the Lipschitz constant (optimistically decreased at
every step), function-value adaptive restart, and a restricted duality gap checked every
few iterations. The restricted problem is solved to 0.3 times the current full gap, so
the full gap shrinks geometrically; the solution of a group-lasso problem has few active
groups, so most of the work touches a small slice of ``X``.

The restricted solve always runs in float64, whatever the dtype of ``X``: only the one
pass per outer iteration runs in the dtype of ``X`` (float32 halves its cost).
"""

import math
import time
from dataclasses import dataclass

import numpy as np

from ._anderson import anderson_weights
from ._lbfgs import lbfgs_smooth
from ._newton import newton_applies, prox_newton
from ._objective import (
    Groups,
    dual_gap,
    group_norms,
    group_penalty,
    lipschitz_constant,
    prox_group_lasso,
    softmax_loss,
)

_CHECK_EVERY = 10  # restricted-gap checks in the inner loop, every that many steps
_INNER_TOL_RATIO = 0.3  # inner solves stop at this fraction of the current full gap
_MIN_WS_SIZE = 10  # smallest working set, in groups
_N_EXTRAPOLATE = 5  # residuals kept for the dual extrapolation
_STALL_CHECKS = 50  # inner gap checks without a 10% improvement before giving up
_FLOOR_CHECKS = 3  # outer rounds with a solved working set and a stuck gap


def _extrapolate_probabilities(ops, history):
    """Anderson extrapolation of softmax matrices, made a valid dual point.

    Near the optimum, proximal-gradient iterates converge linearly and their residuals
    follow a vector autoregression, whose limit Anderson extrapolation estimates from
    the last few terms (dual extrapolation, Massias et al., 2018/2020). The rescaled
    residual converges like the square root of the primal error; the extrapolated one
    is far closer to the dual optimum. The result is clipped and renormalised onto the
    simplex, so any outcome is a valid dual point and the gap stays a certificate.
    """
    if len(history) < _N_EXTRAPOLATE:
        return None
    weights = anderson_weights([ops.to_numpy(P) for P in history])
    if weights is None:
        return None
    P = sum(float(w) * Pk for w, Pk in zip(weights, history[1:], strict=True))
    P = ops.clip_min(P, 0.0)
    return P / P.sum(1)[:, None]


@dataclass
class SolverResult:
    """What every solver returns.

    Attributes
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
        Iterations: full-data certificate passes plus proximal-gradient steps.
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


class DataStats:
    """Per-problem label quantities reused by every objective and gap computation.

    Parameters
    ----------
    onehot : array of shape (n, K), float64
        One-hot labels.
    c : array of shape (n,), float64
        Sample weights summing to one.
    """

    def __init__(self, onehot, c):
        self.c = c
        self.onehot = onehot
        self.Yc = c[:, None] * onehot
        self.pi = self.Yc.sum(0)


def _smooth(ops, Z, W, stats, l2):
    """Value of the smooth part (loss + l2 term) and the softmax probabilities."""
    loss, P = softmax_loss(ops, Z, stats.Yc, stats.c)
    if l2:
        loss += 0.5 * l2 * ops.vdot(W, W)
    return loss, P


def _apg(ops, X, stats, groups, alpha, l2, fit_intercept, W, b, L, tol, max_iter):
    """FISTA with backtracking and adaptive restart on a (restricted) problem.

    Returns ``(W, b, primal, gap, n_iter, P_dual)``; stops once the duality gap of
    this problem is at most ``tol`` (absolute) or after ``max_iter`` steps. ``P_dual``
    is the extrapolated dual point when it gave the best gap, else None.
    """
    Z = X @ W + b
    f, P = _smooth(ops, Z, W, stats, l2)
    F = f + group_penalty(ops, W, groups, alpha, 0.0)
    Wy, by, Zy, fy, Py = W, b, Z, f, P
    t = 1.0
    gap = math.inf
    n_iter = 0
    P_hist, P_dual = [], None
    best = (math.inf, W, b, F, None)  # the iterate with the smallest certified gap
    stalled = 0
    while n_iter < max_iter:
        n_iter += 1
        R = stats.c[:, None] * Py - stats.Yc
        G = X.T @ R
        if l2:
            G = G + l2 * Wy
        gb = R.sum(0) if fit_intercept else None
        L *= 0.9  # optimistic: the local curvature is often far below the bound
        while True:
            Wn = prox_group_lasso(ops, Wy - G / L, groups, alpha / L)
            dW = Wn - Wy
            sq = ops.vdot(dW, dW)
            lin = ops.vdot(G, dW)
            if fit_intercept:
                bn = by - gb / L
                db = bn - by
                sq += ops.vdot(db, db)
                lin += ops.vdot(gb, db)
            else:
                bn = by
            Zn = X @ Wn + bn
            fn, Pn = _smooth(ops, Zn, Wn, stats, l2)
            # sufficient decrease, with slack for rounding near the optimum (fy comes
            # from extrapolated logits, fn from fresh ones)
            if fn <= fy + lin + 0.5 * L * sq + 1e-13 * (1.0 + abs(fy)):
                break
            if sq == 0.0:
                break  # no move left: fn and fy differ by rounding only
            L *= 2.0
        Fn = fn + group_penalty(ops, Wn, groups, alpha, 0.0)
        # gradient-based adaptive restart (O'Donoghue & Candes): drop the momentum
        # when it points against the last step; robust at the rounding floor, unlike
        # comparisons of objective values.
        restart = ops.vdot(Wy - Wn, Wn - W)
        if fit_intercept:
            restart += ops.vdot(by - bn, bn - b)
        if restart > 0:
            t = 1.0
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_next
        t = t_next
        if beta > 0:
            Wy = Wn + beta * (Wn - W)
            by = bn + beta * (bn - b)
            Zy = Zn + beta * (Zn - Z)
            fy, Py = _smooth(ops, Zy, Wy, stats, l2)
        else:
            Wy, by, Zy, fy, Py = Wn, bn, Zn, fn, Pn
        W, b, Z, f, P, F = Wn, bn, Zn, fn, Pn, Fn
        if n_iter % _CHECK_EVERY == 0 or n_iter == max_iter:
            gap, _ = dual_gap(ops, X, F, P, stats, groups, alpha, l2, fit_intercept)
            P_hist = [*P_hist[1 - _N_EXTRAPOLATE :], P]
            P_acc = _extrapolate_probabilities(ops, P_hist)
            P_dual = None
            if P_acc is not None:
                gap_acc, _ = dual_gap(
                    ops, X, F, P_acc, stats, groups, alpha, l2, fit_intercept
                )
                if gap_acc < gap:
                    gap, P_dual = gap_acc, P_acc
            if gap < best[0]:
                stalled = 0 if gap < 0.9 * best[0] else stalled + 1
                best = (gap, W, b, F, P_dual)
            else:
                stalled += 1
            # stop at the tolerance, or at the rounding floor (no progress for a while)
            if gap <= tol or stalled >= _STALL_CHECKS:
                break
    gap, W, b, F, P_dual = best if math.isfinite(best[0]) else (gap, W, b, F, P_dual)
    return W, b, F, gap, n_iter, P_dual


def solve(
    ops,
    X,
    onehot,
    c,
    groups,
    *,
    alpha,
    l2=0.0,
    fit_intercept=True,
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
    ops : NumpyOps or TorchOps
        Array backend; every array below lives on it.
    X : array of shape (n, d), float32 or float64
        Design matrix.
    onehot : array of shape (n, K), float64
        One-hot encoded labels.
    c : array of shape (n,), float64
        Sample weights, normalised to sum to one.
    groups : Groups
        Partition of the features, on the backend.
    alpha : float
        Group-lasso strength (``>= 0``).
    l2 : float, default=0.0
        Ridge strength (``>= 0``); ``alpha + l2 > 0``.
    fit_intercept : bool, default=True
        Whether to fit an unpenalised intercept.
    coef_init : array of shape (d, K), default=None
        Warm start for the coefficients (zeros if None).
    intercept_init : array of shape (K,), default=None
        Warm start for the intercept (log class proportions if None).
    tol : float, default=1e-4
        Stop when the duality gap is at most ``tol`` times the objective.
    max_iter : int, default=10000
        Budget of iterations (certificate passes plus proximal-gradient steps).
    verbose : int, default=0
        Print one line per outer iteration when positive.
    random_state : int, default=0
        Seed of the power iteration estimating the Lipschitz constant.
    inner : {"fista", "newton"}, default="fista"
        Solver of the working-set problems: accelerated proximal gradient, or
        proximal Newton steps (numpy backend only), with an explicit Hessian on
        small working sets (:func:`._newton.newton_fits`) and Hessian-free
        coordinate descent on the Newton model on larger ones when every group is
        one feature (:func:`._newton.newton_applies`), accelerated proximal
        gradient otherwise; with ``"newton"``, the smooth
        case ``alpha = 0`` (an L2 fit, e.g. Head2Toe's refit) runs L-BFGS
        (:func:`._lbfgs.lbfgs_smooth`).

    Returns
    -------
    result : SolverResult
    """
    start = time.perf_counter()
    n, d = X.shape
    K = onehot.shape[1]
    f64 = ops.float64
    stats = DataStats(onehot, c)
    W = (
        ops.zeros((d, K), f64)
        if coef_init is None
        else ops.asarray(coef_init, dtype=f64)
    )
    if intercept_init is not None:
        b = ops.asarray(intercept_init, dtype=f64)
    elif fit_intercept:
        logpi = np.log(np.maximum(ops.to_numpy(stats.pi), 1e-300))
        b = ops.asarray(logpi - logpi.mean(), dtype=f64)
    else:
        b = ops.zeros(K, f64)
    n_iter, history = 0, []
    floor_checks, last_gap, inner_iter, floored = 0, math.inf, None, False
    ws_groups, P_dual = None, None
    converged = False
    while True:
        # ---- one pass over the full X: objective, gradient, certificate
        norms = group_norms(ops, W, groups)
        active = ops.nonzero(norms > 0)
        rows = ops.nonzero(ops.isin(groups.ids, active))
        Z = ops.cast(ops.take_columns(X, rows), f64) @ W[rows] + b
        f, P = _smooth(ops, Z, W, stats, l2)
        primal = f + alpha * ops.vdot(groups.weights, norms)
        gap, V = dual_gap(ops, X, primal, P, stats, groups, alpha, l2, fit_intercept)
        if P_dual is not None:
            gap_acc, _ = dual_gap(
                ops, X, primal, P_dual, stats, groups, alpha, l2, fit_intercept
            )
            gap = min(gap, gap_acc)
        n_iter += 1
        ws_size = 0 if ws_groups is None else len(ws_groups)
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
        if inner_iter == 0 and gap > 0.9 * last_gap:
            floor_checks += 1
            if floor_checks >= _FLOOR_CHECKS:
                floored = True
                break
        else:
            floor_checks = 0
        last_gap = gap
        if n_iter >= max_iter:
            break
        # ---- working set: active groups plus the worst violators of the KKT conditions
        # V = -X^T R at the intercept-corrected point: minus the data-term gradient
        grad = l2 * W - V if l2 else V
        scores = group_norms(ops, grad, groups) / groups.weights
        scores[active] = math.inf
        size = max(_MIN_WS_SIZE, 2 * len(active))
        if alpha == 0:
            size = groups.n_groups
        ws_groups = ops.top_k(scores, min(size, groups.n_groups))
        features = ops.nonzero(ops.isin(groups.ids, ws_groups))
        sub_groups = Groups(
            ops.searchsorted(ws_groups, groups.ids[features]), groups.weights[ws_groups]
        )
        X_ws = ops.cast(ops.take_columns(X, features), f64)
        W_ws = W[features]
        if fit_intercept:
            # Centre the working-set columns (weighted means mu): X W + b equals
            # (X - mu) W + (b + mu W), the same problem, far better conditioned when
            # features are not centred (the intercept decouples from W).
            mu = c @ X_ws
            X_ws = X_ws - mu[None, :]
            b = b + mu @ W_ws
        target = _INNER_TOL_RATIO * gap
        inner_gap, inner_iter = math.inf, 0
        if inner == "newton" and alpha == 0 and l2 > 0:
            # smooth and strongly convex: quasi-Newton on all the features. The
            # working set is everything, so solve to the final certificate at
            # once: handing back at 0.3 x gap restarts L-BFGS without its memory.
            target = min(target, 0.5 * tol * abs(primal))
            W_ws, b, _, inner_gap, inner_iter, P_dual = lbfgs_smooth(
                X_ws,
                stats,
                sub_groups,
                l2,
                fit_intercept,
                W_ws,
                b,
                target,
                max_iter - n_iter,
            )
        elif inner == "newton" and newton_applies(sub_groups, len(features), K):
            W_ws, b, _, inner_gap, inner_iter, P_dual = prox_newton(
                X_ws,
                stats,
                sub_groups,
                alpha,
                l2,
                fit_intercept,
                W_ws,
                b,
                target,
                max_iter - n_iter,
                final_tol=0.5 * tol * abs(primal),
            )
        if inner_gap > target:
            # FISTA, or its fallback when the (quasi-)Newton steps stalled short of the
            # target (nearly separable data with a tiny ridge: the model's Hessian
            # is almost singular far from the optimum), from where they stopped.
            L_ws = lipschitz_constant(
                ops, X_ws, c, fit_intercept, l2, random_state=random_state
            )
            W_ws, b, _, _, apg_iter, P_dual = _apg(
                ops,
                X_ws,
                stats,
                sub_groups,
                alpha,
                l2,
                fit_intercept,
                W_ws,
                b,
                L_ws,
                target,
                max(1, max_iter - n_iter - inner_iter),
            )
            inner_iter += apg_iter
        if fit_intercept:
            b = b - mu @ W_ws
        n_iter += inner_iter
        W = ops.zeros((d, K), f64)
        W[features] = W_ws
    b_np = ops.to_numpy(b)
    return SolverResult(
        coef=ops.to_numpy(W),
        intercept=b_np - b_np.mean(),
        primal=float(primal),
        dual_gap=float(gap),
        n_iter=int(n_iter),
        converged=converged,
        history=history,
        floored=floored,
    )
