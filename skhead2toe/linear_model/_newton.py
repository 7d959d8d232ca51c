r"""Proximal Newton steps on a working set (numpy backend).

On the working set the problem has ``m`` feature rows and ``K`` classes. When
``(m + 1) K`` is small (a few dozen active rows, Head2Toe's regime) the exact Hessian
of the data term,

.. math::

    H = \sum_i c_i\, (\tilde x_i \tilde x_i^\top) \otimes (\mathrm{diag}(p_i)
    - p_i p_i^\top) \;+\; \ell_2 I ,

with ``x~_i = (x_i, 1)`` (the last row of the variable is the intercept), is cheaper
to form than hundreds of gradient steps, and Newton's method is immune to the
ill-conditioning that near-separable classes give the softmax loss (the condition
number grows like ``1e4`` at ``0.01 alpha_max``). Each step

1. forms ``H`` and the gradient ``g`` at ``V = (W, b)``;
2. minimises the model ``<g, D> + D^T H D / 2 + alpha sum_g w_g ||W_g + D_g||`` on
   the explicit quadratic (cheap: no ``exp``, no pass over ``X``): by cyclic block
   coordinate descent over the rows with one feature per group
   (:func:`_solve_model_bcd`), by accelerated proximal gradient otherwise
   (:func:`_solve_model`), to a relative accuracy of the first step;
3. backtracks along ``D`` on the true objective (Armijo on the model decrease, as
   in Lee, Sun & Saunders, 2014).

Step 2 is skipped when the support (the non-zero groups) looks settled, that is
when no zero group of the working set violates its optimality condition
(:func:`_support_settled`): the objective is then smooth on the support, and one
Cholesky solve with the data Hessian of the support (formed for the support's
rows only) plus the penalty's curvature gives the exact Newton step there
(:func:`_support_step`), converging quadratically where the inexact model steps
gain about a digit each. A support step that gains less than a digit of the gap
is followed by a model step, which may change the support. In that quadratic
phase a solve asked for ``tol`` goes on to the caller's final target
(``final_tol``), by at most ``_EXTRA_STEPS`` steps.

Larger working sets (one feature per group) solve the model in step 2 by cyclic
block coordinate descent without forming ``H`` (:func:`_solve_model_cd`), as
glmnet does: ``O(n K)`` per row visit, a few dozen sweeps per Newton step, fewer
with Anderson extrapolation of the sweeps (:func:`_extrapolate_model`).

The restricted duality gap is checked after every step; the caller's working-set
loop certifies the full problem, so the result is as certified as FISTA's.
"""

import math
from typing import Any, NamedTuple

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.linalg.blas import dsyrk

from ._anderson import anderson_weights
from ._apg import fista_momentum
from ._numpy import NUMPY_OPS
from ._problem import group_norms, power_iteration, prox_group_lasso
from ._results import InnerResult

__all__ = ["newton_applies", "newton_fits", "prox_newton"]

_MAX_NEWTON_SIZE = 1500  # largest (m + 1) K with an explicit Hessian
_ARMIJO = 1e-4  # sufficient-decrease fraction of the model decrease
_MODEL_RTOL = 1e-2  # model solves stop at this fraction of the first gradient mapping
_MODEL_MAX_ITER = 2000  # accelerated steps per model solve
_STALL_STEPS = 5  # Newton steps without a 10% gap improvement before giving up
_EXACT_BLOCK_K = 32  # most classes for the Hessian-free coordinate-descent model
_CD_MAX_SWEEPS = 500  # coordinate-descent sweeps per model solve
_CD_FULL_EVERY = 10  # sweeps over the active rows between two full sweeps
_CD_RTOL = 0.1  # model solves stop when a sweep moves this fraction of the first
_SUPPORT_DAMPING = 1e-8  # Levenberg damping of support steps, relative to the curvature
_CD_ANDERSON = 5  # active-row sweeps between two Anderson extrapolations of the model
_EXTRA_STEPS = 2  # support steps beyond the inner target, towards the final one


class _Model(NamedTuple):
    """The Newton model of a working-set problem at ``V0 = (W, b)``.

    ``Xt`` is the working-set design with a column of ones last when there is an
    intercept; ``P`` the softmax probabilities and ``g`` the gradient of the smooth
    part at ``V0`` (one row per row of ``V0``); ``c``, ``l2``, ``groups`` and
    ``alpha`` those of the problem; the penalty applies to the first
    ``n_features`` rows.
    """

    Xt: Any
    P: Any
    c: Any
    l2: float
    g: Any
    V0: Any
    groups: Any
    alpha: float
    n_features: int

    def penalty(self, V):
        """Group-lasso penalty of the penalised rows of ``V``."""
        norms = group_norms(NUMPY_OPS, V[: self.n_features], self.groups)
        return self.alpha * float(np.vdot(self.groups.weights, norms))


def newton_fits(n_rows, n_classes):
    """Whether an explicit Hessian of ``n_rows`` rows by ``n_classes`` is cheap.

    Parameters
    ----------
    n_rows : int
        Penalised rows of the working set (features).
    n_classes : int
        Number of classes.

    Returns
    -------
    fits : bool
        Whether ``(n_rows + 1) n_classes`` is at most ``_MAX_NEWTON_SIZE``.
    """
    return (n_rows + 1) * n_classes <= _MAX_NEWTON_SIZE


def newton_applies(groups, n_rows, n_classes):
    """Whether :func:`prox_newton` handles this working set.

    Small ones with an explicit Hessian; any size with one feature per group and
    at most ``_EXACT_BLOCK_K`` classes (Hessian-free coordinate descent on the
    model). With more classes a row visit costs ``O(n K)`` against a loose
    curvature bound, and accelerated proximal gradient is faster (measured in
    ``benchmarks/README.rst``, "Newton model solves").

    Parameters
    ----------
    groups : Groups
        Groups of the working set.
    n_rows : int
        Its penalised rows (features).
    n_classes : int
        Number of classes.

    Returns
    -------
    applies : bool
        Whether proximal Newton steps are used on this working set.
    """
    return newton_fits(n_rows, n_classes) or (
        groups.n_groups == n_rows and n_classes <= _EXACT_BLOCK_K
    )


def hessian(Xt, P, c, l2, n_features):
    """Explicit Hessian of the smooth part in the row-major ``vec(V)`` layout.

    Parameters
    ----------
    Xt : ndarray of shape (n, m')
        Working-set design, with a column of ones last when there is an intercept.
    P : ndarray of shape (n, K)
        Softmax probabilities.
    c : ndarray of shape (n,)
        Sample weights summing to one.
    l2 : float
        Ridge strength (applied to the first ``n_features`` rows only).
    n_features : int
        Number of penalised rows (the intercept row, if any, is not).

    Returns
    -------
    H : ndarray of shape (m' K, m' K)
    """
    n, mp = Xt.shape
    K = P.shape[1]
    A = Xt * np.sqrt(c)[:, None]
    U = (A[:, :, None] * P[:, None, :]).reshape(n, mp * K)
    # - sum_i c_i (x_i x_i^T) (x) p_i p_i^T, lower triangle from syrk, then symmetrised
    H = dsyrk(-1.0, U, trans=1, lower=1)
    H = H + np.tril(H, -1).T
    H4 = H.reshape(mp, K, mp, K)
    for k in range(K):
        H4[:, k, :, k] += (A * P[:, k : k + 1]).T @ A
    if l2:
        idx = np.arange(n_features * K)
        H[idx, idx] += l2
    return H


def _power_lipschitz(H, n_iter=20):
    """Upper estimate of ``lambda_max(H)`` (power iteration, then a 5% margin)."""
    v = np.ones(H.shape[0]) + np.linspace(0.0, 1.0, H.shape[0])
    lam = power_iteration(H.__matmul__, v, lambda a, b: float(a @ b), n_iter)
    return 1.05 * max(lam, 1e-300)


def _solve_model(H, model):
    """Minimise the Newton model by FISTA on the explicit quadratic.

    Variable ``V`` of shape (m', K); the model is
    ``<g, V - V0> + (V - V0)^T H (V - V0) / 2 + alpha sum_g w_g ||V_g||`` with the
    penalty on the first ``n_features`` rows only. Backtracking is exact for a
    quadratic: ``L`` doubles until ``<dV, H dV> <= L ||dV||^2``.
    """
    g, V0, groups, alpha, n_features = model[4:]
    shape = V0.shape
    L = _power_lipschitz(H)

    def prox(U, step):
        out = U.copy()
        out[:n_features] = prox_group_lasso(
            NUMPY_OPS, U[:n_features], groups, alpha * step
        )
        return out

    V, HD = V0, np.zeros(shape)  # HD = H (V - V0)
    Y, HDy = V, HD
    t = 1.0
    gm0 = None
    for _ in range(_MODEL_MAX_ITER):
        grad = g + HDy
        while True:
            Vn = prox(Y - grad / L, 1.0 / L)
            HDn = (H @ (Vn - V0).ravel()).reshape(shape)
            step = Vn - Y
            sq = float(np.vdot(step, step))
            if float(np.vdot(step, HDn - HDy)) <= L * sq * (1 + 1e-12) or sq == 0:
                break
            L *= 2.0
        gm = L * math.sqrt(sq)  # norm of the gradient mapping at Y
        if gm0 is None:
            gm0 = gm
        if gm <= _MODEL_RTOL * gm0:
            return Vn
        t, beta = fista_momentum(t, float(np.vdot(Y - Vn, Vn - V)) > 0)
        Y = Vn + beta * (Vn - V)
        HDy = HDn + beta * (HDn - HD)
        V, HD = Vn, HDn
    return V


def _solve_model_bcd(H, model):
    """Minimise the Newton model by cyclic block coordinate descent on explicit ``H``.

    One feature per group. Row ``j`` takes a group soft-thresholding step with the
    largest eigenvalue of its ``K x K`` diagonal block of ``H``, then the model
    gradient ``g + H (V - V0)`` is updated by one ``K x m'K`` product; sweeps
    alternate between all rows and the non-zero ones, as in
    :func:`_solve_model_cd`, until a sweep moves less than ``_MODEL_RTOL`` times
    the first. On the small working sets of Head2Toe's problems a row step costs
    about what a FISTA step's vector operations do, and a few dozen sweeps reach
    a lower model value than the few hundred FISTA steps of :func:`_solve_model`
    (measured in ``benchmarks/README.rst``, "Newton model solves").
    """
    g, V0, groups, alpha, n_features = model[4:]
    mp, K = V0.shape
    H_rows = H.reshape(mp, K, mp * K)  # block row j: the K rows of H for row j
    diagonal = np.arange(mp)
    blocks = H.reshape(mp, K, mp, K)[diagonal, :, diagonal, :]
    L = np.maximum(np.linalg.eigvalsh(blocks)[:, -1], 1e-12)
    inv_L = 1.0 / L
    thresh = np.zeros(mp)
    thresh[:n_features] = alpha * groups.weights[groups.ids] / L[:n_features]
    V = V0.copy()
    grad = g.ravel().copy()  # g + H (V - V0), kept up to date
    G = grad.reshape(mp, K)
    everything = list(range(mp))
    rows = everything
    first = None
    for sweep in range(_CD_MAX_SWEEPS):
        moved = 0.0
        for j in rows:
            vj = V[j]
            u = vj - G[j] * inv_L[j]
            if thresh[j]:
                norm = math.sqrt(np.dot(u, u))
                if norm <= thresh[j]:
                    if not vj.any():
                        continue  # stays at zero
                    u = np.zeros(K)
                else:
                    u *= 1.0 - thresh[j] / norm
            delta = u - vj
            sq = np.dot(delta, delta)
            if sq == 0.0:
                continue
            V[j] = u
            moved += L[j] * L[j] * sq
            grad += np.dot(delta, H_rows[j])
        moved = math.sqrt(moved)
        full = rows is everything
        if first is None:
            first = moved
        if moved <= _MODEL_RTOL * first:
            if full:
                break
            rows = everything  # converged on the active rows: check them all
        elif full:
            active = np.flatnonzero(np.any(V[:n_features] != 0, axis=1)).tolist()
            rows = active + everything[n_features:]
        elif sweep % _CD_FULL_EVERY == 0:
            rows = everything
    return V


def _block_curvatures(Xt, P, c, l2, n_features):
    """``lambda_max`` of every row's ``K x K`` block of the Hessian, shape (m',).

    Row ``j``'s block is ``sum_i c_i x_ij^2 (diag(p_i) - p_i p_i^T)`` (plus ``l2``
    on penalised rows), formed for all rows at once in ``O(n m' K^2)``.
    """
    K = P.shape[1]
    A = Xt * Xt * c[:, None]
    blocks = -np.einsum("ij,ik,il->jkl", A, P, P, optimize=True)
    idx = np.arange(K)
    blocks[:, idx, idx] += A.T @ P
    L = np.linalg.eigvalsh(blocks)[:, -1]
    L[:n_features] += l2
    return np.maximum(L, 1e-12)


def _solve_model_cd(model):
    """Minimise the Newton model by cyclic block coordinate descent, Hessian-free.

    For working sets too large for an explicit Hessian, with one feature per
    group. The model's Hessian is never formed: with ``Q = Xt D`` the curvature
    term's gradient is ``Xt^T M`` with ``M_i = c_i (p_i * q_i - p_i <p_i, q_i>)``,
    and ``M`` is updated in ``O(n K)`` whenever one row of ``D`` changes. Each row
    takes a group soft-thresholding step with its own block curvature
    (:func:`_block_curvatures`), as in glmnet; sweeps alternate between all rows
    and the non-zero ones (glmnet's active-set cycling) until a sweep moves less
    than ``_CD_RTOL`` times the first (an inexact model solve: the Newton steps'
    line search and the gap certificate stay exact). Every ``_CD_ANDERSON`` sweeps
    over the same rows, the sweeps are extrapolated (:func:`_extrapolate_model`):
    on correlated features this halves the sweeps a model solve needs.
    """
    Xt, P, c, l2, g, V0, groups, alpha, n_features = model
    n, mp = Xt.shape
    K = P.shape[1]
    L = _block_curvatures(Xt, P, c, l2, n_features)
    XT = np.ascontiguousarray(Xt.T)
    # M is kept transposed, (K, n): every row update is then contiguous
    PT = np.ascontiguousarray(P.T)
    cPT = PT * c
    thresh = np.zeros(mp)
    thresh[:n_features] = alpha * groups.weights[groups.ids] / L[:n_features]
    V = V0.copy()
    MT = np.zeros((K, n))
    tmp = np.empty((K, n))
    first = None
    history = []
    everything = np.arange(mp)
    rows = everything
    for sweep in range(_CD_MAX_SWEEPS):
        moved = 0.0
        for j in rows:
            xj = XT[j]
            grad = MT @ xj
            grad += g[j]
            if l2 and j < n_features:
                grad += l2 * (V[j] - V0[j])
            u = V[j] - grad / L[j]
            if thresh[j]:
                norm = math.sqrt(float(u @ u))
                u = u * max(0.0, 1.0 - thresh[j] / norm) if norm else u
            delta = u - V[j]
            if not delta.any():
                continue
            V[j] = u
            moved += L[j] * L[j] * float(delta @ delta)
            # M += c x_j (P * delta - P <P, delta>), in place
            np.subtract(delta[:, None], (delta @ PT)[None, :], out=tmp)
            tmp *= cPT
            tmp *= xj
            MT += tmp
        moved = math.sqrt(moved)
        full = rows is everything
        if first is None:
            first = moved
        if full:
            history = []
        else:
            history.append(V.copy())
            if len(history) > _CD_ANDERSON:
                V, MT = _extrapolate_model(model, V, MT, history)
                history = []
        if moved <= _CD_RTOL * first:
            if full:
                break
            rows = everything  # converged on the active rows: check them all
        elif full:
            active = np.flatnonzero(np.any(V[:n_features] != 0, axis=1))
            rows = np.concatenate([active, everything[n_features:]])
        elif sweep % _CD_FULL_EVERY == 0:
            rows = everything
    return V


def _model_value(model, V):
    """Value of the Newton model at ``V`` and its transposed curvature term ``M``."""
    Xt, P, c, l2, g, V0, groups, alpha, n_features = model
    D = V - V0
    Q = Xt @ D
    PQ = P * Q
    s = PQ.sum(axis=1)
    M = PQ - P * s[:, None]
    M *= c[:, None]
    value = float(np.vdot(g, D)) + 0.5 * float(np.vdot(M, Q)) + model.penalty(V)
    if l2:
        value += 0.5 * l2 * float(np.vdot(D[:n_features], D[:n_features]))
    return value, M.T


def _extrapolate_model(model, V, MT, history):
    """Anderson step for coordinate descent on the model, kept only if it helps.

    Cyclic coordinate descent on a fixed set of rows is a fixed-point map; its
    iterates are extrapolated (Bertrand & Massias, 2021) and the result replaces
    ``V`` when it has a lower model value. Costs two products with ``Xt``, a few
    row sweeps' worth.
    """
    weights = anderson_weights(history)
    if weights is None:
        return V, MT
    V_ex = sum(float(w) * Vk for w, Vk in zip(weights, history[1:], strict=True))
    value, _ = _model_value(model, V)
    value_ex, MT_ex = _model_value(model, V_ex)
    if value_ex < value:
        return V_ex, np.ascontiguousarray(MT_ex)
    return V, MT


def _support_settled(W, grad, groups, alpha):
    """Whether the support of ``W`` looks final.

    It does when some group is non-zero and every zero group satisfies its
    optimality condition ``||grad_g|| <= alpha w_g``: no zero group asks to enter
    (a support step would keep it out).
    """
    norms = group_norms(NUMPY_OPS, W, groups)
    zero = norms == 0
    if zero.all():
        return False
    pull = group_norms(NUMPY_OPS, grad, groups)[zero]
    return bool(np.all(pull <= alpha * groups.weights[zero]))


def _support_step(model):
    """Newton step of the full objective on the current support, or None.

    Once the support (the non-zero groups) is identified, the penalty is smooth
    there: ``alpha w_g ||V_g||`` has gradient ``alpha w_g V_g / ||V_g||`` and Hessian
    ``alpha w_g (I - u u^T) / ||V_g||`` with ``u = V_g / ||V_g||``. One linear solve
    with the data Hessian plus these blocks gives the exact Newton direction on the
    support, which converges quadratically where the inexact model steps gain
    about one digit per step. Zero groups stay zero; the caller falls back to the
    model step when the support has to change.

    Only the support's rows of the Hessian are formed (from ``Xt``, ``P``, ``c``
    and ``l2``, as in :func:`hessian`): half the working set at most, so a
    quarter of the cost of the working set's Hessian or less. Returns None when
    the support is empty or too large for an explicit Hessian.
    """
    Xt, P, c, l2, g, V0, groups, alpha, n_features = model
    n_rows, K = V0.shape
    norms = group_norms(NUMPY_OPS, V0[:n_features], groups)
    support = np.flatnonzero(norms[groups.ids] > 0)
    if support.size == 0 or not newton_fits(support.size, K):
        return None
    rows = np.concatenate([support, np.arange(n_features, n_rows)])  # + intercept
    Hs = hessian(Xt[:, rows], P, c, l2, support.size)
    gs = g[rows].ravel().copy()
    for group in np.unique(groups.ids[support]):
        members = np.flatnonzero(groups.ids[support] == group)  # positions in rows
        entries = (members[:, None] * K + np.arange(K)).ravel()
        v = V0[support[members]].ravel()
        scale = alpha * groups.weights[group] / norms[group]
        u = v / norms[group]
        gs[entries] += scale * v
        block = Hs[np.ix_(entries, entries)]
        block += scale * (np.eye(entries.size) - np.outer(u, u))
        Hs[np.ix_(entries, entries)] = block
    # Adding a constant to every class of the intercept changes nothing: a flat
    # direction of Hs, to which the gradient is orthogonal. Curving it (by the mean
    # curvature) leaves the step unchanged and the system well conditioned.
    mean_curvature = max(float(np.trace(Hs)) / Hs.shape[0], 1e-300)
    if n_rows > n_features:
        Hs[-K:, -K:] += mean_curvature / K
    # Other flat directions are real: the penalty is linear along a split of weight
    # between duplicated columns. A small damping keeps the step out of them (the
    # gradient has no component there) instead of amplifying rounding errors.
    Hs[np.diag_indices_from(Hs)] += _SUPPORT_DAMPING * mean_curvature
    try:
        step = -cho_solve(cho_factor(Hs, lower=True, check_finite=False), gs)
    except LinAlgError:
        return None
    if not np.all(np.isfinite(step)):
        return None
    D = np.zeros_like(V0)
    D[rows] = step.reshape(rows.size, K)
    return V0 + D


def _newton_point(model, on_support):
    """Next point of a Newton step: a support step, else the model's minimiser.

    Returns the point and whether it came from a support step.
    """
    mf = model.n_features
    if on_support and _support_settled(
        model.V0[:mf], model.g[:mf], model.groups, model.alpha
    ):
        Vn = _support_step(model)
        if Vn is not None:
            return Vn, True
    if newton_fits(mf, model.P.shape[1]):
        H = hessian(model.Xt, model.P, model.c, model.l2, mf)
        if model.groups.n_groups == model.n_features:
            return _solve_model_bcd(H, model), False
        return _solve_model(H, model), False
    return _solve_model_cd(model), False


def _line_search(problem, model, Z, F, Vn):
    """Backtracking along ``Vn - V0`` on the true objective (Armijo on the model).

    Returns ``(W, b, Z, F, P)`` at the accepted point, or None when no step
    of the 40 halvings decreases the objective enough.
    """
    V0, mf = model.V0, model.n_features
    D = Vn - V0
    decrease = float(np.vdot(model.g, D)) + model.penalty(Vn) - model.penalty(V0)
    # slack for rounding: near the optimum the model decrease falls below the
    # resolution of F, yet full steps still improve the gradient (the gap)
    slack = 1e-13 * abs(F)
    dZ = model.Xt @ D
    step = 1.0
    for _ in range(40):
        Vt = V0 + step * D
        Zt = Z + step * dZ
        ft, Pt = problem.smooth(Zt, Vt[:mf])
        Ft = ft + problem.penalty(Vt[:mf])
        if Ft <= F + _ARMIJO * step * min(decrease, 0.0) + slack:
            b = Vt[mf] if problem.fit_intercept else None
            return Vt[:mf], b, Zt, Ft, Pt
        step *= 0.5
    return None


def _model_at(problem, Xt, W, b, P):
    """The Newton model of ``problem`` at ``(W, b)`` with probabilities ``P``."""
    G, gb = problem.gradient(P, W)
    if problem.fit_intercept:
        g, V0 = np.vstack([G, gb[None, :]]), np.vstack([W, b[None, :]])
    else:
        g, V0 = G, W
    return _Model(
        Xt, P, problem.c, problem.l2, g, V0, problem.groups, problem.alpha, W.shape[0]
    )


class _Progress:
    """Best certified point and the stopping rules of :func:`prox_newton`."""

    def __init__(self, tol, final_tol):
        self.tol, self.final_tol = tol, final_tol
        self.best = (math.inf, None, None, math.inf)
        self.stalled = self.extra = 0
        self.took_support, self.gap_before = False, math.inf

    def update(self, gap, W, b, F):
        """Record the gap of the current point; return whether to stop."""
        if gap < self.best[0]:
            self.stalled = 0 if gap < 0.9 * self.best[0] else self.stalled + 1
            self.best = (gap, W, b, F)
        else:
            self.stalled += 1
        final = self.final_tol
        if (
            gap <= self.tol
            and self.quadratic(gap)
            and final is not None
            and gap > final
        ):
            self.extra += 1
            done = self.extra > _EXTRA_STEPS
        else:
            done = gap <= self.tol
        return done or self.stalled >= _STALL_STEPS

    def quadratic(self, gap):
        """Whether the last step was a support step that gained a digit of gap."""
        return self.took_support and gap <= 0.1 * self.gap_before


def prox_newton(problem, W, b, *, tol, max_iter, final_tol=None):
    """Proximal Newton on a (restricted) numpy problem.

    Parameters
    ----------
    problem : Problem
        The (working-set) problem, numpy backend.
    W : ndarray of shape (m, K)
        Starting coefficients.
    b : ndarray of shape (K,)
        Starting intercept.
    tol : float
        Stop once the duality gap of this problem is at most ``tol`` (absolute).
    max_iter : int
        Most Newton steps.
    final_tol : float, default=None
        The caller's final target. A solve that reaches ``tol`` by a support step
        that gained at least a digit goes on to ``final_tol``, by at most
        ``_EXTRA_STEPS`` more steps: the steps converge quadratically there, and
        one costs a fraction of the pass over the full data that would otherwise
        find the gap just short of the target.

    Returns
    -------
    result : InnerResult
        The point with the smallest certified gap; it also stops when the gap
        stalls at the rounding floor.
    """
    X = problem.X
    n = X.shape[0]
    Xt = np.hstack([X, np.ones((n, 1))]) if problem.fit_intercept else X
    Z = X @ W + b
    f, P = problem.smooth(Z, W)
    F = f + problem.penalty(W)
    progress = _Progress(tol, final_tol)
    n_iter = 0
    while True:
        gap, _ = problem.dual_gap(F, P)
        if progress.update(gap, W, b, F) or n_iter >= max_iter:
            break
        # after a support step that gained less than a digit, a model step
        on_support = not progress.took_support or progress.quadratic(gap)
        progress.gap_before = gap
        n_iter += 1
        model = _model_at(problem, Xt, W, b, P)
        Vn, progress.took_support = _newton_point(model, on_support)
        accepted = _line_search(problem, model, Z, F, Vn)
        if accepted is None:
            if not progress.took_support:  # a failed support step: model step next
                progress.stalled = _STALL_STEPS
            continue
        W, b_new, Z, F, P = accepted
        b = b if b_new is None else b_new
    best_gap, W_best, b_best, F_best = progress.best
    if best_gap <= gap:
        return InnerResult(W_best, b_best, F_best, best_gap, n_iter)
    return InnerResult(W, b, F, gap, n_iter)
