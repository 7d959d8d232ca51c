import os

# Two CPU cores shared with other processes: OpenMP threads that spin while
# waiting make torch 50x slower under contention. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def seed():
    """Seed numpy's and torch's global generators; return the seed."""
    import torch

    np.random.seed(0)  # noqa: NPY002 - seeds code that uses the legacy global RNG
    torch.manual_seed(0)
    return 0


@pytest.fixture
def data():
    """A small 3-class problem for the linear-model tests."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=120, n_features=40, n_informative=6, n_classes=3, random_state=0
    )
    return X, y
