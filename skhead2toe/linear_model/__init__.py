"""Multinomial logistic regression with a group-lasso penalty (the Head2Toe head).

How the code is organised (each concept in one module):

* ``_group_lasso`` and ``_cv``: the estimators, thin: validate, assemble a problem,
  call a backend, select and refit (shared code in ``_base``).
* ``_problem``: the objective -- groups, value, gradient, prox, duality gap and step
  size, one definition for every solver and backend.
* ``_working_set``: the outer loop (certificate pass, working sets, stopping); the
  inner solvers ``_apg`` (accelerated proximal gradient), ``_newton`` (proximal
  Newton) and ``_lbfgs`` (smooth fits), each returning a ``_results.InnerResult``.
* ``_numpy`` and ``_torch``: the array backends; ``_backend`` picks one.
* ``_path``: ``alpha_max``, alpha grids and warm-started paths.
* ``_probe``: ``LinearProbeCV``, the tuned L2 probe solved in the row space;
  ``_linear``: the prediction every fitted head shares.
* ``_selection``: the CV's candidates, its table and the selection rules;
  ``_holdout``: every candidate scored on held-out data.
"""

from ._cv import GroupLassoClassifierCV
from ._group_lasso import GroupLassoClassifier
from ._holdout import holdout_scores
from ._path import alpha_grid, alpha_max, group_lasso_path
from ._probe import LinearProbe, LinearProbeCV
from ._selection import select_candidate

__all__ = [
    "GroupLassoClassifier",
    "GroupLassoClassifierCV",
    "LinearProbe",
    "LinearProbeCV",
    "alpha_grid",
    "alpha_max",
    "group_lasso_path",
    "holdout_scores",
    "select_candidate",
]
