"""The layered CNNs of the transfer experiment: building and copying them.

A network of :func:`make_cnn` is a ``torch.nn.Sequential`` of named layers, each
a ``Sequential`` itself (one *layer* in the sense of Yosinski et al.);
:func:`transfer_network` copies its first ``n`` layers into a new network.
torch is imported inside the functions only.
"""

import copy
from collections import OrderedDict
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from ._utils import _POSITIVE_INT, _seeded_torch

#: Constraints of the architecture parameters, shared with the experiment.
_ARCH_CONSTRAINTS = {
    "n_conv": [_POSITIVE_INT],
    "n_fc": [_POSITIVE_INT],
    "width": [_POSITIVE_INT],
}


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
            f"{name} must be a network built by skhead2toe.transfer.make_cnn (a "
            "torch.nn.Sequential of at least 2 Sequential layers, the last ending "
            f"with a Linear layer), got {type(net).__name__}."
        )
    return len(net)


@validate_params(
    {
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "image_size": [_POSITIVE_INT, tuple],
        "in_channels": [_POSITIVE_INT],
        **_ARCH_CONSTRAINTS,
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
    >>> from skhead2toe.transfer import make_cnn
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
    >>> from skhead2toe.transfer import make_cnn, transfer_network
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
