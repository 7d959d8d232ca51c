"""Head2Toe for scikit-learn.

Select features from every layer of a frozen vision backbone with a certified
multinomial group-lasso head (Evci et al., ICML 2022), and analyse how transferable
each layer is (Yosinski et al., NeurIPS 2014).

Heavy dependencies (torch, timm) are imported lazily: ``import skhead2toe`` is fast.
"""

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "GroupLassoClassifier": "skhead2toe.linear_model",
    "GroupLassoClassifierCV": "skhead2toe.linear_model",
    "alpha_max": "skhead2toe.linear_model",
    "MultiLayerFeaturizer": "skhead2toe.feature_extraction",
    "list_layers": "skhead2toe.feature_extraction",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skhead2toe' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
