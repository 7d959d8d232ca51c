"""Moved to :mod:`skhead2toe.feature_extraction._cache`; kept for old imports."""

from ._io import atomic_write
from .feature_extraction._cache import MAGIC, FeatureCache, cache_dir, params_key

__all__ = ["MAGIC", "FeatureCache", "atomic_write", "cache_dir", "params_key"]
