"""Accelerated proximal gradient: float32 steps, and the working-set targets."""

import numpy as np
import pytest

from skhead2toe.linear_model._apg import apg
from skhead2toe.linear_model._numpy import NUMPY_OPS
from skhead2toe.linear_model._problem import Groups, Problem
from skhead2toe.linear_model._results import InnerResult
from skhead2toe.linear_model._working_set import _inner_target


def _problem(n_classes=20, n=300, d=120, seed=0):
    """A centred many-class problem with one group per feature."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(size=(n, d))
    X[:, :5] += rng.normal(size=(n_classes, 5))[y]
    onehot = np.eye(n_classes)[y]
    c = np.full(n, 1.0 / n)
    X = X - c @ X
    grad0 = X.T @ (c[:, None] * (onehot.mean(0) - onehot))
    alpha = 0.2 * np.linalg.norm(grad0, axis=1).max()
    groups = Groups.per_feature(d)
    return Problem(NUMPY_OPS, X, onehot, c, groups, alpha=alpha), groups


def _start(problem):
    d, K = problem.X.shape[1], problem.onehot.shape[1]
    logpi = np.log(problem.onehot.mean(0))
    return np.zeros((d, K)), logpi - logpi.mean()


@pytest.mark.parametrize("tol_rel", [1e-3, 1e-8])
def test_float32_steps_reach_the_float64_solution_with_an_exact_certificate(tol_rel):
    problem, groups = _problem()
    fast = problem.restrict(problem.X.astype(np.float32), groups)
    W, b = _start(problem)
    L = problem.lipschitz()
    ref = apg(problem, W, b, L=L, tol=1e-10, max_iter=20_000)
    tol = tol_rel * ref.primal
    res = apg(problem, W, b, L=L, tol=tol, max_iter=20_000, fast=fast)
    assert res.gap <= tol
    # the certificate is that of the float64 problem at the returned point
    f, P = problem.smooth(problem.X @ res.coef + res.intercept, res.coef)
    primal = f + problem.penalty(res.coef)
    assert primal == pytest.approx(res.primal, rel=1e-12)
    gap, _ = problem.dual_gap(primal, P)
    best = gap
    if res.dual_point is not None:
        best = min(gap, problem.dual_gap(primal, res.dual_point)[0])
    assert best == pytest.approx(res.gap, rel=1e-9)
    assert primal - ref.primal <= res.gap + 1e-12
    # a target below float32's resolution is reached too (float64 from there)
    assert res.gap <= tol_rel * primal


def test_float32_steps_take_no_more_steps_than_float64_ones():
    problem, groups = _problem(seed=1)
    fast = problem.restrict(problem.X.astype(np.float32), groups)
    W, b = _start(problem)
    L = problem.lipschitz()
    tol = 1e-4 * apg(problem, W, b, L=L, tol=1e-10, max_iter=20_000).primal
    slow = apg(problem, W, b, L=L, tol=tol, max_iter=20_000)
    quick = apg(problem, W, b, L=L, tol=tol, max_iter=20_000, fast=fast)
    assert quick.n_iter <= 1.2 * slow.n_iter + 10


def _inner(gap):
    return InnerResult(None, None, 1.0, gap, 10)


def test_inner_target_goes_to_a_loose_final_tolerance_once_the_set_is_complete():
    final = 1e-4
    # first round: a fraction of the full gap
    assert _inner_target(1e-2, None, final, True) == pytest.approx(3e-3)
    # the full gap far above the restricted one: groups outside the working set
    assert _inner_target(1e-2, _inner(1e-3), final, True) == pytest.approx(3e-3)
    # the full gap is the restricted one: straight to the final target
    assert _inner_target(1e-2, _inner(0.9e-2), final, True) == final
    # never looser than a fraction of the gap
    assert _inner_target(1e-4, _inner(1e-4), final, True) == pytest.approx(3e-5)
    # a tight final target: rounds at a fraction of the gap, as before
    assert _inner_target(1e-2, _inner(0.9e-2), 1e-8, False) == pytest.approx(3e-3)
