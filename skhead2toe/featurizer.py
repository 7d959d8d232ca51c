"""Moved to :mod:`skhead2toe.feature_extraction.featurizer`; kept for old imports."""

from .feature_extraction.featurizer import *  # noqa: F403
from .feature_extraction.featurizer import __all__  # noqa: F401
