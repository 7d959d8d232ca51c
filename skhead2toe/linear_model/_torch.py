"""The torch backend: the same arithmetic as :mod:`._numpy`, on any torch device.

:class:`TorchOps` mirrors :class:`._numpy.NumpyOps` on tensors of one device;
:func:`solve_torch` moves the data there once and runs the shared working-set
solver (:mod:`._working_set`). On CUDA the full pass over ``X`` runs in the dtype of
``X`` (float32 is the fast choice) and the working-set solve in float64.
"""

import numpy as np

from .._device import resolve_device

__all__ = ["resolve_device", "solve_torch"]


class TorchOps:
    """Array operations on torch tensors on one device (the torch backend).

    Parameters
    ----------
    device : torch.device
        Device holding every tensor of a solve.
    """

    name = "torch"

    def __init__(self, device):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.float64 = torch.float64
        self.float32 = torch.float32

    def asarray(self, x, dtype=None):
        if isinstance(x, np.ndarray) and dtype is not None:
            dtype = _torch_dtype(dtype)
        return self._torch.as_tensor(x, dtype=dtype, device=self.device)

    def to_numpy(self, x):
        return x.detach().cpu().numpy()

    def zeros(self, shape, dtype):
        return self._torch.zeros(shape, dtype=_torch_dtype(dtype), device=self.device)

    def max_rows(self, Z):
        return Z.max(dim=1).values

    def exp(self, x):
        return self._torch.exp(x)

    def log(self, x):
        return self._torch.log(x)

    def sqrt(self, x):
        return self._torch.sqrt(x)

    def xlogx(self, x):
        return self._torch.xlogy(x, x)

    def clip_min(self, x, value):
        return self._torch.clamp_min(x, value)

    def segment_sum(self, values, ids, n_segments):
        out = self._torch.zeros(n_segments, dtype=values.dtype, device=values.device)
        return out.index_add_(0, ids, values)

    def vdot(self, a, b):
        return float((a * b).sum())

    def item(self, x):
        return float(x)

    def cast(self, x, dtype):
        return x.to(_torch_dtype(dtype))

    def take_columns(self, X, idx):
        return X.index_select(1, idx).contiguous()

    def nonzero(self, mask):
        return self._torch.nonzero(mask).flatten()

    def top_k(self, scores, k):
        k = min(k, scores.shape[0])
        idx = self._torch.topk(scores, k).indices
        return self._torch.sort(idx).values

    def isin(self, x, values):
        return self._torch.isin(x, values)

    def searchsorted(self, sorted_values, x):
        return self._torch.searchsorted(sorted_values, x)

    def append(self, vec, scalar):
        return self._torch.cat([vec, scalar.reshape(1).to(vec.dtype)])

    def inv(self, A):
        return self._torch.linalg.inv(A)

    def copy(self, x):
        return x.clone()


def _torch_dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]


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
        As for :func:`._numpy.solve_numpy`.

    Returns
    -------
    result : SolverResult
        Arrays are numpy, on the host.
    """
    import torch

    from ._problem import Groups
    from ._working_set import solve_arrays

    ops = TorchOps(resolve_device(device))
    with torch.no_grad():
        Xt = ops.asarray(np.ascontiguousarray(X))
        onehot_t = ops.asarray(np.asarray(onehot, dtype=np.float64))
        c_t = ops.asarray(np.asarray(c, dtype=np.float64))
        for key in ("coef_init", "intercept_init"):
            if params.get(key) is not None:
                params[key] = np.asarray(params[key], dtype=np.float64)
        groups_t = Groups(
            ops.asarray(np.asarray(groups.ids, dtype=np.int64)),
            ops.asarray(np.asarray(groups.weights, dtype=np.float64)),
        )
        return solve_arrays(ops, Xt, onehot_t, c_t, groups_t, **params)
