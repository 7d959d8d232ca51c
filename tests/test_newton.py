"""Proximal Newton steps (``_newton``): models, support steps, convergence."""

import numpy as np
import pytest
from helpers import full_W, kkt_violation
from scipy.special import softmax

from skhead2toe import GroupLassoClassifier, alpha_max
from skhead2toe.linear_model._numpy import NUMPY_OPS
from skhead2toe.linear_model._problem import Groups, Problem


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


def _cd_model(seed=0, n=80, m=25, K=4, l2=1e-3):
    from skhead2toe.linear_model._newton import _Model

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
    return _Model(Xt, P, c, l2, g, V0, Groups.per_feature(m), 0.02, m)


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
    V_and = _newton._solve_model_cd(model)
    assert any(accepted), "no Anderson step was taken"
    monkeypatch.setattr(_newton, "_CD_ANDERSON", 10**9)
    V_plain = _newton._solve_model_cd(model)
    H = _newton.hessian(Xt, P, c, l2, m)
    V_fista = _newton._solve_model(H, model)
    V_bcd = _newton._solve_model_bcd(H, model)
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
        fista = _newton._model_value(model, _newton._solve_model(H, model))[0]
        bcd = _newton._model_value(model, _newton._solve_model_bcd(H, model))[0]
        assert bcd <= fista + 1e-12 * abs(fista)


@pytest.mark.parametrize("layer_groups", [False, True])
@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_newton_steps_on_the_support_converge_quadratically_to_the_kkt_point(
    data, layer_groups, l2
):
    from skhead2toe.linear_model._newton import _Model, _support_step

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
        V_new = _support_step(_Model(Xt, P, c, l2, g, V, groups, alpha, d))
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

    X, y = data
    n, d = X.shape
    alpha = 0.1 * alpha_max(X, y)
    clf = GroupLassoClassifier(alpha, tol=1e-4, solver="fista").fit(X, y)
    W, b = full_W(clf)
    groups = Groups.per_feature(d)
    problem = Problem(
        NUMPY_OPS, X, np.eye(3)[y], np.full(n, 1.0 / n), groups, alpha=alpha
    )
    f, P = problem.smooth(X @ W + b, W)
    F = f + alpha * np.linalg.norm(W, axis=1).sum()
    gap0, _ = problem.dual_gap(F, P)
    final = 1e-12 * F
    plain = prox_newton(problem, W, b, tol=0.5 * gap0, max_iter=100)
    further = prox_newton(problem, W, b, tol=0.5 * gap0, max_iter=100, final_tol=final)
    gap_plain, iter_plain = plain.gap, plain.n_iter
    gap_final, iter_final = further.gap, further.n_iter
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
