"""holdout_scores: every candidate of a fitted CV head, scored on held-out data."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score

from skhead2toe import GroupLassoClassifier, GroupLassoClassifierCV
from skhead2toe.linear_model import holdout_scores

WIDTHS = (12, 8, 20, 10)


def _unit_blocks(X):
    out, start = [], 0
    for w in WIDTHS:
        block = X[:, start : start + w]
        out.append(block / np.linalg.norm(block, axis=1, keepdims=True))
        start += w
    return np.hstack(out)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=300,
        n_features=sum(WIDTHS),
        n_informative=8,
        n_redundant=0,
        n_classes=3,
        random_state=1,
    )
    return _unit_blocks(np.abs(X) + 0.1), y


@pytest.fixture(scope="module")
def folds(data):
    _, y = data
    idx = np.arange(len(y))
    return [(idx[idx % 3 != k], idx[idx % 3 == k]) for k in range(3)]


@pytest.fixture(scope="module")
def fitted(data, folds):
    X, y = data
    return GroupLassoClassifierCV(alphas=3, cv=folds, random_state=0).fit(X, y)


def test_a_cv_fold_as_holdout_gives_that_folds_scores(data, folds, fitted):
    """The same fit as the CV's own fold: the same score for every candidate."""
    X, y = data
    for k, (train, test) in enumerate(folds):
        result = holdout_scores(fitted, X[train], y[train], X[test], y[test])
        np.testing.assert_allclose(
            result.test_score, fitted.cv_results_[f"split{k}_test_score"], atol=1e-12
        )


def test_predictions_are_each_candidates_and_match_its_score(data, fitted):
    X, y = data
    result = holdout_scores(
        fitted, X[:200], y[:200], X[200:], y[200:], return_predictions=True
    )
    table = fitted.cv_results_
    assert len(result.predictions) == len(table["candidate"])
    for pred, score in zip(result.predictions, result.test_score, strict=True):
        assert accuracy_score(y[200:], pred) == pytest.approx(score)
    # a "top features" candidate is GroupLassoClassifier at its triple
    n = int(np.flatnonzero(table["candidate"] == "top features")[-1])
    ref = GroupLassoClassifier(
        alpha=table["alpha"][n],
        keep_fraction=table["keep_fraction"][n],
        refit_l2=table["refit_l2"][n],
        random_state=0,
    ).fit(X[:200], y[:200])
    agree = np.mean(ref.predict(X[200:]) == result.predictions[n])
    assert agree >= 0.99
    assert result.n_features[n] == ref.selected_features_.sum()


def test_the_estimator_is_left_as_it_was(data, fitted):
    X, y = data
    before = (fitted.scoring, fitted.best_index_, fitted.predict(X).copy())
    holdout_scores(fitted, X[:200], y[:200], X[200:], y[200:])
    assert (fitted.scoring, fitted.best_index_) == before[:2]
    np.testing.assert_array_equal(fitted.predict(X), before[2])


def test_bad_inputs_are_clear_errors(data, fitted):
    X, y = data
    with pytest.raises(TypeError, match="GroupLassoClassifierCV"):
        holdout_scores(GroupLassoClassifier(), X, y, X, y)
    with pytest.raises(ValueError, match="features"):
        holdout_scores(fitted, X[:, :-1], y, X, y)
    with pytest.raises(ValueError, match="classes_"):
        holdout_scores(fitted, X, y, X[:5], np.full(5, 7))
    with pytest.raises(ValueError, match="lacks the classes"):
        holdout_scores(fitted, X[y != 2], y[y != 2], X, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        holdout_scores(GroupLassoClassifierCV(), X, y, X, y)
