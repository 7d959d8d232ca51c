"""The numpy backend: array operations on the CPU and its entry point.

:class:`NumpyOps` is the set of array operations that :mod:`._problem` and the
solvers are written in; :mod:`._torch` has the same operations on torch tensors, so
both backends run literally the same arithmetic. :func:`solve_numpy` solves one
problem with numpy arrays, on one BLAS thread.
"""

import functools

import numpy as np
from scipy.special import xlogy

__all__ = ["NUMPY_OPS", "one_blas_thread", "solve_numpy"]


class NumpyOps:
    """Array operations on numpy arrays (the CPU backend)."""

    name = "numpy"
    float64 = np.float64
    float32 = np.float32

    @staticmethod
    def asarray(x, dtype=None):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x):
        return np.asarray(x)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def max_rows(Z):
        return Z.max(axis=1)

    @staticmethod
    def exp(x):
        return np.exp(x)

    @staticmethod
    def log(x):
        return np.log(x)

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def xlogx(x):
        return xlogy(x, x)

    @staticmethod
    def clip_min(x, value):
        return np.maximum(x, value)

    @staticmethod
    def segment_sum(values, ids, n_segments):
        return np.bincount(ids, weights=values, minlength=n_segments)

    @staticmethod
    def vdot(a, b):
        return float(np.vdot(a, b))

    @staticmethod
    def item(x):
        return float(x)

    @staticmethod
    def cast(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def take_columns(X, idx):
        return np.ascontiguousarray(X[:, idx])

    @staticmethod
    def nonzero(mask):
        return np.flatnonzero(mask)

    @staticmethod
    def top_k(scores, k):
        k = min(k, scores.shape[0])
        idx = np.argpartition(-scores, k - 1)[:k]
        return np.sort(idx)

    @staticmethod
    def isin(x, values):
        return np.isin(x, values)

    @staticmethod
    def searchsorted(sorted_values, x):
        return np.searchsorted(sorted_values, x)

    @staticmethod
    def append(vec, scalar):
        return np.append(vec, scalar)

    @staticmethod
    def inv(A):
        return np.linalg.inv(A)

    @staticmethod
    def copy(x):
        return x.copy()


NUMPY_OPS = NumpyOps()


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """Context manager: BLAS libraries limited to one thread, restored on exit.

    Returns
    -------
    context : threadpoolctl limiter
        Use it in a ``with`` statement.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


def solve_numpy(X, onehot, c, groups, **params):
    """Solve the group-lasso multinomial problem with numpy arrays.

    The solve runs on one BLAS thread. Its operations are many and small
    (working-set products of ``n x m`` by ``m x K``, L-BFGS vectors of ``m K``,
    coordinate-descent row updates of ``K x n``), and OpenBLAS's threads cost
    more to wake than they save on them (measured in ``benchmarks/README.rst``,
    "One BLAS thread"). Spend cores on folds instead
    (``GroupLassoClassifierCV(n_jobs=...)``).

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
        ``alpha``, ``l2`` and ``fit_intercept`` (the :class:`._problem.Problem`),
        and the keyword arguments of :func:`._working_set.solve`.

    Returns
    -------
    result : SolverResult
        The solution and its certificate.
    """
    from ._working_set import solve_arrays

    onehot = np.asarray(onehot, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    with one_blas_thread():
        return solve_arrays(NUMPY_OPS, X, onehot, c, groups, **params)
