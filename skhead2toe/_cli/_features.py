"""The features file: the ``.npz`` that ``skhead2toe extract`` writes, read back."""

import zipfile

from skhead2toe._cli._errors import _Failure, _one_line

_FEATURES_FILE = "a features file is the .npz that `skhead2toe extract` writes"


def _read_features(path, keys, *, required, hint):
    """The arrays ``keys`` that features file ``path`` holds.

    The arrays in ``required`` must be there; else the error says how to write
    such a file (``hint``). Nothing is unpickled.
    """
    import numpy as np

    with open(path, "rb") as f:  # an unreadable file is an OSError naming it
        is_zip = zipfile.is_zipfile(f)
    if not is_zip:
        raise _Failure(
            f"{str(path)!r} is not a features file: it is not a .npz (zip) archive;"
            f" {_FEATURES_FILE}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            arrays = {k: data[k] for k in keys if k in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _Failure(
            f"cannot read features file {str(path)!r} ({_FEATURES_FILE}): "
            f"{_one_line(exc)}"
        ) from exc
    missing = set(required) - names
    if missing:
        raise _Failure(
            f"features file {str(path)!r} lacks {sorted(missing)}: write it with {hint}"
        )
    return arrays


def _load_features(path):
    """``X, y, feature_groups`` (None if absent) of a labelled features file."""
    arrays = _read_features(
        path,
        ("X", "y", "feature_groups"),
        required=("X", "y"),
        hint="`skhead2toe extract <folder of class sub-folders> -o FILE.npz`",
    )
    return arrays["X"], arrays["y"], arrays.get("feature_groups")
