"""On-disk feature cache: one checksummed file per (featurizer, image) pair.

An entry is stored at ``<root>/<params key>/<hash[:2]>/<image hash>.f32`` as

``MAGIC (8 bytes) | blake2b(params key, image hash, payload) (16 bytes) | payload``

where the payload is the image's float32 feature row. Entries are written to a
temporary file and moved into place (:func:`skhead2toe._io.atomic_write`), so a
run killed in the middle leaves either a complete entry or none, and a later run
resumes from the completed ones. On reading, the size and the checksum are
verified: a truncated, corrupted or foreign entry (one written for other
parameters or another image) is ignored, reported with a warning and recomputed.
A cache folder that cannot be written (read-only, full, over quota) or read
does not stop the extraction: :meth:`FeatureCache.store` and
:meth:`FeatureCache.get` warn once, naming the folder, and the run goes on
without writing (or reading) the cache.
"""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from .._io import atomic_write

__all__ = ["FeatureCache", "cache_dir", "params_key"]

MAGIC = b"SKH2T\x00\x01\n"
_HEADER = len(MAGIC) + 16


def params_key(params):
    """Stable hex key of a JSON-serialisable parameter dict.

    Parameters
    ----------
    params : dict
        Everything that determines the feature values.

    Returns
    -------
    key : str
        32 hex characters.
    """
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cache_dir(cache):
    """Directory of a ``cache=`` argument (None when caching is off).

    Parameters
    ----------
    cache : None, str, path-like or joblib.Memory
        A directory, or a :class:`joblib.Memory` whose ``location`` is used.

    Returns
    -------
    path : pathlib.Path or None
        The cache root.
    """
    if cache is None:
        return None
    location = getattr(cache, "location", cache)
    return None if location is None else Path(location) / "skhead2toe_features"


class FeatureCache:
    """Read and write feature rows keyed by image content hash.

    Parameters
    ----------
    root : path-like
        Cache root directory (created on first write).
    key : str
        Parameter key, see :func:`params_key`.
    n_features : int
        Length of each row.
    """

    def __init__(self, root, key, n_features):
        self.root = Path(root)
        self.dir = self.root / key
        self.key = key
        self.n_features = int(n_features)
        self.writable = self.readable = True

    def _unusable(self, exc, action):
        warnings.warn(
            f"cannot {action} the feature cache folder {str(self.root)!r} "
            f"({exc.strerror or exc}); extracting without the cache"
            + (" (its entries are still read)" if action == "write to" else ""),
            UserWarning,
            stacklevel=3,
        )

    def _path(self, image_hash):
        return self.dir / image_hash[:2] / f"{image_hash}.f32"

    def _digest(self, image_hash, payload):
        h = hashlib.blake2b(digest_size=16)
        h.update(self.key.encode())
        h.update(image_hash.encode())
        h.update(payload)
        return h.digest()

    def get(self, image_hash):
        """Return the cached row of an image, or None when absent or invalid.

        Parameters
        ----------
        image_hash : str
            Content hash of the image.

        Returns
        -------
        row : ndarray of shape (n_features,) or None
            float32 features.
        """
        path = self._path(image_hash)
        if not self.readable:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # an unreadable folder: warn once, stop reading
            self.readable = False
            self._unusable(exc, "read")
            return None
        payload = data[_HEADER:]
        if (
            len(data) != _HEADER + 4 * self.n_features
            or data[: len(MAGIC)] != MAGIC
            or data[len(MAGIC) : _HEADER] != self._digest(image_hash, payload)
        ):
            warnings.warn(
                f"ignoring corrupt or foreign feature cache entry {str(path)!r}; "
                "it will be recomputed",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        return np.frombuffer(payload, dtype="<f4").copy()

    def put(self, image_hash, row):
        """Store one row atomically.

        Parameters
        ----------
        image_hash : str
            Content hash of the image.
        row : ndarray of shape (n_features,)
            Features (stored as little-endian float32).
        """
        payload = np.ascontiguousarray(row, dtype="<f4").tobytes()
        path = self._path(image_hash)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = MAGIC + self._digest(image_hash, payload) + payload
        atomic_write(path, lambda f: f.write(record), suffix=".f32")

    def store(self, image_hash, row):
        """Store one row like :meth:`put`, giving up on the first write error.

        On an ``OSError`` (a read-only, full or over-quota folder) a single
        ``UserWarning`` names the folder and later calls do nothing: the
        extraction goes on without writing the cache.

        Parameters
        ----------
        image_hash : str
            Content hash of the image.
        row : ndarray of shape (n_features,)
            Features.

        Returns
        -------
        stored : bool
            Whether the row was written.
        """
        if not self.writable:
            return False
        try:
            self.put(image_hash, row)
        except OSError as exc:
            self.writable = False
            self._unusable(exc, "write to")
            return False
        return True
