"""to_torch: a fitted featurizer-and-head pipeline as one torch module."""

import copy

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..feature_extraction.backbones import build_backbone
from ..feature_extraction.featurizer import MultiLayerFeaturizer
from ..linear_model._base import _GroupLassoBase
from ..linear_model._linear import LinearClassifierMixin
from ._graph import TapColumns, truncated_backbone

__all__ = ["ExportedPipeline", "to_torch"]

_HEADS = "GroupLassoClassifier, GroupLassoClassifierCV, LinearProbe or LinearProbeCV"
# the prediction rules the module reproduces: all columns, or re-normalised ones
_DESIGNS = (LinearClassifierMixin._predict_design, _GroupLassoBase._predict_design)
_CHECK_TOL = 1e-4  # relative to the features' scale (unit-norm layers: 1)


class ExportedPipeline(nn.Module):
    """A fitted Head2Toe pipeline as one module: images in, probabilities out.

    Built by :func:`to_torch`; the parameters below are what it assembles.

    **Input**: a float32 batch of shape ``(N, 3, S, S)``, RGB, values in
    ``[0, 1]``, where ``S = image_size`` (the featurizer's
    ``data_config_["image_size"]``). Resizing, grey-to-RGB and uint8 scaling are
    *not* done here (the featurizer does them before its network); the
    backbone's normalisation ``(x - mean) / std`` is. **Output**: class
    probabilities ``(N, K)``, columns ordered as :attr:`classes`.

    Parameters
    ----------
    backbone : torch.fx.GraphModule or None
        The network cut after its last used tap, returning the used columns of
        each tap (None when the head uses no feature).
    image_size : int
        Side ``S`` of the input images.
    mean, std : sequence of 3 float
        The backbone's input normalisation.
    coef : array-like of shape (n_features_used, K)
        Head coefficients of the used columns.
    intercept : array-like of shape (K,)
        Head intercept.
    classes : array-like of shape (K,)
        Class labels, the order of the output columns.
    columns : array-like of int of shape (n_features_used,)
        Featurizer output columns used, increasing.
    layer_names : sequence of str
        Layers holding a used column, in execution order.
    n_features_in : int
        Number of featurizer output columns.
    standard : tuple of two arrays or None, default=None
        ``(mean_, scale_)`` of the used columns (featurizer
        ``normalize="standard"``).
    renorm : array-like of int or None, default=None
        Layer id of each used column when the head re-normalises the columns of
        each layer to unit norm (``renormalize=True``).

    Attributes
    ----------
    n_features_used : int
        Number of featurizer columns the head uses.
    input_shape : tuple of int
        ``(3, S, S)``.
    last_layer : str or None
        The layer after which the backbone is cut (None: no backbone runs).

    See Also
    --------
    to_torch : Builds this module from a fitted pipeline.
    to_onnx : Writes it as an ONNX file.

    Examples
    --------
    A module without backbone (a head that uses no feature) predicts its
    intercept's softmax for every image:

    >>> import torch
    >>> m = ExportedPipeline(
    ...     None, image_size=8, mean=(0.5,) * 3, std=(0.5,) * 3,
    ...     coef=torch.zeros(0, 2), intercept=[0.0, 0.0], classes=["a", "b"],
    ...     columns=[], layer_names=[], n_features_in=10,
    ... )
    >>> m(torch.rand(3, 3, 8, 8)).tolist()
    [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]
    """

    def __init__(
        self,
        backbone,
        *,
        image_size,
        mean,
        std,
        coef,
        intercept,
        classes,
        columns,
        layer_names,
        n_features_in,
        standard=None,
        renorm=None,
    ):
        super().__init__()
        self.backbone = backbone
        self.image_size = int(image_size)
        self.input_shape = (3, self.image_size, self.image_size)
        self.classes = np.asarray(classes)
        self.columns = np.asarray(columns, dtype=np.int64)
        self.layer_names = tuple(str(name) for name in layer_names)
        self.n_features_in = int(n_features_in)
        self.n_features_used = len(self.columns)
        self.last_layer = self.layer_names[-1] if self.layer_names else None
        f32 = torch.float32
        mean = torch.tensor(tuple(mean), dtype=f32).view(1, 3, 1, 1)
        # as the featurizer: (x - mean) * (1 / std), the reciprocal in float32
        inv_std = 1.0 / torch.tensor(tuple(std), dtype=f32).view(1, 3, 1, 1)
        self.register_buffer("input_mean", mean)
        self.register_buffer("input_inv_std", inv_std)
        self.register_buffer("coef", torch.as_tensor(np.asarray(coef), dtype=f32))
        self.register_buffer("intercept", torch.as_tensor(intercept, dtype=f32))
        self._standard = standard is not None
        if self._standard:
            self.register_buffer(
                "feature_mean", torch.as_tensor(standard[0], dtype=f32)
            )
            self.register_buffer(
                "feature_scale", torch.as_tensor(standard[1], dtype=f32)
            )
        self._renorm = renorm is not None
        if self._renorm:
            _, inverse = np.unique(np.asarray(renorm), return_inverse=True)
            member = np.zeros((len(inverse), inverse.max() + 1), np.float32)
            member[np.arange(len(inverse)), inverse] = 1.0
            self.register_buffer("renorm_members", torch.as_tensor(member))
            self.register_buffer("renorm_index", torch.as_tensor(inverse))
        self.eval()

    def _normalize_input(self, images):
        if (
            images.dtype != self.input_mean.dtype
            or tuple(images.shape[1:]) != self.input_shape
        ):
            raise ValueError(
                f"expected a {self.input_mean.dtype} batch of shape (N, "
                f"{', '.join(map(str, self.input_shape))}) with values in [0, 1]; got "
                f"{images.dtype} of shape {tuple(images.shape)} (resize the images "
                f"to {self.image_size}x{self.image_size} first)"
            )
        x = (images - self.input_mean) * self.input_inv_std
        # channels-last, as the featurizer feeds its network (oneDNN is faster)
        return x.contiguous(memory_format=torch.channels_last)

    def features(self, images):
        """The used featurizer columns: ``featurizer.transform(images)[:, columns]``.

        Parameters
        ----------
        images : torch.Tensor of shape (N, 3, S, S)
            float32 RGB images in ``[0, 1]`` at the input size.

        Returns
        -------
        features : torch.Tensor of shape (N, n_features_used)
            float32 features (standardised when the featurizer standardises),
            before the head's re-normalisation.
        """
        x = self._normalize_input(images)
        if self.backbone is None:
            return x.new_zeros((x.shape[0], 0))
        z = torch.cat(self.backbone(x), dim=1)
        if self._standard:
            z = (z - self.feature_mean) / self.feature_scale
        return z

    def forward(self, images):
        """Class probabilities of a batch of images.

        Parameters
        ----------
        images : torch.Tensor of shape (N, 3, S, S)
            float32 RGB images in ``[0, 1]`` at the input size.

        Returns
        -------
        proba : torch.Tensor of shape (N, K)
            Probabilities, columns ordered as :attr:`classes`.
        """
        z = self.features(images)
        if self._renorm:
            norms = torch.sqrt((z * z) @ self.renorm_members)
            norms = torch.where(norms == 0, torch.ones_like(norms), norms)
            z = z / norms.index_select(1, self.renorm_index)
        return torch.softmax(z @ self.coef + self.intercept, dim=1)

    def extra_repr(self):
        """Input size, used layers and columns, classes.

        Returns
        -------
        text : str
            One line.
        """
        return (
            f"input_shape=(N, {', '.join(map(str, self.input_shape))}), "
            f"layers={len(self.layer_names)}, last_layer={self.last_layer!r}, "
            f"n_features_used={self.n_features_used}/{self.n_features_in}, "
            f"n_classes={len(self.classes)}"
        )


def to_torch(model, *, check=True):
    """A fitted pipeline as a torch module computing only what its head uses.

    The backbone is traced with :mod:`torch.fx` and cut after the last layer
    that holds a used feature; only the taps with used features are pooled
    (in the graph, right after their layer, by the featurizer's own pooling
    and per-layer normalisation), their used columns gathered, standardised
    (``normalize="standard"``) and re-normalised per layer (a head fitted with
    ``renormalize=True``) as the pipeline does, then the linear head and the
    softmax are applied. The used columns are the non-zero rows of the head's
    coefficients (all of ``selected_features_`` with ``renormalize=True``,
    whose norms need them).

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline
        A fitted ``Pipeline`` of a :class:`~skhead2toe.MultiLayerFeaturizer`
        and a :class:`~skhead2toe.GroupLassoClassifier`,
        :class:`~skhead2toe.GroupLassoClassifierCV`,
        :class:`~skhead2toe.linear_model.LinearProbe` or
        :class:`~skhead2toe.linear_model.LinearProbeCV` (``"passthrough"``
        steps are ignored).
    check : bool, default=True
        Run the featurizer and the module on two random images and raise if
        the module's :meth:`~ExportedPipeline.features` differ from the
        featurizer's columns by more than 1e-4 (relative to their scale).

    Returns
    -------
    module : ExportedPipeline
        On the CPU, in eval mode. It maps float32 images ``(N, 3, S, S)`` in
        ``[0, 1]``, ``S = module.image_size``, to probabilities ``(N, K)``.
        Use it under :func:`torch.inference_mode`; :func:`torch.export.export`
        works on it (a dynamic batch axis included); ``torch.jit.script`` does
        not (the pooling rule is Python computed from static shapes).

    Raises
    ------
    TypeError
        If ``model`` is not such a pipeline (a head alone, another step), or
        the backbone cannot be traced by :mod:`torch.fx`.
    sklearn.exceptions.NotFittedError
        If a step is not fitted.
    RuntimeError
        If ``check`` finds that the traced network does not reproduce the
        featurizer.

    See Also
    --------
    to_onnx : Writes the module as an ONNX file.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.pipeline import make_pipeline
    >>> from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer
    >>> from skhead2toe.export import to_torch
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((12, 3, 32, 32), dtype=np.float32)
    >>> y = np.arange(12) % 2
    >>> pipe = make_pipeline(
    ...     MultiLayerFeaturizer(image_size=32, target_size=64),
    ...     GroupLassoClassifier(alpha=1e-2, keep_fraction=0.01),
    ... ).fit(X, y)
    >>> module = to_torch(pipe)
    >>> module.input_shape, module.n_features_used < module.n_features_in
    ((3, 32, 32), True)
    >>> with torch.inference_mode():
    ...     proba = module(torch.from_numpy(X)).numpy()
    >>> bool(np.allclose(proba, pipe.predict_proba(X), atol=1e-5))
    True
    """
    featurizer, head = _split_pipeline(model)
    columns, renorm = _used_columns(head)
    network = _network_copy(featurizer)
    names, taps, layer_names = _taps(featurizer, columns)
    backbone = None
    if taps:
        backbone = truncated_backbone(
            network,
            names,
            taps,
            pre_logits="pre_logits" in list(featurizer.layer_names_),
        )
    standard = None
    if featurizer.normalize == "standard":
        standard = (featurizer.mean_[columns], featurizer.scale_[columns])
    config = featurizer.data_config_
    module = ExportedPipeline(
        backbone,
        image_size=config["image_size"],
        mean=config["mean"],
        std=config["std"],
        coef=head._W[columns],
        intercept=head._b,
        classes=head.classes_,
        columns=columns,
        layer_names=layer_names,
        n_features_in=featurizer.n_features_out_,
        standard=standard,
        renorm=renorm,
    )
    if check and taps:
        _check_features(module, featurizer, network)
    return module


def _split_pipeline(model):
    """The fitted featurizer and head of ``model``, with clear errors."""
    if not isinstance(model, Pipeline):
        raise TypeError(_not_a_pipeline(model))
    steps = [(n, s) for n, s in model.steps if s is not None and s != "passthrough"]
    kinds = [type(s).__name__ for _, s in steps]
    if len(steps) != 2 or not isinstance(steps[0][1], MultiLayerFeaturizer):
        raise TypeError(
            "export supports a Pipeline of a MultiLayerFeaturizer and a linear head "
            f"({_HEADS}); got a Pipeline of {kinds}"
        )
    (_, featurizer), (name, head) = steps
    supported = isinstance(head, LinearClassifierMixin)
    if not supported or type(head)._predict_design not in _DESIGNS:
        raise TypeError(
            f"the pipeline's last step {name!r} is a {type(head).__name__}; export "
            f"supports {_HEADS}"
        )
    msg = "This %(name)s in the pipeline is not fitted yet: fit it before exporting."
    check_is_fitted(featurizer, "layer_names_", msg=msg)
    check_is_fitted(head, "_W", msg=msg)
    if head.n_features_in_ != featurizer.n_features_out_:
        raise ValueError(
            f"the head was fitted on {head.n_features_in_} features but the "
            f"featurizer makes {featurizer.n_features_out_}: they were not fitted "
            "together"
        )
    return featurizer, head


def _not_a_pipeline(model):
    kind = type(model).__name__
    if isinstance(model, LinearClassifierMixin):
        return (
            f"got a {kind} alone: a head fitted on features has no featurizer to "
            "export; export the Pipeline(MultiLayerFeaturizer, head) fitted on images"
        )
    if isinstance(model, MultiLayerFeaturizer):
        return "got a MultiLayerFeaturizer alone: export a pipeline with its head"
    return (
        f"export needs a fitted sklearn Pipeline of a MultiLayerFeaturizer and a "
        f"linear head ({_HEADS}); got {kind}"
    )


def _used_columns(head):
    """Featurizer columns the head reads and, when it re-normalises, their layers."""
    renorm = getattr(head, "_renorm", None)
    if renorm is not None:
        return np.asarray(renorm[0], np.int64), np.asarray(renorm[1])
    return np.flatnonzero(np.any(head._W != 0, axis=1)), None


def _network_copy(featurizer):
    """A CPU copy of the featurizer's network (built from its parameters if need be)."""
    model = getattr(featurizer, "_model", None)
    if model is not None:
        return copy.deepcopy(model).cpu().eval()
    built = build_backbone(
        featurizer.backbone,
        pretrained=featurizer.pretrained,
        seed=featurizer.seed_,
        image_size=featurizer.image_size,
        preprocessing=featurizer.preprocessing,
    )
    return built.model.eval()


def _taps(featurizer, columns):
    """Module name and :class:`TapColumns` of every tap holding a used column."""
    names, taps, layers = [], [], set()
    for tap in featurizer._taps():  # column order: size-major (size, layer) blocks
        lo, hi = np.searchsorted(columns, [tap.start, tap.stop])
        if lo == hi:
            continue
        names.append(tap.name)
        layers.add(tap.name)
        index = columns[lo:hi] - tap.start
        taps.append(
            TapColumns(tap.target_size, tap.unit, tap.n_prefix, tap.cls_token, index)
        )
    order = [str(n) for n in featurizer.layer_names_ if n in layers]
    return names, taps, order


def _check_features(module, featurizer, network):
    """Raise unless the module's features equal the featurizer's on a probe batch."""
    probe = copy.copy(featurizer)  # the same fit, run on the CPU copy, no cache
    probe.set_params(cache=None, progress=False, device="cpu", num_workers=0)
    probe._model, probe._model_device = network, torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    images = torch.rand((2, *module.input_shape), generator=gen)
    expected = probe.transform(images.numpy())[:, module.columns]
    with torch.inference_mode():
        got = module.features(images).numpy()
    error = np.abs(got - expected) / max(1.0, float(np.abs(expected).max()))
    if error.max() > _CHECK_TOL:
        j = int(np.argmax(error.max(axis=0)))
        layer = featurizer.layer_names_[featurizer.feature_groups_[module.columns[j]]]
        raise RuntimeError(
            f"the traced network does not reproduce the featurizer: column "
            f"{module.columns[j]} (layer {layer!r}) differs by {error.max():.3g} "
            "on a probe batch; the layer's output may depend on Python state that "
            "torch.fx cannot trace"
        )
