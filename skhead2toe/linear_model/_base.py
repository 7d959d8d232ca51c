"""What both estimators share: validation, the Head2Toe refit, prediction."""

import math
from numbers import Integral, Real

import numpy as np
from scipy.special import softmax
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ._layers import normalize_layers
from ._linear import LinearClassifierMixin
from ._numpy import NUMPY_OPS
from ._path import _check_classes, _encode
from ._problem import Problem, make_groups
from ._results import warn_if_not_converged
from ._rowspace import row_space_basis

_DTYPES = {None: [np.float64, np.float32], "float64": np.float64, "float32": np.float32}


class _GroupLassoBase(LinearClassifierMixin):
    """What both group-lasso estimators share: validation, the refit, prediction."""

    _parameter_constraints: dict = {
        "groups": ["array-like", list, None],
        "group_weights": ["array-like", None],
        "l2": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"auto", "torch", "fista", "newton"})],
        "device": [str, object],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ fitting
    def _validate_fit_data(self, X, y, sample_weight):
        X, y = validate_data(self, X, y, dtype=_DTYPES[self.dtype])
        check_classification_targets(y)
        onehot, c, classes = _encode(X, y, sample_weight)
        _check_classes(onehot, c, classes)
        return X, onehot, c, classes

    def _solver_params(self):
        # The only randomness is the start of the power iteration (step size); None
        # means a fixed seed so that fits are reproducible run to run.
        seed = 0 if self.random_state is None else self.random_state
        if not isinstance(seed, Integral):
            seed = seed.randint(2**31 - 1)
        return dict(
            l2=self.l2,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=self.verbose,
            random_state=seed,
        )

    def _check_convergence(self, result, what):
        warn_if_not_converged(
            result, what, tol=self.tol, max_iter=self.max_iter, stacklevel=4
        )

    def _set_solution(
        self,
        X,
        onehot,
        c,
        groups,
        solve,
        result,
        keep_fraction,
        refit_l2=None,
        layers=None,
    ):
        """Store the group-lasso solution; apply the keep_fraction recipe.

        ``layers`` (layer id per column) re-normalises the kept columns per layer
        before the refit.
        """
        W, b = result.coef, result.intercept
        self._set_diagnostics(W, groups, result)
        self._solution = (W, b)
        self._renorm = None
        if keep_fraction is None:
            self.selected_features_ = self.feature_importances_ > 0
        else:
            self.selected_features_ = self._keep_mask(X, onehot, c, keep_fraction)
            W, b, _ = self._refit(
                X, onehot, c, solve, self.selected_features_, refit_l2, layers=layers
            )
        self._W, self._b = W, b

    def _set_diagnostics(self, W, groups, result):
        """Importances from ``W``; certificate and iterations of its solve."""
        self.group_norms_ = np.sqrt(np.bincount(groups.ids, (W**2).sum(1)))
        self.feature_importances_ = np.sqrt((W**2).sum(1))
        self.dual_gap_ = result.dual_gap
        self.objective_ = result.primal
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter

    def _keep_mask(self, X, onehot, c, fraction, pull=None):
        """The ``ceil(fraction * d)`` features kept by the Head2Toe recipe.

        Features rank by ``feature_importances_``. When fewer rows than that are
        non-zero, the zero rows rank by the norm of their row of the data term's
        gradient at the solution (at most ``alpha * w_g`` by optimality): the
        features closest to entering the model come first, not the first columns.
        ``pull``, a callable returning that norm (e.g. cached over the fractions
        of one solution), replaces :meth:`_pull`.
        """
        k = max(1, math.ceil(fraction * self._solution[0].shape[0]))
        tiebreak = None
        if np.count_nonzero(self.feature_importances_) < k:
            tiebreak = self._pull(X, onehot, c) if pull is None else pull()
        return _top_fraction(self.feature_importances_, fraction, tiebreak)

    def _pull(self, X, onehot, c):
        """Norm of each feature's row of the data term's gradient at the solution."""
        W, b = self._solution
        # in the dtype of X (no float64 copy of a float32 X): a ranking
        problem = Problem(NUMPY_OPS, X, onehot, c, None, alpha=0.0)
        P = softmax(X @ W.astype(X.dtype) + b, axis=1)
        return np.linalg.norm(problem.correlations(problem.residual(P)), axis=1)

    def _refit(
        self, X, onehot, c, solve, mask, l2=None, init=None, basis=None, layers=None
    ):
        """Head2Toe's refit: an L2 multinomial head on the selected features.

        ``init``, a full ``(W, b)`` pair (e.g. the refit at a stronger ridge or on
        an overlapping selection), warm-starts the solver on the kept columns.
        ``basis``, a :class:`~._rowspace.RowBasis` of the same (re-normalised)
        columns, lets refits at several ridge strengths share one factorisation
        (by default :func:`~._rowspace.row_space_basis`: the row space when the
        selection keeps at least twice as many features as there are samples).
        ``layers``, the layer id of every column, re-normalises the kept columns
        of each layer to unit norm first (and sets the model to do so when it
        predicts). Returns the full ``(W, b)`` and the solver's result.
        """
        cols = np.flatnonzero(mask)
        self._renorm = None if layers is None else (cols, layers[cols])
        params = self._solver_params() | {"l2": self.refit_l2 if l2 is None else l2}
        if basis is None:
            basis = row_space_basis(self._kept_columns(X, cols))
        if init is not None:
            params |= {"coef_init": basis.from_columns(init[0][cols])}
            params |= {"intercept_init": init[1]}
        refit = solve(
            basis.design,
            onehot,
            c,
            make_groups(None, basis.design.shape[1]),
            alpha=0.0,
            **params,
        )
        self._check_convergence(refit, "The L2 refit on the selected features")
        W = np.zeros((X.shape[1], onehot.shape[1]))
        W[cols] = basis.to_columns(refit.coef)
        return W, refit.intercept, refit

    def _kept_columns(self, X, cols):
        """``X[:, cols]``, re-normalised per layer when the model says so."""
        X_kept = X[:, cols]
        if self._renorm is None:
            return X_kept
        return normalize_layers(X_kept, self._renorm[1])

    def _predict_design(self, X):
        """The columns and coefficients of the logits: re-normalised when refit so."""
        if getattr(self, "_renorm", None) is None:
            return X, self._W
        cols = self._renorm[0]
        return self._kept_columns(X, cols), self._W[cols]


def _top_fraction(scores, fraction, tiebreak=None):
    """Boolean mask of the ``ceil(fraction * d)`` largest scores.

    Ties break by the larger ``tiebreak``, then by the lower index.
    """
    k = max(1, math.ceil(fraction * scores.shape[0]))
    if tiebreak is None:
        order = np.argsort(-scores, kind="stable")[:k]
    else:
        order = np.lexsort((-tiebreak, -scores))[:k]
    mask = np.zeros(scores.shape[0], dtype=bool)
    mask[order] = True
    return mask
