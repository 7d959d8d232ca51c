"""The torch backend: the same working-set accelerated proximal gradient on any device.

The arithmetic is shared with the numpy backend (:mod:`._objective`, :mod:`._solver`);
this module only moves the data to the device. On CUDA the full pass over ``X`` runs in
the dtype of ``X`` (float32 is the fast choice) and the working-set solve in float64.
"""

import numpy as np

from ._objective import Groups, TorchOps
from ._solver import solve

__all__ = ["resolve_device", "solve_torch"]


def resolve_device(device):
    """Turn ``"auto"`` into ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def solve_torch(X, onehot, c, groups, *, device="auto", **params):
    """Solve the group-lasso multinomial problem with torch on ``device``.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64
        Design matrix (copied to the device once).
    onehot : ndarray of shape (n, K)
        One-hot encoded labels.
    c : ndarray of shape (n,)
        Sample weights summing to one.
    groups : Groups
        Partition of the features (numpy arrays; moved to the device here).
    device : str or torch.device, default="auto"
        Where to run.
    **params : dict
        Keyword arguments of :func:`skhead2toe.linear_model._solver.solve`.

    Returns
    -------
    result : SolverResult
        Arrays are numpy, on the host.
    """
    import torch

    ops = TorchOps(resolve_device(device))
    with torch.no_grad():
        Xt = ops.asarray(np.ascontiguousarray(X))
        onehot_t = ops.asarray(np.asarray(onehot, dtype=np.float64))
        c_t = ops.asarray(np.asarray(c, dtype=np.float64))
        for key in ("coef_init", "intercept_init"):
            if params.get(key) is not None:
                params[key] = np.asarray(params[key], dtype=np.float64)
        return solve(ops, Xt, onehot_t, c_t, _groups_to(ops, groups), **params)


def _groups_to(ops, groups):
    return Groups(
        ops.asarray(np.asarray(groups.ids, dtype=np.int64)),
        ops.asarray(np.asarray(groups.weights, dtype=np.float64)),
    )
