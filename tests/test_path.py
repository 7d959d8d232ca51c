"""Regularisation paths (``_path``): alpha_max, warm starts, path functions."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from skhead2toe import GroupLassoClassifier, alpha_max
from skhead2toe.linear_model import group_lasso_path


def test_zero_at_and_above_alpha_max(data):
    X, y = data
    amax = alpha_max(X, y)
    for alpha in (amax, 2 * amax):
        clf = GroupLassoClassifier(alpha, tol=1e-10).fit(X, y)
        assert np.all(clf.coef_ == 0)
    clf = GroupLassoClassifier(0.95 * amax, tol=1e-10).fit(X, y)
    assert np.any(clf.coef_ != 0)


def test_path_equals_single_fits(data):
    X, y = data
    alphas, coefs, intercepts, gaps, _ = group_lasso_path(X, y, n_alphas=5, tol=1e-10)
    assert np.all(np.diff(alphas) < 0)
    assert np.all(coefs[0] == 0)
    for alpha, coef in zip(alphas[1:], coefs[1:], strict=True):
        single = GroupLassoClassifier(alpha, tol=1e-10, max_iter=50_000).fit(X, y)
        np.testing.assert_allclose(coef, single.coef_, atol=1e-4)


def test_path_predictor_is_exact_on_a_path_linear_in_log_alpha():
    from skhead2toe.linear_model._path import _extrapolate

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    A[2] = B[2] = 0.0  # a zero row stays zero
    a, b = rng.normal(size=3), rng.normal(size=3)

    def point(alpha):
        return alpha, A + B * np.log(alpha), a + b * np.log(alpha)

    W, b_pred = _extrapolate(point(1.0), point(0.8), 0.7)
    np.testing.assert_allclose(W, point(0.7)[1])
    np.testing.assert_allclose(b_pred, point(0.7)[2])
    assert not W[2].any()
    # coarse steps, zero alphas and repeated alphas keep the last solution
    for before, last, alpha in [
        (point(1.0), point(0.5), 0.25),
        (point(1.0), point(0.8), 0.0),
        (point(0.8), point(0.8), 0.7),
    ]:
        W, b_pred = _extrapolate(before, last, alpha)
        assert W is last[1] and b_pred is last[2]


def test_path_with_predicted_warm_starts_matches_cold_fits():
    X, y = make_classification(
        n_samples=150, n_features=60, n_informative=8, n_classes=3, random_state=2
    )
    alphas, coefs, intercepts, gaps, _ = group_lasso_path(
        X, y, n_alphas=12, eps=0.05, tol=1e-10
    )
    assert np.all(np.asarray(gaps) >= 0)
    for alpha, coef in zip(alphas[-3:], coefs[-3:], strict=True):
        cold = GroupLassoClassifier(alpha, tol=1e-10, max_iter=50_000).fit(X, y)
        np.testing.assert_allclose(coef, cold.coef_, atol=1e-5)


def test_path_rejects_an_unregularised_point_and_bad_alphas(data):
    X, y = data
    with pytest.raises(ValueError, match="alpha = 0 with l2 = 0"):
        group_lasso_path(X, y, alphas=[0.1, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        group_lasso_path(X, y, alphas=[0.1, -1.0])
    with pytest.raises(ValueError, match="finite"):
        group_lasso_path(X, y, alphas=[np.nan])
    with pytest.raises(ValueError, match="at least 2 classes"):
        group_lasso_path(X, np.zeros(len(y)), n_alphas=2)
    # alpha = 0 is fine with a ridge: a smooth, certified fit
    alphas, coefs, _, gaps, _ = group_lasso_path(X, y, alphas=[0.0], l2=1e-2)
    assert np.all(coefs != 0) and gaps[0] >= 0


def test_path_warns_when_a_point_misses_tol(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match=r"alpha=.*Increase max_iter"):
        group_lasso_path(X, y, n_alphas=3, eps=1e-3, max_iter=2, tol=1e-10)
