"""Multinomial logistic regression with a group-lasso penalty (the Head2Toe head)."""

from ._group_lasso import GroupLassoClassifier, GroupLassoClassifierCV
from ._path import alpha_grid, alpha_max, group_lasso_path

__all__ = [
    "GroupLassoClassifier",
    "GroupLassoClassifierCV",
    "alpha_grid",
    "alpha_max",
    "group_lasso_path",
]
