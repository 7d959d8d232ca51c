"""Features written to a ``.npy`` file: all or nothing, the space checked first.

``MultiLayerFeaturizer.transform(X, out=path)`` fills a memory-mapped ``.npy``
file. It is filled under a temporary name next to ``path`` and moved into place
only when every row is written, so a failure leaves ``path`` as it was and no
temporary file: :func:`skhead2toe._io.atomic_write`'s guarantee and file modes
(the umask applies), with the temporary file opened for reading too
(``readable=True``), as a writable memory map needs. The whole array is
allocated on disk before the first row is computed: the free space is checked
first, and the blocks are reserved (``posix_fallocate``), because writing
through a memory map into a sparse file on a full disk kills the process with
SIGBUS instead of raising an error.
"""

import errno
import io
import os
import shutil
from pathlib import Path

import numpy as np

from .._io import atomic_write, check_writable

__all__ = ["write_npy"]

_DTYPE = np.dtype("<f4")
# errors of posix_fallocate meaning "not supported here", not "no space"
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


def _header(shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {
            "descr": np.lib.format.dtype_to_descr(_DTYPE),
            "fortran_order": False,
            "shape": tuple(shape),
        },
    )
    return buf.getvalue()


def _write_error(path, size, exc):
    return OSError(
        exc.errno,
        f"cannot write the features to {str(path)!r} ({size:,} bytes): "
        f"{exc.strerror or exc}",
    )


def _check_space(path, size):
    free = shutil.disk_usage(Path(path).absolute().parent).free
    if free < size:
        raise OSError(
            errno.ENOSPC,
            f"not enough free space to write the features to {str(path)!r}: "
            f"{size:,} bytes needed, {free:,} bytes available; free some space "
            "or give another out path",
        )


def _reserve(f, size, path):
    """Allocate ``size`` bytes of the open file ``f`` on disk."""
    fallocate = getattr(os, "posix_fallocate", None)
    try:
        if fallocate is not None:
            try:
                fallocate(f.fileno(), 0, size)
                return
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
        f.truncate(size)  # a sparse file: the space check above has to do
    except OSError as exc:
        raise _write_error(path, size, exc) from exc


def write_npy(path, shape, fill):
    """Create the float32 ``.npy`` file ``path`` with ``fill``, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder must exist. Left as it was when anything fails.
    shape : tuple of int
        Shape of the array.
    fill : callable
        Called with a writable float32 array of ``shape`` mapped on the
        temporary file; it writes every element.

    Returns
    -------
    array : numpy.memmap
        The finished file at ``path``, memory-mapped read-write.

    Raises
    ------
    OSError
        When the folder lacks the space for the whole array (before ``fill``
        is called) or the file cannot be written; the message names ``path``.
    """
    path = check_writable(path)  # the folder exists and accepts files
    header = _header(shape)
    size = len(header) + _DTYPE.itemsize * int(np.prod(shape))
    _check_space(path, size)

    def write(f):
        try:
            f.write(header)
            f.flush()
        except OSError as exc:
            raise _write_error(path, size, exc) from exc
        _reserve(f, size, path)
        array = np.memmap(f, dtype=_DTYPE, mode="r+", offset=len(header), shape=shape)
        try:
            fill(array)  # its own errors (an unreadable image...) pass unchanged
            try:
                array.flush()
            except OSError as exc:
                raise _write_error(path, size, exc) from exc
        finally:
            del array

    atomic_write(path, write, suffix=".npy", readable=True)
    return np.lib.format.open_memmap(path, mode="r+")
