"""Head2Toe for scikit-learn.

Select features from every layer of a frozen vision backbone with a certified
multinomial group-lasso head (Evci et al., ICML 2022), and analyse how transferable
each layer is (Yosinski et al., NeurIPS 2014).

Heavy dependencies (torch, timm) are imported lazily: ``import skhead2toe`` is fast.
"""

from ._lazy import lazy_attributes

__version__ = "0.1.0.dev0"

__getattr__, __dir__, __all__ = lazy_attributes(
    globals(),
    {
        ".linear_model": [
            "GroupLassoClassifier",
            "GroupLassoClassifierCV",
            "alpha_max",
        ],
        ".feature_extraction": ["MultiLayerFeaturizer", "list_layers"],
    },
)
