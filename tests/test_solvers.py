"""The solvers: KKT certificates, agreement between backends, warnings."""

import numpy as np
import pytest
from helpers import full_W, kkt_violation
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skhead2toe import GroupLassoClassifier, alpha_max
from skhead2toe.linear_model._numpy import NUMPY_OPS
from skhead2toe.linear_model._problem import Problem


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


@pytest.mark.parametrize("other", ["newton", "torch"])
def test_solvers_agree(data, other):
    X, y = data
    alpha = 0.2 * alpha_max(X, y)
    a = GroupLassoClassifier(alpha, solver="fista", tol=1e-10).fit(X, y)
    b = GroupLassoClassifier(alpha, solver=other, device="cpu", tol=1e-10).fit(X, y)
    assert abs(a.objective_ - b.objective_) <= 1e-9 * a.objective_
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


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
        problem = Problem(
            NUMPY_OPS, np.ones((2, 2)), np.eye(2), np.full(2, 0.5), None, alpha=0.0
        )
        lbfgs_smooth(problem, np.zeros((2, 2)), np.zeros(2), tol=1, max_iter=1)


def test_numpy_fits_run_on_one_blas_thread_and_restore_it(monkeypatch, data):
    # small BLAS operations are slower threaded (see solve_numpy); the limit
    # covers the solver and the refit around it, and is undone afterwards
    from threadpoolctl import threadpool_info, threadpool_limits

    import skhead2toe.linear_model._base as estimators
    import skhead2toe.linear_model._working_set as backend

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []

    def spy(real):
        def wrapped(*args, **kwargs):
            seen.append(blas_threads())
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(backend, "solve", spy(backend.solve))
    monkeypatch.setattr(estimators, "row_space_basis", spy(estimators.row_space_basis))
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


def test_auto_solver_skips_torch_without_a_gpu_driver(monkeypatch, tmp_path):
    from skhead2toe.linear_model import _backend, _torch

    def no_torch(device):
        raise AssertionError("torch was asked for a device")

    monkeypatch.setattr(_torch, "resolve_device", no_torch)
    monkeypatch.setattr(_backend.sys, "platform", "linux")
    monkeypatch.delitem(_backend.sys.modules, "torch", raising=False)
    missing = str(tmp_path / "missing")
    monkeypatch.setattr(_backend, "_GPU_DEVICE_FILES", (missing,))
    assert not _backend._gpu_possible()
    fn = _backend.solver_function("auto", "auto")
    assert fn.func is _backend.solve_numpy and fn.keywords == {"inner": "newton"}
    # a driver file present: torch decides
    present = tmp_path / "version"
    present.write_text("NVRM")
    monkeypatch.setattr(_backend, "_GPU_DEVICE_FILES", (missing, str(present)))
    assert _backend._gpu_possible()
    with pytest.raises(AssertionError, match="torch was asked"):
        _backend.solver_function("auto", "auto")
    # torch already imported, or another system: torch decides
    monkeypatch.setattr(_backend, "_GPU_DEVICE_FILES", (missing,))
    monkeypatch.setattr(_backend.sys, "platform", "darwin")
    assert _backend._gpu_possible()


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
    from skhead2toe.linear_model import _problem

    monkeypatch.setattr(_problem, "_REFINE_MARGIN", -np.inf)
    X, y = data
    X32 = X.astype(np.float32) * np.float32(1000.0)
    alpha = 0.05 * alpha_max(X32, y)
    clf = GroupLassoClassifier(alpha, tol=1e-13, max_iter=100_000)
    with pytest.warns(ConvergenceWarning, match="rounding floor"):
        clf.fit(X32, y)
    assert not clf.converged_
    assert clf.n_iter_ < 200
    assert clf.dual_gap_ > 1e-13 * clf.objective_


def test_torch_solver_on_a_device_this_machine_lacks_is_a_clear_error(
    data, monkeypatch
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = data
    clf = GroupLassoClassifier(0.01, solver="torch", device="cuda")
    with pytest.raises(RuntimeError, match=r"device='cuda': CUDA is not available"):
        clf.fit(X, y)
