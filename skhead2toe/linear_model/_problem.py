r"""The group-lasso multinomial problem: value, gradient, prox and duality gap.

One definition, for numpy and torch.

The problem solved everywhere in :mod:`skhead2toe.linear_model` is

.. math::

    \min_{W, b}\; \sum_{i=1}^n c_i\, \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
    \;+\; \alpha \sum_g \omega_g \|W_g\|_F \;+\; \frac{\ell_2}{2} \|W\|_F^2

with ``W`` of shape ``(d, K)`` (one row per feature), groups ``g`` that partition the
rows, and ``c_i = s_i / sum(s)``: the data term is a *weighted mean* (``1/n`` for unit
sample weights), so ``alpha`` does not scale with ``n``. This is glmnet's scaling.

A :class:`Problem` holds the data, the groups and the penalty strengths on one
array backend (``ops``: :data:`._numpy.NUMPY_OPS` or a :class:`._torch.TorchOps`), so
that every solver (:mod:`._apg`, :mod:`._newton`, :mod:`._lbfgs`, the working-set
loop of :mod:`._working_set`) runs literally the same arithmetic on either backend.

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

__all__ = [
    "Groups",
    "Problem",
    "group_norms",
    "make_groups",
    "power_iteration",
    "prox_group_lasso",
]

_IPF_STEPS = 5  # proportional-fitting steps that re-optimise the intercept in the gap
_REFINE_MARGIN = 1e-3  # low-precision gaps: groups this close to their threshold redone
_REFINE_MIN_FEATURES = 256  # ... when they hold at most this many or a quarter of X


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
        """One group per feature, with unit weights.

        Parameters
        ----------
        n_features : int
            Number of features.

        Returns
        -------
        groups : Groups
            The partition.
        """
        return cls(np.arange(n_features), np.ones(n_features))


def make_groups(groups, n_features, group_weights=None):
    """Validate a group specification and build a :class:`Groups` partition.

    Parameters
    ----------
    groups : None, array-like of shape (n_features,) of int, or list of array-like
        None gives one group per feature. An int array gives the group label of every
        feature (any integers; e.g. ``MultiLayerFeaturizer.feature_groups_``). A list
        of index arrays must partition ``range(n_features)``.
    n_features : int
        Number of features ``d``.
    group_weights : None or array-like of shape (n_groups,)
        Positive weights ``w_g``; None gives ``sqrt(|g|)``. With integer labels, the
        weights follow the sorted unique labels.

    Returns
    -------
    groups : Groups
        The validated partition.
    """
    if groups is None:
        ids, n_groups = np.arange(n_features), n_features
    elif isinstance(groups, (list, tuple)):
        ids, n_groups = _ids_from_index_lists(groups, n_features), len(groups)
    else:
        ids, n_groups = _ids_from_labels(groups, n_features)
    ids = ids.astype(np.int64)
    sizes = np.bincount(ids, minlength=n_groups)
    if group_weights is None:
        return Groups(ids, np.sqrt(sizes.astype(np.float64)))
    weights = np.asarray(group_weights, dtype=np.float64)
    if weights.shape != (n_groups,):
        raise ValueError(
            f"group_weights must have one entry per group: expected shape "
            f"({n_groups},), got {weights.shape}."
        )
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("group_weights must be finite and positive.")
    return Groups(ids, weights)


def _ids_from_labels(groups, n_features):
    labels = np.asarray(groups)
    if labels.ndim != 1 or labels.shape[0] != n_features:
        raise ValueError(
            f"groups must have one entry per feature: expected shape "
            f"({n_features},), got {labels.shape}."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"groups must hold integer group labels, got dtype {labels.dtype}."
        )
    _, ids = np.unique(labels, return_inverse=True)
    return ids, int(ids.max()) + 1 if n_features else 0


def _ids_from_index_lists(groups, n_features):
    ids = np.full(n_features, -1, dtype=np.int64)
    for g, index in enumerate(groups):
        index = np.asarray(index)
        if index.size == 0:
            raise ValueError(f"group {g} is empty.")
        if not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
            raise ValueError(f"group {g} must be a 1-D array of feature indices.")
        if index.min() < 0 or index.max() >= n_features:
            raise ValueError(
                f"group {g} has feature indices outside [0, {n_features - 1}]."
            )
        if np.any(ids[index] >= 0) or len(np.unique(index)) != len(index):
            raise ValueError(f"groups overlap: group {g} repeats a feature.")
        ids[index] = g
    missing = np.flatnonzero(ids < 0)
    if missing.size:
        raise ValueError(
            f"groups must cover every feature; {missing.size} features are in no "
            f"group (first: {missing[:5].tolist()})."
        )
    return ids


def group_norms(ops, W, groups):
    """Frobenius norm of each group of rows of ``W``.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    W : array of shape (d, K)
        Coefficients.
    groups : Groups
        Partition of the rows.

    Returns
    -------
    norms : array of shape (G,)
        ``||W_g||_F`` for every group.
    """
    return ops.sqrt(ops.segment_sum((W * W).sum(1), groups.ids, groups.n_groups))


def prox_group_lasso(ops, W, groups, threshold):
    """Proximal operator of ``threshold * sum_g w_g ||W_g||``: group soft-thresholding.

    A group is set exactly to zero when its norm is at most ``threshold * w_g``, and
    shrunk towards zero by that amount otherwise.

    Parameters
    ----------
    ops : NumpyOps or TorchOps
        Array backend.
    W : array of shape (d, K)
        Point to shrink.
    groups : Groups
        Partition of the rows, with the weights ``w_g``.
    threshold : float
        Penalty strength times the step size.

    Returns
    -------
    W_shrunk : array of shape (d, K)
        The proximal point.
    """
    norms = group_norms(ops, W, groups)
    # 1 - tau / ||W_g||, clipped at 0; a zero group stays zero (tau / 0 = inf -> 0).
    scale = ops.clip_min(
        1.0 - threshold * groups.weights / ops.clip_min(norms, 1e-300), 0.0
    )
    return W * ops.cast(scale, W.dtype)[groups.ids][:, None]


def power_iteration(matvec, v, dot, n_iter, rtol=1e-3):
    """Largest eigenvalue of a symmetric positive semi-definite operator, from below.

    Parameters
    ----------
    matvec : callable
        ``v -> A v``.
    v : array
        Starting vector (not all zero).
    dot : callable
        Inner product of two vectors, as a float.
    n_iter : int
        Most iterations.
    rtol : float, default=1e-3
        Stop when the Rayleigh quotient moves less than this, relatively.

    Returns
    -------
    lam : float
        The Rayleigh quotient at the last iterate (at most ``lambda_max``).
    """
    lam = 0.0
    for _ in range(n_iter):
        v = v / math.sqrt(max(dot(v, v), 1e-300))
        w = matvec(v)
        lam_new = dot(v, w)
        v = w
        if abs(lam_new - lam) <= rtol * abs(lam_new):
            return lam_new
        lam = lam_new
    return lam


# --------------------------------------------------------------------------- problem
class Problem:
    """One group-lasso multinomial problem on one array backend.

    Holds the design, the labels, the groups and the penalty; its methods are the
    math every solver uses: the smooth part (:meth:`loss`, :meth:`smooth`,
    :meth:`gradient`), the penalty (:meth:`penalty`, :meth:`prox`), the
    certificate (:meth:`dual_gap`) and a step size (:meth:`lipschitz`).

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
        Ridge strength (``>= 0``).
    fit_intercept : bool, default=True
        Whether the model has an unpenalised intercept.
    """

    def __init__(self, ops, X, onehot, c, groups, *, alpha, l2=0.0, fit_intercept=True):
        self.ops = ops
        self.X = X
        self.onehot = onehot
        self.c = c
        self.groups = groups
        self.alpha = float(alpha)
        self.l2 = float(l2)
        self.fit_intercept = bool(fit_intercept)
        self.Yc = c[:, None] * onehot  # c_i e_{y_i}
        self.pi = self.Yc.sum(0)  # weighted class proportions

    def restrict(self, X, groups):
        """The same labels and penalty on other columns (a working set).

        Parameters
        ----------
        X : array of shape (n, m)
            The columns of the restricted problem.
        groups : Groups
            Their partition.

        Returns
        -------
        problem : Problem
            Sharing this problem's labels, weights and penalty strengths.
        """
        sub = object.__new__(Problem)
        sub.__dict__.update(self.__dict__, X=X, groups=groups)
        return sub

    # ---------------------------------------------------------------- smooth part
    def loss(self, Z):
        """Weighted mean cross-entropy of logits ``Z``, and the softmax probabilities.

        Parameters
        ----------
        Z : array of shape (n, K)
            Logits ``X W + b``.

        Returns
        -------
        loss : float
            ``sum_i c_i CE(softmax(z_i), y_i)``.
        P : array of shape (n, K)
            Softmax probabilities.
        """
        ops = self.ops
        zmax = ops.max_rows(Z)
        E = ops.exp(Z - zmax[:, None])
        s = E.sum(1)
        loss = ops.vdot(self.c, ops.log(s) + zmax) - ops.vdot(self.Yc, Z)
        return loss, E / s[:, None]

    def smooth(self, Z, W):
        """Value of the smooth part (loss and ``l2`` term), and the probabilities.

        Parameters
        ----------
        Z : array of shape (n, K)
            Logits ``X W + b``.
        W : array of shape (d, K)
            Coefficients.

        Returns
        -------
        value : float
            ``loss(Z) + l2/2 ||W||^2``.
        P : array of shape (n, K)
            Softmax probabilities.
        """
        value, P = self.loss(Z)
        if self.l2:
            value += 0.5 * self.l2 * self.ops.vdot(W, W)
        return value, P

    def residual(self, P):
        """Gradient of the loss with respect to the logits, ``c_i (p_i - e_{y_i})``.

        Parameters
        ----------
        P : array of shape (n, K)
            Softmax probabilities.

        Returns
        -------
        R : array of shape (n, K)
            The residual.
        """
        return self.c[:, None] * P - self.Yc

    def gradient(self, P, W):
        """Gradient of the smooth part at the point with probabilities ``P``.

        Parameters
        ----------
        P : array of shape (n, K)
            Softmax probabilities at ``(W, b)``.
        W : array of shape (d, K)
            Coefficients (for the ``l2`` term).

        Returns
        -------
        G : array of shape (d, K)
            ``X^T R + l2 W``, float64 (the product in the dtype of ``X``).
        g_intercept : array of shape (K,) or None
            ``sum_i R_i``; None without an intercept.
        """
        R = self.residual(P)
        G = self.ops.cast(self.correlations(R), self.ops.float64)
        if self.l2:
            G = G + self.l2 * W
        return G, (R.sum(0) if self.fit_intercept else None)

    def correlations(self, R):
        """``X^T R``, computed in the dtype of ``X`` (no float64 copy of a float32 X).

        Parameters
        ----------
        R : array of shape (n, K)
            A residual or dual variable.

        Returns
        -------
        XtR : array of shape (d, K)
            In the dtype of ``X``; its row norms are the data term's pull on each
            feature when ``R`` is :meth:`residual`.
        """
        return self.X.T @ self.ops.cast(R, self.X.dtype)

    # ---------------------------------------------------------------- penalty
    def penalty(self, W):
        """Group-lasso part of the penalty, ``alpha sum_g w_g ||W_g||``.

        Parameters
        ----------
        W : array of shape (d, K)
            Coefficients.

        Returns
        -------
        value : float
            The penalty (the ``l2`` term is in :meth:`smooth`).
        """
        norms = group_norms(self.ops, W, self.groups)
        return self.alpha * self.ops.vdot(self.groups.weights, norms)

    def prox(self, W, step):
        """Proximal step of the group-lasso penalty with step size ``step``.

        Parameters
        ----------
        W : array of shape (d, K)
            Point to shrink.
        step : float
            Step size.

        Returns
        -------
        W_shrunk : array of shape (d, K)
            :func:`prox_group_lasso` at threshold ``alpha * step``.
        """
        return prox_group_lasso(self.ops, W, self.groups, self.alpha * step)

    # ---------------------------------------------------------------- certificate
    def dual_point(self, P):
        """Probabilities ``p_i`` in the simplex that satisfy the intercept constraint.

        With an intercept, a dual point needs ``sum_i c_i p_i = pi`` exactly. A few
        steps of iterative proportional fitting (``p <- p * pi / m``, rows
        renormalised: the softmax of the logits with a better intercept) make the
        residual tiny; a final additive correction ``p_i = t p_i + (pi - t m)`` makes
        it exactly zero while keeping every ``p_i`` in the simplex. Correcting
        multiplicatively first matters: adding even 1e-7 to a probability of 1e-24
        costs ~1e-6 of entropy, that is of gap.

        Parameters
        ----------
        P : array of shape (n, K)
            Softmax probabilities at the primal point.

        Returns
        -------
        p : array of shape (n, K)
            The corrected probabilities (``P`` itself without an intercept).
        """
        if not self.fit_intercept:
            return P
        ops, c, pi = self.ops, self.c[:, None], self.pi
        p = P
        for _ in range(_IPF_STEPS):
            m = (c * p).sum(0)
            p = p * (pi / ops.clip_min(m, 1e-300))[None, :]
            p = p / p.sum(1)[:, None]
        m = (c * p).sum(0)
        t = min(1.0, ops.item((pi / ops.clip_min(m, 1e-300)).min()))
        return t * p + ops.clip_min(pi - t * m, 0.0)[None, :]

    def dual_gap(self, primal, P):
        """Duality gap certificate at a primal point (see the module docstring).

        Parameters
        ----------
        primal : float
            Primal objective at the point.
        P : array of shape (n, K)
            Softmax probabilities at the point.

        Returns
        -------
        gap : float
            ``primal - dual >= primal - optimum``.
        V : array of shape (d, K)
            ``X^T Theta``: minus the gradient of the data term at the
            (intercept-corrected) point; it ranks the groups for the working set.
        """
        ops, c = self.ops, self.c
        p = self.dual_point(P)
        Theta = self.Yc - c[:, None] * p
        V, v_norms = self._dual_correlations(Theta)
        tau = self.alpha * self.groups.weights
        if self.l2 > 0:
            excess = ops.clip_min(v_norms - tau, 0.0)
            conj = ops.vdot(excess, excess) / (2 * self.l2)
        else:
            # alpha > 0 here: estimators refuse alpha = l2 = 0 (no certificate).
            conj = 0.0
            s = min(1.0, 1.0 / max(ops.item((v_norms / tau).max()), 1e-300))
            if s < 1.0:
                # Theta <- s Theta, i.e. p_i <- s p_i + (1 - s) e_{y_i}: feasible.
                p = s * p + (1.0 - s) * self.onehot
        entropy = -ops.vdot(c, ops.xlogx(p).sum(1))
        return primal - (entropy - conj), V

    def _dual_correlations(self, Theta):
        """``V = X^T Theta`` (float64) and its group norms.

        A float32 product is off by ~1e-7 relative. At the optimum the active groups
        sit exactly at their threshold, ``||V_g|| = alpha w_g``, so that error alone
        would rescale the dual point and floor the gap near 1e-7: the groups near
        their threshold (few: the support and its neighbours) are recomputed in
        float64. Far from the optimum they are many, and the error immaterial: skip
        when they hold more than a quarter of the features.
        """
        ops, X, groups = self.ops, self.X, self.groups
        V = ops.cast(self.correlations(Theta), ops.float64)
        v_norms = group_norms(ops, V, groups)
        if self.alpha > 0 and X.dtype != ops.float64:
            tau = self.alpha * groups.weights
            near = ops.nonzero(v_norms >= (1.0 - _REFINE_MARGIN) * tau)
            features = ops.nonzero(ops.isin(groups.ids, near))
            if 0 < features.shape[0] <= max(_REFINE_MIN_FEATURES, X.shape[1] // 4):
                X_near = ops.cast(ops.take_columns(X, features), ops.float64)
                V[features] = X_near.T @ Theta
                v_norms = group_norms(ops, V, groups)
        return V, v_norms

    # ---------------------------------------------------------------- step size
    def lipschitz(self, n_power_iter=30, random_state=0):
        """Upper estimate of the gradient's Lipschitz constant by power iteration.

        The Hessian of the multinomial cross-entropy is bounded by ``1/2`` times the
        weighted Gram matrix ``X~^T diag(c) X~`` (``X~`` is ``X`` with a column of
        ones when fitting an intercept), so ``L = lambda_max / 2 + l2``. Power
        iteration approaches ``lambda_max`` from below (a 5% margin is added); the
        solvers backtrack if it is still too small.

        Parameters
        ----------
        n_power_iter : int, default=30
            Most power iterations.
        random_state : int, default=0
            Seed of the starting vector.

        Returns
        -------
        L : float
            The step-size constant.
        """
        ops, X, d = self.ops, self.X, self.X.shape[1]
        intercept = self.fit_intercept

        def gram(v):
            u = X @ v[:d]
            if intercept:
                u = u + v[d]
            cu = ops.cast(self.c, u.dtype) * u
            w = X.T @ cu
            return ops.append(w, cu.sum()) if intercept else w

        rng = np.random.default_rng(random_state)
        v = ops.asarray(rng.standard_normal(d + int(intercept)), dtype=X.dtype)
        lam = power_iteration(gram, v, ops.vdot, n_power_iter)
        return 0.5 * lam * 1.05 + self.l2
