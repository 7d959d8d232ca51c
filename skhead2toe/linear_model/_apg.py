"""Accelerated proximal gradient (FISTA) on a working-set problem, for both backends.

Backtracking line search on the Lipschitz constant (optimistically decreased at every
step), gradient-based adaptive restart, and a restricted duality gap checked every
``_CHECK_EVERY`` steps, with Anderson extrapolation of the dual points (dual
extrapolation, Massias et al., 2018/2020). :func:`fista_momentum` is the momentum
rule shared with the Newton model solver (:mod:`._newton`).

With ``fast``, a float32 copy of the problem's design, the two products with the
design in each step (the logits of the new point and the gradient) run in
float32, about twice as fast. The logits are then updated by the step,
``Z + X (W_new - W)``, so their rounding error is relative to the step, not to
``Z``: it vanishes as the iterates converge, and the sufficient-decrease test
stays meaningful where a float32 ``X W`` would be noise. Every gap check
recomputes the iterate's logits in float64, so the restricted certificate is
exact; the caller uses ``fast`` only for targets far above float32's resolution.

Once the support looks settled (:class:`_NewtonSchedule`), float64 runs try
Hessian-free Newton steps on it (:mod:`._support_cg`) while each halves the
certified gap. The gap is linear in the dual point's error and the objective
quadratic in the primal's, so the last digits of a tight certificate are
where FISTA is slowest and Newton fastest: at ``K = 100``, ``d = 20,000``,
0.1 alpha_max and ``tol=1e-6``, 3,038 steps (3.9x one scikit-learn
``LogisticRegression``) became 1,414 (1.5x), and an alpha 5.7e-8 away that
FISTA alone did not certify in 10,000 steps certifies in 1,425
(``benchmarks/bench_certificate.py``).
"""

import math

from ._anderson import anderson_weights
from ._problem import group_norms
from ._results import InnerResult
from ._support_cg import support_newton, support_settled

__all__ = ["apg", "fista_momentum"]

_CHECK_EVERY = 10  # restricted-gap checks, every that many steps
_N_EXTRAPOLATE = 5  # residuals kept for the dual extrapolation
_STALL_CHECKS = 50  # gap checks without a 10% improvement before giving up
_FLAT_RTOL = 1e-13  # objective changes below this fraction: its rounding floor
_FAST_RGAP = 1e-5  # float32 steps until the gap is this fraction of the objective
_FAST_STALL_CHECKS = 3  # ... or stalls for this many checks; float64 from there
_NEWTON_STEPS = 10  # most support Newton steps in a row
_NEWTON_GAIN = 0.5  # ... each must at least halve the gap, else back to FISTA
_NEWTON_PAUSE = 100  # FISTA steps before a new try when a Newton phase gained nothing


def fista_momentum(t, restart):
    """FISTA's momentum step, with adaptive restart.

    Parameters
    ----------
    t : float
        The current momentum parameter (1 at the start).
    restart : bool
        Whether to drop the momentum: the last step pointed against the one before
        (gradient-based restart, O'Donoghue & Candes, 2015; robust at the rounding
        floor, unlike comparisons of objective values).

    Returns
    -------
    t_next : float
        The next momentum parameter.
    beta : float
        Extrapolation weight: ``y = x_new + beta (x_new - x_old)``.
    """
    if restart:
        t = 1.0
    t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
    return t_next, (t - 1.0) / t_next


def _extrapolate_probabilities(ops, history):
    """Anderson extrapolation of softmax matrices, made a valid dual point.

    Near the optimum, proximal-gradient iterates converge linearly and their residuals
    follow a vector autoregression, whose limit Anderson extrapolation estimates from
    the last few terms. The rescaled residual converges like the square root of the
    primal error; the extrapolated one is far closer to the dual optimum. The result
    is clipped and renormalised onto the simplex, so any outcome is a valid dual point
    and the gap stays a certificate.
    """
    if len(history) < _N_EXTRAPOLATE:
        return None
    weights = anderson_weights([ops.to_numpy(P) for P in history])
    if weights is None:
        return None
    P = sum(float(w) * Pk for w, Pk in zip(weights, history[1:], strict=True))
    P = ops.clip_min(P, 0.0)
    return P / P.sum(1)[:, None]


class _Point:
    """An iterate with its logits, smooth value and probabilities."""

    __slots__ = ("W", "b", "Z", "f", "P")

    def __init__(self, problem, W, b, Z):
        self.W, self.b, self.Z = W, b, Z
        self.f, self.P = problem.smooth(Z, W)


def _logits(problem, y, W, b, fast):
    """Logits at ``(W, b)``: exact, or by ``fast``'s float32 step from ``y``."""
    if fast is None:
        return problem.X @ W + b
    ops = problem.ops
    step = fast.X @ ops.cast(W - y.W, ops.float32)
    return y.Z + ops.cast(step, ops.float64) + (b - y.b)


def _prox_step(problem, y, L, fast=None):
    """Backtracking proximal-gradient step from ``y``; returns the point and ``L``."""
    ops, fit_intercept = problem.ops, problem.fit_intercept
    G, gb = (fast or problem).gradient(y.P, y.W)
    L *= 0.9  # optimistic: the local curvature is often far below the bound
    while True:
        Wn = problem.prox(y.W - G / L, 1.0 / L)
        dW = Wn - y.W
        sq, lin = ops.vdot(dW, dW), ops.vdot(G, dW)
        bn = y.b
        if fit_intercept:
            bn = y.b - gb / L
            db = bn - y.b
            sq += ops.vdot(db, db)
            lin += ops.vdot(gb, db)
        new = _Point(problem, Wn, bn, _logits(problem, y, Wn, bn, fast))
        # sufficient decrease, with slack for rounding near the optimum (y.f comes
        # from extrapolated logits, new.f from fresh ones)
        if new.f <= y.f + lin + 0.5 * L * sq + 1e-13 * (1.0 + abs(y.f)):
            return new, L
        if sq == 0.0:
            return new, L  # no move left: the values differ by rounding only
        L *= 2.0


def _certified_gap(problem, primal, P, P_hist):
    """Gap at ``P`` and at its extrapolation; the best, with its dual point."""
    gap, _ = problem.dual_gap(primal, P)
    P_hist.append(P)
    del P_hist[:-_N_EXTRAPOLATE]
    P_acc = _extrapolate_probabilities(problem.ops, P_hist)
    if P_acc is not None:
        gap_acc, _ = problem.dual_gap(primal, P_acc)
        if gap_acc < gap:
            return gap_acc, P_acc
    return gap, None


def _newton_phase(problem, x, F, gap, tol, budget):
    """Support Newton steps (:mod:`._support_cg`) from ``x`` while they pay.

    Each step is certified by the (plain) duality gap; the phase ends at
    ``tol``, after a step that does not halve the gap, after a refused step, or
    at ``budget`` products. Returns the best point, its objective and gap, the
    products used and whether the phase at least halved the gap.
    """
    best, used, preconditioner = (x, F, gap), 0, None
    for _ in range(_NEWTON_STEPS):
        if best[2] <= tol or used >= budget:
            break
        point, n, preconditioner = support_newton(
            problem, x.W, x.b, x.Z, F, x.P, preconditioner
        )
        used += n
        if point is None:
            break
        W, b, Z, F = point
        x = _Point(problem, W, b, Z)
        step_gap, _ = problem.dual_gap(F, x.P)
        improved = step_gap <= _NEWTON_GAIN * best[2]
        if step_gap < best[2]:
            best = (x, F, step_gap)
        if not improved:
            break
    return (*best, used, best[2] <= _NEWTON_GAIN * gap)


class _NewtonSchedule:
    """When :func:`apg` tries a Newton phase: on a support that looks settled.

    That is the same non-zero groups at two gap checks in a row, and no zero
    group asking to enter (:func:`~._support_cg.support_settled`); not again
    for ``_NEWTON_PAUSE`` steps after a phase that did not halve the gap.
    """

    def __init__(self):
        self.support, self.after = None, 0

    def ready(self, problem, x, n_iter):
        if n_iter < self.after:
            return False
        mask = group_norms(problem.ops, x.W, problem.groups) > 0
        same = self.support is not None and (
            problem.ops.item((mask != self.support).sum()) == 0
        )
        self.support = mask
        return same and support_settled(problem, x.W, problem.gradient(x.P, x.W)[0])

    def done(self, n_iter, gained):
        if not gained:
            self.after = n_iter + _NEWTON_PAUSE


def apg(problem, W, b, *, L, tol, max_iter, fast=None):
    """FISTA with backtracking and adaptive restart on a (restricted) problem.

    Parameters
    ----------
    problem : Problem
        The problem (typically a working set, with centred columns).
    W : array of shape (m, K)
        Starting coefficients (float64, on the backend).
    b : array of shape (K,)
        Starting intercept.
    L : float
        Initial step-size constant (:meth:`Problem.lipschitz`).
    tol : float
        Stop once the duality gap of this problem is at most ``tol`` (absolute).
    max_iter : int
        Most proximal-gradient steps.
    fast : Problem or None, default=None
        The same problem with a float32 design, for the steps' products (see
        the module docstring) until the gap is ``_FAST_RGAP`` of the objective
        or stalls; None runs them in float64.

    Returns
    -------
    result : InnerResult
        The iterate with the smallest certified gap; its ``dual_point`` is the
        extrapolated one when that gave the gap.
    """
    ops = problem.ops
    x = _Point(problem, W, b, problem.X @ W + b)
    F = x.f + problem.penalty(W)
    y, t, gap, n_iter, stalled, F_check = x, 1.0, math.inf, 0, 0, F
    P_hist, P_dual = [], None
    best = (math.inf, x.W, x.b, F, None)  # the iterate with the smallest certified gap
    newton = _NewtonSchedule()
    while n_iter < max_iter:
        n_iter += 1
        new, L = _prox_step(problem, y, L, fast)
        F = new.f + problem.penalty(new.W)
        restart = ops.vdot(y.W - new.W, new.W - x.W)
        if problem.fit_intercept:
            restart += ops.vdot(y.b - new.b, new.b - x.b)
        t, beta = fista_momentum(t, restart > 0)
        if beta > 0:
            y = _Point(
                problem,
                new.W + beta * (new.W - x.W),
                new.b + beta * (new.b - x.b),
                new.Z + beta * (new.Z - x.Z),
            )
        else:
            y = new
        x = new
        if n_iter % _CHECK_EVERY == 0 or n_iter == max_iter:
            if fast is not None:  # the exact logits, for an exact certificate
                x = _Point(problem, x.W, x.b, problem.X @ x.W + x.b)
                F = x.f + problem.penalty(x.W)
            gap, P_dual = _certified_gap(problem, F, x.P, P_hist)
            if gap < 0.9 * best[0]:
                stalled = 0
            else:
                stalled += 1
                if abs(F - F_check) <= _FLAT_RTOL * abs(F):
                    # no progress with the objective at its rounding floor:
                    # there the momentum makes the iterates wander (the gap
                    # bounced between 3e-10 and 3e-7 for a thousand steps on
                    # a 3-class test problem). Start afresh from x, without it.
                    t, y = 1.0, x
            F_check = F
            if fast is None and gap > tol and newton.ready(problem, x, n_iter):
                x, F, new_gap, used, gained = _newton_phase(
                    problem, x, F, gap, tol, max_iter - n_iter
                )
                n_iter += used
                newton.done(n_iter, gained)
                if new_gap < gap:  # FISTA afresh from the new point
                    gap, P_dual, t, y, F_check = new_gap, None, 1.0, x, F
                    P_hist.clear()
            if gap < best[0]:
                best = (gap, x.W, x.b, F, P_dual)
            if fast is not None and (
                gap <= _FAST_RGAP * abs(F) or stalled >= _FAST_STALL_CHECKS
            ):
                fast, stalled, y = None, 0, x  # float64 from here, from x
            # stop at the tolerance, or at the rounding floor (no progress for a while)
            if gap <= tol or stalled >= _STALL_CHECKS:
                break
    if not math.isfinite(best[0]):
        best = (gap, x.W, x.b, F, P_dual)
    gap, W, b, F, P_dual = best
    return InnerResult(W, b, F, gap, n_iter, P_dual)
