"""Hand freed memory back to the operating system at the end of a parallel task.

joblib's default backend (loky) measures each worker's resident memory after a
task and replaces the worker when it has grown by 300 MB since its first task,
taking the growth for a leak. A replaced worker costs seconds: a new interpreter
importing scikit-learn, then the next task's data sent again. The folds of a
cross-validation on Head2Toe's features allocate and free hundreds of megabytes
(copies of the training rows, Gram matrices, float64 designs), and glibc's
allocator keeps part of what is freed in the process heap: on the demo's task a
fold of ``GroupLassoClassifierCV`` leaves up to 45 MB resident that nothing holds,
which adds up over the tasks a worker runs.

:func:`release_memory` asks glibc to return the free heap to the system
(``malloc_trim``), so that the size loky measures is what the worker holds.
Elsewhere (macOS, Windows, musl) it does nothing: their allocators return large
blocks on their own, or loky's check differs.
"""

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["release_memory", "releases_memory"]


@functools.cache
def _malloc_trim():
    """The ``malloc_trim`` of glibc, or None where it is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory():
    """Return the process's free heap memory to the operating system.

    Returns
    -------
    released : bool
        Whether glibc released any memory (False where it is not glibc).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def releases_memory(func):
    """Decorate a function run as a joblib task to :func:`release_memory` after it.

    Parameters
    ----------
    func : callable
        The task.

    Returns
    -------
    wrapped : callable
        ``func``, then :func:`release_memory` (also when it raises).
    """

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            release_memory()

    return wrapped
