"""Optimality, agreement and behaviour of the group-lasso head."""

import pickle
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import softmax
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression

from skhead2toe import GroupLassoClassifier, alpha_max
from skhead2toe.linear_model import group_lasso_path
from skhead2toe.linear_model._objective import NUMPY_OPS, Groups, prox_group_lasso


@pytest.fixture
def data():
    X, y = make_classification(
        n_samples=120, n_features=40, n_informative=6, n_classes=3, random_state=0
    )
    return X, y


def kkt_violation(X, y, W, b, alpha, l2, weights=None):
    """Independent KKT check for per-feature groups (own gradient code)."""
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(float)
    P = softmax(X @ W + b, axis=1)
    G = X.T @ (P - Y) / len(y) + l2 * W
    gb = (P - Y).mean(0)
    norms = np.linalg.norm(W, axis=1)
    viol = np.where(
        norms > 0,
        np.linalg.norm(G + alpha * W / np.maximum(norms, 1e-300)[:, None], axis=1),
        np.maximum(np.linalg.norm(G, axis=1) - alpha, 0),
    )
    return max(viol.max(), np.abs(gb).max())


def full_W(clf):
    return clf._W, clf._b


@pytest.mark.parametrize("solver", ["fista", "newton", "torch"])
@pytest.mark.parametrize("frac", [0.5, 0.1])
def test_kkt_at_solution(data, solver, frac):
    X, y = data
    alpha = frac * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, solver=solver, device="cpu", tol=1e-10).fit(X, y)
    assert clf.converged_
    assert clf.dual_gap_ <= 1e-10 * clf.objective_
    W, b = full_W(clf)
    assert kkt_violation(X, y, W, b, alpha, 0.0) < 1e-4 * alpha
    assert 0 < clf.selected_features_.sum() < X.shape[1]


def test_zero_at_and_above_alpha_max(data):
    X, y = data
    amax = alpha_max(X, y)
    for alpha in (amax, 2 * amax):
        clf = GroupLassoClassifier(alpha, tol=1e-10).fit(X, y)
        assert np.all(clf.coef_ == 0)
    clf = GroupLassoClassifier(0.95 * amax, tol=1e-10).fit(X, y)
    assert np.any(clf.coef_ != 0)


@pytest.mark.parametrize("other", ["newton", "torch"])
def test_solvers_agree(data, other):
    X, y = data
    alpha = 0.2 * alpha_max(X, y)
    a = GroupLassoClassifier(alpha, solver="fista", tol=1e-10).fit(X, y)
    b = GroupLassoClassifier(alpha, solver=other, device="cpu", tol=1e-10).fit(X, y)
    assert abs(a.objective_ - b.objective_) <= 1e-9 * a.objective_
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("l2", [0.0, 1e-2])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_hessian_free_coordinate_descent_newton(data, monkeypatch, l2, fit_intercept):
    # working sets too large for an explicit Hessian take Newton steps whose model
    # is solved by coordinate descent; force that path on every working set
    from skhead2toe.linear_model import _newton

    monkeypatch.setattr(_newton, "_MAX_NEWTON_SIZE", 0)
    X, y = data
    alpha = 0.05 * alpha_max(X, y, fit_intercept=fit_intercept)
    kw = dict(l2=l2, fit_intercept=fit_intercept, tol=1e-10)
    clf = GroupLassoClassifier(alpha, solver="newton", **kw).fit(X, y)
    ref = GroupLassoClassifier(alpha, solver="fista", max_iter=100_000, **kw).fit(X, y)
    assert clf.converged_ and clf.dual_gap_ <= 1e-10 * clf.objective_
    W, b = full_W(clf)
    if fit_intercept:
        assert kkt_violation(X, y, W, b, alpha, l2) < 1e-4 * alpha
    assert abs(clf.objective_ - ref.objective_) <= 1e-9 * ref.objective_
    # few Newton steps, not thousands of gradient steps
    assert clf.n_iter_ < ref.n_iter_ / 5


@pytest.mark.parametrize("n_classes", [2, 7])
def test_block_curvatures_are_the_row_blocks_largest_eigenvalues(n_classes):
    from skhead2toe.linear_model._newton import _block_curvatures

    rng = np.random.default_rng(0)
    n, m, l2 = 50, 6, 0.1
    X = rng.normal(size=(n, m))
    P = softmax(rng.normal(size=(n, n_classes)), axis=1)
    c = rng.uniform(size=n)
    c /= c.sum()
    L = _block_curvatures(X, P, c, l2, m)
    for j in range(m):
        # the row's K x K block, written out from its definition
        block = sum(
            c[i] * X[i, j] ** 2 * (np.diag(P[i]) - np.outer(P[i], P[i]))
            for i in range(n)
        )
        assert L[j] == pytest.approx(np.linalg.eigvalsh(block)[-1] + l2, rel=1e-10)


@pytest.mark.parametrize("solver", ["fista", "newton"])
def test_newton_and_fista_agree_with_l2_and_layer_groups(data, solver):
    X, y = data
    groups = np.repeat(np.arange(8), 5)
    alpha = 0.1 * alpha_max(X, y, groups=groups)
    kw = dict(groups=groups, l2=1e-2, tol=1e-10)
    ref = GroupLassoClassifier(alpha, solver="torch", device="cpu", **kw).fit(X, y)
    clf = GroupLassoClassifier(alpha, solver=solver, **kw).fit(X, y)
    assert clf.converged_
    assert abs(clf.objective_ - ref.objective_) <= 1e-9 * ref.objective_
    np.testing.assert_allclose(clf.coef_, ref.coef_, atol=1e-4)


@pytest.mark.parametrize("solver", ["fista", "newton"])
def test_convergence_warning_on_max_iter(data, solver):
    X, y = data
    clf = GroupLassoClassifier(1e-3 * alpha_max(X, y), solver=solver, max_iter=3)
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        clf.fit(X, y)
    assert not clf.converged_
    assert clf.dual_gap_ > clf.tol * clf.objective_


def test_ridge_limit_equals_sklearn_logistic_regression(data):
    X, y = data
    l2 = 1e-2
    ours = GroupLassoClassifier(alpha=0.0, l2=l2, tol=1e-12, max_iter=50_000).fit(X, y)
    ref = LogisticRegression(C=1 / (len(y) * l2), tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l2", [1e-2, 1e-5])
def test_smooth_case_lbfgs_is_certified_and_agrees_with_fista(data, l2, fit_intercept):
    # alpha = 0 (the Head2Toe refit) runs L-BFGS under solver="newton"; a small
    # ridge makes the problem ill-conditioned (the regime where it matters)
    X, y = data
    params = dict(alpha=0.0, l2=l2, fit_intercept=fit_intercept, tol=1e-10)
    quasi = GroupLassoClassifier(solver="newton", **params).fit(X, y)
    prox = GroupLassoClassifier(solver="fista", max_iter=100_000, **params).fit(X, y)
    assert quasi.converged_
    assert quasi.dual_gap_ <= 1e-10 * quasi.objective_
    # l2-strong convexity: ||W - W*||^2 <= 2 gap / l2
    bound = np.sqrt(2 * (quasi.dual_gap_ + prox.dual_gap_) / l2)
    assert np.linalg.norm(quasi.coef_ - prox.coef_) <= bound + 1e-8
    np.testing.assert_allclose(quasi.objective_, prox.objective_, rtol=1e-8)


def test_lbfgs_smooth_needs_a_ridge():
    from skhead2toe.linear_model._lbfgs import lbfgs_smooth

    with pytest.raises(ValueError, match="l2 > 0"):
        lbfgs_smooth(None, None, None, 0.0, True, np.zeros((2, 2)), np.zeros(2), 1, 1)


@pytest.mark.parametrize("solver", ["fista", "newton"])
def test_warm_start_converges_immediately(data, solver):
    X, y = data
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, solver=solver, tol=1e-8, warm_start=True)
    clf.fit(X, y)
    first = clf.n_iter_
    clf.fit(X, y)
    assert clf.n_iter_ <= 2 < first


def test_path_equals_single_fits(data):
    X, y = data
    alphas, coefs, intercepts, gaps, _ = group_lasso_path(X, y, n_alphas=5, tol=1e-10)
    assert np.all(np.diff(alphas) < 0)
    assert np.all(coefs[0] == 0)
    for alpha, coef in zip(alphas[1:], coefs[1:], strict=True):
        single = GroupLassoClassifier(alpha, tol=1e-10, max_iter=50_000).fit(X, y)
        np.testing.assert_allclose(coef, single.coef_, atol=1e-4)


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


# ---------------------------------------------------------------- prox properties
# magnitudes below 1e-100 would underflow when squared (norms then read as 0)
mats = arrays(
    np.float64,
    (6, 3),
    elements=st.one_of(st.just(0.0), st.floats(1e-100, 10), st.floats(-10, -1e-100)),
)
groups6 = Groups(np.array([0, 0, 1, 2, 2, 2]), np.array([1.0, 0.5, 2.0]))


@settings(max_examples=60, deadline=None)
@given(V=mats, tau=st.floats(0, 5))
def test_prox_zero_iff_norm_below_threshold(V, tau):
    out = prox_group_lasso(NUMPY_OPS, V, groups6, tau)
    for g in range(3):
        rows = groups6.ids == g
        norm = np.linalg.norm(V[rows])
        is_zero = np.all(out[rows] == 0)
        assert is_zero == (norm <= tau * groups6.weights[g])


@settings(max_examples=60, deadline=None)
@given(U=mats, V=mats, tau=st.floats(0, 5))
def test_prox_non_expansive(U, V, tau):
    pu = prox_group_lasso(NUMPY_OPS, U, groups6, tau)
    pv = prox_group_lasso(NUMPY_OPS, V, groups6, tau)
    assert np.linalg.norm(pu - pv) <= np.linalg.norm(U - V) * (1 + 1e-12) + 1e-12


@settings(max_examples=60, deadline=None)
@given(V=mats, tau=st.floats(0.01, 5))
def test_prox_moreau_identity(V, tau):
    # V = prox_{tau h}(V) + projection of V onto the dual-norm ball of radius tau w_g
    prox = prox_group_lasso(NUMPY_OPS, V, groups6, tau)
    rest = V - prox
    for g in range(3):
        rows = groups6.ids == g
        norm = np.linalg.norm(V[rows])
        radius = tau * groups6.weights[g]
        expected = V[rows] * min(1.0, radius / norm) if norm > 0 else V[rows]
        np.testing.assert_allclose(rest[rows], expected, atol=1e-9)


def test_row_space_basis_reproduces_the_kept_columns():
    from skhead2toe.linear_model._group_lasso import _row_space_basis

    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 50)).astype(np.float32)
    design, Q = _row_space_basis(X)
    assert design.shape == (20, 20) and Q.shape == (50, 20)
    np.testing.assert_allclose(Q.T @ Q, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(design @ Q.T, X, atol=1e-5)
    # fewer than 2 n columns: no factorisation, the columns themselves
    narrow, none = _row_space_basis(X[:, :39])
    assert none is None and np.array_equal(narrow, X[:, :39])


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


def test_numpy_fits_run_on_one_blas_thread_and_restore_it(monkeypatch, data):
    # small BLAS operations are slower threaded (see solve_numpy); the limit
    # covers the solver and the refit around it, and is undone afterwards
    from threadpoolctl import threadpool_info, threadpool_limits

    import skhead2toe.linear_model._fista_numpy as backend
    import skhead2toe.linear_model._group_lasso as estimators

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []

    def spy(real):
        def wrapped(*args, **kwargs):
            seen.append(blas_threads())
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(backend, "solve", spy(backend.solve))
    monkeypatch.setattr(
        estimators, "_row_space_basis", spy(estimators._row_space_basis)
    )
    X, y = data
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        GroupLassoClassifier(0.1 * alpha_max(X, y), keep_fraction=0.5).fit(X, y)
        assert blas_threads() == before == {2}
    assert len(seen) >= 3  # the group lasso, the basis and the refit
    assert all(s == {1} for s in seen)


def test_anderson_extrapolation_jumps_ahead_of_a_linearly_converging_sequence():
    from skhead2toe.linear_model._anderson import anderson_weights

    rng = np.random.default_rng(0)
    dim = 30
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    A = Q @ np.diag(rng.uniform(0.0, 0.9, size=dim)) @ Q.T  # a contraction
    x_star = rng.normal(size=dim)
    iterates = [rng.normal(size=dim)]
    for _ in range(5):
        iterates.append(x_star + A @ (iterates[-1] - x_star))
    weights = anderson_weights(iterates)
    assert weights.shape == (5,) and weights.sum() == pytest.approx(1.0)
    x_ex = sum(w * x for w, x in zip(weights, iterates[1:], strict=True))
    err_last = np.linalg.norm(iterates[-1] - x_star)
    assert np.linalg.norm(x_ex - x_star) < err_last / 5
    # a stalled sequence has a singular system: no extrapolation
    assert anderson_weights([x_star] * 6) is None


def _cd_model(seed=0, n=80, m=25, K=4, l2=1e-3):
    """A Newton model on correlated columns (slow for plain coordinate descent)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 3))
    X = base @ rng.normal(size=(3, m)) + 0.3 * rng.normal(size=(n, m))
    Xt = np.hstack([X, np.ones((n, 1))])
    P = softmax(rng.normal(size=(n, K)), axis=1)
    c = np.full(n, 1.0 / n)
    V0 = 0.05 * rng.normal(size=(m + 1, K))
    Y = np.eye(K)[rng.integers(K, size=n)]
    # a gradient of the data term: each sample's residual sums to zero over the
    # classes, as the model's flat directions (a constant added to every class) need
    g = Xt.T @ (c[:, None] * (P - Y))
    g[:m] += l2 * V0[:m]
    return Xt, P, c, l2, g, V0, Groups.per_feature(m), 0.02, m


def test_model_value_matches_the_explicit_hessian():
    from skhead2toe.linear_model._newton import _model_value, hessian

    model = _cd_model()
    Xt, P, c, l2, g, V0, groups, alpha, m = model
    V = V0 + np.random.default_rng(1).normal(size=V0.shape)
    D = (V - V0).ravel()
    H = hessian(Xt, P, c, l2, m)
    expected = (
        g.ravel() @ D + 0.5 * D @ H @ D + alpha * np.linalg.norm(V[:m], axis=1).sum()
    )
    value, MT = _model_value(model, V)
    assert value == pytest.approx(expected, rel=1e-12)
    # the curvature term's gradient: Xt^T M equals H D without the ridge
    HD = (H @ D).reshape(V.shape)
    HD[:m] -= l2 * (V - V0)[:m]
    np.testing.assert_allclose(Xt.T @ MT.T, HD, atol=1e-12)


def test_extrapolated_coordinate_descent_solves_the_model(monkeypatch):
    # to a tight tolerance, coordinate descent with and without Anderson steps
    # and FISTA on the explicit Hessian all find the same model minimiser
    from skhead2toe.linear_model import _newton

    model = _cd_model()
    Xt, P, c, l2, g, V0, groups, alpha, m = model
    accepted = []
    real = _newton._extrapolate_model

    def spy(model, V, MT, history):
        out = real(model, V, MT, history)
        accepted.append(out[0] is not V)
        # the incrementally updated curvature term is exact after each step
        np.testing.assert_allclose(
            out[1], _newton._model_value(model, out[0])[1], atol=1e-10
        )
        return out

    monkeypatch.setattr(_newton, "_extrapolate_model", spy)
    monkeypatch.setattr(_newton, "_CD_RTOL", 1e-9)
    monkeypatch.setattr(_newton, "_CD_MAX_SWEEPS", 20_000)
    monkeypatch.setattr(_newton, "_MODEL_RTOL", 1e-10)
    monkeypatch.setattr(_newton, "_MODEL_MAX_ITER", 200_000)
    V_and = _newton._solve_model_cd(*model)
    assert any(accepted), "no Anderson step was taken"
    monkeypatch.setattr(_newton, "_CD_ANDERSON", 10**9)
    V_plain = _newton._solve_model_cd(*model)
    H = _newton.hessian(Xt, P, c, l2, m)
    V_fista = _newton._solve_model(H, g, V0, groups, alpha, m)
    V_bcd = _newton._solve_model_bcd(H, g, V0, groups, alpha, m)
    solutions = (V_and, V_plain, V_fista, V_bcd)
    values = [_newton._model_value(model, V)[0] for V in solutions]
    assert max(values) - min(values) <= 1e-9 * abs(values[0])
    for V in solutions[1:]:
        np.testing.assert_allclose(V_and, V, atol=1e-6)
        # the same rows are zero
        assert np.array_equal(np.any(V_and[:m] != 0, 1), np.any(V[:m] != 0, 1))
    assert 0 < np.any(V_and[:m] != 0, 1).sum() < m


def test_block_coordinate_descent_beats_fista_on_the_model_at_the_default_rtol():
    # at the solvers' own stopping rule, BCD on the explicit Hessian reaches a
    # model value at least as low as FISTA's (it replaced FISTA for these models)
    from skhead2toe.linear_model import _newton

    for seed in range(3):
        model = _cd_model(seed=seed)
        Xt, P, c, l2, g, V0, groups, alpha, m = model
        H = _newton.hessian(Xt, P, c, l2, m)
        fista = _newton._model_value(
            model, _newton._solve_model(H, g, V0, groups, alpha, m)
        )[0]
        bcd = _newton._model_value(
            model, _newton._solve_model_bcd(H, g, V0, groups, alpha, m)
        )[0]
        assert bcd <= fista + 1e-12 * abs(fista)


@pytest.mark.parametrize("layer_groups", [False, True])
@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_newton_steps_on_the_support_converge_quadratically_to_the_kkt_point(
    data, layer_groups, l2
):
    from skhead2toe.linear_model._newton import _support_step

    X, y = data
    n, d = X.shape
    ids = np.repeat(np.arange(d // 4), 4) if layer_groups else np.arange(d)
    n_groups = ids.max() + 1
    weights = np.sqrt(np.bincount(ids)).astype(float)
    groups = Groups(ids, weights)
    alpha = 0.2 * alpha_max(X, y, groups=ids if layer_groups else None)
    clf = GroupLassoClassifier(
        alpha, groups=ids if layer_groups else None, l2=l2, tol=1e-4, solver="fista"
    ).fit(X, y)
    W, b = full_W(clf)
    assert 0 < np.any(W != 0, 1).sum() < d
    Y = np.eye(3)[y]
    c = np.full(n, 1.0 / n)
    Xt = np.hstack([X, np.ones((n, 1))])
    V = np.vstack([W, b])
    steps = []
    for _ in range(6):
        P = softmax(Xt @ V, axis=1)
        g = Xt.T @ (c[:, None] * (P - Y))
        g[:d] += l2 * V[:d]
        V_new = _support_step(Xt, P, c, l2, g, V, groups, alpha, d)
        steps.append(np.linalg.norm(V_new - V))
        V = V_new
    # superlinear: from a 1e-4-accurate start, a hundredfold shorter second step
    # and the rounding floor within four steps (a linear method's steps shrink by
    # a constant factor)
    assert steps[1] < 0.01 * steps[0]
    assert steps[3] < 1e-13 * max(1.0, np.abs(V).max())
    # the limit is the optimum: the test's own KKT check for feature groups, and
    # the subgradient condition per group for layer groups
    W, b = V[:d], V[d]
    if not layer_groups:
        assert kkt_violation(X, y, W, b, alpha, l2) < 1e-10
    G = X.T @ (softmax(X @ W + b, axis=1) - Y) / n + l2 * W
    for group in range(n_groups):
        rows = ids == group
        norm = np.linalg.norm(W[rows])
        if norm > 0:
            residual = G[rows] + alpha * weights[group] * W[rows] / norm
            assert np.linalg.norm(residual) < 1e-10
        else:
            assert np.linalg.norm(G[rows]) <= alpha * weights[group] * (1 + 1e-8)
    assert n_groups > 0


def test_newton_goes_on_to_the_final_target_once_quadratic(data):
    # from a 1e-4-accurate start, a solve asked for half its gap stops after one
    # support step; given the final target it takes at most two more steps, and
    # ends below that target
    from skhead2toe.linear_model._newton import prox_newton
    from skhead2toe.linear_model._objective import dual_gap
    from skhead2toe.linear_model._solver import DataStats, _smooth

    X, y = data
    n, d = X.shape
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, tol=1e-4, solver="fista").fit(X, y)
    W, b = full_W(clf)
    stats = DataStats(np.eye(3)[y], np.full(n, 1.0 / n))
    groups = Groups.per_feature(d)
    f, P = _smooth(NUMPY_OPS, X @ W + b, W, stats, 0.0)
    F = f + alpha * np.linalg.norm(W, axis=1).sum()
    gap0, _ = dual_gap(NUMPY_OPS, X, F, P, stats, groups, alpha, 0.0, True)
    args = (X, stats, groups, alpha, 0.0, True, W, b, 0.5 * gap0, 100)
    final = 1e-12 * F
    *_, gap_plain, iter_plain, _ = prox_newton(*args)
    *_, gap_final, iter_final, _ = prox_newton(*args, final_tol=final)
    assert iter_plain == 1 and gap_plain > final
    assert 1 < iter_final <= 3 and gap_final <= final


def test_newton_solver_takes_support_steps_and_stays_certified(data, monkeypatch):
    from skhead2toe.linear_model import _newton

    taken = []
    real = _newton._support_step

    def spy(*args):
        out = real(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(_newton, "_support_step", spy)
    X, y = data
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, solver="newton", tol=1e-12).fit(X, y)
    assert any(taken)
    assert clf.converged_ and clf.dual_gap_ <= 1e-12 * clf.objective_
    W, b = full_W(clf)
    assert kkt_violation(X, y, W, b, alpha, 0.0) < 1e-6 * alpha


def test_auto_solver_skips_torch_without_a_gpu_driver(monkeypatch, tmp_path):
    from skhead2toe.linear_model import _group_lasso, _prox_torch

    def no_torch(device):
        raise AssertionError("torch was asked for a device")

    monkeypatch.setattr(_prox_torch, "resolve_device", no_torch)
    monkeypatch.setattr(_group_lasso.sys, "platform", "linux")
    monkeypatch.delitem(_group_lasso.sys.modules, "torch", raising=False)
    missing = str(tmp_path / "missing")
    monkeypatch.setattr(_group_lasso, "_GPU_DEVICE_FILES", (missing,))
    assert not _group_lasso._gpu_possible()
    fn = _group_lasso._solver_function("auto", "auto")
    assert fn.func is _group_lasso.solve_numpy and fn.keywords == {"inner": "newton"}
    # a driver file present: torch decides
    present = tmp_path / "version"
    present.write_text("NVRM")
    monkeypatch.setattr(_group_lasso, "_GPU_DEVICE_FILES", (missing, str(present)))
    assert _group_lasso._gpu_possible()
    with pytest.raises(AssertionError, match="torch was asked"):
        _group_lasso._solver_function("auto", "auto")
    # torch already imported, or another system: torch decides
    monkeypatch.setattr(_group_lasso, "_GPU_DEVICE_FILES", (missing,))
    monkeypatch.setattr(_group_lasso.sys, "platform", "darwin")
    assert _group_lasso._gpu_possible()


def test_support_is_settled_only_when_no_zero_group_asks_to_enter():
    from skhead2toe.linear_model._newton import _support_settled

    groups = Groups(np.array([0, 0, 1, 2]), np.array([np.sqrt(2), 1.0, 1.0]))
    W = np.zeros((4, 3))
    W[2] = [1.0, -1.0, 0.0]  # group 1 non-zero, groups 0 and 2 zero
    grad = np.zeros((4, 3))
    grad[0, 0] = grad[1, 0] = 0.5  # group 0: norm 0.71 <= alpha * sqrt(2) = 1.41
    grad[3, 1] = 0.9  # group 2: norm 0.9 <= alpha = 1
    assert _support_settled(W, grad, groups, alpha=1.0)
    grad[3, 1] = 1.1  # group 2 now violates its condition: it would enter
    assert not _support_settled(W, grad, groups, alpha=1.0)
    assert not _support_settled(np.zeros((4, 3)), np.zeros((4, 3)), groups, 1.0)


@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_float32_data_are_certified_below_float32_rounding(data, l2):
    # the float32 pass over X is refined in float64 near the thresholds, so the
    # gap certifies far below float32's 1e-7 resolution
    X, y = data
    X32 = X.astype(np.float32)
    alpha = 0.05 * alpha_max(X32, y)
    clf = GroupLassoClassifier(alpha, l2=l2, tol=1e-11).fit(X32, y)
    assert clf.converged_ and clf.dual_gap_ <= 1e-11 * clf.objective_
    W, b = full_W(clf)
    assert kkt_violation(X32.astype(np.float64), y, W, b, alpha, l2) < 1e-4 * alpha


def test_gap_floor_stops_with_a_clear_warning(data, monkeypatch):
    # without the float64 refinement the float32 gap floors near 1e-7: the
    # solver must notice and stop (not loop to max_iter) and say why
    from skhead2toe.linear_model import _objective

    monkeypatch.setattr(_objective, "_REFINE_MARGIN", -np.inf)
    X, y = data
    X32 = X.astype(np.float32) * np.float32(1000.0)
    alpha = 0.05 * alpha_max(X32, y)
    clf = GroupLassoClassifier(alpha, tol=1e-13, max_iter=100_000)
    with pytest.warns(ConvergenceWarning, match="rounding floor"):
        clf.fit(X32, y)
    assert not clf.converged_
    assert clf.n_iter_ < 200
    assert clf.dual_gap_ > 1e-13 * clf.objective_
