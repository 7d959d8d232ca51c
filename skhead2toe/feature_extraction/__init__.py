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

Importing this subpackage imports torch; ``import skhead2toe`` does not.
"""

import importlib

from ._images import to_model_input
from .backbones import ALIASES, PRESETS, Backbone, build_backbone, list_layers
from .featurizer import MultiLayerFeaturizer

__all__ = [
    "ALIASES",
    "PRESETS",
    "Backbone",
    "MultiLayerFeaturizer",
    "build_backbone",
    "list_layers",
    "to_model_input",
]

# skhead2toe.inspection recognises a featurizer by looking for the module
# "skhead2toe.featurizer" in sys.modules (so that it never imports torch itself):
# load that old path with the class until it looks at the new home.
importlib.import_module("skhead2toe.featurizer")
