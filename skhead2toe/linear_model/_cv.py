"""GroupLassoClassifierCV: the Head2Toe recipe, tuned by cross-validation."""

import functools
from collections import deque
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import _fit_context
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions

from .._memory import releases_memory
from . import _selection as sel
from ._backend import blas_threads, solver_function
from ._base import _GroupLassoBase, _top_fraction
from ._group_lasso import GroupLassoClassifier
from ._layers import last_layer, resolve_layers
from ._path import _alpha_max, alpha_grid, check_folds, iter_path
from ._problem import make_groups
from ._rowspace import GramCache, gram, row_space_basis

__all__ = ["GroupLassoClassifierCV"]

#: ``keep_fractions="auto"``: the fractions of Evci et al. (ICML 2022) and 1.0,
#: the refit on every feature (All layers + L2).
AUTO_KEEP_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 1.0)


class GroupLassoClassifierCV(_GroupLassoBase):
    """The Head2Toe head, with every choice made by cross-validation.

    With its defaults this is the whole recipe of Evci et al. (ICML 2022), and a
    search that contains its two baselines. On every fold:

    1. the group lasso is solved along a decreasing grid of ``alpha`` with warm
       starts (each solution starts the next);
    2. at every ``alpha``, the features are ranked by the norm of their row of
       the solution, and the top ``keep_fraction`` of them is refitted with every
       ridge strength of ``refit_l2s`` (from the strongest down, warm-started);
    3. two candidates that need no ``alpha`` join the search: the refit on every
       feature (``keep_fraction`` 1.0, "All layers + L2") and, with
       ``last_layer``, the refit on the last layer alone (the linear probe);
    4. every candidate is scored on the held-out part of the fold.

    ``selection`` picks one candidate from the table of mean scores
    (:attr:`cv_results_`), and that head is refitted on all the data. Folds run in
    parallel through joblib.

    **The layer of each column** (for the last-layer candidate and for
    ``renormalize``) is read from the features, so that
    ``make_pipeline(MultiLayerFeaturizer(), GroupLassoClassifierCV())`` needs no
    wiring: from column names of the featurizer's form ``"<layer>__<index>"``
    (a DataFrame, e.g. with ``set_output(transform="pandas")``), else from the
    featurizer's per-layer unit normalisation (a block of columns ends where every
    row's running sum of squares is a whole number). Features without either are
    one layer, and the last-layer candidate is left out. ``layers=`` sets the
    layout explicitly; :attr:`layers_` says which was used.

    Parameters
    ----------
    alphas : int or array-like, default=6
        Number of values on the grid ``alpha_max * geomspace(1, eps, alphas)``, or
        the values themselves.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the grid.
    keep_fractions : "auto", None or array-like of float in (0, 1], default="auto"
        Fractions of the features kept and refitted. ``"auto"`` is
        ``(0.01, 0.02, 0.05, 0.1, 0.2, 1.0)``: the paper's grid and every feature;
        None means plain group lasso (no refit, no baseline candidates).
    last_layer : bool, default=True
        Whether the refit on the last layer alone is a candidate (ignored with
        ``keep_fractions=None`` or when the features are one layer).
    refit_l2s : array-like of float > 0, default=(1e-3, 1e-4, 1e-5)
        Ridge strengths tried for every refit.
    selection : {"best", "1se"}, default="best"
        ``"best"``: the candidate of best mean score. ``"1se"``: the one with the
        fewest features among those within one standard error of the best (as
        glmnet's ``lambda.1se``); :func:`~skhead2toe.linear_model.select_candidate`
        applies either rule to a fitted ``cv_results_``.
    renormalize : bool, default=False
        Whether the kept columns of each layer are re-normalised to unit norm per
        sample before the refit (and before prediction), as the reference
        implementation does.
    average_scores : bool, default=False
        Whether the final ranking of the features is the mean over the folds of
        their squared importances at the chosen ``alpha`` (the reference's
        averaging), instead of a group-lasso fit on all the data. It changes
        nothing when a baseline or plain group lasso is chosen.
    layers : "auto", None or array-like of shape (n_features,), default="auto"
        Layer label of each column (e.g. ``MultiLayerFeaturizer.feature_groups_``);
        ``"auto"`` reads it from the features (above); None: one layer.
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
    cv_results_ : dict of ndarray
        One entry per candidate, as ``cv_results_`` of
        :class:`~sklearn.model_selection.GridSearchCV`
        (``pandas.DataFrame(clf.cv_results_)`` shows it): ``candidate`` (``"top
        features"``, ``"all features"``, ``"last layer"`` or ``"group lasso"``),
        ``alpha``, ``keep_fraction`` and ``refit_l2`` (NaN where they do not
        apply), ``n_features`` (mean over folds), ``split<k>_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score``, ``params``.
    best_index_ : int
        Row of :attr:`cv_results_` that ``selection`` chose.
    candidate_ : str
        Its kind.
    alpha_ : float or None
        Its alpha (None for the all-features and last-layer refits).
    keep_fraction_ : float or None
        Its fraction (1.0 for all features; None for the last layer and plain
        group lasso).
    refit_l2_ : float or None
        Its refit ridge (None for plain group lasso).
    layers_ : ndarray of int of shape (n_features,)
        Layer id of each column, as resolved from ``layers``.
    alphas_ : ndarray of shape (n_alphas,)
        The alpha grid, decreasing.
    keep_fractions_ : ndarray of object of shape (n_keep_fractions,)
        The fractions of the grid (``[None]`` without ``keep_fractions``).
    refit_l2s_ : ndarray of shape (n_refit_l2s,)
        The refit ridge grid, decreasing (just ``[nan]`` without
        ``keep_fractions``).
    scores_ : ndarray of shape (n_folds, n_alphas, n_keep_fractions, n_refit_l2s)
        Test score of every fold, alpha, fraction and refit ridge (the fraction
        1.0 does not depend on alpha and is repeated along that axis; the
        last-layer candidate is in :attr:`cv_results_` only).
    mean_scores_ : ndarray of shape (n_alphas, n_keep_fractions, n_refit_l2s)
        Mean over folds.
    n_nonzero_ : ndarray of shape (n_folds, n_alphas)
        Selected groups at each alpha in each fold (the regularisation path).
    classes_, coef_, intercept_, feature_importances_, group_norms_, \
selected_features_, dual_gap_, objective_, converged_, n_iter_, n_features_in_, \
feature_names_in_
        Of the final model, as in :class:`GroupLassoClassifier`. When a refit
        without ``alpha`` is chosen, ``feature_importances_`` and
        ``group_norms_`` are the norms of the refitted head's rows and the
        certificate (``dual_gap_``, ...) is the refit's. With ``renormalize``,
        ``coef_`` applies to the re-normalised kept columns.

    See Also
    --------
    GroupLassoClassifier : the estimator for one alpha.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifierCV
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoClassifierCV(alphas=3, cv=3, tol=1e-4).fit(X / 16, y)
    >>> clf.mean_scores_.shape  # alphas, fractions, refit ridges
    (3, 6, 3)
    >>> sorted(set(clf.cv_results_["candidate"]))  # pixels are one layer
    ['all features', 'top features']
    """

    _parameter_constraints: dict = {
        **_GroupLassoBase._parameter_constraints,
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "keep_fractions": [StrOptions({"auto"}), "array-like", None],
        "last_layer": ["boolean"],
        "refit_l2s": ["array-like"],
        "selection": [StrOptions({"best", "1se"})],
        "renormalize": ["boolean"],
        "average_scores": ["boolean"],
        "layers": [StrOptions({"auto"}), "array-like", None],
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
        alphas=6,
        *,
        eps=1e-2,
        keep_fractions="auto",
        last_layer=True,
        refit_l2s=(1e-3, 1e-4, 1e-5),
        selection="best",
        renormalize=False,
        average_scores=False,
        layers="auto",
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
        self.last_layer = last_layer
        self.refit_l2s = refit_l2s
        self.selection = selection
        self.renormalize = renormalize
        self.average_scores = average_scores
        self.layers = layers
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
        """Score every candidate by CV, choose one, refit it on all the data.

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
        self.layers_ = resolve_layers(
            self.layers, X, getattr(self, "feature_names_in_", None)
        )
        self.alphas_ = self._alpha_values(X, onehot, c, groups)
        fractions = self._fractions()
        self.keep_fractions_ = np.asarray(fractions, dtype=object)
        self.refit_l2s_ = l2s = self._refit_l2_values(fractions)
        candidates = self._candidates(fractions, len(l2s))
        y_codes = onehot.argmax(1)
        folds = list(check_cv(self.cv, y_codes, classifier=True).split(X, y_codes))
        check_folds(folds, onehot, c, classes, self.cv)
        gram_all = self._shared_gram(X, candidates, folds)
        jobs = (
            delayed(releases_memory(self._score_fold))(
                X, onehot, c, groups, solve, fold, candidates, gram_all
            )
            for fold in folds
        )
        out = Parallel(n_jobs=self.n_jobs)(jobs)
        fold_scores = np.stack([o[0] for o in out])
        n_features = np.stack([o[1] for o in out])
        self.n_nonzero_ = np.stack([o[2] for o in out])
        self.cv_results_ = sel.cv_table(
            candidates, fold_scores, n_features, self.alphas_, l2s
        )
        self.best_index_ = sel.select_candidate(self.cv_results_, self.selection)
        self._grid_scores(candidates, fold_scores, fractions)
        rankings = [o[3] for o in out] if self.average_scores else None
        self._refit_chosen(X, onehot, c, groups, solve, candidates, rankings, gram_all)
        return self

    def _shared_gram(self, X, candidates, folds):
        """``X X^T`` for the all-features refits of every fold, or None.

        Computed once when an all-features candidate runs in the row space
        (``d >= 2 n`` on the smallest training fold) on columns as they are.
        """
        smallest = min(len(train) for train, _ in folds)
        wanted = any(cand.kind == sel.ALL for cand in candidates)
        if not wanted or self.renormalize or X.shape[1] < 2 * smallest:
            return None
        return gram(X)

    def _candidates(self, fractions, n_l2s):
        """The heads the CV scores (:mod:`._selection`)."""
        grid = [f for f in fractions if f != 1.0]
        fixed = [sel.ALL] if 1.0 in fractions else []
        if fractions != [None] and self.last_layer and self.layers_.max() > 0:
            fixed.append(sel.LAST)
        n_alphas = len(self.alphas_) if grid else 0
        return sel.grid_candidates(n_alphas, grid, n_l2s) + sel.fixed_candidates(
            fixed, n_l2s
        )

    def _grid_scores(self, candidates, fold_scores, fractions):
        """``scores_`` on the (alpha, fraction, ridge) grid; 1.0 along alphas."""
        shape = (len(fold_scores), len(self.alphas_), len(fractions))
        self.scores_ = np.full(shape + (len(self.refit_l2s_),), np.nan)
        column = {f: j for j, f in enumerate(fractions)}
        for n, cand in enumerate(candidates):
            k = 0 if cand.l2 is None else cand.l2
            if cand.kind == sel.ALL:
                self.scores_[:, :, column[1.0], k] = fold_scores[:, n, None]
            elif cand.kind != sel.LAST:
                self.scores_[:, cand.alpha, column[cand.fraction], k] = fold_scores[
                    :, n
                ]
        self.mean_scores_ = self.scores_.mean(0)

    def _refit_chosen(
        self, X, onehot, c, groups, solve, candidates, rankings, gram_all=None
    ):
        """Refit the chosen candidate on all the data."""
        chosen = candidates[self.best_index_]
        l2 = None if chosen.l2 is None else float(self.refit_l2s_[chosen.l2])
        self.candidate_, self.keep_fraction_, self.refit_l2_ = (
            chosen.kind,
            chosen.fraction,
            l2,
        )
        self.alpha_ = (
            None if chosen.alpha is None else float(self.alphas_[chosen.alpha])
        )
        layers = self.layers_ if self.renormalize else None
        self._renorm = None
        averaged = rankings is not None and chosen.kind == sel.TOP
        if chosen.kind in (sel.ALL, sel.LAST) or averaged:
            if chosen.kind == sel.LAST:
                mask = last_layer(self.layers_)
            elif chosen.kind == sel.ALL:
                mask = np.ones(X.shape[1], dtype=bool)
            else:  # the folds' rankings, averaged (average_scores)
                squares, pull = np.mean([r[chosen.alpha] for r in rankings], axis=0)
                mask = _top_fraction(squares, chosen.fraction, pull)
            basis = None
            if chosen.kind == sel.ALL and gram_all is not None:
                basis = row_space_basis(X, gram_all)
            W, b, result = self._refit(
                X, onehot, c, solve, mask, l2, basis=basis, layers=layers
            )
            self._set_diagnostics(W, groups, result)
            if chosen.kind == sel.TOP:
                self.feature_importances_ = np.sqrt(squares)
                self.group_norms_ = np.sqrt(np.bincount(groups.ids, squares))
            self._solution, self._W, self._b = (W, b), W, b
            self.selected_features_ = mask
            return
        # the group lasso on all the data, down the path to the chosen alpha
        path = iter_path(
            solve,
            X,
            onehot,
            c,
            groups,
            self.alphas_[: chosen.alpha + 1],
            **self._solver_params(),
        )
        _, result = deque(path, maxlen=1)[0]
        self._check_convergence(result, "The group-lasso solver (final refit)")
        self._set_solution(
            X, onehot, c, groups, solve, result, chosen.fraction, l2, layers=layers
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
        given = self.keep_fractions
        if isinstance(given, str):  # "auto" (the only string the validation lets in)
            given = AUTO_KEEP_FRACTIONS
        fractions = [float(f) for f in np.asarray(given, dtype=float).ravel()]
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise ValueError(
                f"keep_fractions must be values in (0, 1], got {self.keep_fractions}."
            )
        return list(dict.fromkeys(fractions))  # without repeats, in the given order

    def _refit_l2_values(self, fractions):
        if fractions == [None]:
            return np.array([np.nan])
        l2s = np.sort(np.asarray(self.refit_l2s, dtype=np.float64).ravel())[::-1]
        if l2s.size == 0 or not np.all(np.isfinite(l2s)) or np.any(l2s <= 0):
            raise ValueError(
                f"refit_l2s must be positive finite values, got {self.refit_l2s}."
            )
        return l2s

    def _score_fold(self, X, onehot, c, groups, solve, fold, candidates, gram_all=None):
        """Score of every candidate on one fold.

        Returns the scores and the features each candidate uses (one per
        candidate), the groups selected at each alpha and, with
        ``average_scores``, each alpha's ranking (squared importances and the
        gradient tie-break) for the final selection.
        """
        scorer = _FoldScorer(self, X, onehot, c, solve, fold, len(candidates), gram_all)
        by_alpha = {}
        for n, cand in enumerate(candidates):
            if cand.alpha is not None and not cand.l2:  # first ridge of its block
                by_alpha.setdefault(cand.alpha, []).append((n, cand))
        nnz = np.zeros(len(self.alphas_), dtype=int)
        rankings = None
        if self.average_scores:
            rankings = np.zeros((len(self.alphas_), 2, X.shape[1]), dtype=np.float32)
        path = ()
        if by_alpha:
            path = iter_path(
                solve, *scorer.train, groups, self.alphas_, **self._solver_params()
            )
        model = scorer.model
        for i, (alpha, result) in enumerate(path):
            self._check_convergence(
                result, f"The group-lasso solver (alpha={alpha:.3g})"
            )
            nnz[i] = np.count_nonzero(np.bincount(groups.ids, (result.coef**2).sum(1)))
            model._set_solution(*scorer.train, groups, solve, result, None)
            # the tie-break of every fraction at this alpha, computed once
            pull = functools.cache(functools.partial(model._pull, *scorer.train))
            if rankings is not None:
                rankings[i] = model.feature_importances_**2, pull()
            for n, cand in by_alpha.get(i, ()):
                if cand.kind == sel.GROUP_LASSO:
                    scorer.score(n, np.count_nonzero(model.feature_importances_))
                else:
                    mask = model._keep_mask(*scorer.train, cand.fraction, pull)
                    scorer.refits(n, cand.fraction, mask)
        for n, cand in enumerate(candidates):
            if cand.alpha is None and not cand.l2:
                mask = np.ones(X.shape[1], dtype=bool)
                if cand.kind == sel.LAST:
                    mask = last_layer(self.layers_)
                scorer.refits(n, cand.kind, mask)
        return scorer.scores, scorer.n_features, nnz, rankings

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


class _FoldScorer:
    """One fold's data, model and score table, for :meth:`_score_fold`.

    ``refits`` fits a selection along the ridge grid, each refit warm-started by
    the same selection's refit at the previous alpha (same ``key``), else by the
    stronger ridge's, and all sharing one row-space basis. The bases come from
    Grams: the fold's block of ``gram_all`` (every column's, computed once for
    all folds) for the all-features candidate, else a :class:`GramCache` updated
    from one selection to the next.
    """

    def __init__(self, cv, X, onehot, c, solve, fold, n_candidates, gram_all=None):
        train, test = fold
        c_train = c[train] / c[train].sum()
        self.train = (X[train], onehot[train], c_train)  # copied once per fold
        self.test = (X[test], cv.classes_[onehot[test].argmax(1)], c[test] * len(c))
        self.scorer = check_scoring(cv, scoring=cv.scoring or "accuracy")
        self.model = GroupLassoClassifier(float(cv.alphas_[0]), **cv._model_params())
        self.model.classes_, self.model.n_features_in_ = cv.classes_, X.shape[1]
        self.layers = cv.layers_ if cv.renormalize else None
        self.l2s, self.solve, self.warm = cv.refit_l2s_, solve, {}
        self.scores = np.full(n_candidates, np.nan)
        self.n_features = np.zeros(n_candidates)
        self.gram_all = None if gram_all is None else gram_all[np.ix_(train, train)]
        self.grams = GramCache(self.train[0])

    def score(self, n, n_features):
        """Score the model as it stands as candidate ``n``."""
        X_test, y_test, sw_test = self.test
        self.scores[n] = self.scorer(self.model, X_test, y_test, sample_weight=sw_test)
        self.n_features[n] = n_features

    def basis(self, mask):
        """The row-space basis (or the columns) of the refits of ``mask``."""
        model, cols = self.model, np.flatnonzero(mask)
        model._renorm = None if self.layers is None else (cols, self.layers[cols])
        X_kept = model._kept_columns(self.train[0], cols)
        if self.layers is not None or cols.size < 2 * X_kept.shape[0]:
            return row_space_basis(X_kept)  # re-normalised columns: no Gram reuse
        if cols.size == mask.size and self.gram_all is not None:
            return row_space_basis(X_kept, self.gram_all)
        return row_space_basis(X_kept, self.grams(mask))

    def refits(self, n_first, key, mask):
        """Refit ``mask`` at every ridge; they are candidates ``n_first, ...``."""
        model, basis = self.model, self.basis(mask)
        init = None
        for k, l2 in enumerate(self.l2s):
            init = self.warm.get((key, k), init)
            W, b, _ = model._refit(
                *self.train, self.solve, mask, l2, init, basis, self.layers
            )
            self.warm[key, k] = init = model._W, model._b = W, b
            self.score(n_first + k, int(mask.sum()))
