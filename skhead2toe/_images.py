"""Moved to :mod:`skhead2toe.feature_extraction._images`; kept for old imports."""

from .feature_extraction._images import ImageSource, as_source, resize, to_model_input

__all__ = ["ImageSource", "as_source", "resize", "to_model_input"]
