"""Tap intermediate outputs of a network: Head2Toe pooling and per-layer scaling.

A :class:`Tap` is attached to one module with a forward hook. The hook pools the
module's output *inside the forward pass*, on the device, and writes the pooled,
optionally unit-normalised vector into a slice of a per-batch buffer. Pooling in the
hook keeps memory small (the full activation is never stored) and protects the tap
from later in-place operations such as ``ReLU(inplace=True)``, which would otherwise
overwrite a stored reference.

Pooling follows Head2Toe (Evci et al., 2022):

- an image-like output ``(N, C, H, W)`` with ``C >= target_size`` is averaged
  globally; otherwise it is average-pooled with a square ``k x k`` window and stride
  ``k`` (partial windows at the border are averaged over their valid pixels), where
  ``k`` is the smallest window for which ``C * ceil(H / k) * ceil(W / k)`` does not
  exceed ``target_size``, i.e. the pooled size is as close as possible to
  ``target_size`` without exceeding it;
- a token output ``(N, T, C)`` is pooled the same way along the tokens;
- a vector output ``(N, C)`` is kept as it is.

Several target sizes can be tapped in one forward pass: a module then carries one
:class:`Tap` per size, each pooled and normalised on its own
(:func:`target_sizes`, :func:`block_layout`).
"""

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import InvalidParameterError

__all__ = [
    "ShapeProbe",
    "Tap",
    "TapSet",
    "block_layout",
    "forward",
    "pool_output",
    "pooled_dim",
    "pooling_window",
    "prefix_tokens",
    "same_columns",
    "target_sizes",
    "unit_normalize",
]

CLS_TOKEN_MODES = ("pool", "only", "separate")


def pooling_window(spatial, channels, target_size):
    """Square pooling window of the Head2Toe rule.

    Parameters
    ----------
    spatial : tuple of int
        Spatial extent of one channel: ``(H, W)`` for images, ``(T,)`` for tokens.
    channels : int
        Number of channels ``C``.
    target_size : int
        Largest number of pooled features wanted from this output.

    Returns
    -------
    window : int
        Window (and stride) ``k``. ``1`` means no pooling; ``max(spatial)`` means a
        global average.
    """
    spatial = tuple(int(s) for s in spatial)
    if channels >= target_size:
        return max(spatial)
    for k in range(1, max(spatial) + 1):
        if channels * math.prod(-(-s // k) for s in spatial) <= target_size:
            return k
    return max(spatial)  # not reached: k = max(spatial) gives C <= target_size


def target_sizes(target_size):
    """The target sizes of a ``target_size`` parameter, in the given order.

    Parameters
    ----------
    target_size : int or tuple or list of int
        One size, or a non-empty sequence of distinct sizes, each ``>= 1``.

    Returns
    -------
    sizes : tuple of int
        ``(target_size,)`` for an int, else the sizes in the user's order.

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` for an empty sequence, an element that is not an int
        ``>= 1`` (bools included) or a repeated size.

    Examples
    --------
    >>> target_sizes(1024)
    (1024,)
    >>> target_sizes([2048, 512])
    (2048, 512)
    """
    if isinstance(target_size, Integral):
        return (int(target_size),)
    sizes = list(target_size)
    bad = [
        s for s in sizes if isinstance(s, bool) or not isinstance(s, Integral) or s < 1
    ]
    if not sizes:
        problem = "it is empty"
    elif bad:
        problem = f"{bad[0]!r} is not an int >= 1"
    elif len(set(sizes)) != len(sizes):
        problem = "it repeats a size"
    else:
        return tuple(int(s) for s in sizes)
    raise InvalidParameterError(
        "The 'target_size' parameter of MultiLayerFeaturizer must be an int >= 1 "
        "or a non-empty tuple or list of distinct ints >= 1. Got "
        f"{target_size!r}: {problem}."
    )


def block_layout(sizes, dims):
    """Layer and target size of every column of size-major (size, layer) blocks.

    Parameters
    ----------
    sizes : sequence of int
        Target sizes, one per row of ``dims``.
    dims : array-like of int, shape (n_sizes, n_layers)
        Columns of each layer at each size (0: the layer is not tapped at that
        size). The columns are ordered size by size, layers in order within one
        size.

    Returns
    -------
    groups : ndarray of int, shape (n_columns,)
        Layer index of each column.
    column_sizes : ndarray of int, shape (n_columns,)
        Target size of each column.

    Examples
    --------
    >>> groups, column_sizes = block_layout([4, 8], [[2, 1], [3, 0]])
    >>> groups.tolist(), column_sizes.tolist()
    ([0, 0, 1, 0, 0, 0], [4, 4, 4, 8, 8, 8])
    """
    dims = np.asarray(dims, dtype=np.int64).reshape(len(sizes), -1)
    layers = np.arange(dims.shape[1])
    groups = np.concatenate([np.repeat(layers, row) for row in dims])
    column_sizes = np.repeat(np.asarray(sizes, dtype=np.int64), dims.sum(axis=1))
    return groups.astype(np.int64), column_sizes


def pooled_dim(shape, target_size, *, n_prefix=0, cls_token="pool"):
    """Number of features a tap produces for one image.

    Parameters
    ----------
    shape : tuple of int
        Shape of the module output for one image, without the batch axis:
        ``(C,)``, ``(T, C)`` or ``(C, H, W)``.
    target_size : int
        See :func:`pooling_window`.
    n_prefix : int, default=0
        Number of prefix (class and register) tokens of a token output.
    cls_token : {"pool", "only", "separate"}, default="pool"
        How a token output with prefix tokens is treated, see :class:`Tap`.

    Returns
    -------
    dim : int
        Length of the pooled feature vector.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 3:
        channels, spatial = shape[0], shape[1:]
    elif len(shape) == 2:
        (n_tokens, channels), spatial = shape, None
        if n_prefix and cls_token == "only":
            return channels
        if n_prefix and cls_token == "separate":
            budget = target_size - channels
            n_patch = n_tokens - n_prefix
            if budget < channels:
                return 2 * channels
            k = pooling_window((n_patch,), channels, budget)
            return channels + channels * -(-n_patch // k)
        spatial = (n_tokens,)
    else:
        raise ValueError(f"cannot pool an output of per-image shape {shape}")
    k = pooling_window(spatial, channels, target_size)
    return channels * math.prod(-(-s // k) for s in spatial)


def _pool_tokens(x, target_size):
    """Pool tokens ``(N, T, C)`` to ``(N, C * t)`` along the token axis."""
    n_tokens, channels = x.shape[1], x.shape[2]
    k = pooling_window((n_tokens,), channels, target_size)
    if k == 1:
        return x.transpose(1, 2).flatten(1)
    if k >= n_tokens:
        return x.mean(dim=1)
    pooled = F.avg_pool1d(x.transpose(1, 2), k, k, ceil_mode=True)
    return pooled.flatten(1)


def pool_output(x, target_size, *, n_prefix=0, cls_token="pool"):
    """Pool one module output to a ``(N, d)`` matrix by the Head2Toe rule.

    Parameters
    ----------
    x : torch.Tensor
        Module output of shape ``(N, C)``, ``(N, T, C)`` or ``(N, C, H, W)``.
    target_size : int
        See :func:`pooling_window`.
    n_prefix : int, default=0
        Number of prefix tokens (class and register tokens) of a token output.
    cls_token : {"pool", "only", "separate"}, default="pool"
        ``"pool"`` pools prefix tokens with the patch tokens; ``"only"`` keeps the
        first (class) token alone; ``"separate"`` keeps the class token and appends
        the patch tokens pooled to ``target_size - C`` features (or globally when
        that budget is smaller than ``C``). Ignored when ``n_prefix == 0``.

    Returns
    -------
    pooled : torch.Tensor
        Pooled features of shape ``(N, pooled_dim(x.shape[1:], ...))``, channel
        major (all positions of channel 0 first).
    """
    if x.ndim == 2:
        return x
    if x.ndim == 4:
        channels, spatial = x.shape[1], x.shape[2:]
        k = pooling_window(spatial, channels, target_size)
        if k == 1:
            return x.flatten(1)
        if k >= max(spatial):
            return x.mean(dim=(2, 3))
        return F.avg_pool2d(x, k, k, ceil_mode=True).flatten(1)
    if x.ndim == 3:
        if n_prefix and cls_token == "only":
            return x[:, 0]
        if n_prefix and cls_token == "separate":
            cls, patches = x[:, 0], x[:, n_prefix:]
            budget = target_size - x.shape[2]
            if budget < x.shape[2]:
                return torch.cat([cls, patches.mean(dim=1)], dim=1)
            return torch.cat([cls, _pool_tokens(patches, budget)], dim=1)
        return _pool_tokens(x, target_size)
    raise ValueError(f"cannot pool an output of shape {tuple(x.shape)}")


def prefix_tokens(model, output):
    """Number of prefix (class and register) tokens in a token output.

    Parameters
    ----------
    model : torch.nn.Module
        The network (a timm ViT has ``num_prefix_tokens`` and
        ``patch_embed.num_patches``).
    output : torch.Tensor
        One module output.

    Returns
    -------
    n_prefix : int
        The model's prefix tokens when ``output`` is ``(N, T, C)`` with ``T``
        the patches plus those tokens; 0 otherwise.

    Examples
    --------
    >>> prefix_tokens(torch.nn.Identity(), torch.zeros(2, 5, 3))
    0
    """
    if output.ndim != 3:
        return 0
    n_prefix = int(getattr(model, "num_prefix_tokens", 0) or 0)
    patch_embed = getattr(model, "patch_embed", None)
    n_patches = getattr(patch_embed, "num_patches", None)
    if n_prefix and n_patches is not None and output.shape[1] == n_patches + n_prefix:
        return n_prefix
    return 0


def same_columns(a, b):
    """Whether two pooled taps repeat each other exactly.

    Exact equality: identity modules and EfficientNet's pooled ``bn2`` vs the
    pre-logits repeat bit for bit, while nearly equal layers (ConvNeXt blocks at
    random init, whose layer scale is 1e-6) are genuinely different taps.

    Parameters
    ----------
    a, b : torch.Tensor
        Pooled features of two taps on the same probe batch.

    Returns
    -------
    same : bool
        Same shape and the same values.

    Examples
    --------
    >>> same_columns(torch.ones(2, 3), torch.ones(2, 3))
    True
    """
    return a.shape == b.shape and torch.equal(a, b)


def unit_normalize(x, eps=1e-12):
    """Scale each row to unit L2 norm; all-zero rows stay zero.

    Parameters
    ----------
    x : torch.Tensor of shape (N, d)
        Features of one layer.
    eps : float, default=1e-12
        Norms below ``eps`` are treated as ``eps`` (so zero rows stay zero).

    Returns
    -------
    x : torch.Tensor of shape (N, d)
        Row-normalised features.
    """
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(eps)


@dataclass
class Tap:
    """One tapped module: how its output is pooled and where it is written.

    Parameters
    ----------
    name : str
        Qualified module name (``"pre_logits"`` for the model's pooled head input).
    target_size : int
        See :func:`pooling_window`.
    unit : bool
        Whether the pooled vector is scaled to unit L2 norm per image.
    cls_token : {"pool", "only", "separate"}
        See :func:`pool_output`.
    n_prefix : int
        Number of prefix tokens in this output (0 for image-like outputs).
    start, stop : int
        Column slice of this tap in the batch buffer.
    """

    name: str
    target_size: int
    unit: bool = True
    cls_token: str = "pool"
    n_prefix: int = 0
    start: int = 0
    stop: int = 0

    def features(self, output):
        """Pool (and normalise) one module output into float32 ``(N, d)``.

        Parameters
        ----------
        output : torch.Tensor
            The tapped module's output, ``(N, C)``, ``(N, T, C)`` or
            ``(N, C, H, W)``.

        Returns
        -------
        features : torch.Tensor of shape (N, stop - start)
            Pooled float32 features, unit-normalised when ``unit``.
        """
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"layer {self.name!r} returned {type(output).__name__}, not a "
                "tensor; tap one of its submodules instead"
            )
        pooled = pool_output(
            output.detach(),
            self.target_size,
            n_prefix=self.n_prefix,
            cls_token=self.cls_token,
        ).float()
        return unit_normalize(pooled) if self.unit else pooled


def forward(model, x, *, pre_logits=False):
    """Run ``model`` on ``x``; with ``pre_logits`` return the pooled head input.

    Parameters
    ----------
    model : torch.nn.Module
        The network; with ``pre_logits=True`` a timm model (``forward_features``
        and ``forward_head``).
    x : torch.Tensor
        Input batch.
    pre_logits : bool, default=False
        Return ``forward_head(forward_features(x), pre_logits=True)`` and skip the
        classifier, instead of ``model(x)``.

    Returns
    -------
    out : torch.Tensor
        Pre-logits or the model's output.
    """
    if pre_logits:
        return model.forward_head(model.forward_features(x), pre_logits=True)
    return model(x)


class _StopForward(Exception):
    """Raised by the last tap to skip the rest of the network."""


class TapSet:
    """Hooks for a set of taps writing into one ``(N, D)`` buffer per batch.

    Use as a context manager: hooks are registered on entry and removed on exit,
    so the model is left as it was found.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    taps : list of Tap
        Taps with their column slices set; ``"pre_logits"`` is filled by
        :meth:`run` from the model's ``forward_head(..., pre_logits=True)``.
        Several taps may name one module (one per target size): its output is
        then pooled once per tap, each into its own slice.
    stop_after : str or None, default=None
        Name of the tap after which the forward pass is abandoned (no later tap
        needs the rest of the network).
    """

    def __init__(self, model, taps, *, stop_after=None):
        self.model = model
        self.taps = list(taps)
        self.stop_after = stop_after
        self.buffer = None
        self._handles = []
        self._groups = {}
        for tap in self.taps:
            self._groups.setdefault(tap.name, []).append(tap)

    def __enter__(self):
        modules = dict(self.model.named_modules())
        for name, group in self._groups.items():
            if name != "pre_logits":
                hook = self._make_hook(name, group)
                self._handles.append(modules[name].register_forward_hook(hook))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.buffer = None
        return False

    def _write(self, group, output):
        for tap in group:
            self.buffer[:, tap.start : tap.stop] = tap.features(output)

    def _make_hook(self, name, group):
        stop = name == self.stop_after

        def hook(module, args, output):
            if name in self._done:
                return  # a module called twice is tapped at its first call
            self._done.add(name)
            self._write(group, output)
            if stop:
                raise _StopForward

        return hook

    def run(self, x, *, n_features):
        """Run the model on one batch and return the filled ``(N, D)`` buffer.

        Parameters
        ----------
        x : torch.Tensor of shape (N, 3, H, W)
            Preprocessed batch on the model's device.
        n_features : int
            Total number of columns ``D``.

        Returns
        -------
        buffer : torch.Tensor of shape (N, D)
            float32 features on the model's device.
        """
        self.buffer = torch.empty(len(x), n_features, device=x.device)
        self._done = set()
        head = self._groups.get("pre_logits")
        try:
            out = forward(self.model, x, pre_logits=head is not None)
            if head is not None:
                self._write(head, out)
        except _StopForward:
            pass
        return self.buffer


class ShapeProbe:
    """Record the order, shape and raw pooled values of candidate taps.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    names : list of str
        Candidate module names (``"pre_logits"`` allowed).
    """

    def __init__(self, model, names):
        self.model = model
        self.names = list(names)
        self.order = []
        self.outputs = {}

    def run(self, x):
        """Run ``x`` through the model; fill :attr:`order` and :attr:`outputs`.

        Parameters
        ----------
        x : torch.Tensor
            A probe batch.

        Returns
        -------
        self : ShapeProbe
            With ``order`` (names in execution order) and ``outputs`` filled.
        """
        modules = dict(self.model.named_modules())
        handles = []
        for name in self.names:
            if name != "pre_logits":
                handles.append(modules[name].register_forward_hook(self._hook(name)))
        try:
            want = "pre_logits" in self.names
            out = forward(self.model, x, pre_logits=want)
            if want:
                self._record("pre_logits", out)
        finally:
            for handle in handles:
                handle.remove()
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise ValueError(
                f"layers {missing} were never called in the forward pass (when "
                "'pre_logits' is tapped the classifier does not run); choose "
                "modules that the model uses"
            )
        return self

    def _hook(self, name):
        def hook(module, args, output):
            self._record(name, output)

        return hook

    def _record(self, name, output):
        if name in self.outputs:
            return  # a module called twice is tapped at its first call
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"layer {name!r} returned {type(output).__name__}, not a tensor; "
                "tap one of its submodules instead"
            )
        if output.ndim not in (2, 3, 4):
            raise ValueError(
                f"layer {name!r} returned an output of shape {tuple(output.shape)}; "
                "only (N, C), (N, T, C) and (N, C, H, W) outputs can be tapped"
            )
        self.order.append(name)
        self.outputs[name] = output.detach().float().clone()
