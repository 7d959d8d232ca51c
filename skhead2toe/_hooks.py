"""Moved to :mod:`skhead2toe.feature_extraction._hooks`; kept for old imports."""

from .feature_extraction._hooks import (
    CLS_TOKEN_MODES,
    ShapeProbe,
    Tap,
    TapSet,
    forward,
    pool_output,
    pooled_dim,
    pooling_window,
    unit_normalize,
)

__all__ = [
    "CLS_TOKEN_MODES",
    "ShapeProbe",
    "Tap",
    "TapSet",
    "forward",
    "pool_output",
    "pooled_dim",
    "pooling_window",
    "unit_normalize",
]
