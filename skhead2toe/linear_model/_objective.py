r"""One definition of the group-lasso multinomial objective, for numpy and torch.

The problem solved everywhere in :mod:`skhead2toe.linear_model` is

.. math::

    \min_{W, b}\; \sum_{i=1}^n c_i\, \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
    \;+\; \alpha \sum_g \omega_g \|W_g\|_F \;+\; \frac{\ell_2}{2} \|W\|_F^2

with ``W`` of shape ``(d, K)`` (one row per feature), groups ``g`` that partition the
rows, and ``c_i = s_i / sum(s)``: the data term is a *weighted mean* (``1/n`` for unit
sample weights), so ``alpha`` does not scale with ``n``. This is glmnet's scaling.

Every function takes an ``ops`` object (:data:`NUMPY_OPS` or a :class:`TorchOps`) so
that the numpy and the torch backends run literally the same arithmetic.

The duality gap
---------------
With ``Theta_i = c_i (e_{y_i} - p_i)`` for any ``p_i`` in the simplex, Fenchel
duality gives the lower bound ``D(Theta) = sum_i c_i H(p_i) - R^*(X^T Theta)`` where
``H`` is the Shannon entropy and ``R^*`` the conjugate of the penalty:
``R^*(V) = sum_g (||V_g|| - alpha w_g)_+^2 / (2 l2)`` for ``l2 > 0``, and the
indicator of ``||V_g|| <= alpha w_g`` for ``l2 = 0``. An unpenalised intercept adds
the constraint ``sum_i Theta_i = 0``. From the softmax probabilities ``P`` we build a
feasible point:

* intercept: ``p_i = t P_i + (pi - t m)`` with ``pi = sum_i c_i e_{y_i}``,
  ``m = sum_i c_i P_i`` and the largest ``t <= 1`` keeping ``pi - t m >= 0``; then
  ``sum_i Theta_i = 0`` exactly and each ``p_i`` stays in the simplex;
* ``l2 = 0``: ``p_i <- s p_i + (1 - s) e_{y_i}`` with the largest ``s <= 1`` that makes
  ``||X_g^T Theta||`` at most ``alpha w_g`` for every group.

The gap ``P(W, b) - D(Theta) >= P(W, b) - P^*`` certifies suboptimality; it vanishes at
the optimum, where ``p_i = P_i``.
"""

import math

import numpy as np
from scipy.special import xlogy

__all__ = [
    "NUMPY_OPS",
    "Groups",
    "TorchOps",
    "dual_gap",
    "dual_point",
    "group_norms",
    "group_penalty",
    "lipschitz_constant",
    "prox_group_lasso",
    "softmax_loss",
    "subdiff_distance",
]


# --------------------------------------------------------------------------- backends
class NumpyOps:
    """Array operations on numpy arrays (the CPU backend)."""

    name = "numpy"
    float64 = np.float64

    @staticmethod
    def asarray(x, dtype=None):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def zeros(shape, dtype, like=None):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def logsumexp_rows(Z):
        zmax = Z.max(axis=1, keepdims=True)
        return zmax[:, 0] + np.log(np.exp(Z - zmax).sum(axis=1))

    @staticmethod
    def exp(x):
        return np.exp(x)

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def xlogx(x):
        return xlogy(x, x)

    @staticmethod
    def clip_min(x, value):
        return np.maximum(x, value)

    @staticmethod
    def segment_sum(values, ids, n_segments):
        return np.bincount(ids, weights=values, minlength=n_segments)

    @staticmethod
    def vdot(a, b):
        return float(np.vdot(a, b))

    @staticmethod
    def item(x):
        return float(x)

    @staticmethod
    def cast(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def take_columns(X, idx):
        return np.ascontiguousarray(X[:, idx])

    @staticmethod
    def nonzero(mask):
        return np.flatnonzero(mask)

    @staticmethod
    def top_k(scores, k):
        k = min(k, scores.shape[0])
        idx = np.argpartition(-scores, k - 1)[:k]
        return np.sort(idx)

    @staticmethod
    def isin(x, values):
        return np.isin(x, values)

    @staticmethod
    def searchsorted(sorted_values, x):
        return np.searchsorted(sorted_values, x)

    @staticmethod
    def append(vec, scalar):
        return np.append(vec, scalar)


NUMPY_OPS = NumpyOps()


class TorchOps:
    """Array operations on torch tensors on one device (the torch backend).

    Parameters
    ----------
    device : torch.device
        Device holding every tensor of a solve.
    """

    name = "torch"

    def __init__(self, device):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.float64 = torch.float64

    def asarray(self, x, dtype=None):
        torch = self._torch
        if isinstance(x, np.ndarray) and dtype is not None:
            dtype = _torch_dtype(dtype)
        t = torch.as_tensor(x, dtype=dtype, device=self.device)
        return t

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def zeros(self, shape, dtype, like=None):
        return self._torch.zeros(shape, dtype=_torch_dtype(dtype), device=self.device)

    def logsumexp_rows(self, Z):
        return self._torch.logsumexp(Z, dim=1)

    def exp(self, x):
        return self._torch.exp(x)

    def sqrt(self, x):
        return self._torch.sqrt(x)

    def xlogx(self, x):
        return self._torch.xlogy(x, x)

    def clip_min(self, x, value):
        return self._torch.clamp_min(x, value)

    def segment_sum(self, values, ids, n_segments):
        out = self._torch.zeros(n_segments, dtype=values.dtype, device=values.device)
        return out.index_add_(0, ids, values)

    def vdot(self, a, b):
        return float((a * b).sum())

    def item(self, x):
        return float(x)

    def cast(self, x, dtype):
        return x.to(_torch_dtype(dtype))

    def take_columns(self, X, idx):
        return X.index_select(1, idx).contiguous()

    def nonzero(self, mask):
        return self._torch.nonzero(mask).flatten()

    def top_k(self, scores, k):
        k = min(k, scores.shape[0])
        idx = self._torch.topk(scores, k).indices
        return self._torch.sort(idx).values

    def isin(self, x, values):
        return self._torch.isin(x, values)

    def searchsorted(self, sorted_values, x):
        return self._torch.searchsorted(sorted_values, x)

    def append(self, vec, scalar):
        return self._torch.cat([vec, scalar.reshape(1).to(vec.dtype)])


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]


# --------------------------------------------------------------------------- groups
class Groups:
    """A partition of the ``d`` features into ``G`` groups, with their weights.

    Parameters
    ----------
    ids : array of shape (d,), int64
        Group index (``0..G-1``) of every feature.
    weights : array of shape (G,), float64
        Positive group weights ``w_g``.
    """

    def __init__(self, ids, weights):
        self.ids = ids
        self.weights = weights
        self.n_groups = weights.shape[0]

    @classmethod
    def per_feature(cls, n_features):
        """One group per feature, with unit weights."""
        return cls(np.arange(n_features), np.ones(n_features))


# --------------------------------------------------------------------------- the math
def softmax_loss(ops, Z, Yc, c):
    """Weighted mean cross-entropy of logits ``Z`` and the softmax probabilities.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    Z : array of shape (n, K)
        Logits ``X W + b``.
    Yc : array of shape (n, K)
        One-hot labels scaled by the sample weights: ``c_i e_{y_i}``.
    c : array of shape (n,)
        Sample weights summing to one.

    Returns
    -------
    loss : float
        ``sum_i c_i CE(softmax(z_i), y_i)``.
    P : array of shape (n, K)
        Softmax probabilities.
    """
    lse = ops.logsumexp_rows(Z)
    loss = ops.vdot(c, lse) - ops.vdot(Yc, Z)
    P = ops.exp(Z - lse[:, None])
    return loss, P


def group_norms(ops, W, groups):
    """Frobenius norm of each group of rows of ``W``, shape (G,)."""
    return ops.sqrt(ops.segment_sum((W * W).sum(1), groups.ids, groups.n_groups))


def group_penalty(ops, W, groups, alpha, l2):
    """Penalty value ``alpha sum_g w_g ||W_g|| + l2/2 ||W||^2``."""
    value = alpha * ops.vdot(groups.weights, group_norms(ops, W, groups))
    if l2:
        value += 0.5 * l2 * ops.vdot(W, W)
    return value


def prox_group_lasso(ops, W, groups, threshold):
    """Proximal operator of ``threshold * sum_g w_g ||W_g||``: group soft-thresholding.

    A group is set exactly to zero when its norm is at most ``threshold * w_g``, and
    shrunk towards zero by that amount otherwise.
    """
    norms = group_norms(ops, W, groups)
    # 1 - tau / ||W_g||, clipped at 0; a zero group stays zero (tau / 0 = inf -> 0).
    scale = ops.clip_min(
        1.0 - threshold * groups.weights / ops.clip_min(norms, 1e-300), 0.0
    )
    return W * ops.cast(scale, W.dtype)[groups.ids][:, None]


def subdiff_distance(ops, W, grad, groups, alpha):
    """Distance of ``-grad`` to ``alpha`` times the subdifferential, per group.

    The KKT conditions hold at ``W`` exactly when every entry is zero: for a zero group
    ``max(0, ||grad_g|| - alpha w_g)``, otherwise
    ``||grad_g + alpha w_g W_g / ||W_g|| ||``.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    W : array of shape (d, K)
        Coefficients.
    grad : array of shape (d, K)
        Gradient of the smooth part (loss and ``l2`` term) at ``W``.
    groups : Groups
        Feature groups.
    alpha : float
        Group-lasso strength.

    Returns
    -------
    dist : array of shape (G,)
    """
    norms = group_norms(ops, W, groups)
    tau = alpha * groups.weights
    safe = ops.clip_min(norms, 1e-300)
    shifted = grad + W * ops.cast(tau / safe, W.dtype)[groups.ids][:, None]
    active = group_norms(ops, shifted, groups)
    inactive = ops.clip_min(group_norms(ops, grad, groups) - tau, 0.0)
    zero = norms == 0
    return active * ~zero + inactive * zero


_IPF_STEPS = 5  # proportional-fitting steps that re-optimise the intercept in the gap
_REFINE_MARGIN = 1e-3  # low-precision gaps: groups this close to their threshold redone
_REFINE_MIN_FEATURES = 256  # ... when they hold at most this many or a quarter of X


def dual_point(ops, P, stats, fit_intercept):
    """Probabilities ``p_i`` in the simplex that satisfy the intercept constraint.

    With an intercept, a dual point needs ``sum_i c_i p_i = pi`` exactly. A few steps
    of iterative proportional fitting (``p <- p * pi / m``, rows renormalised: the
    softmax of the logits with a better intercept) make the residual tiny; a final
    additive correction ``p_i = t p_i + (pi - t m)`` makes it exactly zero while keeping
    every ``p_i`` in the simplex. Correcting multiplicatively first matters: adding
    even 1e-7 to a probability of 1e-24 costs ~1e-6 of entropy, that is of gap.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    P : array of shape (n, K)
        Softmax probabilities at the primal point.
    stats : DataStats
        Holds ``c`` (weights summing to one) and ``pi = sum_i c_i e_{y_i}``.
    fit_intercept : bool
        Whether the constraint applies.

    Returns
    -------
    p : array of shape (n, K)
    """
    if not fit_intercept:
        return P
    c = stats.c[:, None]
    p = P
    for _ in range(_IPF_STEPS):
        m = (c * p).sum(0)
        p = p * (stats.pi / ops.clip_min(m, 1e-300))[None, :]
        p = p / p.sum(1)[:, None]
    m = (c * p).sum(0)
    t = min(1.0, ops.item((stats.pi / ops.clip_min(m, 1e-300)).min()))
    return t * p + ops.clip_min(stats.pi - t * m, 0.0)[None, :]


def dual_gap(ops, X, primal, P, stats, groups, alpha, l2, fit_intercept):
    """Duality gap certificate at a primal point (see module docstring).

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    X : array of shape (n, d)
        Design matrix of the (possibly restricted) problem.
    primal : float
        Primal objective at the point.
    P : array of shape (n, K)
        Softmax probabilities at the point.
    stats : DataStats
        ``c``, ``onehot``, ``Yc`` and ``pi`` of the problem.
    groups : Groups
        Feature groups of the problem.
    alpha, l2 : float
        Penalty strengths.
    fit_intercept : bool
        Whether the intercept constraint ``sum_i Theta_i = 0`` applies.

    Returns
    -------
    gap : float
        ``primal - dual >= primal - optimum``.
    V : array of shape (d, K)
        ``X^T Theta``: minus the gradient of the data term at the (intercept-corrected)
        point; it ranks the groups for the working set.
    """
    c = stats.c
    p = dual_point(ops, P, stats, fit_intercept)
    Theta = stats.Yc - c[:, None] * p
    V = ops.cast(X.T @ ops.cast(Theta, X.dtype), ops.float64)
    v_norms = group_norms(ops, V, groups)
    tau = alpha * groups.weights
    if alpha > 0 and X.dtype != ops.float64:
        # A float32 product is off by ~1e-7 relative. At the optimum the active
        # groups sit exactly at their threshold, ||V_g|| = alpha w_g, so that error
        # alone would rescale the dual point and floor the gap near 1e-7: recompute
        # the groups near their threshold (few: the support and its neighbours) in
        # float64. Far from the optimum they are many, and the error immaterial:
        # skip when they hold more than a quarter of the features.
        near = ops.nonzero(v_norms >= (1.0 - _REFINE_MARGIN) * tau)
        features = ops.nonzero(ops.isin(groups.ids, near))
        if 0 < features.shape[0] <= max(_REFINE_MIN_FEATURES, X.shape[1] // 4):
            X_near = ops.cast(ops.take_columns(X, features), ops.float64)
            V[features] = X_near.T @ Theta
            v_norms = group_norms(ops, V, groups)
    if l2 > 0:
        excess = ops.clip_min(v_norms - tau, 0.0)
        conj = ops.vdot(excess, excess) / (2 * l2)
    else:
        # alpha > 0 here: estimators refuse alpha = l2 = 0 (no certificate exists).
        conj = 0.0
        s = min(1.0, 1.0 / max(ops.item((v_norms / tau).max()), 1e-300))
        if s < 1.0:
            # Theta <- s Theta, i.e. p_i <- s p_i + (1 - s) e_{y_i}: still feasible.
            p = s * p + (1.0 - s) * stats.onehot
    entropy = -ops.vdot(c, ops.xlogx(p).sum(1))
    return primal - (entropy - conj), V


def lipschitz_constant(ops, X, c, fit_intercept, l2, n_power_iter=30, random_state=0):
    """Upper estimate of the gradient's Lipschitz constant by power iteration.

    The Hessian of the multinomial cross-entropy is bounded by ``1/2`` times the
    weighted Gram matrix ``X~^T diag(c) X~`` (``X~`` is ``X`` with a column of ones
    when fitting an intercept), so ``L = lambda_max / 2 + l2``. Power iteration
    approaches ``lambda_max`` from below; the solvers backtrack if it is too small.
    """
    rng = np.random.default_rng(random_state)
    d = X.shape[1]
    v = ops.asarray(rng.standard_normal(d + int(fit_intercept)), dtype=X.dtype)
    lam = 0.0
    for _ in range(n_power_iter):
        v = v / math.sqrt(max(ops.vdot(v, v), 1e-300))
        u = X @ v[:d]
        if fit_intercept:
            u = u + v[d]
        cu = ops.cast(c, u.dtype) * u
        w = X.T @ cu
        if fit_intercept:
            w = ops.append(w, cu.sum())
        lam_new = ops.vdot(v, w)
        v = w
        if abs(lam_new - lam) <= 1e-3 * lam_new:
            lam = lam_new
            break
        lam = lam_new
    return 0.5 * lam * 1.05 + l2
