"""The numpy backend: working-set FISTA on the CPU (see :mod:`._solver`)."""

import functools

import numpy as np

from ._objective import NUMPY_OPS
from ._solver import solve

__all__ = ["one_blas_thread", "solve_numpy"]


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """Context manager: BLAS libraries limited to one thread, restored on exit."""
    return _blas_controller().limit(limits=1, user_api="blas")


def solve_numpy(X, onehot, c, groups, **params):
    """Solve the group-lasso multinomial problem with numpy arrays.

    The solve runs on one BLAS thread. Its operations are many and small
    (working-set products of ``n x m`` by ``m x K``, L-BFGS vectors of ``m K``,
    coordinate-descent row updates of ``K x n``), and OpenBLAS's threads cost
    more to wake than they save on them: ``GroupLassoClassifierCV`` on the
    demo's digits features (n = 1000, d = 15,408, K = 10) took 127 s of wall
    time (250 s of CPU) with two BLAS threads on two cores, 37 s with one. Spend
    cores on folds instead (``GroupLassoClassifierCV(n_jobs=...)``: 25 s with
    two jobs).

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
        Design matrix; the full passes run in its dtype, the rest in float64.
    onehot : ndarray of shape (n, K)
        One-hot encoded labels.
    c : ndarray of shape (n,)
        Sample weights summing to one.
    groups : Groups
        Partition of the features (numpy arrays).
    **params : dict
        Keyword arguments of :func:`skhead2toe.linear_model._solver.solve`.

    Returns
    -------
    result : SolverResult
    """
    onehot = np.asarray(onehot, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    with one_blas_thread():
        return solve(NUMPY_OPS, X, onehot, c, groups, **params)
