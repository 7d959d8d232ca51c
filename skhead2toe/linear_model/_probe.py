r"""LinearProbeCV: the tuned L2 logistic probe (Linear, All layers + L2) in seconds.

The probe is scikit-learn's L2 multinomial logistic regression,

.. math::

    \min_{W, b}\; C \sum_i s_i\, \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
    + \tfrac12 \|W\|_F^2 ,

with ``C`` chosen by cross-validation. Head2Toe's features are wide (``d`` of
10-20 thousand columns for 1000 images), and the solution of a ridge problem lies
in the row space of the training rows. So the probe works on the Gram matrix
``G = X X^T`` of all the rows, computed once: a fold's training Gram is a block of
it, its eigendecomposition ``G_f = U diag(lam) U^T`` gives an ``n_f``-column design
``B = U diag(sqrt(lam))`` with the same objective (``W = X_f^T U diag(lam^-1/2) Z``,
``X_f W = B Z`` and ``||W|| = ||Z||``), and the ``C`` grid is a warm-started path
on ``B``. Every solve is the library's certified L2 solver (L-BFGS stopped on the
duality gap), so the ``C`` that CV picks is that of the optimum at every ``C``,
not of an iterate stopped early.
"""

from functools import partial
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import _fit_context, clone
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from .._memory import releases_memory
from ._linear import LinearClassifierMixin
from ._numpy import solve_numpy
from ._path import _check_classes, _encode, check_folds
from ._problem import make_groups
from ._results import warn_if_not_converged
from ._rowspace import gram, row_space_basis

__all__ = ["LinearProbe", "LinearProbeCV"]

_SOLVE = partial(solve_numpy, inner="newton")  # L-BFGS on smooth problems


class _ProbeBase(LinearClassifierMixin):
    """Validation and the all-rows fit shared by the two probes."""

    def _validate(self, X, y, sample_weight):
        """Checked arrays ``(X, onehot, weights)``; sets ``classes_``."""
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        onehot, c, classes = _encode(X, y, sample_weight)
        _check_classes(onehot, c, classes)
        self.classes_ = classes
        return X, onehot, _check_sample_weight(sample_weight, X, dtype=np.float64)

    def _params(self):
        return dict(
            fit_intercept=self.fit_intercept, tol=self.tol, max_iter=self.max_iter
        )

    def _fit_all_rows(self, data, Cs):
        """Fit the path ``Cs`` on every row and keep its last point."""
        every = np.arange(data[0].shape[0])
        self._set_fit(*next(_path(data, every, Cs, self._params(), last_only=True)))

    def _set_fit(self, W, b, result):
        """The fitted model and its diagnostics from a solve on all rows."""
        warn_if_not_converged(
            result, "The L2 probe", tol=self.tol, max_iter=self.max_iter, stacklevel=4
        )
        self._W, self._b = W, b
        self.dual_gap_, self.objective_ = result.dual_gap, result.primal
        self.converged_, self.n_iter_ = result.converged, result.n_iter


_COMMON_CONSTRAINTS = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
}


class LinearProbe(_ProbeBase):
    """L2 multinomial logistic regression solved in the row space of the samples.

    The same model as :class:`~sklearn.linear_model.LogisticRegression` with its
    default L2 penalty (``C`` has its meaning), solved to a certified duality gap
    and, when there are more features than samples, on the eigenbasis of the
    samples' Gram matrix (see :class:`LinearProbeCV`).

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength: the loss summed over the samples (times
        their weights) is multiplied by ``C`` against ``||W||^2 / 2``.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.
    tol : float, default=1e-4
        Stop when the duality gap is at most ``tol`` times the objective.
    max_iter : int, default=10_000
        Iteration budget of the solver.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Coefficients (one row for two classes, as scikit-learn).
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Intercept.
    dual_gap_ : float
        Duality gap of the fit (at most ``tol`` times ``objective_``).
    objective_ : float
        Its objective, in the solver's scale (loss per unit of sample weight).
    converged_ : bool
        Whether the fit met ``tol``.
    n_iter_ : int
        Its solver iterations.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Their names, when ``X`` has string column names.

    See Also
    --------
    LinearProbeCV : The same probe with ``C`` chosen by cross-validation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.linear_model import LinearProbe
    >>> X, y = load_digits(return_X_y=True)
    >>> probe = LinearProbe(C=0.1).fit(X / 16, y)
    >>> probe.coef_.shape, bool(probe.converged_)
    ((10, 64), True)
    """

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="neither")],
        **_COMMON_CONSTRAINTS,
    }

    def __init__(self, C=1.0, *, fit_intercept=True, tol=1e-4, max_iter=10_000):
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the probe.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples' losses, as in scikit-learn.

        Returns
        -------
        self : LinearProbe
            The fitted estimator.
        """
        X, onehot, weights = self._validate(X, y, sample_weight)
        G = gram(X) if X.shape[1] > X.shape[0] else None
        self._fit_all_rows((X, onehot, weights, G), [float(self.C)])
        return self


class LinearProbeCV(_ProbeBase):
    """L2 multinomial logistic regression with ``C`` tuned by cross-validation.

    The Linear baseline of Head2Toe (on the last layer's columns) and All layers
    + L2 (on every column), as fast as the features are wide: it solves the same
    problem as :class:`~sklearn.linear_model.LogisticRegression` (``C`` has its
    meaning) in the row space of the training samples (module docstring), so a
    fit on 15,000 features of 1,000 images costs about as much as one on 1,000
    features. Prefer scikit-learn's estimator when there are more samples than
    features: then there is nothing to gain.

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        Inverse regularisation strengths tried (a path from the smallest, warm
        started); an int ``k`` is ``k`` values log-spaced in ``[1e-4, 1e4]``, as
        in :class:`~sklearn.linear_model.LogisticRegressionCV`.
    cv : int, cross-validation generator or iterable, default=None
        As in :func:`~sklearn.model_selection.check_cv` (stratified 5-fold for
        None or an int).
    scoring : str or callable, default=None
        Score of the folds; None: accuracy.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.
    tol : float, default=1e-4
        Each solve stops when its duality gap is at most ``tol`` times its
        objective (a certificate, not a step size).
    max_iter : int, default=10_000
        Iteration budget of each solve.
    n_jobs : int, default=None
        Folds solved in parallel (joblib).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    Cs_ : ndarray of shape (n_Cs,)
        The ``C`` grid, ascending.
    scores_ : ndarray of shape (n_splits, n_Cs)
        Test score of every fold and ``C``.
    mean_scores_ : ndarray of shape (n_Cs,)
        Their means over the folds.
    C_ : float
        The ``C`` of the best mean score (the smallest such ``C`` on ties), refit
        on all the data.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Coefficients of the refit (one row for two classes, as scikit-learn).
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Its intercept.
    dual_gap_ : float
        Duality gap of the refit (at most ``tol`` times ``objective_``).
    objective_ : float
        Its objective, in the solver's scale (loss per unit of sample weight).
    converged_ : bool
        Whether the refit met ``tol``.
    n_iter_ : int
        Its solver iterations.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Their names, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.LogisticRegressionCV : The same model, solved on the
        columns.
    GroupLassoClassifierCV : The Head2Toe head, whose default search contains
        this probe's two baselines.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.linear_model import LinearProbeCV
    >>> X, y = load_digits(return_X_y=True)
    >>> probe = LinearProbeCV(Cs=[0.01, 0.1, 1.0], cv=3).fit(X / 16, y)
    >>> probe.C_ in (0.01, 0.1, 1.0), probe.coef_.shape
    (True, (10, 64))
    >>> bool(probe.score(X / 16, y) > 0.9)
    True
    """

    _parameter_constraints: dict = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "n_jobs": [Integral, None],
        **_COMMON_CONSTRAINTS,
    }

    def __init__(
        self,
        Cs=10,
        *,
        cv=None,
        scoring=None,
        fit_intercept=True,
        tol=1e-4,
        max_iter=10_000,
        n_jobs=None,
    ):
        self.Cs = Cs
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Score every ``C`` by cross-validation and refit the best on all data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples' losses, as in scikit-learn (they
            scale the loss against the penalty), used in scoring the folds too.

        Returns
        -------
        self : LinearProbeCV
            The fitted estimator.
        """
        X, onehot, weights = self._validate(X, y, sample_weight)
        self.Cs_ = _C_grid(self.Cs)
        codes = onehot.argmax(1)
        folds = list(check_cv(self.cv, codes, classifier=True).split(X, codes))
        check_folds(folds, onehot, weights, self.classes_, self.cv)
        G = gram(X) if X.shape[1] > min(len(t) for t, _ in folds) else None
        data = (X, onehot, weights, G)
        jobs = [
            delayed(releases_memory(self._fold_scores))(data, fold) for fold in folds
        ]
        # In parallel, the path on all rows runs next to the folds rather than
        # after them, at the price of its C's above the chosen one.
        ahead = effective_n_jobs(self.n_jobs) > 1
        if ahead:
            jobs.append(
                delayed(releases_memory(_all_rows_path))(data, self.Cs_, self._params())
            )
        out = Parallel(n_jobs=self.n_jobs)(jobs)
        self.scores_ = np.array(out[: len(folds)])
        self.mean_scores_ = self.scores_.mean(axis=0)
        top = self.mean_scores_.max()
        best = int(np.flatnonzero(self.mean_scores_ >= top - 1e-12)[0])  # ties: small C
        self.C_ = float(self.Cs_[best])
        if ahead:
            self._set_fit(*out[-1][best])
        else:
            self._fit_all_rows(data, self.Cs_[: best + 1])
        return self

    def _fold_scores(self, data, fold):
        """Test score of every ``C`` of the path on one fold."""
        X, onehot, weights, _ = data
        train, test = fold
        model = clone(self)
        model.classes_, model.n_features_in_ = self.classes_, self.n_features_in_
        scorer = check_scoring(model, scoring=self.scoring or "accuracy")
        y_test = self.classes_[onehot[test].argmax(1)]
        scores = []
        for W, b, result in _path(data, train, self.Cs_, self._params()):
            warn_if_not_converged(
                result,
                "The L2 probe (a CV fold)",
                tol=self.tol,
                max_iter=self.max_iter,
            )
            model._W, model._b = W, b
            scores.append(scorer(model, X[test], y_test, sample_weight=weights[test]))
        return scores


def _C_grid(Cs):
    """The ``C`` values, ascending (strongest penalty first)."""
    if isinstance(Cs, Integral):
        return np.logspace(-4, 4, Cs)
    Cs = np.sort(np.asarray(Cs, dtype=np.float64).ravel())
    if Cs.size == 0 or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
        raise ValueError(f"Cs must be positive finite values, got {Cs}.")
    return Cs


def _all_rows_path(data, Cs, params):
    """Every point of the path on all the rows, as a list."""
    return list(_path(data, np.arange(data[0].shape[0]), Cs, params))


def _path(data, rows, Cs, params, last_only=False):
    """Yield ``(W, b, result)`` at each ``C`` (ascending) fitted on ``rows``.

    Warm-started from the previous ``C``; with ``last_only`` only the last is
    mapped back to the columns and yielded.
    """
    X, onehot, weights, G = data
    X_rows = X[rows]
    min_ratio = 1.0 if G is not None else np.inf  # no Gram: the columns
    G_rows = None if G is None else G[np.ix_(rows, rows)]
    basis = row_space_basis(X_rows, G_rows, min_ratio=min_ratio)
    design = basis.design
    total = weights[rows].sum()
    onehot_rows, c_rows = onehot[rows], weights[rows] / total
    groups = make_groups(None, design.shape[1])
    init = {}
    # C sum_i s_i CE + ||W||^2 / 2  =  C S (sum_i c_i CE + ||W||^2 / (2 C S)).
    # With two classes the softmax has a column per class, W = (-w/2, w/2) at the
    # optimum, whose squared norm is ||w||^2 / 2: twice the ridge gives sklearn's
    # binary model on w.
    factor = 2.0 if onehot.shape[1] == 2 else 1.0
    for k, C in enumerate(Cs):
        result = _SOLVE(
            design,
            onehot_rows,
            c_rows,
            groups,
            alpha=0.0,
            l2=factor / (C * total),
            **params,
            **init,
        )
        init = dict(coef_init=result.coef, intercept_init=result.intercept)
        if last_only and k < len(Cs) - 1:
            continue
        W = basis.to_columns(result.coef)
        yield np.asarray(W, dtype=np.float64), result.intercept, result
