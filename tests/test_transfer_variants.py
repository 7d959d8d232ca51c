"""benchmarks/transfer/_variants.py: the 1se and fold-averaged variants of the
default head, computed from its fit, equal the estimator run with those options."""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "transfer"))

import _variants as V  # noqa: E402

from skhead2toe import GroupLassoClassifierCV  # noqa: E402


def _unit_blocks(X, widths):
    out, start = [], 0
    for w in widths:
        block = X[:, start : start + w]
        out.append(block / np.linalg.norm(block, axis=1, keepdims=True))
        start += w
    return np.hstack(out)


@pytest.fixture(scope="module")
def fitted():
    X, y = make_classification(
        n_samples=210, n_features=60, n_informative=8, n_classes=3, random_state=1
    )
    X = _unit_blocks(np.abs(X), (25, 20, 15))
    head = GroupLassoClassifierCV(
        alphas=3, cv=3, refit_l2s=(1e-3, 1e-4), tol=1e-8, random_state=0
    )
    return head.fit(X[:150], y[:150]), X, y


def test_one_se_variant_is_the_estimator_with_selection_1se(fitted):
    head, X, y = fitted
    ose = clone(head).set_params(selection="1se").fit(X[:150], y[:150])
    index = V.one_se_index(head)
    assert index == ose.best_index_
    predict, mask = V.refit_candidate(head, index, X[:150], y[:150])
    np.testing.assert_array_equal(mask, ose.selected_features_)
    agree = np.mean(predict(X[150:]) == ose.predict(X[150:]))
    assert agree >= 0.95  # a direct fit at alpha against the path's warm start


@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_fold_averaged_variant_is_the_estimator_with_average_scores(fitted, fraction):
    head, X, y = fitted
    grid = dict(keep_fractions=(fraction,), last_layer=False)
    plain = clone(head).set_params(**grid).fit(X[:150], y[:150])
    averaged = clone(plain).set_params(average_scores=True).fit(X[:150], y[:150])
    derived = V.fold_averaged(plain, X[:150], y[:150])
    np.testing.assert_array_equal(
        derived.selected_features_, averaged.selected_features_
    )
    np.testing.assert_allclose(
        derived.predict_proba(X[150:]), averaged.predict_proba(X[150:]), atol=1e-4
    )


def test_fold_averaged_variant_of_a_baseline_is_none(fitted):
    head, X, y = fitted
    base = clone(head).set_params(keep_fractions=(1.0,)).fit(X[:150], y[:150])
    assert base.candidate_ in {"all features", "last layer"}
    assert V.fold_averaged(base, X[:150], y[:150]) is None
