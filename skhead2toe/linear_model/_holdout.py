"""Every candidate of a fitted GroupLassoClassifierCV, scored on held-out data."""

import copy

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from . import _selection as sel
from ._backend import blas_threads, solver_function
from ._base import _DTYPES
from ._cv import GroupLassoClassifierCV
from ._problem import make_groups
from ._rowspace import gram

__all__ = ["holdout_scores"]


def holdout_scores(estimator, X, y, X_test, y_test, *, return_predictions=False):
    """Score every candidate of a fitted CV head on held-out data.

    Each candidate of ``estimator.cv_results_`` is fitted on ``(X, y)`` exactly
    as the cross-validation fits it on a training fold (the same warm-started
    path, rankings and ridge refits, in one pass) and scored on
    ``(X_test, y_test)`` with the estimator's ``scoring``. Row ``n`` of the
    result is row ``n`` of ``cv_results_``, so the two can be read side by side:
    which candidate a validation set prefers, and how far the CV's choice is
    from it. Choosing a head by a *test* set's scores is not a method (it
    overfits that set); this is an inspection and benchmarking tool.

    Parameters
    ----------
    estimator : GroupLassoClassifierCV
        A fitted head; its grids (``alphas_``, ``keep_fractions_``,
        ``refit_l2s_``), layout (``layers_``) and options are used as fitted.
    X : array-like of shape (n_samples, n_features)
        Training data, usually the data ``estimator`` was fitted on.
    y : array-like of shape (n_samples,)
        Its labels; every class of ``estimator.classes_`` must occur.
    X_test : array-like of shape (n_test, n_features)
        Held-out data.
    y_test : array-like of shape (n_test,)
        Its labels, among ``estimator.classes_``.
    return_predictions : bool, default=False
        Also return each candidate's predicted labels of ``X_test``.

    Returns
    -------
    result : Bunch
        ``test_score``, ndarray of shape (n_candidates,): the score of each
        candidate; ``n_features``, ndarray of shape (n_candidates,): the features
        it uses when fitted on ``X``; with ``return_predictions``,
        ``predictions``, a list of ndarray of shape (n_test,), one per candidate.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.linear_model import GroupLassoClassifierCV, holdout_scores
    >>> X, y = load_digits(n_class=3, return_X_y=True)
    >>> X = X / 16.0
    >>> head = GroupLassoClassifierCV(alphas=3, cv=3, keep_fractions=(0.2, 1.0))
    >>> head = head.fit(X[:300], y[:300])
    >>> result = holdout_scores(head, X[:300], y[:300], X[300:], y[300:])
    >>> result.test_score.shape == head.cv_results_["mean_test_score"].shape
    True
    """
    if not isinstance(estimator, GroupLassoClassifierCV):
        raise TypeError(
            "holdout_scores takes a fitted GroupLassoClassifierCV, got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator, "cv_results_")
    X_all, onehot, c, n_train = _stack(estimator, X, y, X_test, y_test)
    head = copy.copy(estimator)  # the caller's estimator is not modified
    predictions = []
    head.scoring = _recording_scorer(estimator.scoring, predictions)
    candidates = head._candidates(list(head.keep_fractions_), len(head.refit_l2s_))
    wanted = any(cand.kind == sel.ALL for cand in candidates)
    gram_all = gram(X_all) if wanted and not head.renormalize else None
    groups = make_groups(head.groups, X_all.shape[1], head.group_weights)
    fold = (np.arange(n_train), np.arange(n_train, len(X_all)))
    solve = solver_function(head.solver, head.device)
    with blas_threads(solve):
        scores, n_features, _, _ = head._score_fold(
            X_all, onehot, c, groups, solve, fold, candidates, gram_all
        )
    result = Bunch(test_score=scores, n_features=n_features)
    if return_predictions:
        order = _score_order(candidates)
        result.predictions = [None] * len(candidates)
        for n, pred in zip(order, predictions, strict=True):
            result.predictions[n] = pred
    return result


def _stack(estimator, X, y, X_test, y_test):
    """Training rows then test rows, one-hot labels and uniform sample weights."""
    dtype = _DTYPES[estimator.dtype]
    X = check_array(X, dtype=dtype)
    X_test = check_array(X_test, dtype=X.dtype)
    y, y_test = column_or_1d(y), column_or_1d(y_test)
    for name, A, labels in (("X", X, y), ("X_test", X_test, y_test)):
        if A.shape[1] != estimator.n_features_in_:
            raise ValueError(
                f"{name} has {A.shape[1]} features, but the estimator was fitted "
                f"on {estimator.n_features_in_}."
            )
        if len(labels) != len(A):
            raise ValueError(f"{name} has {len(A)} rows but its labels {len(labels)}.")
    classes = estimator.classes_
    labels = np.concatenate([y, y_test])
    unknown = np.setdiff1d(labels, classes)
    if unknown.size:
        raise ValueError(
            f"labels {unknown.tolist()} are not among the estimator's classes_."
        )
    missing = np.setdiff1d(classes, y)
    if missing.size:
        raise ValueError(f"y lacks the classes {missing.tolist()} of classes_.")
    onehot = np.eye(len(classes))[np.searchsorted(classes, labels)]
    c = np.full(len(labels), 1.0 / len(labels))
    return np.vstack([X, X_test]), onehot, c, len(X)


def _recording_scorer(scoring, predictions):
    """The estimator's scorer, also keeping the predicted labels of each call."""
    from sklearn.metrics import check_scoring

    def scorer(model, X_test, y_test, sample_weight=None):
        predictions.append(model.predict(X_test))
        inner = check_scoring(model, scoring=scoring or "accuracy")
        return inner(model, X_test, y_test, sample_weight=sample_weight)

    return scorer


def _score_order(candidates):
    """Table indices in the order one fold scores the candidates.

    Along the path, each alpha's candidates in table order; then those without
    an alpha (the baselines), in table order.
    """
    with_alpha = sorted(
        (n for n, cand in enumerate(candidates) if cand.alpha is not None),
        key=lambda n: (candidates[n].alpha, n),
    )
    return with_alpha + [n for n, cand in enumerate(candidates) if cand.alpha is None]
