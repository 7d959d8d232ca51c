r"""Regularisation paths: ``alpha_max``, alpha grids and warm-started solves.

Everything here uses the objective of :mod:`._objective`,

.. math::

    \frac{1}{\sum_i s_i} \sum_i s_i\, \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
    + \alpha \sum_g \omega_g \|W_g\|_F + \frac{\ell_2}{2}\|W\|_F^2 ,

so ``alpha`` is comparable across data sets of different sizes (glmnet's scaling).
"""

import math

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array

from ._fista_numpy import solve_numpy
from ._objective import Groups

__all__ = ["alpha_grid", "alpha_max", "group_lasso_path", "make_groups"]


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
    """
    if groups is None:
        ids = np.arange(n_features)
        n_groups = n_features
    elif isinstance(groups, (list, tuple)):
        ids = _ids_from_index_lists(groups, n_features)
        n_groups = len(groups)
    else:
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
        n_groups = int(ids.max()) + 1 if n_features else 0
    ids = ids.astype(np.int64)
    sizes = np.bincount(ids, minlength=n_groups)
    if group_weights is None:
        weights = np.sqrt(sizes.astype(np.float64))
    else:
        weights = np.asarray(group_weights, dtype=np.float64)
        if weights.shape != (n_groups,):
            raise ValueError(
                f"group_weights must have one entry per group: expected shape "
                f"({n_groups},), got {weights.shape}."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError("group_weights must be finite and positive.")
    return Groups(ids, weights)


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


def _encode(X, y, sample_weight):
    """One-hot labels, sample weights normalised to sum to one, and the classes."""
    classes, codes = np.unique(y, return_inverse=True)
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if sw.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum.")
    return np.eye(len(classes))[codes.ravel()], sw / sw.sum(), classes


def _prepare(X, y, sample_weight):
    """Arrays for the solvers: X, one-hot labels, normalised weights, classes."""
    X = check_array(X, dtype=[np.float64, np.float32])
    return (X, *_encode(X, np.asarray(y), sample_weight))


def _alpha_max(X, onehot, c, groups, fit_intercept):
    # At W = 0 the intercept-only model predicts the weighted class proportions pi
    # (or 1/K without intercept); W = 0 is optimal iff ||X_g^T (c (Y - P0))|| <= alpha
    # w_g for every group: the dual norm of the gradient, as in sklearn's _alpha_grid.
    K = onehot.shape[1]
    pi = c @ onehot if fit_intercept else np.full(K, 1.0 / K)
    R = c[:, None] * (onehot - pi[None, :])
    G = X.T @ R.astype(X.dtype)
    norms = np.sqrt(np.bincount(groups.ids, (G.astype(np.float64) ** 2).sum(1)))
    return float(np.max(norms / groups.weights)) if norms.size else 0.0


def alpha_max(
    X, y, *, sample_weight=None, groups=None, group_weights=None, fit_intercept=True
):
    """Smallest ``alpha`` for which the group-lasso solution is ``W = 0``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Class labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    groups : see :class:`GroupLassoClassifier`
        Feature groups (default: one per feature).
    group_weights : array-like of shape (n_groups,), default=None
        Group weights (default ``sqrt`` of group sizes).
    fit_intercept : bool, default=True
        Whether the model has an intercept.

    Returns
    -------
    alpha_max : float
        ``max_g ||X_g^T (c (Y - P_0))||_F / w_g`` where ``P_0`` holds the class
        proportions and ``c`` the normalised sample weights. Independent of ``l2``.
    """
    X, onehot, c, _ = _prepare(X, y, sample_weight)
    groups = make_groups(groups, X.shape[1], group_weights)
    return _alpha_max(X, onehot, c, groups, fit_intercept)


def alpha_grid(alpha_max, n_alphas=20, eps=1e-2):
    """A geometric grid from ``alpha_max`` down to ``eps * alpha_max``.

    Parameters
    ----------
    alpha_max : float
        Largest alpha (see :func:`alpha_max`).
    n_alphas : int, default=20
        Number of values.
    eps : float, default=1e-2
        Ratio of the smallest to the largest value.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        Decreasing values.
    """
    if n_alphas < 1:
        raise ValueError(f"n_alphas must be at least 1, got {n_alphas}.")
    if not 0 < eps <= 1:
        raise ValueError(f"eps must be in (0, 1], got {eps}.")
    return alpha_max * np.geomspace(1.0, eps, n_alphas)


_PREDICT_MAX_RATIO = 1.5  # largest alpha step (ratio) with a predicted warm start


def _extrapolate(before, last, alpha):
    """Predict the solution at ``alpha`` from the last two along the path.

    ``before`` and ``last`` are ``(alpha, coef, intercept)``. The prediction is
    linear in ``log alpha`` (a predictor step, as in homotopy continuation),
    the step capped at twice the last one; rows that are zero at the last
    solution stay zero. Only on fine grids (``alpha`` at most
    ``_PREDICT_MAX_RATIO`` times below the last): with coarse steps the support
    changes too much for a linear prediction, and it costs more than it saves
    (a 6-alpha grid over two decades on Head2Toe features: 10.4 s plain, 15.5 s
    predicted; 20 alphas: 31.1 s plain, 27.2 s predicted). Falls back to the last
    solution otherwise, and when the alphas do not allow it (zero or equal).
    """
    a0, W0, b0 = before
    a1, W1, b1 = last
    if min(a0, a1, alpha) <= 0 or a0 == a1 or a1 > _PREDICT_MAX_RATIO * alpha:
        return W1, b1
    s = min(math.log(alpha / a1) / math.log(a1 / a0), 2.0)
    if s <= 0:
        return W1, b1
    W = W1 + s * (W1 - W0)
    W[~np.any(W1 != 0, axis=1)] = 0.0
    return W, b1 + s * (b1 - b0)


def iter_path(solve, X, onehot, c, groups, alphas, *, coef_init=None, **params):
    """Solve along decreasing ``alphas`` with warm starts; yield each result.

    The first two alphas start from ``coef_init`` and from the first solution;
    later ones from the extrapolation of the last two solutions in
    ``log alpha`` (:func:`_extrapolate`) when the grid is fine. On a 20-alpha
    path of a synthetic Head2Toe problem (n=1000, d=5000, K=10, down to
    ``0.01 alpha_max``, tol 1e-6) this predictor takes the path from 11.3 s to
    8.0 s: the last alphas, on the largest working sets, start closer to their
    solution.

    Parameters
    ----------
    solve : callable
        :func:`solve_numpy` or :func:`solve_torch` (with its device bound).
    X, onehot, c, groups
        As for the solvers.
    alphas : array-like
        Regularisation strengths, solved in the given order (sort them decreasing).
    coef_init : ndarray of shape (d, K), default=None
        Warm start for the first alpha.
    **params : dict
        Other solver arguments (``l2``, ``fit_intercept``, ``tol``, ``max_iter``...).

    Yields
    ------
    alpha : float
        The regularisation strength.
    result : SolverResult
        The solution at ``alpha``.
    """
    intercept = params.pop("intercept_init", None)
    before = last = None
    for alpha in alphas:
        alpha = float(alpha)
        W0, b0 = coef_init, intercept
        if before is not None:
            W0, b0 = _extrapolate(before, last, alpha)
        result = solve(
            X,
            onehot,
            c,
            groups,
            alpha=alpha,
            coef_init=W0,
            intercept_init=b0,
            **params,
        )
        before = last
        last = (alpha, result.coef, result.intercept)
        coef_init, intercept = result.coef, result.intercept
        yield alpha, result


def group_lasso_path(
    X,
    y,
    *,
    alphas=None,
    n_alphas=20,
    eps=1e-2,
    sample_weight=None,
    groups=None,
    group_weights=None,
    l2=0.0,
    fit_intercept=True,
    tol=1e-4,
    max_iter=10_000,
    solver="auto",
):
    r"""Group-lasso multinomial solutions along a warm-started regularisation path.

    Solves, for each ``alpha`` in decreasing order and starting from the previous
    solution,

    .. math::

        \min_{W, b} \frac{1}{\sum_i s_i} \sum_i s_i \mathrm{CE}(\mathrm{softmax}(x_i W
        + b), y_i) + \alpha \sum_g \omega_g \|W_g\|_F + \frac{\ell_2}{2}\|W\|_F^2

    with the numpy backend.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,)
        Class labels.
    alphas : array-like, default=None
        Values to use; None builds :func:`alpha_grid` from :func:`alpha_max`.
    n_alphas : int, default=20
        Grid size when ``alphas`` is None.
    eps : float, default=1e-2
        Grid ratio when ``alphas`` is None.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    groups : None, array-like of int, or list of index arrays, default=None
        Feature groups (see :class:`GroupLassoClassifier`).
    group_weights : array-like, default=None
        Group weights.
    l2 : float, default=0.0
        Ridge strength.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    tol : float, default=1e-4
        Relative duality-gap tolerance at each alpha.
    max_iter : int, default=10000
        Iteration budget at each alpha.
    solver : {"auto", "newton", "fista"}, default="auto"
        Numpy solver (see :class:`GroupLassoClassifier`); ``"auto"`` is
        ``"newton"``.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        The values, decreasing.
    coefs : ndarray of shape (n_alphas, n_classes, n_features)
        Coefficients at each alpha (multinomial layout, also for two classes).
    intercepts : ndarray of shape (n_alphas, n_classes)
        Intercepts at each alpha.
    dual_gaps : ndarray of shape (n_alphas,)
        Duality gap certificates.
    n_iters : ndarray of shape (n_alphas,)
        Iterations at each alpha.
    """
    X, onehot, c, _ = _prepare(X, y, sample_weight)
    grp = make_groups(groups, X.shape[1], group_weights)
    if alphas is None:
        alphas = alpha_grid(_alpha_max(X, onehot, c, grp, fit_intercept), n_alphas, eps)
    alphas = np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
    if np.any(alphas < 0):
        raise ValueError("alphas must be non-negative.")
    if solver not in ("auto", "newton", "fista"):
        raise ValueError(f"solver must be 'auto', 'newton' or 'fista', got {solver!r}.")
    inner = "fista" if solver == "fista" else "newton"
    results = [
        r
        for _, r in iter_path(
            solve_numpy,
            X,
            onehot,
            c,
            grp,
            alphas,
            l2=l2,
            fit_intercept=fit_intercept,
            tol=tol,
            max_iter=max_iter,
            inner=inner,
        )
    ]
    return (
        alphas,
        np.stack([r.coef.T for r in results]),
        np.stack([r.intercept for r in results]),
        np.array([r.dual_gap for r in results]),
        np.array([r.n_iter for r in results]),
    )
