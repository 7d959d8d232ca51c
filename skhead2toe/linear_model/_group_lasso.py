"""GroupLassoClassifier: the Head2Toe head at one ``alpha``."""

from numbers import Real

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from ._backend import blas_threads, solver_function
from ._base import _GroupLassoBase
from ._problem import make_groups

__all__ = ["GroupLassoClassifier"]


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
        proximal Newton steps (an explicit Hessian on working sets of at most
        ~1500 coefficients, rows times classes; Hessian-free coordinate descent on
        the Newton model on larger ones when every group is one feature and there
        are at most 32 classes; accelerated proximal gradient otherwise), and
        L-BFGS for smooth fits (``alpha = 0``, such as the refit). ``"fista"``:
        numpy backend, accelerated proximal gradient only.
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
        "keep_fraction": [Interval(Real, 0, 1, closed="right"), None],
        "refit_l2": [Interval(Real, 0, None, closed="neither")],
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
            Non-negative sample weights; normalised to sum to ``n_samples``.

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
        solve = solver_function(self.solver, self.device)
        with blas_threads(solve):
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
