"""Moved to :mod:`skhead2toe.feature_extraction.featurizer`; kept for old imports."""

from .feature_extraction.featurizer import MultiLayerFeaturizer

__all__ = ["MultiLayerFeaturizer"]
