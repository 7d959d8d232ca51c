"""Generic file helpers shared by the package: atomic writes, output checks.

Files are created with ``os.open(..., 0o666)``, so the kernel applies the umask
(and a folder's default ACL) exactly as for a plain ``open(path, "w")``:
0644 under umask 022. ``tempfile.mkstemp`` would make them 0600 whatever the
umask. A file that replaces an existing one keeps that file's mode.
"""

import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = ["atomic_write", "check_writable"]

_FLAGS = (
    os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOINHERIT", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _create_temp(folder, suffix, readable=False):
    """Create and open a new ``folder/.tmp-<random><suffix>``: ``(fd, path)``."""
    flags = _FLAGS | (os.O_RDWR if readable else os.O_WRONLY)
    for _ in range(100):
        path = os.path.join(folder, f".tmp-{secrets.token_hex(8)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(
        errno.EEXIST, f"no free temporary file name in {os.fspath(folder)!r}"
    )


def atomic_write(path, write, *, suffix="", readable=False):
    """Call ``write(binary_file)`` on a temporary file, then move it to ``path``.

    A failure (or an interrupted run) leaves ``path`` as it was and no temporary
    file behind. A new file gets the mode a plain ``open()`` would give it
    (``0o666`` less the umask); a replaced file keeps its mode.

    Parameters
    ----------
    path : pathlib.Path
        Destination; its folder must exist.
    write : callable
        Writes the content to the open binary file it is given.
    suffix : str, default=""
        Suffix of the temporary file.
    readable : bool, default=False
        Open the temporary file for reading too (``"r+b"``), as a writable
        memory map of it needs.
    """
    path = Path(path)
    fd, tmp = _create_temp(path.parent, suffix, readable)
    try:
        with os.fdopen(fd, "r+b" if readable else "wb") as f:
            try:
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass  # a new file: the umask applied at creation is right
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path):
    """Check that ``path`` can be written, before any work is spent on it.

    The folder must exist and accept a new file (a probe file is created and
    removed: this also catches read-only mounts and ACLs), and ``path`` must not
    be a folder.

    Parameters
    ----------
    path : str or path-like
        The output file.

    Returns
    -------
    path : pathlib.Path
        ``path``, as a ``Path``.

    Raises
    ------
    FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError
        Or another ``OSError``; the message names ``path``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            f"cannot write {str(path)!r}: its folder {str(folder)!r} does not exist",
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            f"cannot write {str(path)!r}: {str(folder)!r} is not a folder",
        )
    if path.is_dir():
        raise IsADirectoryError(
            errno.EISDIR, f"cannot write {str(path)!r}: it is a folder"
        )
    try:
        fd, probe = _create_temp(folder, ".probe")
    except OSError as exc:
        raise type(exc)(
            exc.errno,
            f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable "
            f"({exc.strerror or exc})",
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path
