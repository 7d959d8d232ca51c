"""Feature extraction on Dask: lazy features, one task per chunk of images.

:func:`dask_transform` (and :meth:`MultiLayerFeaturizer.transform` given a
:class:`dask.array.Array`) turns images, or paths to image files, chunked along
the samples, into a lazy float32 :class:`dask.array.Array` of features with
one task per chunk.

The fitted featurizer enters the task graph once, as one key that every chunk
depends on; it pickles without its network weights, so it is small to send.
Each worker process keeps the featurizers it has received in a small cache
keyed by a token of their fitted state (:data:`_WORKER_CACHE`): the backbone is
built once per process and reused by every later chunk, of this computation and
of later ones. Chunks in one process run one at a time (a lock per cached
featurizer: the forward hooks of a model cannot be shared by two threads), so
give each worker one thread and let torch use the cores.

Dask is imported only when one of these functions is called.
"""

import copy
import hashlib
import pickle
import sys
import threading
from collections import OrderedDict
from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._images import _layout

__all__ = [
    "dask_transform",
    "featurizer_token",
    "is_dask_array",
    "transform_dask_array",
    "worker_counts",
]

#: Default number of images per chunk when :func:`dask_transform` chunks them.
DEFAULT_CHUNK_SIZE = 256

#: Fitted featurizers per worker process, most recently used last:
#: ``{token: (featurizer, lock, counts)}``; each holds its built backbone.
_WORKER_CACHE = OrderedDict()
_CACHE_SIZE = 2  # backbones kept per process (a ViT-B is ~350 MB)
_CACHE_LOCK = threading.Lock()


def is_dask_array(X):
    """Whether ``X`` is a :class:`dask.array.Array`, without importing dask.

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    bool
        True for a dask array. When ``dask.array`` was never imported, nothing
        can be one, and dask is not imported to find out.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.feature_extraction._dask import is_dask_array
    >>> is_dask_array(np.zeros((2, 8, 8)))
    False
    """
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def dask_transform(featurizer, X, *, chunk_size=None):
    """Lazy features of many images, one Dask task per chunk of images.

    Parameters
    ----------
    featurizer : MultiLayerFeaturizer
        A fitted featurizer (fit it on a sample that fits in memory).
    X : dask array, ndarray or list of paths
        Images chunked along the first axis: a :class:`dask.array.Array` of
        ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` images with one
        chunk along every other axis, or a 1-D one of image paths (str or
        object dtype); or an image array or a list (tuple, 1-D array) of paths
        that are chunked here. Paths are read by the workers: they must name
        files that the workers can open (a shared file system).
    chunk_size : int or None, default=None
        Images per chunk (per task). None keeps a dask array's chunks and cuts
        anything else into chunks of 256 images; an int rechunks a dask array
        along the first axis too. A multiple of the featurizer's
        ``batch_size`` wastes no forward pass.

    Returns
    -------
    features : dask.array.Array of shape (N, n_features_out_)
        float32, chunked as the images along the first axis and in one chunk
        along the second. Nothing is computed until asked
        (``features.compute()``, ``dask.array.to_npy_stack``, ...): the same
        features as ``featurizer.transform`` on the computed images or the
        list of paths.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``featurizer`` is not fitted.
    ValueError
        When an image array is chunked along any axis but the first (rechunk
        it with ``X.rechunk({1: -1, 2: -1, 3: -1})``: merging image pieces
        moves data between workers, so it is not done silently), has unknown
        chunk sizes, or no images.

    See Also
    --------
    MultiLayerFeaturizer.transform : The same, from a dask array, and in memory.

    Examples
    --------
    >>> import dask.array as da
    >>> from skhead2toe import MultiLayerFeaturizer
    >>> from skhead2toe.datasets import load_digits_images
    >>> from skhead2toe.feature_extraction import dask_transform
    >>> X, y = load_digits_images()
    >>> feat = MultiLayerFeaturizer(image_size=32, target_size=64, batch_size=4)
    >>> feat = feat.fit(X[:4])
    >>> Z = dask_transform(feat, da.from_array(X[:8], chunks=(4, -1, -1)))
    >>> Z.chunks == ((4, 4), (feat.n_features_out_,))
    True
    >>> bool(abs(Z.compute() - feat.transform(X[:8])).max() < 1e-6)
    True
    """
    check_is_fitted(featurizer, "layer_names_")
    X = _as_dask(X, chunk_size)
    return _features_graph(featurizer, X)


def transform_dask_array(featurizer, X, out=None):
    """:meth:`MultiLayerFeaturizer.transform` of a dask array ``X``.

    Parameters
    ----------
    featurizer : MultiLayerFeaturizer
        A fitted featurizer.
    X : dask.array.Array
        Images or paths, as in :func:`dask_transform`.
    out : None
        Must be None: write the lazy result with ``dask.array.to_npy_stack``
        (or ``to_zarr``) instead.

    Returns
    -------
    features : dask.array.Array of shape (N, n_features_out_)
        As :func:`dask_transform` returns.
    """
    if out is not None:
        raise TypeError(
            "out must be None when X is a dask array: the features are a lazy "
            "dask array; write them with dask.array.to_npy_stack(path, features)"
        )
    return dask_transform(featurizer, X)


def _as_dask(X, chunk_size):
    """``X`` as a dask array of images or paths chunked along axis 0 only."""
    import dask.array as da

    if chunk_size is not None and (
        not isinstance(chunk_size, Integral) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size}")
    if not is_dask_array(X):
        if isinstance(X, list | tuple) or getattr(X, "ndim", None) == 1:
            X = _path_array(X)
        X = np.asarray(X)
        size = chunk_size or DEFAULT_CHUNK_SIZE
        return _checked(da.from_array(X, chunks=(size,) + (-1,) * (X.ndim - 1)))
    X = _checked(X)
    if chunk_size is not None:
        X = X.rechunk({0: chunk_size})
    return X


def _path_array(paths):
    """A 1-D object array of path strings (workers read the files)."""
    items = list(paths)
    bad = [
        i
        for i, p in enumerate(items)
        if not isinstance(p, str | bytes) and not hasattr(p, "__fspath__")
    ]
    if bad:
        raise TypeError(
            f"X[{bad[0]}] is a {type(items[bad[0]]).__name__}, not a path: a 1-D "
            "X is read as a list of image paths"
        )
    out = np.empty(len(items), dtype=object)
    out[:] = [str(p) if hasattr(p, "__fspath__") else p for p in items]
    return out


def _checked(X):
    """Check the shape, dtype and chunks of a dask array of images or paths."""
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes along the first axis; call "
            "X.compute_chunk_sizes() first (the number of images must be known)"
        )
    if X.shape[0] == 0:
        raise ValueError(f"X is empty: got 0 images (shape {X.shape})")
    if X.ndim == 1:
        if X.dtype.kind not in "OUS":
            raise TypeError(
                f"a 1-D X is read as image paths, but it has dtype {X.dtype}"
            )
        return X
    _layout(tuple(X.shape), "X")  # the usual error for a wrong number of axes
    if X.dtype.kind not in "uif":
        raise TypeError(f"X has dtype {X.dtype}; images must be uint8 or float")
    split = [axis for axis in range(1, X.ndim) if len(X.chunks[axis]) > 1]
    if split:
        fix = ", ".join(f"{axis}: -1" for axis in range(1, X.ndim))
        raise ValueError(
            f"X is chunked along axis {split[0]} (chunks {X.chunks}); chunk the "
            f"images along the first axis only, e.g. X.rechunk({{{fix}}})"
        )
    return X


def _features_graph(featurizer, X):
    """One task per chunk of ``X``, all depending on one featurizer key."""
    import dask.array as da
    from dask import delayed

    token = featurizer_token(featurizer)
    # one key holds the featurizer: sent once to each worker, not per task
    fitted = delayed(featurizer, name=f"featurizer-{token}", traverse=False)
    axes = {"new_axis": [1]} if X.ndim == 1 else {"drop_axis": list(range(2, X.ndim))}
    return da.map_blocks(
        _chunk_features,
        X,
        fitted,
        token,
        chunks=(X.chunks[0], (featurizer.n_features_out_,)),
        dtype=np.float32,
        # the type of the output, given so that dask does not run a chunk to
        # learn it (which would build the backbone on the client)
        meta=np.empty((0, 0), dtype=np.float32),
        token="multilayer-features",
        **axes,
    )


def featurizer_token(featurizer):
    """A token of a fitted featurizer's state (its pickle, without weights).

    Parameters
    ----------
    featurizer : MultiLayerFeaturizer
        A fitted featurizer.

    Returns
    -------
    str
        32 hex digits; equal for featurizers that pickle alike.
    """
    data = pickle.dumps(featurizer, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _chunk_features(chunk, featurizer, token):
    """Features of one chunk, with this process's copy of the featurizer."""
    cached, lock, counts = _cached_featurizer(featurizer, token)
    images = [str(p) for p in chunk] if chunk.ndim == 1 else chunk
    with lock:
        if getattr(cached, "_model", None) is None:
            counts["builds"] += 1  # this transform builds the backbone
        counts["chunks"] += 1
        return cached.transform(images)


def _cached_featurizer(featurizer, token):
    """``(featurizer, lock, counts)`` for ``token`` in this process's cache."""
    with _CACHE_LOCK:
        entry = _WORKER_CACHE.get(token)
        if entry is None:
            # a private copy (deepcopy drops the weights, as pickling does): the
            # caller's object may change later, its token would not follow
            entry = (copy.deepcopy(featurizer), threading.Lock(), _new_counts())
            _WORKER_CACHE[token] = entry
            while len(_WORKER_CACHE) > _CACHE_SIZE:
                _WORKER_CACHE.popitem(last=False)
        _WORKER_CACHE.move_to_end(token)
        return entry


def _new_counts():
    return {"builds": 0, "chunks": 0}


def worker_counts():
    """Backbone builds and chunks done in this process, per featurizer token.

    Run it on every worker with ``client.run(worker_counts)`` to check that
    each worker built the backbone once.

    Returns
    -------
    dict of str to dict
        ``{token: {"builds": int, "chunks": int}}`` for the featurizers in this
        process's cache.
    """
    with _CACHE_LOCK:
        return {token: dict(entry[2]) for token, entry in _WORKER_CACHE.items()}
