"""Helpers shared by the transfer modules: seeds, tensors and constraints.

torch is imported inside the functions only.
"""

from contextlib import contextmanager
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

#: The constraint of a positive integer parameter (for ``validate_params``).
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


def _seed(rng):
    """A fresh 31-bit seed drawn from ``rng``."""
    return int(rng.randint(np.iinfo(np.int32).max))


@contextmanager
def _seeded_torch(random_state):
    """A block in which torch's global RNG is seeded; its state is restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(check_random_state(random_state)))
        yield


@contextmanager
def _inference(net):
    """A block in which ``net`` runs in eval mode, without autograd.

    The train/eval mode of ``net`` is restored after the block.
    """
    import torch

    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        net.train(was_training)


def _as_images(X, name="X"):
    """Images as a float32 ``(N, C, H, W)`` tensor; uint8 is scaled to [0, 1]."""
    import torch

    X = np.asarray(X)
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4 or X.shape[0] == 0:
        raise ValueError(
            f"{name} must hold images of shape (n_samples, H, W) or "
            f"(n_samples, C, H, W) with n_samples >= 1, got shape {X.shape}."
        )
    scale = 1.0 / 255.0 if X.dtype == np.uint8 else 1.0
    X = X.astype(np.float32) * np.float32(scale)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return torch.from_numpy(np.ascontiguousarray(X))


def _check_label_vector(y, n, name="y"):
    """``y`` as a 1-D array of one label per image (``n`` images)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"{name} must be 1-D with one label per image: expected length {n}, "
            f"got shape {y.shape}."
        )
    return y


def _as_labels(y, n, *, n_classes, name="y"):
    """Labels as an int64 tensor of class indices ``0 .. n_classes - 1``."""
    import torch

    y = _check_label_vector(y, n, name)
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"{name} must hold class indices 0 .. {n_classes - 1} for a network "
            f"with {n_classes} outputs, got values in [{y.min()}, {y.max()}] of "
            f"dtype {y.dtype}; encode labels first, e.g. with LabelEncoder."
        )
    return torch.from_numpy(y.astype(np.int64))


def _batches(n, batch_size, generator=None):
    """Index batches over ``n`` samples, shuffled when a generator is given."""
    import torch

    if generator is None:
        return torch.split(torch.arange(n), batch_size)
    order = torch.randperm(n, generator=generator)
    return torch.split(order, batch_size)
