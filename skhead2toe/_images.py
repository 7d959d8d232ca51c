"""Moved to :mod:`skhead2toe.feature_extraction._images`; kept for old imports."""

from .feature_extraction._images import *  # noqa: F403
from .feature_extraction._images import __all__  # noqa: F401
