"""GroupLassoClassifierCV: ``alpha``, ``keep_fraction`` and the refit ridge by CV."""

from collections import deque
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import _fit_context
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions

from ._backend import blas_threads, solver_function
from ._base import _GroupLassoBase, _row_space_basis
from ._group_lasso import GroupLassoClassifier
from ._path import _alpha_max, alpha_grid, iter_path
from ._problem import make_groups

__all__ = ["GroupLassoClassifierCV"]


class GroupLassoClassifierCV(_GroupLassoBase):
    """Group-lasso head with ``alpha``, ``keep_fraction`` and the refit tuned by CV.

    For every fold, the group lasso is solved along a decreasing grid of ``alpha``
    with warm starts (each solution starts the next); at every ``alpha``, every
    ``keep_fraction`` is refitted with every ridge strength of ``refit_l2s`` (from
    the strongest down, each refit warm-starting the next) and scored. The best
    mean score picks the triple, and the model is then refitted on all the data.
    Folds run in parallel through joblib.

    The refit's ridge matters as much as the fraction kept: with Head2Toe's
    per-layer unit normalisation the features are small (about ``1/sqrt(width)``
    each), and a ridge that is right for one task underfits another.

    Parameters
    ----------
    alphas : int or array-like, default=20
        Number of values on the grid ``alpha_max * geomspace(1, eps, alphas)``, or
        the values themselves.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the grid.
    keep_fractions : None or array-like of float in (0, 1], default=None
        Fractions to try with the Head2Toe refit; None means plain group lasso.
    refit_l2s : array-like of float > 0, default=(1e-3, 1e-4, 1e-5)
        Ridge strengths tried for the refit (only used with ``keep_fractions``).
    cv : int, cross-validation generator or iterable, default=None
        As in :func:`~sklearn.model_selection.check_cv` (5-fold stratified).
    scoring : str or callable, default=None
        Scorer; None uses accuracy.
    n_jobs : int, default=None
        Folds solved in parallel.
    groups, group_weights, l2, fit_intercept, solver, device, dtype, tol, max_iter, \
random_state, verbose
        As in :class:`GroupLassoClassifier`.

    Attributes
    ----------
    alpha_ : float
        Selected alpha.
    keep_fraction_ : float or None
        Selected fraction.
    refit_l2_ : float or None
        Selected ridge strength of the refit (None without ``keep_fractions``).
    alphas_ : ndarray of shape (n_alphas,)
        The alpha grid, decreasing.
    refit_l2s_ : ndarray of shape (n_refit_l2s,)
        The refit ridge grid, decreasing (just ``[nan]`` without
        ``keep_fractions``).
    scores_ : ndarray of shape (n_folds, n_alphas, n_keep_fractions, n_refit_l2s)
        Test score of every fold, alpha, fraction and refit ridge.
    mean_scores_ : ndarray of shape (n_alphas, n_keep_fractions, n_refit_l2s)
        Mean over folds.
    n_nonzero_ : ndarray of shape (n_folds, n_alphas)
        Selected groups at each alpha in each fold (the regularisation path).
    classes_, coef_, intercept_, feature_importances_, group_norms_, \
selected_features_, dual_gap_, objective_, converged_, n_iter_, n_features_in_, \
feature_names_in_
        Of the final model, as in :class:`GroupLassoClassifier`.

    See Also
    --------
    GroupLassoClassifier : the estimator for one alpha.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifierCV
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoClassifierCV(alphas=4, cv=3, tol=1e-4).fit(X / 16, y)
    >>> clf.mean_scores_.shape
    (4, 1, 1)
    """

    _parameter_constraints: dict = {
        **_GroupLassoBase._parameter_constraints,
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "keep_fractions": ["array-like", None],
        "refit_l2s": ["array-like"],
        "cv": ["cv_object"],
        "scoring": [
            StrOptions({"accuracy", "neg_log_loss", "balanced_accuracy"}),
            callable,
            None,
        ],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        alphas=20,
        *,
        eps=1e-2,
        keep_fractions=None,
        refit_l2s=(1e-3, 1e-4, 1e-5),
        cv=None,
        scoring=None,
        n_jobs=None,
        groups=None,
        group_weights=None,
        l2=0.0,
        fit_intercept=True,
        solver="auto",
        device="auto",
        dtype=None,
        tol=1e-4,
        max_iter=10_000,
        random_state=None,
        verbose=0,
    ):
        self.alphas = alphas
        self.eps = eps
        self.keep_fractions = keep_fractions
        self.refit_l2s = refit_l2s
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.groups = groups
        self.group_weights = group_weights
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.device = device
        self.dtype = dtype
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Tune ``alpha``, ``keep_fraction`` and the refit by CV, then refit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights, used in fitting and in scoring the
            folds. Every training fold needs every class with positive weight
            (a ValueError says which class and fold count otherwise).

        Returns
        -------
        self : GroupLassoClassifierCV
            The fitted estimator.
        """
        solve = solver_function(self.solver, self.device)
        with blas_threads(solve):
            return self._fit(X, y, sample_weight, solve)

    def _fit(self, X, y, sample_weight, solve):
        X, onehot, c, classes = self._validate_fit_data(X, y, sample_weight)
        groups = make_groups(self.groups, X.shape[1], self.group_weights)
        self.classes_ = classes
        self.alphas_ = self._alpha_values(X, onehot, c, groups)
        fractions = self._fractions()
        l2s = self._refit_l2_values(fractions)
        y_codes = onehot.argmax(1)
        folds = list(check_cv(self.cv, y_codes, classifier=True).split(X, y_codes))
        self._check_folds(folds, onehot, c)
        jobs = (
            delayed(self._score_path)(
                X, onehot, c, groups, solve, train, test, fractions, l2s
            )
            for train, test in folds
        )
        out = Parallel(n_jobs=self.n_jobs)(jobs)
        self.scores_ = np.stack([scores for scores, _ in out])
        self.n_nonzero_ = np.stack([nnz for _, nnz in out])
        self.mean_scores_ = self.scores_.mean(0)
        i, j, k = np.unravel_index(
            np.argmax(self.mean_scores_), self.mean_scores_.shape
        )
        self.alpha_ = float(self.alphas_[i])
        self.keep_fraction_ = fractions[j]
        self.refit_l2s_ = l2s
        self.refit_l2_ = None if fractions[j] is None else float(l2s[k])
        # refit on all the data along the path down to the chosen alpha (warm starts)
        path = iter_path(
            solve, X, onehot, c, groups, self.alphas_[: i + 1], **self._solver_params()
        )
        _, result = deque(path, maxlen=1)[0]
        self._check_convergence(result, "The group-lasso solver (final refit)")
        self._set_solution(
            X, onehot, c, groups, solve, result, self.keep_fraction_, self.refit_l2_
        )
        return self

    def _check_folds(self, folds, onehot, c):
        """Every class needs weight in every training fold (else no fold optimum).

        A class absent from a fold's training rows has no optimum there (its
        intercept runs to -inf), so every solve of that fold would run to
        ``max_iter`` and warn. Refuse it before any work, with the remedy.
        """
        for train, _ in folds:
            absent = np.flatnonzero(c[train] @ onehot[train] <= 0)
            if absent.size == 0:
                continue
            label = self.classes_[absent[0]].item()
            count = int(np.count_nonzero(onehot[:, absent[0]] * (c > 0)))
            raise ValueError(
                f"Class {label!r} has {count} sample{'s' if count != 1 else ''} "
                f"(of positive weight), and a training fold of cv={self.cv!r} has "
                f"none of it ({len(folds)} folds): every training fold needs "
                "every class. Give that class more samples, drop it, or use "
                "fewer folds."
            )

    def _alpha_values(self, X, onehot, c, groups):
        if isinstance(self.alphas, Integral):
            amax = _alpha_max(X, onehot, c, groups, self.fit_intercept)
            return alpha_grid(amax, self.alphas, self.eps)
        alphas = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
        if alphas.size == 0 or np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError("alphas must be a non-empty list of non-negative values.")
        if alphas[-1] == 0 and self.l2 == 0:
            raise ValueError("alpha = 0 needs l2 > 0.")
        return alphas

    def _fractions(self):
        if self.keep_fractions is None:
            return [None]
        fractions = [float(f) for f in np.asarray(self.keep_fractions).ravel()]
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise ValueError(
                f"keep_fractions must be values in (0, 1], got {self.keep_fractions}."
            )
        return fractions

    def _refit_l2_values(self, fractions):
        if fractions == [None]:
            return np.array([np.nan])
        l2s = np.sort(np.asarray(self.refit_l2s, dtype=np.float64).ravel())[::-1]
        if l2s.size == 0 or not np.all(np.isfinite(l2s)) or np.any(l2s <= 0):
            raise ValueError(
                f"refit_l2s must be positive finite values, got {self.refit_l2s}."
            )
        return l2s

    def _score_path(self, X, onehot, c, groups, solve, train, test, fractions, l2s):
        """Scores of every (alpha, fraction, refit ridge) on one fold; sparsity."""
        scorer = check_scoring(self, scoring=self.scoring or "accuracy")
        X_train, Y_train = X[train], onehot[train]  # copied once per fold
        c_train = c[train] / c[train].sum()
        y_test = self.classes_[onehot[test].argmax(1)]
        sw_test = c[test] * len(c)
        scores = np.empty((len(self.alphas_), len(fractions), len(l2s)))
        # Warm starts of the refits: the previous alpha's, then the stronger ridge's.
        previous = {}
        nnz = np.empty(len(self.alphas_), dtype=int)
        path = iter_path(
            solve,
            X_train,
            Y_train,
            c_train,
            groups,
            self.alphas_,
            **self._solver_params(),
        )
        for i, (alpha, result) in enumerate(path):
            self._check_convergence(
                result, f"The group-lasso solver (alpha={alpha:.3g})"
            )
            nnz[i] = np.count_nonzero(np.bincount(groups.ids, (result.coef**2).sum(1)))
            model = GroupLassoClassifier(alpha, **self._model_params())
            model.classes_ = self.classes_
            model.n_features_in_ = X.shape[1]
            model._set_solution(X_train, Y_train, c_train, groups, solve, result, None)
            for j, fraction in enumerate(fractions):
                if fraction is None:
                    scores[i, j] = scorer(model, X[test], y_test, sample_weight=sw_test)
                    continue
                mask = model._keep_mask(X_train, Y_train, c_train, fraction)
                basis = _row_space_basis(X_train[:, mask])
                init = None
                for k, l2 in enumerate(l2s):
                    init = previous.get((j, k), init)
                    model._W, model._b = model._refit(
                        X_train, Y_train, c_train, solve, mask, l2, init, basis
                    )
                    previous[j, k] = init = (model._W, model._b)
                    scores[i, j, k] = scorer(
                        model, X[test], y_test, sample_weight=sw_test
                    )
        return scores, nnz

    def _model_params(self):
        keys = (
            "groups",
            "group_weights",
            "l2",
            "fit_intercept",
            "solver",
            "device",
            "dtype",
            "tol",
            "max_iter",
            "random_state",
            "verbose",
        )
        return {k: getattr(self, k) for k in keys}
