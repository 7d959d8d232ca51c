"""Moved to :mod:`skhead2toe.feature_extraction.backbones`; kept for old imports."""

from .feature_extraction.backbones import (
    ALIASES,
    EMBEDDED,
    PRESETS,
    Backbone,
    build_backbone,
    list_layers,
    resolve_layers,
)

__all__ = [
    "ALIASES",
    "EMBEDDED",
    "PRESETS",
    "Backbone",
    "build_backbone",
    "list_layers",
    "resolve_layers",
]
