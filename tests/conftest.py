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
