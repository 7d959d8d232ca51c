"""Plots in scikit-learn's Display style (matplotlib is optional).

Each ``*Display`` stores the data to plot; ``plot`` draws it and keeps the
matplotlib artists as attributes ending in ``_``; class methods build a display
from fitted objects or results and plot it. matplotlib is imported only when
plotting: ``import skhead2toe.plotting`` works without it.

The displays: :class:`LayerImportanceDisplay` (how a group-lasso head's
selection spreads over the layers), :class:`TransferabilityCurveDisplay` (the
probe score of each layer, with its random-weights control),
:class:`RegularizationPathDisplay` (CV score and sparsity along the group-lasso
path) and :class:`TransferCurvesDisplay` (Yosinski et al.'s AnB / BnB curves).

Notes
-----
One private module per display (import the names from this package):
``_importances`` (:class:`LayerImportanceDisplay`), ``_probes``
(:class:`TransferabilityCurveDisplay`), ``_path``
(:class:`RegularizationPathDisplay`) and ``_transfer``
(:class:`TransferCurvesDisplay`); ``_base`` holds what they share: their base
class, matplotlib on demand, new axes, the layer axis and the input checks.
"""

from ._importances import LayerImportanceDisplay
from ._path import RegularizationPathDisplay
from ._probes import TransferabilityCurveDisplay
from ._transfer import TransferCurvesDisplay

__all__ = [
    "LayerImportanceDisplay",
    "RegularizationPathDisplay",
    "TransferCurvesDisplay",
    "TransferabilityCurveDisplay",
]
