"""Feature extraction: pooled features from every layer of a frozen backbone.

The Head2Toe featurizer (Evci et al., ICML 2022) and what it is built from.

Public names
------------
MultiLayerFeaturizer
    The scikit-learn transformer: images in, one float32 row per image out.
list_layers
    Names of the layers of a backbone that can be tapped.
build_backbone, Backbone
    A backbone name (or module) to a network, its weights and its preprocessing.
ALIASES, PRESETS
    Friendly backbone names and layer presets.
to_model_input
    A loaded image batch to the normalised input a backbone takes.
dask_transform
    Extraction on Dask: images or file paths to a lazy array of features.

Modules
-------
featurizer
    :class:`MultiLayerFeaturizer`.
backbones
    Name to timm model, weights, data configuration and layer presets.
_hooks
    Forward hooks that pool and scale each tapped layer inside the forward pass.
_images
    Arrays, tensors, file paths and PIL images to batches, with clear errors.
_cache
    The per-image on-disk feature cache.
_dask
    Extraction chunk by chunk on a Dask cluster, one backbone per worker.

Names are loaded on first use, so importing this subpackage (or its torch-free
``_cache`` module) does not import torch.
"""

from .._lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    globals(),
    {
        ".backbones": [
            "ALIASES",
            "PRESETS",
            "Backbone",
            "build_backbone",
            "list_layers",
        ],
        ".featurizer": ["MultiLayerFeaturizer"],
        "._dask": ["dask_transform"],
        "._images": ["to_model_input"],
    },
)
