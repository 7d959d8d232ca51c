"""The features file: the ``.npz`` that ``skhead2toe extract`` writes, read back."""

import zipfile

from skhead2toe._cli._errors import _Failure, _one_line

_FEATURES_FILE = "a features file is the .npz that `skhead2toe extract` writes"


def _load_features(path):
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
            arrays = {k: data[k] for k in ("X", "y", "feature_groups") if k in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _Failure(
            f"cannot read features file {str(path)!r} ({_FEATURES_FILE}): "
            f"{_one_line(exc)}"
        ) from exc
    missing = {"X", "y"} - names
    if missing:
        raise _Failure(
            f"features file {str(path)!r} lacks {sorted(missing)}: write it with "
            "`skhead2toe extract <folder of class sub-folders> -o FILE.npz`"
        )
    return arrays["X"], arrays["y"], arrays.get("feature_groups")
