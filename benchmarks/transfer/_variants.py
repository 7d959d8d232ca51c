"""Variants of the default head that share its cross-validation.

``selection="1se"`` and ``average_scores=True`` change only the last step of
:class:`~skhead2toe.GroupLassoClassifierCV`: the CV table is the same, and only
the candidate chosen from it (``1se``) or the ranking of the final head
(``average_scores``) differs. Running each as a full fit would repeat the whole
CV (minutes per task); :func:`derived_variants` computes both from the fitted
default head with the public API, as the estimator itself would:

* ``1se``: the candidate that :func:`~skhead2toe.linear_model.select_candidate`
  picks from ``cv_results_`` with the rule ``"1se"``, refitted on all the
  training data (a :class:`~skhead2toe.GroupLassoClassifier` at its ``alpha``
  and fraction, or the ridge refit of a baseline on its columns);
* ``avg``: the chosen candidate with its final ranking averaged over the folds,
  which is ``GroupLassoClassifierCV(average_scores=True)`` with that one
  candidate as its grid.
"""

import numpy as np
from sklearn.base import clone

from skhead2toe import GroupLassoClassifier
from skhead2toe.experiments import last_layer_mask
from skhead2toe.linear_model import select_candidate


def one_se_index(head):
    """The row of ``head.cv_results_`` that ``selection="1se"`` would choose."""
    return select_candidate(head.cv_results_, "1se")


def refit_candidate(head, index, X, y):
    """Fit candidate ``index`` of ``head.cv_results_`` on ``(X, y)``.

    Returns
    -------
    predict : callable
        Maps test features to labels.
    mask : ndarray of bool
        The columns the head uses.
    """
    table = head.cv_results_
    kind, l2 = table["candidate"][index], float(table["refit_l2"][index])
    seed = head.random_state if head.random_state is not None else 0
    if kind == "top features":
        model = GroupLassoClassifier(
            alpha=float(table["alpha"][index]),
            keep_fraction=float(table["keep_fraction"][index]),
            refit_l2=l2,
            random_state=seed,
        ).fit(X, y)
        return model.predict, model.selected_features_
    mask = np.ones(X.shape[1], dtype=bool)
    if kind == "last layer":
        mask = last_layer_mask(head.layers_)
    model = GroupLassoClassifier(alpha=0.0, l2=l2, random_state=seed)
    model.fit(X[:, mask], y)
    return (lambda Z: model.predict(Z[:, mask])), mask


def fold_averaged(head, X, y):
    """The chosen head with its ranking averaged over the CV folds.

    Returns None when the chosen candidate has no ranking (a baseline), where
    ``average_scores`` changes nothing.
    """
    if head.candidate_ != "top features":
        return None
    one = clone(head).set_params(
        alphas=[head.alpha_],
        keep_fractions=[head.keep_fraction_],
        refit_l2s=[head.refit_l2_],
        last_layer=False,
        average_scores=True,
    )
    return one.fit(X, y)
