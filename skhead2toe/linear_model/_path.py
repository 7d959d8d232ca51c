r"""Regularisation paths: ``alpha_max``, alpha grids and warm-started solves.

Everything here uses the objective of :mod:`._problem`,

.. math::

    \frac{1}{\sum_i s_i} \sum_i s_i\, \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
    + \alpha \sum_g \omega_g \|W_g\|_F + \frac{\ell_2}{2}\|W\|_F^2 ,

so ``alpha`` is comparable across data sets of different sizes (glmnet's scaling).
"""

import math

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array

from ._numpy import NUMPY_OPS, solve_numpy
from ._problem import Problem, group_norms, make_groups
from ._results import warn_if_not_converged

__all__ = ["alpha_grid", "alpha_max", "group_lasso_path", "iter_path"]


def _encode(X, y, sample_weight):
    """One-hot labels, sample weights normalised to sum to one, and the classes."""
    classes, codes = np.unique(y, return_inverse=True)
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
    negative = np.flatnonzero(sw < 0)
    if negative.size:
        first = negative[0]
        raise ValueError(
            f"sample_weight must be non-negative, but {negative.size} weight"
            f"{'s are' if negative.size > 1 else ' is'} negative (the first at "
            f"index {first}: {sw[first]:g})."
        )
    if sw.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum.")
    return np.eye(len(classes))[codes.ravel()], sw / sw.sum(), classes


def _check_classes(onehot, c, classes):
    """Raise unless there are two classes or more, each of positive total weight.

    A class of weight 0 has no optimum (its intercept goes to -inf), and the
    certificate has no dual point for it.
    """
    if len(classes) < 2:
        raise ValueError(
            "This solver needs samples of at least 2 classes in the data, but the "
            f"data contain only one class: {classes.tolist()[0]!r}."
        )
    unweighted = classes[(c @ onehot) <= 0].tolist()
    if unweighted:
        raise ValueError(
            "Every class in y needs a positive total sample_weight, but class"
            f"{'es' if len(unweighted) > 1 else ''} {unweighted} weigh 0 in all. "
            "Drop those samples, or give them weight."
        )


def check_folds(folds, onehot, c, classes, cv):
    """Raise unless every class has weight in every training fold.

    A class absent from a fold's training rows has no optimum there (its
    intercept runs to -inf), so every solve of that fold would run to
    ``max_iter`` and warn. The CV estimators refuse it before any work, with the
    remedy.

    Parameters
    ----------
    folds : list of (train, test) index arrays
        The splits.
    onehot : ndarray of shape (n_samples, n_classes)
        One-hot labels.
    c : ndarray of shape (n_samples,)
        Sample weights.
    classes : ndarray of shape (n_classes,)
        The class labels (for the message).
    cv : object
        The estimator's ``cv`` (for the message).
    """
    for train, _ in folds:
        absent = np.flatnonzero(c[train] @ onehot[train] <= 0)
        if absent.size == 0:
            continue
        label = classes[absent[0]].item()
        count = int(np.count_nonzero(onehot[:, absent[0]] * (c > 0)))
        raise ValueError(
            f"Class {label!r} has {count} sample{'s' if count != 1 else ''} "
            f"(of positive weight), and a training fold of cv={cv!r} has "
            f"none of it ({len(folds)} folds): every training fold needs "
            "every class. Give that class more samples, drop it, or use "
            "fewer folds."
        )


def _prepare(X, y, sample_weight):
    """Arrays for the solvers: X, one-hot labels, normalised weights, classes."""
    X = check_array(X, dtype=[np.float64, np.float32])
    return (X, *_encode(X, np.asarray(y), sample_weight))


def _alpha_max(X, onehot, c, groups, fit_intercept):
    # At W = 0 the intercept-only model predicts the weighted class proportions pi
    # (or 1/K without intercept); W = 0 is optimal iff ||X_g^T (c (P0 - Y))|| <= alpha
    # w_g for every group: the dual norm of the gradient, as in sklearn's _alpha_grid.
    problem = Problem(NUMPY_OPS, X, onehot, c, groups, alpha=0.0)
    K = onehot.shape[1]
    P0 = problem.pi if fit_intercept else np.full(K, 1.0 / K)
    G = problem.correlations(problem.residual(np.broadcast_to(P0, onehot.shape)))
    norms = group_norms(NUMPY_OPS, G.astype(np.float64), groups)
    return float(np.max(norms / groups.weights)) if norms.size else 0.0


def alpha_max(
    X, y, *, sample_weight=None, groups=None, group_weights=None, fit_intercept=True
):
    """Smallest ``alpha`` for which the group-lasso solution is ``W = 0``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data the path will be fitted on.
    y : array-like of shape (n_samples,)
        Their class labels.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
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

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifier, alpha_max
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16
    >>> amax = alpha_max(X, y)
    >>> int(GroupLassoClassifier(amax).fit(X, y).selected_features_.sum())
    0
    >>> int(GroupLassoClassifier(0.5 * amax).fit(X, y).selected_features_.sum()) > 0
    True
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

    Examples
    --------
    >>> from skhead2toe.linear_model import alpha_grid
    >>> alpha_grid(0.5, n_alphas=3, eps=1e-2).tolist()
    [0.5, 0.05, 0.005]
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
    (measured in ``benchmarks/README.rst``, "Predicted warm starts"). Falls back
    to the last solution otherwise, and when the alphas do not allow it (zero or
    equal).
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
    ``log alpha`` (:func:`_extrapolate`) when the grid is fine: the last alphas,
    on the largest working sets, start closer to their solution.

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
        Class labels (two classes or more).
    alphas : array-like, default=None
        Values to use; None builds :func:`alpha_grid` from :func:`alpha_max`.
    n_alphas : int, default=20
        Grid size when ``alphas`` is None.
    eps : float, default=1e-2
        Grid ratio when ``alphas`` is None.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights.
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

    Raises
    ------
    ValueError
        For bad alphas (negative, not finite, or 0 without ``l2``), a single
        class, or a class whose samples all weigh 0, before any work.

    Warns
    -----
    ConvergenceWarning
        For each alpha whose solve stopped short of ``tol``, as the estimators do.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.linear_model import group_lasso_path
    >>> X, y = load_digits(return_X_y=True)
    >>> alphas, coefs, intercepts, gaps, n_iters = group_lasso_path(
    ...     X / 16, y, n_alphas=4
    ... )
    >>> coefs.shape  # (alphas, classes, features)
    (4, 10, 64)
    >>> [int((abs(c).sum(0) > 0).sum()) for c in coefs]  # features used, growing
    [0, ...]
    """
    X, onehot, c, classes = _prepare(X, y, sample_weight)
    _check_classes(onehot, c, classes)
    grp = make_groups(groups, X.shape[1], group_weights)
    if alphas is None:
        alphas = alpha_grid(_alpha_max(X, onehot, c, grp, fit_intercept), n_alphas, eps)
    alphas = _check_path_alphas(alphas, l2)
    if solver not in ("auto", "newton", "fista"):
        raise ValueError(f"solver must be 'auto', 'newton' or 'fista', got {solver!r}.")
    path = iter_path(
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
        inner="fista" if solver == "fista" else "newton",
    )
    results = []
    for alpha, result in path:
        warn_if_not_converged(
            result,
            f"The group-lasso solver (alpha={alpha:.3g})",
            tol=tol,
            max_iter=max_iter,
        )
        results.append(result)
    return (
        alphas,
        np.stack([r.coef.T for r in results]),
        np.stack([r.intercept for r in results]),
        np.array([r.dual_gap for r in results]),
        np.array([r.n_iter for r in results]),
    )


def _check_path_alphas(alphas, l2):
    """Alphas sorted decreasing; finite, non-negative, and 0 only with ``l2 > 0``."""
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError(
            f"alphas must be a non-empty list of finite non-negative values, got "
            f"{alphas.tolist()}."
        )
    if not (np.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite non-negative value, got {l2!r}.")
    if alphas[-1] == 0 and l2 == 0:
        raise ValueError(
            "alpha = 0 with l2 = 0 has no regularisation and may have no solution "
            "(and no certificate): drop alpha = 0 from alphas or set l2 > 0."
        )
    return alphas
