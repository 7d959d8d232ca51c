"""The numpy backend: working-set FISTA on the CPU (see :mod:`._solver`)."""

import numpy as np

from ._objective import NUMPY_OPS
from ._solver import solve

__all__ = ["solve_numpy"]


def solve_numpy(X, onehot, c, groups, **params):
    """Solve the group-lasso multinomial problem with numpy arrays.

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
    return solve(NUMPY_OPS, X, onehot, c, groups, **params)
