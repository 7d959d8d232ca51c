"""Which layer each feature column comes from, and per-layer normalisation.

Head2Toe's head needs the layer of every column twice: for the last-layer
candidate of the CV (the linear probe) and to re-normalise the kept columns of
each layer before the refit. Inside a plain ``make_pipeline(MultiLayerFeaturizer(),
GroupLassoClassifierCV())`` the head only receives an array, so the layout is read
from the features themselves (``layers="auto"``), in this order:

1. column names (``feature_names_in_``, e.g. a DataFrame from
   ``set_output(transform="pandas")``) of the featurizer's form
   ``"<layer>__<index>"``: consecutive columns of one prefix form a layer;
2. the featurizer's default ``normalize="unit"``: every layer block of every row
   has unit (or zero) Euclidean norm, so a block ends exactly where the running
   sum of squares of *every* row reaches a whole number. The test is run on up to
   64 rows; a block boundary that no row crosses cannot be seen, and trailing
   columns that are zero in every tested row join the next block (harmless: a
   zero column changes neither a norm nor a fit);
3. otherwise one layer holds every column.

An explicit ``layers`` (e.g. ``MultiLayerFeaturizer.feature_groups_``) always wins.
"""

import re

import numpy as np

#: Rows tested by :func:`infer_layers` and the tolerance on the sums of squares.
_MAX_ROWS = 64
_TOL = 1e-3
_NAME = re.compile(r"^(?P<layer>.+)__\d+$")


def layers_from_names(names):
    """Layer ids from featurizer-style column names, or None if they are not.

    Parameters
    ----------
    names : array-like of str
        Column names such as ``"blocks.3.1__0042"``.

    Returns
    -------
    ids : ndarray of int of shape (n_features,) or None
        Consecutive runs of one layer prefix get consecutive ids from 0.
    """
    if names is None:
        return None
    matches = [_NAME.match(str(name)) for name in names]
    if not matches or any(m is None for m in matches):
        return None
    prefixes = np.asarray([m["layer"] for m in matches], dtype=object)
    starts = np.r_[True, prefixes[1:] != prefixes[:-1]]
    return np.cumsum(starts) - 1


def infer_layers(X):
    """Layer ids from unit-norm blocks of columns, or None if there are none.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features, e.g. ``MultiLayerFeaturizer().fit_transform(images)``.

    Returns
    -------
    ids : ndarray of int of shape (n_features,) or None
        The block of each column, when at least two blocks are found and every
        tested row's squares sum to a whole number at each block end; else None.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.linear_model._layers import infer_layers
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((5, 3)), rng.random((5, 2))
    >>> X = np.hstack([a / np.linalg.norm(a, axis=1, keepdims=True),
    ...                b / np.linalg.norm(b, axis=1, keepdims=True)])
    >>> infer_layers(X)
    array([0, 0, 0, 1, 1])
    >>> infer_layers(rng.random((5, 5))) is None
    True
    """
    n, d = X.shape
    if n == 0 or d < 2:
        return None
    rows = np.unique(np.linspace(0, n - 1, min(n, _MAX_ROWS)).astype(int))
    sums = np.cumsum(np.asarray(X[rows], dtype=np.float64) ** 2, axis=1)
    whole = np.rint(sums)
    near = np.all(np.abs(sums - whole) <= _TOL, axis=0)
    if not near[-1]:
        return None
    ends, last = [], np.zeros(len(rows))
    for j in np.flatnonzero(near):
        if np.any(whole[:, j] > last):  # some row completes a block here
            ends.append(j)
            last = whole[:, j]
    if ends[-1:] != [d - 1]:
        ends[-1:] = [d - 1]
    if len(ends) < 2:
        return None
    return np.repeat(np.arange(len(ends)), np.diff(np.r_[-1, ends]))


def resolve_layers(layers, X, feature_names=None):
    """The layer id of every column, as the estimators' ``layers`` says.

    Parameters
    ----------
    layers : "auto", None or array-like of shape (n_features,)
        ``"auto"``: from the names, then the unit-norm blocks (module docstring);
        None: one layer; an array: the layer label of each column.
    X : ndarray of shape (n_samples, n_features)
        The training features.
    feature_names : array-like of str or None
        ``feature_names_in_`` of the estimator, if any.

    Returns
    -------
    ids : ndarray of int of shape (n_features,)
        Layer ids ``0 .. n_layers - 1`` in order of first appearance; the last
        layer is the one that holds the last column.
    """
    d = X.shape[1]
    if isinstance(layers, str) and layers == "auto":
        ids = layers_from_names(feature_names)
        if ids is None:
            ids = infer_layers(X)
        return np.zeros(d, dtype=np.intp) if ids is None else ids.astype(np.intp)
    if layers is None:
        return np.zeros(d, dtype=np.intp)
    labels = np.asarray(layers).ravel()
    if labels.shape != (d,):
        raise ValueError(
            f"layers has {labels.size} entries but X has {d} features: give one "
            "layer label per column (e.g. MultiLayerFeaturizer.feature_groups_)."
        )
    _, first, ids = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # relabel by first appearance
    return order[ids].astype(np.intp)


def last_layer(ids):
    """Mask of the columns of the layer that holds the last column.

    Parameters
    ----------
    ids : ndarray of int of shape (n_features,)
        Layer ids, as :func:`resolve_layers` returns.

    Returns
    -------
    mask : ndarray of bool of shape (n_features,)
        The linear probe's columns (the pre-logits for the featurizer's layers).
    """
    return ids == ids[-1]


def normalize_layers(X, ids):
    """Scale each row's columns of each layer to unit norm (zero rows stay zero).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_kept)
        The kept columns.
    ids : ndarray of int of shape (n_kept,)
        Their layer ids.

    Returns
    -------
    X_normalised : ndarray of shape (n_samples, n_kept)
        A new array in the dtype of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.linear_model._layers import normalize_layers
    >>> X = np.array([[3.0, 4.0, 2.0], [0.0, 0.0, 5.0]])
    >>> normalize_layers(X, np.array([0, 0, 1]))
    array([[0.6, 0.8, 1. ],
           [0. , 0. , 1. ]])
    """
    _, inverse = np.unique(ids, return_inverse=True)
    member = np.zeros((len(inverse), inverse.max() + 1))
    member[np.arange(len(inverse)), inverse] = 1.0
    norms = np.sqrt((np.asarray(X, dtype=np.float64) ** 2) @ member)
    norms[norms == 0] = 1.0
    return (X / norms[:, inverse]).astype(X.dtype, copy=False)
