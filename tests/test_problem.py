"""The objective (``_problem``): prox, gradient and certificate."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skhead2toe.linear_model._numpy import NUMPY_OPS
from skhead2toe.linear_model._problem import Groups, Problem, prox_group_lasso

# ---------------------------------------------------------------- prox properties
groups6 = Groups(np.array([0, 0, 1, 2, 2, 2]), np.array([1.0, 0.5, 2.0]))
# magnitudes below 1e-100 would underflow when squared (norms then read as 0)
mats = arrays(
    np.float64,
    (6, 3),
    elements=st.one_of(st.just(0.0), st.floats(1e-100, 10), st.floats(-10, -1e-100)),
)


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


# ---------------------------------------------------------------- the smooth part
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_gradient_matches_finite_differences(l2, fit_intercept):
    from scipy.optimize import check_grad

    rng = np.random.default_rng(0)
    n, d, K = 30, 5, 3
    X = rng.normal(size=(n, d))
    onehot = np.eye(K)[rng.integers(K, size=n)]
    c = rng.uniform(0.5, 2.0, size=n)
    c /= c.sum()
    problem = Problem(
        NUMPY_OPS,
        X,
        onehot,
        c,
        Groups.per_feature(d),
        alpha=0.1,
        l2=l2,
        fit_intercept=fit_intercept,
    )

    def split(v):
        return v[: d * K].reshape(d, K), (v[d * K :] if fit_intercept else 0.0)

    def value(v):
        W, b = split(v)
        return problem.smooth(X @ W + b, W)[0]

    def grad(v):
        W, b = split(v)
        G, gb = problem.gradient(problem.smooth(X @ W + b, W)[1], W)
        return np.concatenate([G.ravel(), gb]) if fit_intercept else G.ravel()

    v = rng.normal(size=d * K + K * fit_intercept)
    assert check_grad(value, grad, v) < 1e-6 * np.linalg.norm(grad(v))
    # the loss is an independent cross-entropy: -sum_i c_i log p_{i, y_i}
    W, b = split(v)
    loss, P = problem.loss(X @ W + b)
    assert loss == pytest.approx(-(c * np.log((P * onehot).sum(1))).sum(), rel=1e-12)


def test_dual_gap_bounds_the_suboptimality_and_vanishes_at_the_optimum(data):
    from skhead2toe import GroupLassoClassifier, alpha_max

    X, y = data
    alpha = 0.1 * alpha_max(X, y)
    opt = GroupLassoClassifier(alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    n, d = X.shape
    problem = Problem(
        NUMPY_OPS,
        X,
        np.eye(3)[y],
        np.full(n, 1.0 / n),
        Groups.per_feature(d),
        alpha=alpha,
    )
    rng = np.random.default_rng(0)
    for scale in (0.0, 1e-3, 1e-1):
        W = opt._W + scale * rng.normal(size=opt._W.shape)
        f, P = problem.smooth(X @ W + opt._b, W)
        primal = f + problem.penalty(W)
        gap, _ = problem.dual_gap(primal, P)
        assert gap >= primal - opt.objective_ - 1e-12
        if scale == 0.0:
            assert gap <= 1e-10 * primal


def test_power_iteration_finds_the_largest_eigenvalue_from_below():
    from skhead2toe.linear_model._problem import power_iteration

    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 20))
    A = A @ A.T
    lam = power_iteration(
        A.__matmul__, rng.normal(size=20), np.dot, n_iter=1000, rtol=1e-12
    )
    top = np.linalg.eigvalsh(A)[-1]
    assert lam <= top * (1 + 1e-12)
    assert lam == pytest.approx(top, rel=1e-6)


def test_restricted_problem_shares_labels_and_penalty():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))
    problem = Problem(
        NUMPY_OPS,
        X,
        np.eye(2)[np.arange(10) % 2],
        np.full(10, 0.1),
        Groups.per_feature(4),
        alpha=0.5,
        l2=0.1,
        fit_intercept=False,
    )
    sub = problem.restrict(X[:, :2], Groups.per_feature(2))
    assert sub.X.shape == (10, 2) and sub.groups.n_groups == 2
    assert (sub.alpha, sub.l2, sub.fit_intercept) == (0.5, 0.1, False)
    assert sub.Yc is problem.Yc and problem.X.shape == (10, 4)
