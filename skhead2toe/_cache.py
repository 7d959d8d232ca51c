"""Moved to :mod:`skhead2toe.feature_extraction._cache`; kept for old imports."""

from ._io import atomic_write  # noqa: F401
from .feature_extraction._cache import *  # noqa: F403
from .feature_extraction._cache import MAGIC, __all__  # noqa: F401
