"""Hessian-free Newton steps on a settled support (``_support_cg``) and their use
by accelerated proximal gradient."""

import numpy as np
import pytest

import skhead2toe.linear_model._apg as apg_module
from skhead2toe.linear_model._apg import apg
from skhead2toe.linear_model._numpy import NUMPY_OPS
from skhead2toe.linear_model._problem import Groups, Problem, group_norms
from skhead2toe.linear_model._support_cg import (
    _System,
    conjugate_gradient,
    support_newton,
    support_settled,
)


def _problem(
    *, n_classes=6, n=80, d=12, l2=0.0, fit_intercept=True, seed=0, pairs=False
):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, d))
    X[:, :4] += rng.normal(size=(n_classes, 4))[y]
    onehot = np.eye(n_classes)[y]
    c = rng.uniform(0.5, 1.5, n)
    c /= c.sum()
    if fit_intercept:
        X = X - c @ X
    if pairs:  # groups of two rows, unequal weights
        groups = Groups(np.arange(d) // 2, np.linspace(1.0, 2.0, d // 2))
    else:
        groups = Groups.per_feature(d)
    grad0 = X.T @ (c[:, None] * (onehot.mean(0) - onehot))
    alpha = 0.05 * np.max(group_norms(NUMPY_OPS, grad0, groups) / groups.weights)
    problem = Problem(
        NUMPY_OPS, X, onehot, c, groups, alpha=alpha, l2=l2, fit_intercept=fit_intercept
    )
    return problem, rng


def _point(problem, rng, zero_groups=(0,)):
    d, K = problem.X.shape[1], problem.onehot.shape[1]
    W = rng.normal(scale=0.3, size=(d, K))
    W[np.isin(problem.groups.ids, zero_groups)] = 0.0
    b = rng.normal(scale=0.1, size=K) if problem.fit_intercept else np.zeros(K)
    Z = problem.X @ W + b
    return W, b, Z


def _objective_on_support(problem, W, b, rows, v):
    """The objective as a function of the support's entries and the intercept."""
    Wv = W.copy()
    m, K = len(rows), W.shape[1]
    Wv[rows] = v[: m * K].reshape(m, K)
    bv = v[m * K :] if problem.fit_intercept else b
    f, _ = problem.smooth(problem.X @ Wv + bv, Wv)
    return f + problem.penalty(Wv)


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(fit_intercept=False),
        dict(l2=0.3),
        dict(pairs=True),
        dict(pairs=True, l2=0.1, fit_intercept=False),
    ],
)
def test_gradient_and_hessian_products_match_finite_differences(params):
    problem, rng = _problem(**params)
    W, b, Z = _point(problem, rng, zero_groups=(0, 3))
    _, P = problem.smooth(Z, W)
    system = _System(problem, W, P)
    rows = NUMPY_OPS.to_numpy(system.rows)
    assert not np.isin(problem.groups.ids[rows], (0, 3)).any()
    m, K = len(rows), W.shape[1]
    v0 = np.r_[W[rows].ravel(), b if problem.fit_intercept else []]
    G, gb = system.gradient()
    g = np.r_[G.ravel(), gb if gb is not None else []]
    D = rng.normal(size=(m, K))
    db = rng.normal(size=K) if problem.fit_intercept else None
    u = np.r_[D.ravel(), db if db is not None else []]
    h = 1e-6

    def f(v):
        return _objective_on_support(problem, W, b, rows, v)

    slope = (f(v0 + h * u) - f(v0 - h * u)) / (2 * h)
    assert g @ u == pytest.approx(slope, rel=1e-6)
    # H u against the central difference of the gradient
    HD, Hdb = system.hessian_product(D, db)
    Hu = np.r_[HD.ravel(), Hdb if Hdb is not None else []]

    def grad(v):
        Wv = W.copy()
        Wv[rows] = v[: m * K].reshape(m, K)
        bv = v[m * K :] if problem.fit_intercept else b
        _, Pv = problem.smooth(problem.X @ Wv + bv, Wv)
        Gv, gbv = _System(problem, Wv, Pv).gradient()
        return np.r_[Gv.ravel(), gbv if gbv is not None else []]

    fd = (grad(v0 + h * u) - grad(v0 - h * u)) / (2 * h)
    np.testing.assert_allclose(Hu, fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


def test_conjugate_gradient_solves_the_newton_system():
    problem, rng = _problem(l2=1e-2)
    W, b, Z = _point(problem, rng)
    _, P = problem.smooth(Z, W)
    system = _System(problem, W, P)
    g = system.gradient()
    (D, db), n = conjugate_gradient(system, g, rtol=1e-10, max_iter=10_000)
    assert 0 < n <= 10_000
    HD, Hdb = system.hessian_product(D, db)
    residual = np.sqrt(np.sum((HD + g[0]) ** 2) + np.sum((Hdb + g[1]) ** 2))
    norm = np.sqrt(np.sum(g[0] ** 2) + np.sum(g[1] ** 2))
    assert residual <= 1e-9 * norm
    # a capped solve still gives a descent direction
    (D1, db1), n1 = conjugate_gradient(system, g, rtol=1e-10, max_iter=3)
    assert n1 == 3
    assert np.vdot(g[0], D1) + np.vdot(g[1], db1) < 0


def test_support_newton_decreases_the_objective_and_keeps_zero_groups_zero():
    problem, rng = _problem(pairs=True)
    W, b, Z = _point(problem, rng, zero_groups=(1,))
    W_in = W.copy()
    f, P = problem.smooth(Z, W)
    F = f + problem.penalty(W)
    point, n_products, _ = support_newton(problem, W, b, Z, F, P)
    assert point is not None and n_products >= 2
    Wn, bn, Zn, Fn = point
    assert Fn < F
    np.testing.assert_allclose(Zn, problem.X @ Wn + bn, atol=1e-12)
    fn, _ = problem.smooth(Zn, Wn)
    assert fn + problem.penalty(Wn) == pytest.approx(Fn, rel=1e-14)
    assert np.all(Wn[problem.groups.ids == 1] == 0)
    np.testing.assert_array_equal(W, W_in)  # the input is not modified


def test_support_settled_asks_every_zero_group_to_stay_out():
    problem, rng = _problem()
    W, b, Z = _point(problem, rng, zero_groups=(0,))
    tau = problem.alpha * problem.groups.weights
    G = np.zeros_like(W)
    G[0, 0] = 0.5 * tau[0]
    assert support_settled(problem, W, G)
    G[0, 0] = 2.0 * tau[0]  # the zero group's pull exceeds its threshold
    assert not support_settled(problem, W, G)
    assert not support_settled(problem, np.zeros_like(W), np.zeros_like(W))


def _many_class_problem(seed=0):
    """More classes than the Newton model solver handles, near-separable."""
    problem, _ = _problem(n_classes=40, n=240, d=60, seed=seed)
    K = problem.onehot.shape[1]
    logpi = np.log(problem.onehot.T @ problem.c)
    return problem, np.zeros((60, K)), logpi - logpi.mean()


def test_newton_phases_certify_a_tight_gap_in_fewer_steps(monkeypatch):
    problem, W, b = _many_class_problem()
    L = problem.lipschitz()
    ref = apg(problem, W, b, L=L, tol=1e-12, max_iter=100_000)
    tol = 1e-9 * ref.primal
    with_newton = apg(problem, W, b, L=L, tol=tol, max_iter=100_000)
    monkeypatch.setattr(apg_module, "_NEWTON_STEPS", 0)
    without = apg(problem, W, b, L=L, tol=tol, max_iter=100_000)
    assert with_newton.gap <= tol and without.gap <= tol
    assert with_newton.n_iter < without.n_iter
    # the certificate is exact at the returned point, and agrees with FISTA's
    f, P = problem.smooth(problem.X @ with_newton.coef + with_newton.intercept, W)
    primal = f + problem.penalty(with_newton.coef)
    assert primal == pytest.approx(with_newton.primal, rel=1e-12)
    assert abs(primal - without.primal) <= with_newton.gap + without.gap
    assert primal - ref.primal <= with_newton.gap + 1e-13


def test_torch_backend_runs_the_newton_phases_and_agrees_with_numpy(monkeypatch):
    from sklearn.datasets import make_classification

    from skhead2toe import GroupLassoClassifier
    from skhead2toe.linear_model import alpha_max

    phases = []
    original = apg_module._newton_phase

    def recording(problem, *args):
        phases.append(type(problem.X).__module__.split(".")[0])
        return original(problem, *args)

    monkeypatch.setattr(apg_module, "_newton_phase", recording)
    X, y = make_classification(
        n_samples=300,
        n_features=80,
        n_informative=20,
        n_classes=40,
        n_clusters_per_class=1,
        random_state=0,
    )
    alpha = 0.1 * alpha_max(X, y)
    kw = dict(alpha=alpha, tol=1e-8, max_iter=100_000)
    torch_fit = GroupLassoClassifier(solver="torch", device="cpu", **kw).fit(X, y)
    numpy_fit = GroupLassoClassifier(solver="fista", **kw).fit(X, y)
    assert "torch" in phases and "numpy" in phases
    assert torch_fit.converged_ and numpy_fit.converged_
    gaps = torch_fit.dual_gap_ + numpy_fit.dual_gap_
    assert abs(torch_fit.objective_ - numpy_fit.objective_) <= gaps


def _explicit_hessian(system, m, K, intercept):
    """The support's Hessian, column by column from Hessian products."""
    size = m * K + (K if intercept else 0)
    H = np.empty((size, size))
    for j in range(size):
        e = np.zeros(size)
        e[j] = 1.0
        D, d = e[: m * K].reshape(m, K), (e[m * K :] if intercept else None)
        HD, Hd = system.hessian_product(D, d)
        H[:, j] = np.r_[HD.ravel(), Hd if Hd is not None else []]
    return H


@pytest.mark.parametrize("block", [True, False])
@pytest.mark.parametrize("params", [dict(), dict(pairs=True, l2=0.2)])
def test_preconditioner_inverts_the_blocks_or_the_diagonal(monkeypatch, block, params):
    import skhead2toe.linear_model._support_cg as module

    if not block:  # the fallback for supports too large for the blocks
        monkeypatch.setattr(module, "_BLOCK_MAX_ENTRIES", 0)
    problem, rng = _problem(**params)
    W, b, Z = _point(problem, rng, zero_groups=(2,))
    _, P = problem.smooth(Z, W)
    system = _System(problem, W, P)
    m, K = system.Ws.shape
    H = _explicit_hessian(system, m, K, problem.fit_intercept)
    r = (rng.normal(size=(m, K)), rng.normal(size=K))
    z, zb = system.preconditioner()(r)
    for j in range(m):  # each support row: its K x K block (or its diagonal)
        Hj = H[j * K : (j + 1) * K, j * K : (j + 1) * K]
        if not block:
            Hj = np.diag(np.diag(Hj))
        np.testing.assert_allclose(Hj @ z[j], r[0][j], rtol=1e-4, atol=1e-8)
    hb = np.diag(H)[m * K :]  # the intercept: its diagonal, up to a constant shift
    np.testing.assert_allclose(zb, r[1] / hb - np.mean(r[1] / hb), rtol=1e-10)
