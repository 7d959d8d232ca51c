"""Moved to :mod:`skhead2toe.feature_extraction._hooks`; kept for old imports."""

from .feature_extraction._hooks import *  # noqa: F403
from .feature_extraction._hooks import CLS_TOKEN_MODES, __all__  # noqa: F401
