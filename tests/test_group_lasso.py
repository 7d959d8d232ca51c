"""GroupLassoClassifier: behaviour, the Head2Toe refit, inputs and errors."""

import pickle
import re

import numpy as np
import pytest
from helpers import full_W
from scipy.special import softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.feature_selection import SelectFromModel

from skhead2toe import GroupLassoClassifier, GroupLassoClassifierCV, alpha_max


@pytest.mark.parametrize("solver", ["fista", "newton"])
def test_warm_start_converges_immediately(data, solver):
    X, y = data
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, solver=solver, tol=1e-8, warm_start=True)
    clf.fit(X, y)
    first = clf.n_iter_
    clf.fit(X, y)
    assert clf.n_iter_ <= 2 < first


def test_binary_layout_and_proba():
    X, y = make_classification(n_samples=80, n_features=10, random_state=1)
    clf = GroupLassoClassifier(1e-3).fit(X, np.where(y, "yes", "no"))
    assert clf.coef_.shape == (1, 10) and clf.intercept_.shape == (1,)
    d = clf.decision_function(X)
    assert d.ndim == 1
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-d)))
    assert set(clf.predict(X)) <= {"yes", "no"}


def test_many_classes_and_wide_data():
    rng = np.random.default_rng(0)
    n, d, K = 300, 5000, 100
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = np.arange(n) % K
    X[:, :20] += np.eye(K)[y][:, :20] * 3
    clf = GroupLassoClassifier(0.3 * alpha_max(X, y), tol=1e-5).fit(X, y)
    assert clf.coef_.shape == (K, d)
    assert clf.converged_ and clf.selected_features_.sum() < d


def test_duplicated_and_constant_columns(data):
    X, y = data
    X = np.hstack([X, X[:, :3], np.ones((len(y), 2))])
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, tol=1e-9).fit(X, y)
    assert clf.converged_
    assert np.all(clf.feature_importances_[-2:] == 0)  # constant: the intercept's job
    # A duplicated pair enters the logits through the sum of its rows, and the
    # penalty is the same for every split of that sum into two parallel parts
    # (||t S|| + ||(1 - t) S|| = ||S||), so the split is not unique. What is: the
    # sum equals the row of the single column in the problem without the copies,
    # and both rows point along it.
    single = GroupLassoClassifier(alpha, tol=1e-9).fit(data[0], y)
    W = clf.coef_.T
    S = W[:3] + W[40:43]
    np.testing.assert_allclose(S, single.coef_.T[:3], atol=1e-5)
    for j in range(3):
        for part in (W[j], W[40 + j]):
            # part = t S_j with 0 <= t <= 1
            t = part @ S[j] / max(S[j] @ S[j], 1e-300)
            assert -1e-6 <= t <= 1 + 1e-6
            np.testing.assert_allclose(part, t * S[j], atol=1e-5)
    np.testing.assert_allclose(clf.objective_, single.objective_, rtol=1e-8)


def test_float32_and_float64_agree(data):
    X, y = data
    alpha = 0.1 * alpha_max(X, y)
    f32 = GroupLassoClassifier(alpha, dtype="float32", tol=1e-6).fit(X, y)
    f64 = GroupLassoClassifier(alpha, dtype="float64", tol=1e-6).fit(X, y)
    assert f32.converged_ and f64.converged_
    assert abs(f32.objective_ - f64.objective_) <= 1e-5 * f64.objective_


def test_keep_fraction_refit_and_select_from_model(data):
    X, y = data
    clf = GroupLassoClassifier(0.05 * alpha_max(X, y), keep_fraction=0.1).fit(X, y)
    assert clf.selected_features_.sum() == 4
    assert np.all(clf.coef_[:, ~clf.selected_features_] == 0)
    top = np.argsort(-clf.feature_importances_)[:4]
    assert set(np.flatnonzero(clf.selected_features_)) == set(top)
    sfm = SelectFromModel(clf, prefit=True, threshold=-np.inf, max_features=4)
    assert sfm.transform(X).shape == (len(y), 4)


def test_keep_fraction_beyond_the_support_takes_the_largest_gradients():
    # At a large alpha only a few rows are non-zero; the rest of the kept
    # fraction must be the zero rows closest to entering (largest gradient row),
    # here informative columns placed last, not the first (noise) columns.
    rng = np.random.default_rng(0)
    n, d = 300, 40
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, d))
    X[:, -6:] += 0.6 * (y[:, None] == np.arange(6)[None, :] % 3)
    amax = alpha_max(X, y)
    clf = GroupLassoClassifier(0.9 * amax, keep_fraction=0.2, tol=1e-10).fit(X, y)
    nonzero = np.flatnonzero(clf.feature_importances_)
    assert 0 < len(nonzero) < 8
    W, b = clf._solution
    onehot = np.eye(3)[y]
    grad = X.T @ (softmax(X @ W + b, axis=1) - onehot) / n
    zero = np.setdiff1d(np.arange(d), nonzero)
    rest = zero[np.argsort(-np.linalg.norm(grad[zero], axis=1))[: 8 - len(nonzero)]]
    assert set(np.flatnonzero(clf.selected_features_)) == set(nonzero) | set(rest)
    informative = set(range(d - 6, d))
    assert len(informative & set(np.flatnonzero(clf.selected_features_))) >= 4


def test_layerwise_groups_select_whole_groups(data):
    X, y = data
    groups = np.repeat(np.arange(8), 5)
    clf = GroupLassoClassifier(0.3 * alpha_max(X, y, groups=groups), groups=groups)
    clf.fit(X, y)
    sel = clf.selected_features_.reshape(8, 5)
    assert np.all(sel.all(1) | ~sel.any(1))
    assert clf.group_norms_.shape == (8,)


def test_pickle_is_numpy_only(data):
    X, y = data
    clf = GroupLassoClassifier(1e-2).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert b"torch" not in pickle.dumps(clf)


@pytest.mark.parametrize(
    "params, X_mod, match",
    [
        ({"alpha": -1.0}, None, "alpha"),
        ({"alpha": 0.0, "l2": 0.0}, None, "alpha and l2 are both 0"),
        ({"groups": np.arange(3)}, None, "one entry per feature"),
        ({"groups": [np.arange(20), np.arange(10, 40)]}, None, "overlap"),
        ({"groups": [np.arange(20)]}, None, "cover every feature"),
        ({}, "nan", "NaN"),
        ({}, "inf", "infinity"),
    ],
)
def test_bad_input_errors(data, params, X_mod, match):
    X, y = data
    X = X.copy()
    if X_mod == "nan":
        X[0, 0] = np.nan
    elif X_mod == "inf":
        X[0, 0] = np.inf
    with pytest.raises(ValueError, match=match):
        GroupLassoClassifier(**params).fit(X, y)


def test_one_class_and_empty_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="only one class"):
        GroupLassoClassifier().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="0 sample"):
        GroupLassoClassifier().fit(X[:0], y[:0])
    # a class whose samples all weigh 0 has no optimum: a clear error, before any
    # work, for both estimators (also when every class but one weighs nothing)
    from skhead2toe import GroupLassoClassifierCV

    for weighted in ([1], [0, 1]):
        weights = np.isin(y, weighted).astype(float)
        zero = sorted(set(np.unique(y).tolist()) - set(weighted))
        for est in (GroupLassoClassifier(), GroupLassoClassifierCV(alphas=3, cv=3)):
            with pytest.raises(ValueError, match=re.escape(f"{zero} weigh 0")):
                est.fit(X, y, sample_weight=weights)


def test_digits_accuracy():
    X, y = load_digits(return_X_y=True)
    clf = GroupLassoClassifier(1e-3, tol=1e-5).fit(X[:1000] / 16, y[:1000])
    assert clf.score(X[1000:] / 16, y[1000:]) > 0.9


def test_row_space_basis_reproduces_the_kept_columns():
    from skhead2toe.linear_model._rowspace import row_space_basis

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 50)).astype(np.float32)
    basis = row_space_basis(X)
    assert basis.in_row_space and basis.design.shape == (20, 20)
    Q = basis.to_columns(np.eye(20))  # the orthonormal basis of the row space
    assert Q.shape == (50, 20)
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-5)
    np.testing.assert_allclose(basis.design @ Q.T, X, atol=1e-5)
    W = rng.normal(size=(50, 3))
    np.testing.assert_allclose(basis.from_columns(W), Q.T @ W, atol=1e-5)
    # fewer than 2 n columns: no factorisation, the columns themselves
    narrow = row_space_basis(X[:, :39])
    assert not narrow.in_row_space and np.array_equal(narrow.design, X[:, :39])
    assert narrow.design.dtype == np.float64  # cast once, not at every step


def test_gram_cache_updates_equal_fresh_grams():
    from skhead2toe.linear_model._rowspace import GramCache, gram

    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 200)).astype(np.float32)
    cache = GramCache(X)
    masks = [rng.random(200) < 0.3]
    for _ in range(40):  # overlapping selections: updates, and fresh ones
        flip = rng.random(200) < 0.05
        masks.append(masks[-1] ^ flip)
    masks.append(rng.random(200) < 0.9)  # a disjoint-ish jump: computed afresh
    X64 = X.astype(np.float64)
    for mask in masks:
        np.testing.assert_allclose(
            cache(mask), X64[:, mask] @ X64[:, mask].T, rtol=0, atol=1e-10
        )
    np.testing.assert_array_equal(gram(X), gram(X).T)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_refit_on_more_features_than_twice_the_samples_is_exact(fit_intercept):
    # the refit keeps d >= 2 n columns, so it runs in the n-dimensional row
    # space; its W must still solve the ridge problem on the original columns
    X, y = make_classification(
        n_samples=40, n_features=300, n_informative=8, n_classes=3, random_state=1
    )
    l2 = 1e-3
    clf = GroupLassoClassifier(
        0.2 * alpha_max(X, y),
        keep_fraction=0.5,
        refit_l2=l2,
        fit_intercept=fit_intercept,
        tol=1e-10,
    ).fit(X, y)
    kept = clf.selected_features_
    assert kept.sum() == 150 >= 2 * len(y)
    W, b = full_W(clf)
    # stationarity on the original columns, with our own gradient code
    Y = np.eye(3)[y]
    R = softmax(X[:, kept] @ W[kept] + b, axis=1) - Y
    assert np.abs(X[:, kept].T @ R / len(y) + l2 * W[kept]).max() < 1e-6
    if fit_intercept:
        assert np.abs(R.mean(0)).max() < 1e-6
    direct = GroupLassoClassifier(
        alpha=0.0, l2=l2, fit_intercept=fit_intercept, tol=1e-10
    ).fit(X[:, kept], y)
    np.testing.assert_allclose(
        clf.predict_proba(X), direct.predict_proba(X[:, kept]), atol=1e-6
    )
    np.testing.assert_allclose(clf.coef_[:, kept], direct.coef_, atol=1e-4)


@pytest.mark.parametrize("Estimator", [GroupLassoClassifier, GroupLassoClassifierCV])
def test_parameter_constraints_name_exactly_the_parameters(Estimator):
    assert set(Estimator._parameter_constraints) == set(Estimator().get_params())


@pytest.mark.parametrize("solver", ["newton", "fista"])
def test_negative_sample_weight_is_a_clear_error_before_any_work(data, solver):
    X, y = data
    weights = np.ones(len(y))
    weights[3] = -0.5
    for est in (
        GroupLassoClassifier(0.01, solver=solver),
        GroupLassoClassifierCV(alphas=2, cv=2, solver=solver),
    ):
        with pytest.raises(ValueError, match="sample_weight.*non-negative"):
            est.fit(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="sample_weight.*non-negative"):
        alpha_max(X, y, sample_weight=weights)


def test_cv_with_a_class_missing_from_a_training_fold_is_one_clear_error(data):
    # a class of one sample is absent from one training fold: no optimum there,
    # so the fits of that fold would all run to max_iter and warn, one per alpha
    X, y = data
    y = y.copy()
    y[np.flatnonzero(y == 2)[1:]] = 1
    clf = GroupLassoClassifierCV(alphas=4, cv=5)
    with pytest.warns(UserWarning, match="least populated class"):
        with pytest.raises(ValueError, match=r"Class 2 has 1 sample .* cv=5"):
            clf.fit(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_sparse_head_predicts_from_its_features_alone(dtype):
    # Under half of the rows of W non-zero: the logits use those columns only,
    # and equal the dense product (the zero rows add nothing).
    X, y = make_classification(
        n_samples=120, n_features=40, n_informative=4, n_classes=3, random_state=1
    )
    X = X.astype(dtype)
    sparse = GroupLassoClassifier(alpha=0.3 * alpha_max(X, y)).fit(X, y)
    dense = GroupLassoClassifier(alpha=0.001 * alpha_max(X, y)).fit(X, y)
    assert 0 < sparse.selected_features_.sum() < 20 < dense.selected_features_.sum()
    for clf in (sparse, dense):
        logits = X.astype(np.float64) @ clf.coef_.T + clf.intercept_
        np.testing.assert_allclose(
            clf.decision_function(X), logits, rtol=1e-5, atol=1e-5
        )
    X_nan = X.copy()
    X_nan[0, np.flatnonzero(~sparse.selected_features_)[0]] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # still validated whole
        sparse.predict(X_nan)
