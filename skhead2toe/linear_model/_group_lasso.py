"""GroupLassoClassifier and GroupLassoClassifierCV: the Head2Toe head."""

import contextlib
import math
import os
import sys
import warnings
from collections import deque
from functools import partial
from numbers import Integral, Real

import numpy as np
import scipy.linalg
from joblib import Parallel, delayed
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from ._fista_numpy import one_blas_thread, solve_numpy
from ._path import _alpha_max, _encode, alpha_grid, iter_path, make_groups

__all__ = ["GroupLassoClassifier", "GroupLassoClassifierCV"]

_DTYPES = {None: [np.float64, np.float32], "float64": np.float64, "float32": np.float32}


def _blas_threads(solve):
    """One BLAS thread while fitting with the numpy backend (see ``solve_numpy``).

    Covers what the fit does around the solver too (refit factorisations,
    rankings, fold scoring), which on Head2Toe's sizes is also faster on one
    thread: ``GroupLassoClassifierCV`` on the demo's features took 41 s with the
    solver alone limited, 37 s with the whole fit.
    """
    base = solve.func if isinstance(solve, partial) else solve
    return one_blas_thread() if base is solve_numpy else contextlib.nullcontext()


_GPU_DEVICE_FILES = (
    "/proc/driver/nvidia/version",  # the NVIDIA kernel driver (CUDA)
    "/dev/nvidiactl",
    "/dev/kfd",  # the AMD kernel driver (ROCm builds of torch report it as cuda)
)


def _gpu_possible():
    """Whether torch could see a GPU, answered without importing torch if possible.

    Importing torch takes seconds, paid by every fit in a fresh process (each
    joblib worker of a grid search, each CLI run). On Linux a GPU needs its kernel
    driver, whose device files are cheap to look for; elsewhere, or when torch is
    already imported, torch is asked.
    """
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


def _solver_function(solver, device):
    """The backend function for ``solver`` (``"auto"`` resolved) and its device."""
    if solver in ("fista", "newton") and device not in ("auto", "cpu"):
        raise ValueError(
            f"solver={solver!r} runs on the CPU with numpy; got device={device!r}. "
            "Use solver='torch' (or 'auto') for other devices."
        )
    if solver == "fista":
        return solve_numpy
    if solver == "newton" or (
        solver == "auto"
        and (device == "cpu" or (device == "auto" and not _gpu_possible()))
    ):
        return partial(solve_numpy, inner="newton")
    from ._prox_torch import resolve_device, solve_torch

    resolved = resolve_device(device)
    if solver == "auto" and resolved.type == "cpu":
        # On the CPU the numpy backend with Newton steps is the fastest
        # (benchmarks/bench_solvers.py).
        return partial(solve_numpy, inner="newton")

    def solve(*args, **kwargs):
        return solve_torch(*args, device=resolved, **kwargs)

    return solve


class _GroupLassoBase(ClassifierMixin, BaseEstimator):
    """Shared prediction code: a fitted multinomial linear model."""

    _parameter_constraints: dict = {
        "groups": ["array-like", list, None],
        "group_weights": ["array-like", None],
        "l2": [Interval(Real, 0, None, closed="left")],
        "keep_fraction": [Interval(Real, 0, 1, closed="right"), None],
        "refit_l2": [Interval(Real, 0, None, closed="neither")],
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
        if len(classes) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the "
                f"data contain only one class: {classes.tolist()[0]!r}."
            )
        unweighted = classes[(c @ onehot) <= 0].tolist()
        if unweighted:
            # such a class has no optimum (its intercept goes to -inf), and the
            # solver's certificate has no dual point for it
            raise ValueError(
                "Every class in y needs a positive total sample_weight, but class"
                f"{'es' if len(unweighted) > 1 else ''} {unweighted} weigh 0 in all. "
                "Drop those samples, or give them weight."
            )
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
        if not result.converged:
            rel = result.dual_gap / max(abs(result.primal), 1e-300)
            if result.floored:
                warnings.warn(
                    f"{what} stopped at relative duality gap {rel:.2e} > "
                    f"tol={self.tol:.1e}: the gap no longer falls, a rounding floor "
                    "of the passes over X. The solution is as accurate as the "
                    "gap says; for a smaller gap use dtype='float64' (with float32 "
                    "data) or loosen tol.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
                return
            warnings.warn(
                f"{what} did not converge in max_iter={self.max_iter} iterations: "
                f"relative duality gap {rel:.2e} > tol={self.tol:.1e}. Increase "
                "max_iter, loosen tol, or increase alpha (a larger alpha gives a "
                "sparser, faster problem).",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _set_solution(
        self, X, onehot, c, groups, solve, result, keep_fraction, refit_l2=None
    ):
        """Store the group-lasso solution; apply the keep_fraction recipe."""
        W, b = result.coef, result.intercept
        self.group_norms_ = np.sqrt(np.bincount(groups.ids, (W**2).sum(1)))
        self.feature_importances_ = np.sqrt((W**2).sum(1))
        self.dual_gap_ = result.dual_gap
        self.objective_ = result.primal
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self._solution = (W, b)
        if keep_fraction is None:
            self.selected_features_ = self.feature_importances_ > 0
        else:
            self.selected_features_ = self._keep_mask(X, onehot, c, keep_fraction)
            W, b = self._refit(X, onehot, c, solve, self.selected_features_, refit_l2)
        self._W, self._b = W, b

    def _keep_mask(self, X, onehot, c, fraction):
        """The ``ceil(fraction * d)`` features kept by the Head2Toe recipe.

        Features rank by ``feature_importances_``. When fewer rows than that are
        non-zero, the zero rows rank by the norm of their row of the data term's
        gradient at the solution (at most ``alpha * w_g`` by optimality): the
        features closest to entering the model come first, not the first columns.
        """
        W, b = self._solution
        k = max(1, math.ceil(fraction * W.shape[0]))
        tiebreak = None
        if np.count_nonzero(self.feature_importances_) < k:
            # in the dtype of X (no float64 copy of a float32 X): a ranking
            residual = c[:, None] * (
                softmax(X @ W.astype(X.dtype) + b, axis=1) - onehot
            )
            tiebreak = np.linalg.norm(X.T @ residual.astype(X.dtype), axis=1)
        return _top_fraction(self.feature_importances_, fraction, tiebreak)

    def _refit(self, X, onehot, c, solve, mask, l2=None, init=None, basis=None):
        """Head2Toe's refit: an L2 multinomial head on the selected features.

        ``init``, a full ``(W, b)`` pair (e.g. the refit at a stronger ridge or on
        an overlapping selection), warm-starts the solver on the kept columns.
        ``basis``, from :func:`_row_space_basis` on the same columns, lets refits
        at several ridge strengths share one factorisation.
        """
        cols = np.flatnonzero(mask)
        params = self._solver_params() | {"l2": self.refit_l2 if l2 is None else l2}
        if basis is None:
            basis = _row_space_basis(X[:, cols])
        design, Q = basis
        if init is not None:
            W0 = init[0][cols]
            params |= {"coef_init": W0 if Q is None else Q.T @ W0}
            params |= {"intercept_init": init[1]}
        refit = solve(
            design,
            onehot,
            c,
            make_groups(None, design.shape[1]),
            alpha=0.0,
            **params,
        )
        self._check_convergence(refit, "The L2 refit on the selected features")
        W = np.zeros((X.shape[1], onehot.shape[1]))
        W[cols] = refit.coef if Q is None else Q @ refit.coef
        return W, refit.intercept

    # ------------------------------------------------------------------ prediction
    @property
    def coef_(self):
        """Coefficients, shape (n_classes, n_features), or (1, n_features) if binary."""
        check_is_fitted(self, "_W")
        if len(self.classes_) == 2:
            return (self._W[:, 1] - self._W[:, 0])[None, :]
        return self._W.T.copy()

    @property
    def intercept_(self):
        """Intercept, shape (n_classes,), or (1,) if binary."""
        check_is_fitted(self, "_W")
        if len(self.classes_) == 2:
            return np.array([self._b[1] - self._b[0]])
        return self._b.copy()

    def _logits(self, X):
        check_is_fitted(self, "_W")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self._W.astype(X.dtype) + self._b

    def decision_function(self, X):
        """Class scores ``X W + b``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Logits; for two classes the log-odds of ``classes_[1]``.
        """
        Z = self._logits(X)
        if Z.shape[1] == 2:
            return Z[:, 1] - Z[:, 0]
        return Z

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``.
        """
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns ordered as ``classes_``.
        """
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        Z = self._logits(X)  # first: raises NotFittedError on an unfitted estimator
        return self.classes_[np.argmax(Z, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


def _row_space_basis(X_kept):
    r"""The kept columns in an ``n``-dimensional basis when ``d >= 2 n``.

    The ridge (``alpha = 0``) refit only sees ``W`` through ``X W`` and
    ``||W||_F``, so its solution lies in the row space of ``X``. With the thin QR
    ``X.T = Q R`` (``Q`` of shape ``(d, n)``, orthonormal columns), ``W = Q Z``
    gives ``X W = R.T Z`` and ``||W|| = ||Z||``: the refit on the ``n``-column
    design ``R.T`` has the same objective, the same duality gap and, mapped back,
    the same solution, at ``n / d`` of the cost per gradient. Worth it when the
    selection keeps at least twice as many features as there are samples (20 % of
    Head2Toe's 14,688 features on 667 images: 5.5 ms per gradient, 0.9 ms
    reduced, for a 0.17 s factorisation shared by the refits of a ridge grid).

    Returns
    -------
    design : ndarray of shape (n, r)
        ``R.T``, or the kept columns themselves when they are fewer than ``2 n``.
    Q : ndarray of shape (d, r) or None
        The basis (``W = Q @ Z``); None when ``design`` is ``X_kept``.
    """
    n, d = X_kept.shape
    if d < 2 * n:
        return np.ascontiguousarray(X_kept), None
    Q, R = scipy.linalg.qr(
        np.asarray(X_kept, dtype=np.float64).T, mode="economic", check_finite=False
    )
    return np.ascontiguousarray(R.T), Q


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


class GroupLassoClassifier(_GroupLassoBase):
    r"""Multinomial logistic regression with a group-lasso penalty (Head2Toe's head).

    Solves

    .. math::

        \min_{W, b}\; \frac{1}{\sum_i s_i} \sum_{i=1}^n s_i\,
        \mathrm{CE}(\mathrm{softmax}(x_i W + b), y_i)
        + \alpha \sum_g \omega_g \|W_g\|_F + \frac{\ell_2}{2}\|W\|_F^2

    where ``W`` has one row per feature, ``g`` runs over groups of rows (one group per
    feature by default: a feature is used by all classes or by none), and
    ``omega_g = sqrt(|g|)``. The data term is a weighted *mean*, so ``alpha`` does
    not grow with the number of samples (glmnet's scaling; see :func:`alpha_max`).
    With ``keep_fraction``, the Head2Toe recipe follows: rank the features by the norm
    of their row of ``W``, keep the top fraction and refit an L2-regularised
    multinomial head on them.

    The solver stops on a certificate: the duality gap, an upper bound on the
    distance to the optimal objective, falls below ``tol`` times the objective.

    Parameters
    ----------
    alpha : float, default=1e-3
        Group-lasso strength, ``>= 0``. The solution is zero for
        ``alpha >= alpha_max(X, y)``; useful values lie in ``[1e-3, 0.5] alpha_max``.
    groups : None, array-like of shape (n_features,) of int, or list of arrays
        Feature groups: None for one group per feature; integer labels per feature
        (e.g. ``MultiLayerFeaturizer.feature_groups_`` to select whole layers); or a
        list of index arrays that partition the features.
    group_weights : array-like of shape (n_groups,), default=None
        Positive weights ``omega_g``; default ``sqrt`` of the group sizes.
    l2 : float, default=0.0
        Ridge strength added to the group lasso.
    keep_fraction : float in (0, 1], default=None
        If set, keep the ``ceil(keep_fraction * n_features)`` features of largest
        importance and refit an L2 head (strength ``refit_l2``) on them. If fewer
        rows are non-zero, the rest are the zero rows whose gradient is largest
        (the features closest to entering the model).
    refit_l2 : float, default=1e-4
        Ridge strength of the refit (used only with ``keep_fraction``). Features
        normalised per layer are small, so the refit needs a weak ridge;
        :class:`GroupLassoClassifierCV` tunes it.
    fit_intercept : bool, default=True
        Whether to fit an unpenalised intercept.
    solver : {"auto", "newton", "fista", "torch"}, default="auto"
        All solvers share the working-set outer loop and the duality-gap
        certificate, and agree to ``tol``. ``"newton"``: numpy backend (CPU),
        proximal Newton steps with an explicit Hessian on working sets of at most
        ~1500 coefficients (rows times classes), accelerated proximal gradient on
        larger ones. ``"fista"``: numpy backend, accelerated proximal gradient only.
        ``"torch"``: accelerated proximal gradient in torch on ``device``.
        ``"auto"``: torch on a GPU, ``"newton"`` on the CPU (the fastest there,
        ``benchmarks/bench_solvers.py``).
    device : str or torch.device, default="auto"
        Device of the torch backend: ``"auto"`` (CUDA when available), ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``... On Linux, ``"auto"`` with no GPU driver
        installed fits with numpy without importing torch (seconds saved in each
        fresh process, such as a joblib worker).
    dtype : {"float32", "float64"}, default=None
        Precision of the passes over ``X``; None keeps float32 input as float32 and
        converts anything else to float64. The working-set solve is always float64,
        and so are the certificate's products for the groups near their threshold,
        so a float32 ``X`` is certified below float32's resolution (``tol=1e-10``
        works).
    tol : float, default=1e-4
        Stop when the duality gap is at most ``tol`` times the objective. The gap is
        an upper bound: the true relative suboptimality is usually orders of
        magnitude smaller (1e-10 at ``tol=1e-4`` on the solver benchmark).
    max_iter : int, default=10000
        Iteration budget (full certificate passes plus proximal-gradient or
        proximal Newton steps).
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same shapes.
    random_state : int, RandomState instance or None, default=None
        Seed of the power iteration that estimates the step size (None: seed 0, so
        fits are reproducible run to run).
    verbose : int, default=0
        Print the objective and duality gap at every outer iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (n_classes, n_features) or (1, n_features)
        Coefficients (after the refit when ``keep_fraction`` is set). For two classes,
        ``coef_[0]`` is the difference of the two multinomial rows, as in
        :class:`~sklearn.linear_model.LogisticRegression`.
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Intercept.
    feature_importances_ : ndarray of shape (n_features,)
        Norm of each feature's row of the group-lasso ``W`` (before any refit).
    group_norms_ : ndarray of shape (n_groups,)
        Frobenius norm of each group of the group-lasso ``W``.
    selected_features_ : ndarray of shape (n_features,), dtype bool
        Features with a non-zero row, or the kept fraction with ``keep_fraction``.
    dual_gap_ : float
        Duality gap at the group-lasso solution (absolute).
    objective_ : float
        Objective value at the group-lasso solution.
    converged_ : bool
        Whether ``dual_gap_ <= tol * objective_``.
    n_iter_ : int
        Iterations of the group-lasso solve.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen in fit, when ``X`` has string column names.

    See Also
    --------
    GroupLassoClassifierCV : tunes ``alpha`` and ``keep_fraction`` on a path.
    alpha_max : the smallest ``alpha`` giving an all-zero ``W``.

    References
    ----------
    Evci, U., Dumoulin, V., Larochelle, H. and Mozer, M. C. (2022). Head2Toe:
    Utilizing Intermediate Representations for Better Transfer Learning. ICML.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoClassifier(alpha=1e-2, tol=1e-4).fit(X / 16, y)
    >>> clf.converged_
    True
    >>> int(clf.selected_features_.sum()) < X.shape[1]
    True
    """

    _parameter_constraints: dict = {
        **_GroupLassoBase._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        alpha=1e-3,
        *,
        groups=None,
        group_weights=None,
        l2=0.0,
        keep_fraction=None,
        refit_l2=1e-4,
        fit_intercept=True,
        solver="auto",
        device="auto",
        dtype=None,
        tol=1e-4,
        max_iter=10_000,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.groups = groups
        self.group_weights = group_weights
        self.l2 = l2
        self.keep_fraction = keep_fraction
        self.refit_l2 = refit_l2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.device = device
        self.dtype = dtype
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the group-lasso head (and the refit when ``keep_fraction`` is set).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, e.g. ``MultiLayerFeaturizer`` features.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights; normalised to sum to ``n_samples``.

        Returns
        -------
        self : GroupLassoClassifier
            The fitted estimator.
        """
        if self.alpha == 0 and self.l2 == 0:
            raise ValueError(
                "alpha and l2 are both 0: the problem has no regularisation and may "
                "have no solution. Set alpha > 0 or l2 > 0."
            )
        solve = _solver_function(self.solver, self.device)
        with _blas_threads(solve):
            return self._fit(X, y, sample_weight, solve)

    def _fit(self, X, y, sample_weight, solve):
        X, onehot, c, classes = self._validate_fit_data(X, y, sample_weight)
        groups = make_groups(self.groups, X.shape[1], self.group_weights)
        coef_init = intercept_init = None
        if self.warm_start and hasattr(self, "_solution"):
            W0, b0 = self._solution
            if W0.shape == (X.shape[1], len(classes)):
                coef_init, intercept_init = W0, b0
        self.classes_ = classes
        result = solve(
            X,
            onehot,
            c,
            groups,
            alpha=self.alpha,
            coef_init=coef_init,
            intercept_init=intercept_init,
            **self._solver_params(),
        )
        self._check_convergence(result, "The group-lasso solver")
        self._set_solution(X, onehot, c, groups, solve, result, self.keep_fraction)
        return self


class GroupLassoClassifierCV(_GroupLassoBase):
    """Group-lasso head with ``alpha``, ``keep_fraction`` and the refit tuned by CV.

    For every fold, the group lasso is solved along a decreasing grid of ``alpha``
    with warm starts (each solution starts the next); at every ``alpha``, every
    ``keep_fraction`` is refitted with every ridge strength of ``refit_l2s`` (from
    the strongest down, each refit warm-starting the next) and scored. The best
    mean score picks the triple, and the model is then refitted on all the data.
    Folds run in parallel through joblib.

    The refit's ridge matters as much as the fraction kept: with Head2Toe's
    per-layer unit normalisation the features are small (about ``1/sqrt(width)``
    each), and a ridge that is right for one task underfits another.

    Parameters
    ----------
    alphas : int or array-like, default=20
        Number of values on the grid ``alpha_max * geomspace(1, eps, alphas)``, or
        the values themselves.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the grid.
    keep_fractions : None or array-like of float in (0, 1], default=None
        Fractions to try with the Head2Toe refit; None means plain group lasso.
    refit_l2s : array-like of float > 0, default=(1e-3, 1e-4, 1e-5)
        Ridge strengths tried for the refit (only used with ``keep_fractions``).
    cv : int, cross-validation generator or iterable, default=None
        As in :func:`~sklearn.model_selection.check_cv` (5-fold stratified).
    scoring : str or callable, default=None
        Scorer; None uses accuracy.
    n_jobs : int, default=None
        Folds solved in parallel.
    groups, group_weights, l2, fit_intercept, solver, device, dtype, tol, max_iter, \
random_state, verbose
        As in :class:`GroupLassoClassifier`.

    Attributes
    ----------
    alpha_ : float
        Selected alpha.
    keep_fraction_ : float or None
        Selected fraction.
    refit_l2_ : float or None
        Selected ridge strength of the refit (None without ``keep_fractions``).
    alphas_ : ndarray of shape (n_alphas,)
        The alpha grid, decreasing.
    refit_l2s_ : ndarray of shape (n_refit_l2s,)
        The refit ridge grid, decreasing (just ``[nan]`` without
        ``keep_fractions``).
    scores_ : ndarray of shape (n_folds, n_alphas, n_keep_fractions, n_refit_l2s)
        Test score of every fold, alpha, fraction and refit ridge.
    mean_scores_ : ndarray of shape (n_alphas, n_keep_fractions, n_refit_l2s)
        Mean over folds.
    n_nonzero_ : ndarray of shape (n_folds, n_alphas)
        Selected groups at each alpha in each fold (the regularisation path).
    classes_, coef_, intercept_, feature_importances_, group_norms_, \
selected_features_, dual_gap_, objective_, converged_, n_iter_, n_features_in_, \
feature_names_in_
        Of the final model, as in :class:`GroupLassoClassifier`.

    See Also
    --------
    GroupLassoClassifier : the estimator for one alpha.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifierCV
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoClassifierCV(alphas=4, cv=3, tol=1e-4).fit(X / 16, y)
    >>> clf.mean_scores_.shape
    (4, 1, 1)
    """

    _parameter_constraints: dict = {
        **_GroupLassoBase._parameter_constraints,
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "eps": [Interval(Real, 0, 1, closed="right")],
        "keep_fractions": ["array-like", None],
        "refit_l2s": ["array-like"],
        "cv": ["cv_object"],
        "scoring": [
            StrOptions({"accuracy", "neg_log_loss", "balanced_accuracy"}),
            callable,
            None,
        ],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        alphas=20,
        *,
        eps=1e-2,
        keep_fractions=None,
        refit_l2s=(1e-3, 1e-4, 1e-5),
        cv=None,
        scoring=None,
        n_jobs=None,
        groups=None,
        group_weights=None,
        l2=0.0,
        fit_intercept=True,
        solver="auto",
        device="auto",
        dtype=None,
        tol=1e-4,
        max_iter=10_000,
        random_state=None,
        verbose=0,
    ):
        self.alphas = alphas
        self.eps = eps
        self.keep_fractions = keep_fractions
        self.refit_l2s = refit_l2s
        self.cv = cv
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.groups = groups
        self.group_weights = group_weights
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.device = device
        self.dtype = dtype
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Tune ``alpha``, ``keep_fraction`` and the refit by CV, then refit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, used in fitting and in scoring the folds.

        Returns
        -------
        self : GroupLassoClassifierCV
            The fitted estimator.
        """
        solve = _solver_function(self.solver, self.device)
        with _blas_threads(solve):
            return self._fit(X, y, sample_weight, solve)

    def _fit(self, X, y, sample_weight, solve):
        X, onehot, c, classes = self._validate_fit_data(X, y, sample_weight)
        groups = make_groups(self.groups, X.shape[1], self.group_weights)
        self.classes_ = classes
        self.alphas_ = self._alpha_values(X, onehot, c, groups)
        fractions = self._fractions()
        l2s = self._refit_l2_values(fractions)
        y_codes = onehot.argmax(1)
        folds = list(check_cv(self.cv, y_codes, classifier=True).split(X, y_codes))
        jobs = (
            delayed(self._score_path)(
                X, onehot, c, groups, solve, train, test, fractions, l2s
            )
            for train, test in folds
        )
        out = Parallel(n_jobs=self.n_jobs)(jobs)
        self.scores_ = np.stack([scores for scores, _ in out])
        self.n_nonzero_ = np.stack([nnz for _, nnz in out])
        self.mean_scores_ = self.scores_.mean(0)
        i, j, k = np.unravel_index(
            np.argmax(self.mean_scores_), self.mean_scores_.shape
        )
        self.alpha_ = float(self.alphas_[i])
        self.keep_fraction_ = fractions[j]
        self.refit_l2s_ = l2s
        self.refit_l2_ = None if fractions[j] is None else float(l2s[k])
        # refit on all the data along the path down to the chosen alpha (warm starts)
        path = iter_path(
            solve, X, onehot, c, groups, self.alphas_[: i + 1], **self._solver_params()
        )
        _, result = deque(path, maxlen=1)[0]
        self._check_convergence(result, "The group-lasso solver (final refit)")
        self._set_solution(
            X, onehot, c, groups, solve, result, self.keep_fraction_, self.refit_l2_
        )
        return self

    def _alpha_values(self, X, onehot, c, groups):
        if isinstance(self.alphas, Integral):
            amax = _alpha_max(X, onehot, c, groups, self.fit_intercept)
            return alpha_grid(amax, self.alphas, self.eps)
        alphas = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
        if alphas.size == 0 or np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError("alphas must be a non-empty list of non-negative values.")
        if alphas[-1] == 0 and self.l2 == 0:
            raise ValueError("alpha = 0 needs l2 > 0.")
        return alphas

    def _fractions(self):
        if self.keep_fractions is None:
            return [None]
        fractions = [float(f) for f in np.asarray(self.keep_fractions).ravel()]
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise ValueError(
                f"keep_fractions must be values in (0, 1], got {self.keep_fractions}."
            )
        return fractions

    def _refit_l2_values(self, fractions):
        if fractions == [None]:
            return np.array([np.nan])
        l2s = np.sort(np.asarray(self.refit_l2s, dtype=np.float64).ravel())[::-1]
        if l2s.size == 0 or not np.all(np.isfinite(l2s)) or np.any(l2s <= 0):
            raise ValueError(
                f"refit_l2s must be positive finite values, got {self.refit_l2s}."
            )
        return l2s

    def _score_path(self, X, onehot, c, groups, solve, train, test, fractions, l2s):
        """Scores of every (alpha, fraction, refit ridge) on one fold; sparsity."""
        scorer = check_scoring(self, scoring=self.scoring or "accuracy")
        X_train, Y_train = X[train], onehot[train]  # copied once per fold
        c_train = c[train] / c[train].sum()
        y_test = self.classes_[onehot[test].argmax(1)]
        sw_test = c[test] * len(c)
        scores = np.empty((len(self.alphas_), len(fractions), len(l2s)))
        # Warm starts of the refits: the previous alpha's, then the stronger ridge's.
        previous = {}
        nnz = np.empty(len(self.alphas_), dtype=int)
        path = iter_path(
            solve,
            X_train,
            Y_train,
            c_train,
            groups,
            self.alphas_,
            **self._solver_params(),
        )
        for i, (alpha, result) in enumerate(path):
            self._check_convergence(
                result, f"The group-lasso solver (alpha={alpha:.3g})"
            )
            nnz[i] = np.count_nonzero(np.bincount(groups.ids, (result.coef**2).sum(1)))
            model = GroupLassoClassifier(alpha, **self._model_params())
            model.classes_ = self.classes_
            model.n_features_in_ = X.shape[1]
            model._set_solution(X_train, Y_train, c_train, groups, solve, result, None)
            for j, fraction in enumerate(fractions):
                if fraction is None:
                    scores[i, j] = scorer(model, X[test], y_test, sample_weight=sw_test)
                    continue
                mask = model._keep_mask(X_train, Y_train, c_train, fraction)
                basis = _row_space_basis(X_train[:, mask])
                init = None
                for k, l2 in enumerate(l2s):
                    init = previous.get((j, k), init)
                    model._W, model._b = model._refit(
                        X_train, Y_train, c_train, solve, mask, l2, init, basis
                    )
                    previous[j, k] = init = (model._W, model._b)
                    scores[i, j, k] = scorer(
                        model, X[test], y_test, sample_weight=sw_test
                    )
        return scores, nnz

    def _model_params(self):
        keys = (
            "groups",
            "group_weights",
            "l2",
            "fit_intercept",
            "solver",
            "device",
            "dtype",
            "tol",
            "max_iter",
            "random_state",
            "verbose",
        )
        return {k: getattr(self, k) for k in keys}
