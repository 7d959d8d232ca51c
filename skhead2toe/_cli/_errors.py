"""The command line's error boundary: which errors are the user's, on one line.

An error the user can cause and fix (the types of ``_USER_ERRORS``) is printed
as one line; any other type is a bug and keeps its traceback (see
:func:`skhead2toe._cli.main`).
"""

import pickle
import sys
import zipfile


class _UsageError(ValueError):
    """A bad option value: reported like argparse's own errors (exit status 2)."""


class _Failure(Exception):
    """A failed job the user can fix, with its one-line message (exit status 1)."""


# The error boundary. These exception types are errors the user can cause, from
# their files, options, machine or network, whoever raises them (numpy, PIL,
# torch, timm, the hub, the OS): one line, exit status 1. Any other type
# (TypeError, AttributeError, KeyError, IndexError, AssertionError, ...) and the
# RuntimeError subclasses in _BUGS are bugs of this package: they keep their
# traceback, so that they get reported and fixed instead of hidden.
_USER_ERRORS = (
    _Failure,
    OSError,  # missing, unreadable or unwritable files, full disks, networks
    ValueError,  # bad data and values (numpy, scikit-learn, the featurizer)
    RuntimeError,  # torch (CUDA, out of memory, weights), hub downloads
    ImportError,  # a missing optional dependency
    EOFError,  # truncated files
    MemoryError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,  # damaged .npz files
)
_BUGS = (NotImplementedError, RecursionError)
_MAX_MESSAGE = 1500


def _optional_user_errors():
    """Error types of libraries that are loaded: PIL's and safetensors'."""
    found = []
    if "PIL.Image" in sys.modules:
        found.append(sys.modules["PIL.Image"].DecompressionBombError)
    safetensors = sys.modules.get("safetensors")
    if safetensors is not None and hasattr(safetensors, "SafetensorError"):
        found.append(safetensors.SafetensorError)
    return tuple(found)


def _is_user_error(exc):
    """Whether ``exc`` is an error the user can fix (one line), not a bug."""
    if isinstance(exc, _BUGS):
        return False
    return isinstance(exc, _USER_ERRORS + _optional_user_errors())


def _one_line(exc):
    """The message of ``exc`` on one line (at most ``_MAX_MESSAGE`` characters)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror  # without the "[Errno 13] " of str(exc)
        if exc.filename is not None:
            text += f": {str(exc.filename)!r}"
    else:
        text = str(exc)
    text = " ".join(text.split())
    if not text or isinstance(exc, EOFError | MemoryError):
        text = f"{type(exc).__name__}{': ' if text else ''}{text}"
        if isinstance(exc, EOFError):
            text = f"unexpected end of file ({text})"
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3].rstrip() + "..."
    return text
