"""Moved to :mod:`skhead2toe.feature_extraction.backbones`; kept for old imports."""

from .feature_extraction.backbones import *  # noqa: F403
from .feature_extraction.backbones import (  # noqa: F401
    EMBEDDED,
    __all__,
    resolve_layers,
)
