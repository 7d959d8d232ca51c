"""Which backend fits: numpy (Newton or FISTA inner solves) or torch, on what device."""

import contextlib
import os
import sys
from functools import partial

from ._numpy import one_blas_thread, solve_numpy

__all__ = ["blas_threads", "solver_function"]


def blas_threads(solve):
    """One BLAS thread while fitting with the numpy backend (see ``solve_numpy``).

    Covers what the fit does around the solver too (refit factorisations,
    rankings, fold scoring), which on Head2Toe's sizes is also faster on one
    thread (measured in ``benchmarks/README.rst``, "One BLAS thread").

    Parameters
    ----------
    solve : callable
        The backend function from :func:`solver_function`.

    Returns
    -------
    context : context manager
        One BLAS thread for the numpy backend; a no-op for torch.
    """
    base = solve.func if isinstance(solve, partial) else solve
    return one_blas_thread() if base is solve_numpy else contextlib.nullcontext()


_GPU_DEVICE_FILES = (
    "/proc/driver/nvidia/version",  # the NVIDIA kernel driver (CUDA)
    "/dev/nvidiactl",
    "/dev/kfd",  # the AMD kernel driver (ROCm builds of torch report it as cuda)
)


def _gpu_possible():
    """Whether torch could see a GPU, answered without importing torch if possible.

    Importing torch takes seconds, paid by every fit in a fresh process (each
    joblib worker of a grid search, each CLI run). On Linux a GPU needs its kernel
    driver, whose device files are cheap to look for; elsewhere, or when torch is
    already imported, torch is asked.
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


def solver_function(solver, device):
    """The backend function for ``solver`` (``"auto"`` resolved) and its device.

    Parameters
    ----------
    solver : {"auto", "newton", "fista", "torch"}
        The estimator's ``solver``.
    device : str or torch.device
        The estimator's ``device``.

    Returns
    -------
    solve : callable
        ``solve(X, onehot, c, groups, **params) -> SolverResult``: the numpy
        backend (with ``inner="newton"`` where that applies) or the torch one
        bound to its device.
    """
    if solver in ("fista", "newton") and device not in ("auto", "cpu"):
        raise ValueError(
            f"solver={solver!r} runs on the CPU with numpy; got device={device!r}. "
            "Use solver='torch' (or 'auto') for other devices."
        )
    if solver == "fista":
        return solve_numpy
    if solver == "newton" or (
        solver == "auto"
        and (device == "cpu" or (device == "auto" and not _gpu_possible()))
    ):
        return partial(solve_numpy, inner="newton")
    from ._torch import resolve_device, solve_torch

    resolved = resolve_device(device)
    if solver == "auto" and resolved.type == "cpu":
        # On the CPU the numpy backend with Newton steps is the fastest
        # (benchmarks/bench_solvers.py).
        return partial(solve_numpy, inner="newton")

    def solve(*args, **kwargs):
        return solve_torch(*args, device=resolved, **kwargs)

    return solve
