"""Deprecated location: see :mod:`._numpy`."""

from ._numpy import one_blas_thread, solve_numpy  # noqa: F401
