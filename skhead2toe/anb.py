"""AnB / BnB transfer experiments of Yosinski et al. (2014) with small CNNs.

"How transferable are features in deep neural networks?" splits the classes of a
data set into two disjoint halves, A and B, trains one network on each (*baseA*,
*baseB*), and then, for every depth ``n``, trains on B a network whose first
``n`` layers are copied from a base network and whose other layers are
re-initialised:

- **BnB**: first ``n`` layers copied from baseB and frozen (a *selffer*
  network). A drop below baseB shows *fragile co-adaptation*: features of
  neighbouring layers that were learned together and cannot be re-learned by
  the upper layers alone;
- **BnB+**: the same, with every layer fine-tuned;
- **AnB**: first ``n`` layers copied from baseA and frozen (a *transfer*
  network). A drop below BnB shows how *specific* to task A the first ``n``
  layers are: the features go from general near the input to specific near
  the head;
- **AnB+**: the same, fine-tuned: transfer plus fine-tuning generalises as well
  as, or better than, training on B alone;
- **random**: first ``n`` layers random and frozen (copied from an untrained
  network), the control of the paper's section 4.2.

This module builds the networks (:func:`make_cnn`, :func:`transfer_network`),
trains and scores them (:func:`train_network`, :func:`score_network`), runs the
whole experiment (:func:`run_transfer_experiment`) and plots it
(:class:`TransferCurvesDisplay`). :func:`layer_features` gives the pooled
activations of each layer, so that :func:`~skhead2toe.inspection.probe_layers`
can draw the matching per-layer probe curve.

torch is imported only inside the functions: ``import skhead2toe.anb`` is fast.
"""

import copy
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = [
    "RESULT_COLUMNS",
    "TRANSFER_VARIANTS",
    "TransferCurvesDisplay",
    "layer_features",
    "make_cnn",
    "run_transfer_experiment",
    "score_network",
    "split_classes",
    "summarize_results",
    "train_network",
    "transfer_network",
]

#: Variants trained on task B for each depth ``n``, in the paper's order.
TRANSFER_VARIANTS = ("BnB", "BnB+", "AnB", "AnB+", "random")
#: Columns of the results table of :func:`run_transfer_experiment`.
RESULT_COLUMNS = ("seed", "variant", "n", "task", "accuracy")
_PROBE_VARIANTS = ("probe", "probe random")


# ---------------------------------------------------------------- helpers
def _seed(rng):
    """A fresh 31-bit seed drawn from ``rng``."""
    return int(rng.randint(np.iinfo(np.int32).max))


@contextmanager
def _seeded_torch(random_state):
    """A block in which torch's global RNG is seeded; its state is restored after."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(check_random_state(random_state)))
        yield


def _check_network(net, name="base"):
    """``net`` must be a network of :func:`make_cnn` (a layered Sequential)."""
    from torch import nn

    if not (
        isinstance(net, nn.Sequential)
        and len(net) >= 2
        and all(isinstance(layer, nn.Sequential) and len(layer) for layer in net)
        and isinstance(net[-1][-1], nn.Linear)
    ):
        raise TypeError(
            f"{name} must be a network built by skhead2toe.anb.make_cnn (a "
            "torch.nn.Sequential of at least 2 Sequential layers, the last ending "
            f"with a Linear layer), got {type(net).__name__}."
        )
    return len(net)


def _as_images(X, name="X"):
    """Images as a float32 ``(N, C, H, W)`` tensor; uint8 is scaled to [0, 1]."""
    import torch

    X = np.asarray(X)
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4 or X.shape[0] == 0:
        raise ValueError(
            f"{name} must hold images of shape (n_samples, H, W) or "
            f"(n_samples, C, H, W) with n_samples >= 1, got shape {X.shape}."
        )
    scale = 1.0 / 255.0 if X.dtype == np.uint8 else 1.0
    X = X.astype(np.float32) * np.float32(scale)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return torch.from_numpy(np.ascontiguousarray(X))


def _as_labels(y, n, *, n_classes, name="y"):
    """Labels as an int64 tensor of class indices ``0 .. n_classes - 1``."""
    import torch

    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"{name} must be 1-D with one label per image: expected length {n}, "
            f"got shape {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"{name} must hold class indices 0 .. {n_classes - 1} for a network "
            f"with {n_classes} outputs, got values in [{y.min()}, {y.max()}] of "
            f"dtype {y.dtype}; encode labels first, e.g. with LabelEncoder."
        )
    return torch.from_numpy(y.astype(np.int64))


def _batches(n, batch_size, generator=None):
    """Index batches over ``n`` samples, shuffled when a generator is given."""
    import torch

    if generator is None:
        return torch.split(torch.arange(n), batch_size)
    order = torch.randperm(n, generator=generator)
    return torch.split(order, batch_size)


# ---------------------------------------------------------------- networks
@validate_params(
    {
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple],
        "in_channels": [Interval(Integral, 1, None, closed="left")],
        "n_conv": [Interval(Integral, 1, None, closed="left")],
        "n_fc": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_cnn(
    n_classes,
    *,
    image_size=8,
    in_channels=1,
    n_conv=3,
    n_fc=2,
    width=16,
    random_state=0,
):
    """A small layered CNN: ``n_conv`` conv layers, then ``n_fc`` dense layers.

    Layer ``i`` of the network is ``net[i - 1]``, one unit in the sense of
    Yosinski et al.: a convolution with its ReLU (and pooling), or a dense layer
    with its ReLU. In order:

    - ``conv1 .. conv{n_conv}``: 3x3 convolution (padding 1, so the size is
      kept), ReLU, then 2x2 max-pooling while the feature map is at least 4
      pixels wide. Conv layer ``i`` has ``width * 2**(i - 1)`` channels. On 8x8
      digits with 3 conv layers the maps are 4x4, 2x2, 2x2; on 28x28
      Fashion-MNIST 14x14, 7x7, 3x3;
    - ``fc{n_conv + 1} ..``: flatten (in the first one), dense layer of
      ``8 * width`` units and ReLU;
    - the last layer: dense, ``n_classes`` logits.

    There is no batch normalisation or dropout, so a layer's behaviour is
    entirely given by its weights: a copied layer computes exactly what it did
    in its base network, and freezing it freezes its function.

    Parameters
    ----------
    n_classes : int
        Number of classes (outputs of the last layer), at least 2.
    image_size : int or tuple of (int, int), default=8
        Height and width of the input images (8 for digits, 28 for
        Fashion-MNIST).
    in_channels : int, default=1
        Channels of the input images.
    n_conv : int, default=3
        Number of convolutional layers.
    n_fc : int, default=2
        Number of dense layers, the output layer included.
    width : int, default=16
        Channels of the first conv layer; later ones double, dense hidden
        layers have ``8 * width`` units.
    random_state : int, RandomState instance or None, default=0
        Seeds the initial weights (He normal, zero biases); torch's global
        RNG is left as it was.

    Returns
    -------
    net : torch.nn.Sequential
        ``n_conv + n_fc`` named layers (``net.conv1``, ..., ``net.fc5``).

    Examples
    --------
    >>> from skhead2toe.anb import make_cnn
    >>> net = make_cnn(5, image_size=8)
    >>> [name for name, _ in net.named_children()]
    ['conv1', 'conv2', 'conv3', 'fc4', 'fc5']
    """
    from torch import nn

    size = _check_image_size(image_size)
    with _seeded_torch(random_state):
        convs, (channels, height, width_px) = _conv_layers(
            in_channels, size, n_conv, width
        )
        fcs = _fc_layers(channels * height * width_px, n_classes, n_conv, n_fc, width)
        net = nn.Sequential(OrderedDict(convs + fcs))
        for layer in net:
            _reset(layer)
    return net


def _check_image_size(image_size):
    size = (image_size, image_size) if np.ndim(image_size) == 0 else image_size
    if len(size) != 2 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in size
    ):
        raise ValueError(
            "image_size must be a positive int or a (height, width) pair of "
            f"positive ints, got {image_size!r}."
        )
    return int(size[0]), int(size[1])


def _conv_layers(channels, size, n_conv, width):
    """``(name, layer)`` pairs of the conv layers, and the output shape."""
    from torch import nn

    height, width_px = size
    layers = []
    for i in range(1, n_conv + 1):
        out = width * 2 ** (i - 1)
        block = [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
        if min(height, width_px) >= 4:
            block.append(nn.MaxPool2d(2))
            height, width_px = height // 2, width_px // 2
        layers.append((f"conv{i}", nn.Sequential(*block)))
        channels = out
    return layers, (channels, height, width_px)


def _fc_layers(features, n_classes, n_conv, n_fc, width):
    """``(name, layer)`` pairs of the dense layers, the output layer last."""
    from torch import nn

    layers = []
    for i in range(n_conv + 1, n_conv + n_fc + 1):
        last = i == n_conv + n_fc
        out = n_classes if last else 8 * width
        block = [nn.Flatten()] if i == n_conv + 1 else []
        block += [nn.Linear(features, out)] + ([] if last else [nn.ReLU()])
        layers.append((f"fc{i}", nn.Sequential(*block)))
        features = out
    return layers


def _reset(layer):
    """(Re-)initialise the weights of ``layer``: He normal, zero biases.

    He (Kaiming) initialisation keeps the scale of the activations through the
    ReLU layers, so that a network without batch normalisation starts learning
    at once, and random (untrained) layers pass on informative features.
    """
    from torch import nn

    for module in layer.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


@validate_params(
    {
        "base": "no_validation",
        "n": [Interval(Integral, 0, None, closed="left")],
        "fine_tune": ["boolean"],
        "n_classes": [Interval(Integral, 2, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def transfer_network(base, n, *, fine_tune=False, n_classes=None, random_state=0):
    """Copy the first ``n`` layers of ``base``, re-initialise the others.

    The network of Yosinski et al. (2014) for one depth ``n``: a copy of
    ``base`` whose layers ``1 .. n`` keep the base network's weights and whose
    layers ``n + 1 .. L`` get fresh random weights. With ``fine_tune=False``
    the copied layers are frozen (``requires_grad=False``: AnB, BnB); with
    ``fine_tune=True`` they are trained along with the rest (AnB+, BnB+).
    Copying from an *untrained* network gives the random-filters control.

    Parameters
    ----------
    base : torch.nn.Sequential
        A network of :func:`make_cnn` (trained or not); it is not modified.
    n : int
        Number of layers to copy, ``0 <= n <= L - 1``: the output layer is
        always re-initialised, since it belongs to the base task.
    fine_tune : bool, default=False
        Train the copied layers too (the "+" variants).
    n_classes : int, default=None
        Outputs of the new last layer; None: as many as ``base`` has.
    random_state : int, RandomState instance or None, default=0
        Seeds the re-initialised weights.

    Returns
    -------
    net : torch.nn.Sequential
        The new network, in training mode.

    Raises
    ------
    TypeError
        If ``base`` is not a layered ``torch.nn.Sequential``.
    ValueError
        If ``n`` is not in ``0 .. L - 1``.

    Examples
    --------
    >>> from skhead2toe.anb import make_cnn, transfer_network
    >>> base = make_cnn(5, random_state=0)
    >>> net = transfer_network(base, 2, random_state=1)
    >>> [all(p.requires_grad for p in layer.parameters()) for layer in net]
    [False, False, True, True, True]
    """
    from torch import nn

    n_layers = _check_network(base)
    if n > n_layers - 1:
        raise ValueError(
            f"n must be in 0 .. {n_layers - 1} (the number of layers to copy; the "
            f"output layer is always re-initialised), got n={n}."
        )
    net = copy.deepcopy(base)
    with _seeded_torch(random_state):
        for layer in net[n:]:
            _reset(layer)
        if n_classes is not None:
            net[-1][-1] = nn.Linear(net[-1][-1].in_features, n_classes)
            _reset(net[-1])
    for i, layer in enumerate(net):
        layer.requires_grad_(fine_tune or i >= n)
    return net.train()


# ---------------------------------------------------------------- training
@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "y": ["array-like"],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
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
    >>> from skhead2toe.anb import make_cnn, score_network, train_network
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

    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            out = [net(X[idx]).argmax(1) for idx in _batches(len(X), batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(out)


@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "y": ["array-like"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
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
    """
    _check_network(net, "net")
    X = _as_images(X)
    y = _as_labels(y, X.shape[0], n_classes=net[-1][-1].out_features)
    return float((_predict(net, X, batch_size) == y).double().mean())


@validate_params(
    {
        "net": "no_validation",
        "X": ["array-like"],
        "n_layers": [Interval(Integral, 1, None, closed="left"), None],
        "target_size": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def layer_features(net, X, *, n_layers=None, target_size=512, batch_size=512):
    """Pooled, flattened activations of the first layers of ``net``.

    The output of each layer ``1 .. n_layers`` (after its ReLU and pooling) is
    average-pooled by Head2Toe's rule (a square window chosen so that the layer
    gives at most ``target_size`` features; see
    :func:`skhead2toe._hooks.pool_output`) and flattened; the layers are
    concatenated. Pass the result to
    :func:`~skhead2toe.inspection.probe_layers` for a per-layer probe curve.

    Parameters
    ----------
    net : torch.nn.Sequential
        A network of :func:`make_cnn`; its train/eval mode is restored.
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images, preprocessed as for :func:`train_network`.
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
    >>> from skhead2toe.anb import layer_features, make_cnn
    >>> feats = layer_features(make_cnn(5), np.zeros((3, 8, 8), np.float32))
    >>> feats.layer_names.tolist(), feats.features.shape
    (['conv1', 'conv2', 'conv3', 'fc4'], (3, 768))
    """
    import torch

    from ._hooks import pool_output

    depth = _check_network(net, "net")
    n_layers = depth - 1 if n_layers is None else n_layers
    if n_layers > depth:
        raise ValueError(
            f"n_layers must be at most {depth} for this net, got {n_layers}."
        )
    X = _as_images(X)
    names = [name for name, _ in net.named_children()][:n_layers]
    was_training = net.training
    net.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for idx in _batches(len(X), batch_size):
                h, pooled = X[idx], []
                for layer in net[:n_layers]:
                    h = layer(h)
                    pooled.append(pool_output(h, target_size))
                chunks.append(torch.cat(pooled, 1))
    finally:
        net.train(was_training)
    dims = [p.shape[1] for p in pooled]
    return Bunch(
        features=torch.cat(chunks).numpy(),
        groups=np.repeat(np.arange(n_layers), dims),
        layer_names=np.asarray(names),
    )


# ---------------------------------------------------------------- tasks
@validate_params(
    {"y": ["array-like"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def split_classes(y, *, random_state=0):
    """Split the classes of ``y`` at random into two disjoint halves A and B.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; at least 2 distinct classes.
    random_state : int, RandomState instance or None, default=0
        Draws the split.

    Returns
    -------
    classes_a, classes_b : ndarray
        The sorted classes of each half; together they hold every class of
        ``y`` once. With an odd number of classes, B has one more.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or has fewer than 2 classes.

    Examples
    --------
    >>> from skhead2toe.anb import split_classes
    >>> a, b = split_classes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], random_state=0)
    >>> len(a), len(b), sorted(set(a) | set(b)) == list(range(10))
    (5, 5, True)
    """
    classes = np.unique(np.asarray(y))
    if np.ndim(y) != 1 or classes.size < 2:
        raise ValueError(
            "y must be a 1-D array of labels with at least 2 classes to split, got "
            f"shape {np.shape(y)} with {classes.size} class(es)."
        )
    order = check_random_state(random_state).permutation(classes.size)
    half = classes.size // 2
    return np.sort(classes[order[:half]]), np.sort(classes[order[half:]])


def _check_halves(classes, classes_a):
    """Validate a user-given half A; return (classes_a, classes_b)."""
    classes_a = np.unique(np.asarray(classes_a))
    unknown = np.setdiff1d(classes_a, classes)
    if unknown.size:
        raise ValueError(
            f"classes_a must be classes of y; {unknown.tolist()} are not "
            f"(the classes are {classes.tolist()})."
        )
    classes_b = np.setdiff1d(classes, classes_a)
    if classes_a.size < 2 or classes_b.size < 2:
        raise ValueError(
            "classes_a must leave at least 2 classes in each half (task A and "
            f"task B), got {classes_a.size} in A and {classes_b.size} in B."
        )
    return classes_a, classes_b


def _task(X, y, classes):
    """Images of ``classes`` and their labels encoded as ``0 .. K-1``."""
    mask = np.isin(y, classes)
    return X[mask], np.searchsorted(classes, y[mask])


def _check_data(X, y, X_test, y_test, test_size, seed):
    """Train and test images (float32, N x C x H x W) and labels."""
    from sklearn.model_selection import train_test_split

    X = _as_images(X).numpy()
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be 1-D with one label per image: expected length {X.shape[0]}, "
            f"got shape {y.shape}."
        )
    if (X_test is None) != (y_test is None):
        raise ValueError("Give both X_test and y_test, or neither.")
    if X_test is None:
        return train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=seed
        )
    X_test = _as_images(X_test, "X_test").numpy()
    y_test = np.asarray(y_test)
    if y_test.shape != (X_test.shape[0],) or X_test.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X_test and y_test must match X's image shape {X.shape[1:]} with one "
            f"label per image; got {X_test.shape} and {y_test.shape}."
        )
    return X, X_test, y, y_test


def _standardize(X_train, X_test):
    """Scale pixels by the mean and std of the training images."""
    mean, std = X_train.mean(), X_train.std()
    std = std if std > 0 else 1.0
    return (X_train - mean) / std, (X_test - mean) / std


def _to_frame(rows, as_frame):
    if not as_frame:
        return rows
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "as_frame=True needs pandas, which is not installed: pip install pandas "
            "(or use as_frame=False for a list of dicts)."
        ) from exc
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- experiment
@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "X_test": ["array-like", None],
        "y_test": ["array-like", None],
        "test_size": [Interval(Real, 0, 1, closed="neither")],
        "classes_a": ["array-like", None],
        "n_values": ["array-like", None],
        "n_conv": [Interval(Integral, 1, None, closed="left")],
        "n_fc": [Interval(Integral, 1, None, closed="left")],
        "width": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "variants": ["array-like", str, None],
        "probe": ["boolean"],
        "as_frame": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def run_transfer_experiment(
    X,
    y,
    *,
    X_test=None,
    y_test=None,
    test_size=0.25,
    classes_a=None,
    n_values=None,
    n_conv=3,
    n_fc=2,
    width=16,
    epochs=20,
    batch_size=64,
    lr=0.02,
    weight_decay=5e-4,
    variants=None,
    probe=True,
    as_frame=False,
    random_state=0,
    verbose=False,
):
    """Yosinski et al.'s AnB / BnB experiment on one split, one seed.

    1. Split the classes into halves A and B (:func:`split_classes`), and the
       images into train and test sets (unless ``X_test`` is given).
       Pixels are standardised with the mean and standard deviation of the
       training images, the same for both tasks.
    2. Train *baseA* on A and *baseB* on B from scratch (:func:`make_cnn`,
       :func:`train_network`), and draw one untrained network for the
       random-filters control.
    3. For every depth ``n`` in ``n_values`` and every variant, build the
       network with :func:`transfer_network` (``BnB``/``BnB+`` from baseB,
       ``AnB``/``AnB+`` from baseA, ``random`` from the untrained network;
       frozen, or fine-tuned for ``+``), train it on B's training images and
       score it on B's test images. For one ``n`` all variants share the seed
       of the re-initialised layers and of the shuffling, so their differences
       are due to the copied layers only.
    4. With ``probe=True``, fit a linear probe
       (:func:`~skhead2toe.inspection.default_probe`, through
       :func:`~skhead2toe.inspection.probe_layers`) on the pooled output of
       each layer ``n`` of baseA (:func:`layer_features`) for task B, trained
       on B's training images and scored on B's test images: the
       per-layer transferability curve that goes with AnB; and the same on the
       untrained network as its control.

    Every network uses the same recipe (see :func:`train_network`).

    Parameters
    ----------
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images (uint8 is scaled to [0, 1] before standardisation).
    y : array-like of shape (n_samples,)
        Class labels; at least 4 classes, so that each half has 2.
    X_test : array-like of shape (n_test, H, W) or (n_test, C, H, W), default=None
        Test images; None: hold out ``test_size`` of ``X`` (stratified).
    y_test : array-like of shape (n_test,), default=None
        Their labels; given with ``X_test``.
    test_size : float, default=0.25
        Fraction of ``X`` held out for testing when ``X_test`` is None.
    classes_a : array-like, default=None
        The classes of task A (B gets the others); None: a random half drawn
        from ``random_state``.
    n_values : array-like of int, default=None
        Depths ``n`` to evaluate, each in ``1 .. L - 1`` with
        ``L = n_conv + n_fc``; None: all of them.
    n_conv : int, default=3
        Convolutional layers of the network (see :func:`make_cnn`).
    n_fc : int, default=2
        Dense layers, the output layer included.
    width : int, default=16
        Channels of the first conv layer.
    epochs : int, default=20
        Training epochs of every network.
    batch_size : int, default=64
        Mini-batch size.
    lr : float, default=0.02
        Initial learning rate of SGD (cosine schedule).
    weight_decay : float, default=5e-4
        L2 penalty on the trainable weights.
    variants : array-like of str, default=None
        Subset of :data:`TRANSFER_VARIANTS` to train; None: all five.
    probe : bool, default=True
        Add the per-layer probe rows (``"probe"`` for baseA's features,
        ``"probe random"`` for the untrained network's).
    as_frame : bool, default=False
        Return a pandas DataFrame instead of a list of dicts.
    random_state : int, RandomState instance or None, default=0
        Seeds the class split, the train/test split, every initialisation and
        every shuffling; recorded in the ``seed`` column when it is an int.
    verbose : int, default=False
        Print each network's accuracy as it is trained.

    Returns
    -------
    results : list of dict or pandas.DataFrame
        One row per trained network or probe, with :data:`RESULT_COLUMNS`:

        - ``seed``: ``random_state`` (None unless an int);
        - ``variant``: ``"baseA"``, ``"baseB"``, one of
          :data:`TRANSFER_VARIANTS`, ``"probe"`` or ``"probe random"``;
        - ``n``: number of copied layers (0 for the base networks; for the
          probes, the layer whose output is probed);
        - ``task``: ``"A"`` for baseA (scored on A's test images), else ``"B"``;
        - ``accuracy``: top-1 accuracy on the test images of ``task``.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it), the labels
        have fewer than 4 classes, or ``n_values`` / ``variants`` /
        ``classes_a`` hold invalid entries.

    See Also
    --------
    summarize_results : Mean and standard deviation over seeds.
    TransferCurvesDisplay : The paper's figure from these rows.

    References
    ----------
    Yosinski, J., Clune, J., Bengio, Y. and Lipson, H. (2014). How transferable
    are features in deep neural networks? NeurIPS.

    Examples
    --------
    >>> from skhead2toe.anb import run_transfer_experiment
    >>> from skhead2toe.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> rows = run_transfer_experiment(
    ...     X[:400], y[:400], n_values=[2], epochs=2, variants=["AnB"], probe=False
    ... )
    >>> [(r["variant"], r["n"], r["task"]) for r in rows]
    [('baseA', 0, 'A'), ('baseB', 0, 'B'), ('AnB', 2, 'B')]
    """
    import time

    rng = check_random_state(random_state)
    seed = int(random_state) if isinstance(random_state, Integral) else None
    n_layers = n_conv + n_fc
    n_values = _check_n_values(n_values, n_layers)
    variants = _check_variants(variants)
    X, X_test, y, y_test = _check_data(X, y, X_test, y_test, test_size, _seed(rng))
    classes = np.unique(y)
    if classes.size < 4:
        raise ValueError(
            f"y must have at least 4 classes (2 per half), got {classes.size}."
        )
    halves = (
        split_classes(classes, random_state=_seed(rng))
        if classes_a is None
        else _check_halves(classes, classes_a)
    )
    X, X_test = _standardize(X, X_test)
    (Xa, ya), (Xb, yb) = (_task(X, y, c) for c in halves)
    (Xa_test, ya_test), (Xb_test, yb_test) = (_task(X_test, y_test, c) for c in halves)
    arch = dict(
        image_size=X.shape[2:],
        in_channels=X.shape[1],
        n_conv=n_conv,
        n_fc=n_fc,
        width=width,
    )
    recipe = dict(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay
    )
    rows = []

    def record(variant, n, task, net, X_eval, y_eval, start):
        acc = score_network(net, X_eval, y_eval)
        rows.append(dict(seed=seed, variant=variant, n=n, task=task, accuracy=acc))
        if verbose:
            print(
                f"[seed {seed}] {variant:>6s} n={n} task {task}: accuracy "
                f"{acc:.4f} ({time.perf_counter() - start:.1f} s)",
                flush=True,
            )

    bases = {}
    for name, Xt, yt, Xe, ye, classes_t in (
        ("A", Xa, ya, Xa_test, ya_test, halves[0]),
        ("B", Xb, yb, Xb_test, yb_test, halves[1]),
    ):
        start = time.perf_counter()
        net = make_cnn(classes_t.size, **arch, random_state=_seed(rng))
        bases[name] = train_network(net, Xt, yt, **recipe, random_state=_seed(rng))
        record(f"base{name}", 0, name, bases[name], Xe, ye, start)
    bases["random"] = make_cnn(halves[1].size, **arch, random_state=_seed(rng))
    n_classes_b = halves[1].size
    for n in n_values:
        init_seed, shuffle_seed = _seed(rng), _seed(rng)
        for variant in variants:
            start = time.perf_counter()
            source = bases[variant[0] if variant[0] in "AB" else "random"]
            net = transfer_network(
                source,
                n,
                fine_tune=variant.endswith("+"),
                n_classes=n_classes_b,
                random_state=init_seed,
            )
            train_network(net, Xb, yb, **recipe, random_state=shuffle_seed)
            record(variant, n, "B", net, Xb_test, yb_test, start)
    if probe:
        for variant, net in zip(
            _PROBE_VARIANTS, (bases["A"], bases["random"]), strict=True
        ):
            scores = _probe_scores(net, Xb, yb, Xb_test, yb_test)
            rows += [
                dict(
                    seed=seed,
                    variant=variant,
                    n=n,
                    task="B",
                    accuracy=float(scores[n - 1]),
                )
                for n in n_values
            ]
    return _to_frame(rows, as_frame)


def _check_n_values(n_values, n_layers):
    if n_layers < 2:
        raise ValueError(f"n_conv + n_fc must be at least 2, got {n_layers}.")
    if n_values is None:
        return list(range(1, n_layers))
    values = np.asarray(n_values)
    if (
        values.ndim != 1
        or values.size == 0
        or not np.issubdtype(values.dtype, np.integer)
        or values.min() < 1
        or values.max() > n_layers - 1
    ):
        raise ValueError(
            f"n_values must be a non-empty list of integers in 1 .. {n_layers - 1} "
            f"(L - 1 for n_conv + n_fc = {n_layers} layers), got {n_values!r}."
        )
    return sorted({int(v) for v in values})


def _check_variants(variants):
    if variants is None:
        return list(TRANSFER_VARIANTS)
    variants = [variants] if isinstance(variants, str) else list(variants)
    unknown = [v for v in variants if v not in TRANSFER_VARIANTS]
    if unknown or not variants:
        raise ValueError(
            f"variants must be a non-empty subset of {list(TRANSFER_VARIANTS)}, got "
            f"{variants!r}."
        )
    return [v for v in TRANSFER_VARIANTS if v in variants]


def _probe_scores(net, X_train, y_train, X_test, y_test):
    """Test accuracy of a linear probe on each layer's pooled output of ``net``."""
    from .inspection import probe_layers

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


# ---------------------------------------------------------------- results
def _rows(results):
    """Results as a list of dicts (from a DataFrame or a list), validated."""
    if hasattr(results, "to_dict"):
        results = results.to_dict("records")
    rows = list(results)
    if not rows or any(
        not isinstance(r, dict) or set(RESULT_COLUMNS) - set(r) for r in rows
    ):
        raise ValueError(
            "results must be the non-empty output of run_transfer_experiment: rows "
            f"with the columns {list(RESULT_COLUMNS)}."
        )
    return rows


def _relative(rows, baseline):
    """Rows of the baseline's task with accuracy minus the baseline's, per seed."""
    base = {}
    for r in rows:
        if r["variant"] == baseline:
            if r["seed"] in base:
                raise ValueError(
                    f"baseline={baseline!r}: seed {r['seed']!r} has more than one "
                    "baseline row; give each run its own int random_state."
                )
            base[r["seed"]] = r
    if not base:
        raise ValueError(
            f"baseline={baseline!r} names no variant of the results; use e.g. 'baseB'."
        )
    missing = {r["seed"] for r in rows} - set(base)
    if missing:
        raise ValueError(
            f"baseline={baseline!r}: no baseline row for seed(s) {sorted(missing)}."
        )
    return [
        r | dict(accuracy=float(r["accuracy"]) - float(base[r["seed"]]["accuracy"]))
        for r in rows
        if r["task"] == base[r["seed"]]["task"]
    ]


@validate_params(
    {"results": "no_validation", "baseline": [str, None], "as_frame": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def summarize_results(results, *, baseline=None, as_frame=False):
    """Mean and standard deviation of the accuracy over seeds.

    Parameters
    ----------
    results : list of dict or pandas.DataFrame
        Rows of :func:`run_transfer_experiment`, e.g. several seeds
        concatenated.
    baseline : str, default=None
        A variant, usually ``"baseB"``: summarise each accuracy minus the
        baseline's accuracy of the same seed (paired differences; rows of the
        other task are dropped). Each seed draws its own class split, so task
        B's difficulty varies between seeds; the paired differences remove
        that variation. None: the accuracies themselves.
    as_frame : bool, default=False
        Return a pandas DataFrame instead of a list of dicts.

    Returns
    -------
    summary : list of dict or pandas.DataFrame
        One row per (``variant``, ``n``, ``task``), in the order of first
        appearance, with ``mean``, ``std`` (population standard deviation, 0
        for one seed), ``min``, ``max`` and ``n_seeds``.

    Raises
    ------
    ValueError
        If ``results`` is empty or lacks a column, or a seed has no (or more
        than one) ``baseline`` row.

    Examples
    --------
    >>> from skhead2toe.anb import summarize_results
    >>> rows = [
    ...     dict(seed=s, variant="AnB", n=1, task="B", accuracy=a)
    ...     for s, a in [(0, 0.8), (1, 0.9)]
    ... ]
    >>> summary = summarize_results(rows)
    >>> round(summary[0]["mean"], 3), summary[0]["n_seeds"]
    (0.85, 2)
    """
    rows = _rows(results)
    rows = rows if baseline is None else _relative(rows, baseline)
    groups = {}
    for r in rows:
        groups.setdefault((r["variant"], int(r["n"]), r["task"]), []).append(
            float(r["accuracy"])
        )
    summary = [
        dict(
            variant=variant,
            n=n,
            task=task,
            mean=float(np.mean(acc)),
            std=float(np.std(acc)),
            min=float(np.min(acc)),
            max=float(np.max(acc)),
            n_seeds=len(acc),
        )
        for (variant, n, task), acc in groups.items()
    ]
    return _to_frame(summary, as_frame)


#: Colours and markers of the paper's figure 2 (BnB blue, AnB red).
_STYLES = {
    "BnB": dict(color="tab:blue", marker="o"),
    "BnB+": dict(color="lightskyblue", marker="o", linestyle="--"),
    "AnB": dict(color="tab:red", marker="D"),
    "AnB+": dict(color="lightcoral", marker="D", linestyle="--"),
    "random": dict(color="tab:grey", marker="s", linestyle=":"),
}


class TransferCurvesDisplay:
    """Accuracy on task B versus the number of copied layers ``n``.

    The figure of Yosinski et al. (2014): for each variant (BnB, BnB+, AnB,
    AnB+, random) the mean test accuracy over seeds against ``n``, one small
    dot per seed, and baseB (a network trained on B from scratch, ``n = 0``) as
    a horizontal reference. Build it with :meth:`from_results`.

    Parameters
    ----------
    results : list of dict or pandas.DataFrame
        Rows of :func:`run_transfer_experiment`.

    Attributes
    ----------
    lines_ : dict of str to matplotlib.lines.Line2D
        The mean curve of each variant drawn.
    points_ : dict of str to matplotlib.collections.PathCollection
        The per-seed dots of each variant.
    base_line_ : matplotlib.lines.Line2D or None
        The baseB level (None without baseB rows).
    ax_ : matplotlib.axes.Axes
        Axes of the plot.
    figure_ : matplotlib.figure.Figure
        Figure of the plot.

    See Also
    --------
    run_transfer_experiment : The rows behind the plot.
    skhead2toe.plotting.TransferabilityCurveDisplay : The per-layer probe curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhead2toe.anb import TransferCurvesDisplay
    >>> rows = [
    ...     dict(seed=0, variant="baseB", n=0, task="B", accuracy=0.9),
    ...     dict(seed=0, variant="AnB", n=1, task="B", accuracy=0.88),
    ...     dict(seed=0, variant="AnB", n=2, task="B", accuracy=0.8),
    ... ]
    >>> disp = TransferCurvesDisplay.from_results(rows)
    >>> disp.lines_["AnB"].get_xdata().tolist()
    [1, 2]
    """

    def __init__(self, *, results):
        self.results = _rows(results)

    def plot(self, ax=None, *, variants=None, baseline=None, jitter=0.08):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        variants : list of str, default=None
            Variants to draw, among :data:`TRANSFER_VARIANTS`; None: those in
            the results.
        baseline : str, default=None
            Plot each accuracy minus that of this variant (``"baseB"``) for
            the same seed, as in :func:`summarize_results`: useful when the
            seeds draw different class splits. None: the accuracies.
        jitter : float, default=0.08
            Horizontal offset between the dots of neighbouring variants.

        Returns
        -------
        display : TransferCurvesDisplay
            ``self``, with the artists stored.
        """
        from .plotting import _pyplot

        if ax is None:
            _, ax = _pyplot().subplots(figsize=(6.4, 4.8))
        rows = self.results if baseline is None else _relative(self.results, baseline)
        present = {r["variant"] for r in rows}
        if variants is None:
            variants = [v for v in TRANSFER_VARIANTS if v in present]
        variants = _check_variants(variants)
        summary = summarize_results(rows)
        self.lines_, self.points_ = {}, {}
        for k, variant in enumerate(variants):
            self._plot_variant(ax, variant, rows, summary, (k - 2) * jitter)
        self.base_line_ = self._plot_base(ax, summary)
        ax.set_xlabel("layer n at which the network is chopped and retrained")
        ax.set_ylabel(
            "top-1 accuracy on task B (test)"
            if baseline is None
            else f"accuracy on B minus {baseline}'s (same seed)"
        )
        ax.set_title("Transfer A \u2192 B (Yosinski et al., 2014)")
        ns = sorted({int(r["n"]) for r in self.results})
        ax.set_xticks(ns)
        ax.legend(fontsize="small")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _plot_variant(self, ax, variant, rows, summary, offset):
        style = _STYLES[variant]
        rows = [r for r in rows if r["variant"] == variant]
        self.points_[variant] = ax.scatter(
            [int(r["n"]) + offset for r in rows],
            [r["accuracy"] for r in rows],
            s=12,
            color=style["color"],
            alpha=0.6,
        )
        mean = [s for s in summary if s["variant"] == variant]
        (self.lines_[variant],) = ax.plot(
            [s["n"] for s in mean], [s["mean"] for s in mean], label=variant, **style
        )

    @staticmethod
    def _plot_base(ax, summary):
        base = [s for s in summary if s["variant"] == "baseB"]
        if not base:
            return None
        ax.plot([0], [base[0]["mean"]], "o", color="white", markeredgecolor="k")
        return ax.axhline(
            base[0]["mean"], color="k", linestyle=":", linewidth=1, label="baseB"
        )

    @classmethod
    def from_results(cls, results, *, ax=None, **kwargs):
        """Plot the rows of :func:`run_transfer_experiment`.

        Parameters
        ----------
        results : list of dict or pandas.DataFrame
            Rows of one or several runs (seeds).
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : TransferCurvesDisplay
            The plotted display.
        """
        return cls(results=results).plot(ax=ax, **kwargs)
