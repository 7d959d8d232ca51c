"""The candidates of :class:`GroupLassoClassifierCV`, their CV table and the choice.

A candidate is one head the cross-validation scores:

* ``"group lasso"``: the group-lasso solution at one ``alpha`` (no refit;
  ``keep_fractions=None``);
* ``"top features"``: the ``keep_fraction`` of features the group lasso ranks
  first at one ``alpha``, refitted with one ridge strength (Head2Toe);
* ``"all features"``: the ridge refit on every feature (All layers + L2), which
  needs no ``alpha``;
* ``"last layer"``: the ridge refit on the last layer alone (the linear probe).

The last two make the search contain the baselines of Evci et al. (ICML 2022), so
the chosen head is the best of them when the group-lasso ranking does not help.
"""

import math
from typing import NamedTuple

import numpy as np

#: The kinds of candidate, in table order.
GROUP_LASSO, TOP, ALL, LAST = (
    "group lasso",
    "top features",
    "all features",
    "last layer",
)


class Candidate(NamedTuple):
    """One head of the search (indices into the estimator's grids, or None)."""

    kind: str
    alpha: int | None
    fraction: float | None
    l2: int | None


def grid_candidates(n_alphas, fractions, n_l2s):
    """The ``alpha``-dependent candidates, alpha-major as ``scores_`` is laid out."""
    if fractions == [None]:
        return [Candidate(GROUP_LASSO, i, None, None) for i in range(n_alphas)]
    return [
        Candidate(TOP, i, f, k)
        for i in range(n_alphas)
        for f in fractions
        for k in range(n_l2s)
    ]


def fixed_candidates(kinds, n_l2s):
    """Candidates without ``alpha`` (``kinds`` among ``ALL`` and ``LAST``)."""
    return [
        Candidate(kind, None, 1.0 if kind == ALL else None, k)
        for kind in kinds
        for k in range(n_l2s)
    ]


def cv_table(candidates, fold_scores, n_features, alphas, l2s):
    """The per-candidate table, as ``GridSearchCV.cv_results_``.

    Parameters
    ----------
    candidates : list of Candidate
    fold_scores : ndarray of shape (n_folds, n_candidates)
    n_features : ndarray of shape (n_folds, n_candidates)
        Features each candidate's head uses in each fold.
    alphas, l2s : ndarray
        The grids the candidates index.

    Returns
    -------
    table : dict of ndarray
        ``candidate``, ``alpha``, ``keep_fraction`` and ``refit_l2`` (NaN where
        they do not apply), ``n_features`` (mean over folds),
        ``split<k>_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score`` and ``params`` (one dict per candidate).
    """
    nan = float("nan")
    table = {
        "candidate": np.asarray([c.kind for c in candidates], dtype=object),
        "alpha": np.asarray(
            [nan if c.alpha is None else alphas[c.alpha] for c in candidates]
        ),
        "keep_fraction": np.asarray(
            [nan if c.fraction is None else c.fraction for c in candidates]
        ),
        "refit_l2": np.asarray(
            [nan if c.l2 is None else l2s[c.l2] for c in candidates]
        ),
        "n_features": n_features.mean(0),
    }
    for k, scores in enumerate(fold_scores):
        table[f"split{k}_test_score"] = scores
    mean = fold_scores.mean(0)
    table["mean_test_score"] = mean
    table["std_test_score"] = fold_scores.std(0)
    # as scikit-learn: equal means share the best (lowest) rank
    table["rank_test_score"] = (
        np.searchsorted(-np.sort(mean)[::-1], -mean, side="left") + 1
    ).astype(np.int32)
    table["params"] = [
        {
            key: value
            for key, value in (
                ("candidate", c.kind),
                ("alpha", None if c.alpha is None else float(alphas[c.alpha])),
                ("keep_fraction", c.fraction),
                ("refit_l2", None if c.l2 is None else float(l2s[c.l2])),
            )
            if value is not None
        }
        for c in candidates
    ]
    return table


def select_candidate(cv_results, rule="best"):
    """The row of a ``GroupLassoClassifierCV.cv_results_`` table a rule chooses.

    Parameters
    ----------
    cv_results : dict
        ``cv_results_`` of a fitted :class:`~skhead2toe.GroupLassoClassifierCV`
        (it needs ``split<k>_test_score`` and ``n_features``).
    rule : {"best", "1se"}, default="best"
        ``"best"``: the best mean score (the first in table order on ties).
        ``"1se"``: the fewest features among the candidates whose mean score is
        within one standard error of the best (glmnet's ``lambda.1se``; the
        standard error is the folds' standard deviation, ``ddof=1``, over
        ``sqrt(n_folds)``); on ties the better mean, then the first.

    Returns
    -------
    index : int
        What the estimator's ``best_index_`` is with ``selection=rule``.

    Examples
    --------
    >>> import numpy as np
    >>> from skhead2toe.linear_model import select_candidate
    >>> table = {
    ...     "split0_test_score": np.array([0.90, 0.92, 0.93]),
    ...     "split1_test_score": np.array([0.92, 0.94, 0.95]),
    ...     "n_features": np.array([10, 100, 1000]),
    ... }
    >>> select_candidate(table, "best"), select_candidate(table, "1se")
    (2, 1)
    """
    keys = [k for k in cv_results if k.startswith("split") and k.endswith("_score")]
    keys.sort(key=lambda k: int(k[len("split") : -len("_test_score")]))
    scores = np.stack([np.asarray(cv_results[k], dtype=float) for k in keys])
    mean = scores.mean(0)
    best = int(np.argmax(mean))
    if rule == "best":
        return best
    if rule != "1se":
        raise ValueError(f"rule must be 'best' or '1se', got {rule!r}")
    n_folds = scores.shape[0]
    se = scores[:, best].std(ddof=1) / math.sqrt(n_folds) if n_folds > 1 else 0.0
    within = np.flatnonzero(mean >= mean[best] - se)
    size = np.asarray(cv_results["n_features"], dtype=float)[within]
    order = np.lexsort((np.arange(within.size), -mean[within], size))
    return int(within[order[0]])
