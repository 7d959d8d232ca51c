"""Training and scoring a network: one SGD recipe for every network.

torch is imported inside the functions only.
"""

from numbers import Real

from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._models import _check_network
from ._utils import (
    _POSITIVE_INT,
    _as_images,
    _as_labels,
    _batches,
    _inference,
    _seed,
)

#: Constraints of the training-recipe parameters, shared with the experiment.
_RECIPE_CONSTRAINTS = {
    "epochs": [_POSITIVE_INT],
    "batch_size": [_POSITIVE_INT],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
}


@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "y": ["array-like"],
        **_RECIPE_CONSTRAINTS,
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def train_network(
    net,
    X,
    y,
    *,
    epochs=20,
    batch_size=64,
    lr=0.02,
    momentum=0.9,
    weight_decay=5e-4,
    random_state=0,
):
    """Train the trainable layers of ``net`` with SGD (a plain torch loop).

    The recipe, the same for every network of an experiment: mini-batch SGD
    with Nesterov momentum on the mean cross-entropy of each batch, L2 weight
    decay on the trainable parameters, and a cosine learning-rate schedule from
    ``lr`` to 0 over ``epochs`` (stepped every batch); the training set is
    shuffled every epoch. Frozen parameters (``requires_grad=False``) are not
    given to the optimiser, so neither the gradient nor the weight decay
    changes them; the output of a frozen first block of layers is computed once
    and reused at every epoch. Runs on the CPU in float32.

    Parameters
    ----------
    net : torch.nn.Sequential
        The network, trained in place (e.g. from :func:`make_cnn` or
        :func:`transfer_network`).
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Training images; uint8 is scaled to [0, 1], floats are used as they
        are (standardise them beforehand).
    y : array-like of shape (n_samples,)
        Class indices ``0 .. n_classes - 1``.
    epochs : int, default=20
        Passes over the training set.
    batch_size : int, default=64
        Images per SGD step.
    lr : float, default=0.02
        Initial learning rate.
    momentum : float, default=0.9
        Nesterov momentum (0 for plain SGD).
    weight_decay : float, default=5e-4
        L2 penalty on the trainable weights.
    random_state : int, RandomState instance or None, default=0
        Seeds the shuffling.

    Returns
    -------
    net : torch.nn.Sequential
        The same network, trained, in evaluation mode.

    Raises
    ------
    ValueError
        If ``net`` has no trainable parameter, or ``X`` and ``y`` disagree.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.transfer import make_cnn, score_network, train_network
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8, 8)).astype(np.float32)
    >>> y = (X[:, :4].mean(axis=(1, 2)) > 0).astype(int)  # upper half bright?
    >>> net = train_network(make_cnn(2), X, y, epochs=20)
    >>> score_network(net, X, y) > 0.9
    True
    """
    import torch

    _check_network(net, "net")
    X = _as_images(X)
    y = _as_labels(y, X.shape[0], n_classes=net[-1][-1].out_features)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("net has no trainable parameter: nothing to train.")
    optimizer = torch.optim.SGD(
        params,
        lr=lr,
        momentum=momentum,
        nesterov=momentum > 0,
        weight_decay=weight_decay,
    )
    n_steps = epochs * -(-X.shape[0] // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
    generator = torch.Generator().manual_seed(_seed(check_random_state(random_state)))
    loss_fn = torch.nn.CrossEntropyLoss()
    n_frozen = _frozen_prefix(net)
    X = _forward(net[:n_frozen], X, batch_size) if n_frozen else X
    trained = net[n_frozen:]
    net.train()
    for _ in range(epochs):
        for idx in _batches(X.shape[0], batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(trained(X[idx]), y[idx]).backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def _frozen_prefix(net):
    """Number of leading layers of ``net`` with no trainable parameter."""
    for i, layer in enumerate(net):
        if any(p.requires_grad for p in layer.parameters()):
            return i
    return len(net)


def _forward(layers, X, batch_size):
    """Output of ``layers`` on ``X``, in batches, without gradients.

    The layers of :func:`make_cnn` have no dropout or batch normalisation, so
    the output of a frozen prefix does not change during training: it is
    computed once instead of at every step (same result, much faster for deep
    frozen prefixes).
    """
    import torch

    with torch.no_grad():
        return torch.cat([layers(X[idx]) for idx in _batches(len(X), batch_size)])


def _predict(net, X, batch_size):
    import torch

    with _inference(net):
        out = [net(X[idx]).argmax(1) for idx in _batches(len(X), batch_size)]
    return torch.cat(out)


@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "y": ["array-like"],
        "batch_size": [_POSITIVE_INT],
    },
    prefer_skip_nested_validation=True,
)
def score_network(net, X, y, *, batch_size=512):
    """Top-1 accuracy of ``net`` on images ``X`` with class indices ``y``.

    Parameters
    ----------
    net : torch.nn.Sequential
        A network of :func:`make_cnn`; its train/eval mode is restored.
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images, preprocessed as for :func:`train_network`.
    y : array-like of shape (n_samples,)
        Class indices ``0 .. n_classes - 1``.
    batch_size : int, default=512
        Images per forward pass.

    Returns
    -------
    accuracy : float
        Fraction of images whose largest logit is the true class.

    Examples
    --------
    An untrained three-class CNN, scored on its own predictions and on
    labels it always gets wrong:

    >>> import numpy as np
    >>> import torch
    >>> from skhead2toe.transfer import make_cnn, score_network
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 8, 8)).astype(np.float32)
    >>> net = make_cnn(3)
    >>> with torch.no_grad():
    ...     pred = net(torch.from_numpy(X[:, None])).argmax(1).numpy()
    >>> score_network(net, X, pred), score_network(net, X, (pred + 1) % 3)
    (1.0, 0.0)
    >>> net.training  # its mode is left as it was
    True

    :func:`train_network` shows the score of a trained network.
    """
    _check_network(net, "net")
    X = _as_images(X)
    y = _as_labels(y, X.shape[0], n_classes=net[-1][-1].out_features)
    return float((_predict(net, X, batch_size) == y).double().mean())
