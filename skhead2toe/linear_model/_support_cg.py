r"""Hessian-free Newton steps on a settled support, for both backends.

Why: the duality gap is *linear* in the error of the dual point, the objective
*quadratic* in the error of the primal one. With the dual point built from the
primal's softmax (:meth:`~._problem.Problem.dual_gap`), a relative gap of
``1e-6`` needs a relative suboptimality near ``1e-12``. Accelerated proximal
gradient gets to ``1e-10`` quickly and then spends most of its steps on the last
digits: at ``K = 100``, ``d = 5,000``, 0.1 alpha_max it was ``1e-10`` suboptimal
after a third of its 3,000 steps, with a certified gap of ``7e-5`` (issue 18).

Once the support (the non-zero groups) is identified, the objective is smooth
on it (the penalty ``tau_g ||W_g||`` has gradient ``tau_g u_g`` and Hessian
``tau_g (I - u_g u_g^T) / ||W_g||`` with ``u_g = W_g / ||W_g||``), so Newton's
method converges quadratically there. With many classes the support's Hessian
has ``((m + 1) K)^2`` entries (``(447 x 100)^2`` at ``K = 100``): it is never
formed. Its products cost two products with the support's columns,

.. math::

    H D = \tilde X^\top \big(c \odot (P \odot Q - P\, \mathrm{diag}(P Q^\top))\big)
    + \ell_2 D + \text{penalty curvature}, \qquad Q = \tilde X D,

so a conjugate-gradient solve preconditioned by the Hessian's ``K x K``
diagonal blocks (one per support row, :meth:`_System.preconditioner`) gives an
inexact Newton step for a few dozen products (Nocedal & Wright, 2006, ch. 7),
followed by a backtracking line search on the true objective. The caller
(:func:`~._apg.apg`) tries these steps only when no zero group asks to enter
the support, and keeps its certificate: every point is checked by the duality
gap, and zero groups stay zero.
"""

import math

import numpy as np

from ._problem import group_norms

__all__ = ["support_settled", "support_newton"]

_CG_RTOL = 1e-1  # conjugate gradients stop at this fraction of the gradient's norm
_CG_MAX_ITER = 100  # Hessian products per Newton step
_ARMIJO = 1e-4  # sufficient-decrease fraction of the directional derivative
_MAX_HALVINGS = 8  # line-search halvings before the step is refused
_BLOCK_MAX_ENTRIES = 1e7  # most m K^2 entries of the block preconditioner (80 MB)
_CHUNK_ENTRIES = 4e6  # n_chunk K^2 entries of the temporary products in building it


def support_settled(problem, W, G):
    """Whether no zero group of ``W`` violates its optimality condition.

    Parameters
    ----------
    problem : Problem
        The (restricted) problem.
    W : array of shape (m, K)
        Coefficients.
    G : array of shape (m, K)
        Gradient of the smooth part at ``W``.

    Returns
    -------
    settled : bool
        True when some group is non-zero and every zero group ``g`` has
        ``||G_g|| <= alpha w_g``: a proximal-gradient step would keep it zero.
    """
    ops, groups = problem.ops, problem.groups
    zero = group_norms(ops, W, groups) == 0
    if ops.item(zero.sum()) == groups.n_groups:
        return False
    pull = group_norms(ops, G, groups)
    tau = problem.alpha * groups.weights
    return ops.item((zero & (pull > tau)).sum()) == 0


class _System:
    """The support's Newton system: its Hessian products and preconditioner."""

    def __init__(self, problem, W, P):
        ops, groups = problem.ops, problem.groups
        norms = group_norms(ops, W, groups)
        self.rows = ops.nonzero(norms[groups.ids] > 0)
        self.ids = groups.ids[self.rows]
        self.n_groups = groups.n_groups
        self.ops, self.problem, self.P = ops, problem, P
        self.Xs = ops.take_columns(problem.X, self.rows)
        self.Ws = W[self.rows]
        # tau_g / ||W_g|| per support row, and the rows of u_g = W_g / ||W_g||
        safe = ops.clip_min(norms, 1e-300)
        self.scale = (problem.alpha * groups.weights / safe)[self.ids]
        self.U = self.Ws / safe[self.ids][:, None]
        self.cP = problem.c[:, None] * P
        self.intercept = problem.fit_intercept

    def gradient(self):
        """Gradient of the objective on the support: ``(G_W, g_b)``."""
        problem = self.problem
        R = problem.residual(self.P)
        G = self.Xs.T @ R + self.scale[:, None] * self.Ws
        if problem.l2:
            G = G + problem.l2 * self.Ws
        return G, (R.sum(0) if self.intercept else None)

    def _penalty_curvature(self, D):
        dots = self.ops.segment_sum((self.U * D).sum(1), self.ids, self.n_groups)
        return self.scale[:, None] * (D - self.U * dots[self.ids][:, None])

    def hessian_product(self, D, d):
        """``H (D, d)``: the Hessian of the support's objective times a step."""
        Q = self.Xs @ D
        if d is not None:
            Q = Q + d
        PQ = self.cP * Q
        S = PQ - self.P * PQ.sum(1)[:, None]
        HD = self.Xs.T @ S + self._penalty_curvature(D)
        if self.problem.l2:
            HD = HD + self.problem.l2 * D
        return HD, (S.sum(0) if d is not None else None)

    def preconditioner(self):
        """``M^{-1}`` as a function of a pair ``(R_W, r_b or None)``.

        Block Jacobi: the exact ``K x K`` diagonal block of every support row
        (its data curvature ``sum_i c_i x_ij^2 (diag(p_i) - p_i p_i^T)`` plus the
        penalty's), inverted once; the plain diagonal where the ``m K^2``
        entries of the inverses would exceed ``_BLOCK_MAX_ENTRIES``. The
        intercept gets its diagonal. Near the optimum of near-separable data
        the classes of one row are strongly coupled (a confident row curves
        the logits of its class and of a rival together, not apart), which a
        diagonal misses: at ``K = 100`` on 302 support rows, conjugate
        gradients reached a relative residual of ``5e-5`` in 30 products with
        the blocks against ``6e-3`` with the diagonal (and ``9e-9`` against
        ``2e-3`` in 100). A Kronecker-factored preconditioner (the support's
        Gram matrix times the mean class curvature) did no better than the
        diagonal.
        """
        ops = self.ops
        m, K = self.Ws.shape
        curv = self.cP * (1.0 - self.P)
        db = None
        if self.intercept:
            db = ops.clip_min(curv.sum(0), 1e-12 * ops.item(curv.mean()) + 1e-300)
        if m * K * K <= _BLOCK_MAX_ENTRIES:
            inverses = self._block_inverses()

            def apply_w(r):
                return (inverses @ r[:, :, None])[:, :, 0]
        else:
            diag = (self.Xs * self.Xs).T @ curv + self.scale[:, None] * (
                1.0 - self.U * self.U
            )
            if self.problem.l2:
                diag = diag + self.problem.l2
            diag = ops.clip_min(diag, 1e-12 * ops.item(diag.mean()) + 1e-300)

            def apply_w(r):
                return r / diag

        def apply(r):
            if db is None:
                return apply_w(r[0]), None
            zb = r[1] / db
            return apply_w(r[0]), zb - zb.mean()  # a constant intercept shift: nothing

        return apply

    def _block_inverses(self):
        """Inverses of the support rows' ``K x K`` Hessian blocks, ``(m, K, K)``."""
        ops, P, cP = self.ops, self.P, self.cP
        (m, K), n = self.Ws.shape, P.shape[0]
        X2 = self.Xs * self.Xs
        # sum_i c_i x_ij^2 p_i p_i^T, in chunks of rows, in float32 (the
        # largest product of the fit, m n K^2; a preconditioner needs no more)
        X2_32, f32 = ops.cast(X2, ops.float32), ops.float32
        coupling = ops.zeros((m, K * K), ops.float64)
        step = max(1, int(_CHUNK_ENTRIES // (K * K)))
        for start in range(0, n, step):
            rows = slice(start, start + step)
            outer = (
                ops.cast(cP[rows], f32)[:, :, None] * ops.cast(P[rows], f32)[:, None, :]
            )
            product = X2_32[rows].T @ outer.reshape(-1, K * K)
            coupling = coupling + ops.cast(product, ops.float64)
        eye = ops.asarray(np.eye(K))
        diag = X2.T @ cP + self.scale[:, None] + (self.problem.l2 or 0.0)
        B = diag[:, :, None] * eye[None] - coupling.reshape(m, K, K)
        B = B - self.scale[:, None, None] * (self.U[:, :, None] * self.U[:, None, :])
        damping = 1e-12 * ops.item(diag.mean()) + 1e-300
        return ops.inv(B + damping * eye[None])


def _dot(ops, a, b):
    """Inner product of two ``(W part, intercept part or None)`` pairs."""
    out = ops.vdot(a[0], b[0])
    return out + ops.vdot(a[1], b[1]) if a[1] is not None else out


def _axpy(t, x, y):
    """``y + t x`` on ``(W part, intercept part or None)`` pairs."""
    return (y[0] + t * x[0], None if y[1] is None else y[1] + t * x[1])


def conjugate_gradient(system, g, *, rtol, max_iter, M=None):
    """Preconditioned conjugate gradients for ``H s = -g`` on the support.

    Parameters
    ----------
    system : _System
        The support's Newton system.
    g : tuple
        The gradient, ``(G_W, g_b or None)``.
    rtol : float
        Stop when the residual's norm is at most ``rtol`` times ``||g||``.
    max_iter : int
        Most Hessian products.
    M : callable or None, default=None
        The preconditioner (:meth:`_System.preconditioner` if None).

    Returns
    -------
    step : tuple
        The step ``(D_W, d_b or None)``.
    n_products : int
        Hessian products used.
    """
    ops = system.ops
    M = system.preconditioner() if M is None else M
    s = (0.0 * g[0], None if g[1] is None else 0.0 * g[1])
    r = (-g[0], None if g[1] is None else -g[1])
    z = M(r)
    p, rz = z, _dot(ops, r, z)
    stop = (rtol * math.sqrt(_dot(ops, g, g))) ** 2
    k = 0
    while k < max_iter and _dot(ops, r, r) > stop:
        k += 1
        Hp = system.hessian_product(*p)
        curvature = _dot(ops, p, Hp)
        if not curvature > 0:  # flat or rounding: keep what we have
            break
        a = rz / curvature
        s, r = _axpy(a, p, s), _axpy(-a, Hp, r)
        z = M(r)
        rz, rz_old = _dot(ops, r, z), rz
        p = _axpy(rz / rz_old, p, z)
    if k == 0:  # not even one product: the steepest descent direction
        s = z
    return s, k


def support_newton(problem, W, b, Z, F, P, preconditioner=None):
    """One inexact Newton step on the support of ``W``, with a line search.

    Parameters
    ----------
    problem : Problem
        The (restricted) problem, float64 design.
    W : array of shape (m, K)
        Coefficients; their zero groups stay zero.
    b : array of shape (K,)
        Intercept.
    Z : array of shape (n, K)
        Exact logits ``X W + b``.
    F : float
        Objective at ``(W, b)``.
    P : array of shape (n, K)
        Softmax probabilities at ``(W, b)``.
    preconditioner : tuple or None, default=None
        The ``preconditioner`` a previous step returned: reused when the
        support has not changed (building the blocks cost about as much as
        fifty to ninety Hessian products at ``K = 100``; the curvature changes
        little near the optimum, where the steps are taken).

    Returns
    -------
    point : tuple or None
        ``(W, b, Z, F)`` after the step, or None when no step length in the
        line search decreased the objective enough.
    n_products : int
        Products with the support's columns (Hessian products and the line
        search's objective evaluations): the step's cost in gradient steps.
    preconditioner : tuple
        ``(support rows, M)``, for the next step.
    """
    ops = problem.ops
    system = _System(problem, W, P)
    rows = ops.to_numpy(system.rows)
    if preconditioner is None or not np.array_equal(preconditioner[0], rows):
        preconditioner = (rows, system.preconditioner())
    g = system.gradient()
    (D, d), n_products = conjugate_gradient(
        system, g, rtol=_CG_RTOL, max_iter=_CG_MAX_ITER, M=preconditioner[1]
    )
    point, n = _line_search(problem, system, (W, b, Z, F), g, (D, d))
    return point, n_products + n, preconditioner


def _line_search(problem, system, start, g, step):
    """Backtracking (Armijo) along ``step`` from ``start = (W, b, Z, F)``.

    Returns the accepted ``(W, b, Z, F)`` or None, and the products used.
    """
    ops, (W, b, Z, F), (D, d) = problem.ops, start, step
    n_products = 0
    slope = _dot(ops, g, (D, d))
    if not slope < 0:
        return None, n_products
    Q = system.Xs @ D
    if d is not None:
        Q = Q + d
    t, slack = 1.0, 1e-13 * (1.0 + abs(F))
    Wn = ops.copy(W)  # zero groups stay zero: only the support's rows change
    for _ in range(_MAX_HALVINGS):
        Wn[system.rows] = system.Ws + t * D
        bn = b + t * d if d is not None else b
        Zn = Z + t * Q
        Fn = problem.smooth(Zn, Wn)[0] + problem.penalty(Wn)
        n_products += 1
        if Fn <= F + _ARMIJO * t * slope + slack:
            return (Wn, bn, Zn, Fn), n_products + 1
        t *= 0.5
    return None, n_products + 1
