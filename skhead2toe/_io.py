"""Generic file helpers shared by the package: atomic writes."""

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path, write, *, suffix=""):
    """Call ``write(binary_file)`` on a temporary file, then move it to ``path``.

    A failure (or an interrupted run) leaves ``path`` as it was and no temporary
    file behind.

    Parameters
    ----------
    path : pathlib.Path
        Destination; its folder must exist.
    write : callable
        Writes the content to the open binary file it is given.
    suffix : str, default=""
        Suffix of the temporary file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
