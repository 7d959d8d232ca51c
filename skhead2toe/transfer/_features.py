"""Per-layer features of a network, and the linear probes on them.

torch is imported inside the functions only.
"""

import warnings

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_params

from ._models import _check_network
from ._utils import _POSITIVE_INT, _as_images, _batches, _inference


@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "n_layers": [_POSITIVE_INT, None],
        "target_size": [_POSITIVE_INT],
        "batch_size": [_POSITIVE_INT],
    },
    prefer_skip_nested_validation=True,
)
def layer_features(net, X, *, n_layers=None, target_size=512, batch_size=512):
    """Pooled, flattened activations of the first layers of ``net``.

    The output of each layer ``1 .. n_layers`` (after its ReLU and pooling) is
    average-pooled by Head2Toe's rule (a square window chosen so that the layer
    gives at most ``target_size`` features; see ``pool_output`` in
    ``skhead2toe.feature_extraction._hooks``) and flattened; the layers are
    concatenated. Pass the result to
    :func:`~skhead2toe.inspection.probe_layers` for a per-layer probe curve.

    Parameters
    ----------
    net : torch.nn.Sequential
        A network of :func:`make_cnn` (trained or not); its train/eval mode is
        restored.
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images to featurize, preprocessed as for :func:`train_network`.
    n_layers : int, default=None
        Number of layers, from the input; None: all but the output layer
        (``L - 1``, the depths ``n`` of the transfer experiment).
    target_size : int, default=512
        Largest number of features per layer.
    batch_size : int, default=512
        Images per forward pass.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``features``: float32 ndarray of shape (n_samples, n_features);
        - ``groups``: int ndarray of shape (n_features,), the layer index
          (0-based) of each column;
        - ``layer_names``: ndarray of str, e.g. ``["conv1", "conv2", ...]``.

    Raises
    ------
    ValueError
        If ``n_layers`` exceeds the depth of ``net``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.transfer import layer_features, make_cnn
    >>> feats = layer_features(make_cnn(5), np.zeros((3, 8, 8), np.float32))
    >>> feats.layer_names.tolist(), feats.features.shape
    (['conv1', 'conv2', 'conv3', 'fc4'], (3, 768))
    """
    import torch

    from ..feature_extraction._hooks import pool_output

    depth = _check_network(net, "net")
    n_layers = depth - 1 if n_layers is None else n_layers
    if n_layers > depth:
        raise ValueError(
            f"n_layers must be at most {depth} for this net, got {n_layers}."
        )
    X = _as_images(X)
    names = [name for name, _ in net.named_children()][:n_layers]
    chunks = []
    with _inference(net):
        for idx in _batches(len(X), batch_size):
            h, pooled = X[idx], []
            for layer in net[:n_layers]:
                h = layer(h)
                pooled.append(pool_output(h, target_size))
            chunks.append(torch.cat(pooled, 1))
    dims = [p.shape[1] for p in pooled]
    return Bunch(
        features=torch.cat(chunks).numpy(),
        groups=np.repeat(np.arange(n_layers), dims),
        layer_names=np.asarray(names),
    )


def _probe_scores(net, X_train, y_train, X_test, y_test):
    """Test accuracy of a linear probe on each layer's pooled output of ``net``."""
    from ..inspection import probe_layers

    feats = layer_features(net, np.concatenate([X_train, X_test]))
    split = [(np.arange(len(X_train)), len(X_train) + np.arange(len(X_test)))]
    y = np.concatenate([y_train, y_test])
    with warnings.catch_warnings():
        # The probe's lbfgs may stop at max_iter on a wide layer; its accuracy is
        # what is reported, converged or not.
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        probes = probe_layers(feats.features, y, feats.groups, cv=split)
    return probes.mean_scores
