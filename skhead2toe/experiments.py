"""The experiments of ``skhead2toe demo`` and the benchmarks: tasks, grids, baselines.

Head2Toe (Evci et al., ICML 2022, Table 1) is compared with heads on the same
frozen features: a linear probe on the last layer, the same probe on every layer
(All layers + L2), an L1 probe on every layer, and Head2Toe itself. The demo
(``skhead2toe demo``), ``benchmarks/bench_fashion_selection.py`` and
``benchmarks/transfer/run_baselines.py`` all run these heads; this module is the
one place where their grids and constructors are written down, so that the three
always compare the same methods:

- the tasks: :data:`DATASETS` and :func:`load_task`;
- the grids: :data:`PROBE_CS`, :data:`L1_CS`, :data:`N_ALPHAS`,
  :data:`KEEP_FRACTIONS`;
- the heads: :func:`l2_probe` (Linear and All layers + L2), :func:`l1_probe`
  (All layers + L1), :func:`head2toe_default` (Head2Toe as the library fits it
  by default: the demo's), :func:`head2toe_cv` (Head2Toe as the paper configures
  it: the benchmarks' fixed grid), and :func:`last_layer_mask` for the columns of
  the linear probe;
- the scoring: :func:`accuracy_ci95` and :func:`paired_comparison` (McNemar's
  test on the same test images).

Every hyper-parameter is chosen by cross-validation on the training set only;
the test set is scored once. Changing a value here changes the demo's table and
the benchmarks' results together.

scikit-learn and the estimators are imported when a constructor is called, so
importing this module (e.g. for ``skhead2toe --help``) stays cheap.
"""

import numpy as np

__all__ = [
    "ALL_LAYERS",
    "ALL_LAYERS_L1",
    "DATASETS",
    "HEAD2TOE",
    "KEEP_FRACTIONS",
    "L1_CS",
    "LINEAR",
    "N_ALPHAS",
    "PROBE_CS",
    "accuracy_ci95",
    "head2toe_cv",
    "head2toe_default",
    "l1_probe",
    "l2_probe",
    "last_layer_mask",
    "load_task",
    "paired_comparison",
]

#: The tasks of :func:`load_task`: scikit-learn's 8x8 digits and Fashion-MNIST.
DATASETS = ("digits", "fashion-mnist")

#: Names of the demo's methods, in the order of its table (Evci et al., Table 1).
LINEAR = "Linear"
#: The L2 probe on the features of every tapped layer.
ALL_LAYERS = "All layers + L2"
#: The L1 probe on the features of every tapped layer (:func:`l1_probe`).
ALL_LAYERS_L1 = "All layers + L1"
#: Group-lasso selection over every layer, then an L2 refit on the kept features.
HEAD2TOE = "Head2Toe"

#: Inverse ridge strengths ``C = 1 / (n * l2)`` tried by the L2 logistic probes
#: (:func:`l2_probe`). Each layer has unit norm per image, so a layer of ``d``
#: features has values of order ``1 / sqrt(d)`` and the useful ``C`` are large:
#: the grid spans five decades above a moderate ridge.
PROBE_CS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)

#: Inverse L1 strengths tried by :func:`l1_probe` (All layers + L1). Three values
#: only: each liblinear fit on every feature is much slower than an L2 fit.
L1_CS = (1.0, 10.0, 100.0)

#: Head2Toe's kept fractions (Evci et al., 2022, Sec. 4) up to 20 %: after the
#: group-lasso path ranks the features, the best ``keep_fraction`` of them are
#: refitted with a ridge.
KEEP_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)

#: Points of Head2Toe's ``alpha`` path, from ``alpha_max`` to ``alpha_max / 100``:
#: the ranking of the features (hence the kept set) changes little between
#: neighbours of a 6-point path.
N_ALPHAS = 6


def load_task(dataset, n_train, n_test, random_state):
    """Training and test images of a task of :data:`DATASETS`.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
        scikit-learn's digits (1797 images, split in a stratified way) or
        Fashion-MNIST (Debian's ``dataset-fashion-mnist``; random subsets of its
        training and test sets).
    n_train : int
        Training images (1000 in the demo: the paper's "1k" setting).
    n_test : int or None
        Test images; None: the rest of digits, or 2000 Fashion-MNIST test images.
    random_state : int
        Seed of the split or the subsets.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        uint8 images of shape (n, H, W) and integer labels.

    Raises
    ------
    ValueError
        If ``dataset`` is not one of :data:`DATASETS`, or ``n_train`` leaves no
        digits for testing.

    Examples
    --------
    The demo's digits task: 1000 training images, the other 797 for testing,
    split with the same share of every digit:

    >>> import numpy as np
    >>> from skhead2toe.experiments import load_task
    >>> X_train, X_test, y_train, y_test = load_task("digits", 1000, None, 0)
    >>> X_train.shape, X_test.shape, X_train.dtype
    ((1000, 8, 8), (797, 8, 8), dtype('uint8'))
    >>> np.bincount(y_train)
    array([ 99, 101,  98, 102, 101, 101, 101, 100,  97, 100])

    Fashion-MNIST needs Debian's ``dataset-fashion-mnist``; its test images are
    2000 of the official test set unless ``n_test`` says otherwise:

    >>> X_train, X_test, y_train, y_test = load_task(  # doctest: +SKIP
    ...     "fashion-mnist", 1000, None, 0
    ... )
    >>> X_train.shape, X_test.shape  # doctest: +SKIP
    ((1000, 28, 28), (2000, 28, 28))
    """
    from sklearn.model_selection import train_test_split

    from skhead2toe.datasets import load_digits_images, load_fashion_mnist

    if dataset == "digits":
        X, y = load_digits_images()
        if n_train >= len(y):
            raise ValueError(
                f"--n-train={n_train} leaves no test images: digits has {len(y)}"
            )
        X_train, X_test, y_train, y_test = train_test_split(
            X,
            y,
            train_size=n_train,
            test_size=n_test,
            stratify=y,
            random_state=random_state,
        )
        return X_train, X_test, y_train, y_test
    if dataset == "fashion-mnist":
        X_train, y_train = load_fashion_mnist(
            subset="train", n_samples=n_train, random_state=random_state
        )
        X_test, y_test = load_fashion_mnist(
            subset="test", n_samples=n_test or 2000, random_state=random_state
        )
        return X_train, X_test, y_train, y_test
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def last_layer_mask(feature_groups):
    """The columns of the last tapped layer: the input of the linear probe.

    Parameters
    ----------
    feature_groups : array-like of shape (n_features,) of int
        Layer id of each column, e.g. ``MultiLayerFeaturizer.feature_groups_``
        (the last layer has the largest id; for the default layers it is the
        globally pooled pre-logits).

    Returns
    -------
    mask : ndarray of shape (n_features,) of bool
        True on the columns of the last layer.

    Examples
    --------
    >>> from skhead2toe.experiments import last_layer_mask
    >>> feature_groups = [0, 0, 0, 1, 1, 2, 2]  # e.g. feat.feature_groups_
    >>> last_layer_mask(feature_groups)
    array([False, False, False, False, False,  True,  True])

    The linear probe is then fitted on
    ``Z[:, last_layer_mask(feat.feature_groups_)]``.
    """
    groups = np.asarray(feature_groups)
    return groups == groups.max()


def l2_probe(*, Cs=PROBE_CS, cv=3, n_jobs=None):
    """The L2 logistic probe of the Linear and All layers + L2 baselines.

    A :class:`~skhead2toe.linear_model.LinearProbeCV`: scikit-learn's L2
    multinomial logistic regression, ``C`` chosen by cross-validation, solved to a
    certified duality gap in the row space of the training images (seconds for
    15,000 features of 1,000 images). Fitted on the last layer's columns
    (:func:`last_layer_mask`) it is the classic linear probe, on every column it
    is All layers + L2.

    It replaces a grid search over
    :class:`~sklearn.linear_model.LogisticRegression` (lbfgs, default ``tol``),
    7 times slower for All layers + L2 on the demo. That solver stops far from
    the optimum at large ``C`` (on the demo's digits, after 25 iterations with
    0.970 fold accuracy at ``C = 1000``, against 0.988 when run to convergence),
    so its grid favoured small ``C``; the exact probe scores higher
    (``benchmarks/bench_head2toe.py``).

    Parameters
    ----------
    Cs : sequence of float, default=PROBE_CS
        The ``C`` grid (:data:`PROBE_CS`).
    cv : int or cross-validation generator, default=3
        Folds of the choice of ``C`` (on the training set).
    n_jobs : int or None, default=None
        Folds solved in parallel.

    Returns
    -------
    probe : LinearProbeCV
        Unfitted; ``fit`` picks ``C`` by cross-validation (``C_``).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skhead2toe.experiments import l2_probe
    >>> l2_probe().Cs
    (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)

    A short grid on a small three-class problem (in the demo ``X`` holds the
    featurizer's columns, all of them or those of :func:`last_layer_mask`):

    >>> X, y = make_classification(
    ...     n_samples=150, n_features=20, n_informative=4, n_classes=3, random_state=0
    ... )
    >>> probe = l2_probe(Cs=(0.1, 1.0, 10.0)).fit(X, y)
    >>> probe.C_ in (0.1, 1.0, 10.0)
    True
    >>> probe.coef_.shape  # one weight vector per class
    (3, 20)
    """
    from skhead2toe.linear_model import LinearProbeCV

    return LinearProbeCV(Cs=Cs, cv=cv, n_jobs=n_jobs)


def l1_probe(*, Cs=L1_CS, cv=3, tol=1e-3, n_jobs=None):
    """The All layers + L1 baseline: a sparse logistic probe, ``C`` tuned by CV.

    L1 logistic regression one-vs-rest with liblinear, whose coordinate descent
    is scikit-learn's fast L1 solver on thousands of features (multinomial
    ``solver="saga"`` is far slower there). liblinear is binary, hence
    one-vs-rest. The features it uses are those with a non-zero weight for
    some class.

    Parameters
    ----------
    Cs : sequence of float, default=L1_CS
        The ``C`` grid (:data:`L1_CS`).
    cv : int or cross-validation generator, default=3
        Folds of the grid search.
    tol : float, default=1e-3
        liblinear's stopping tolerance.
    n_jobs : int or None, default=None
        Parallel jobs of the grid search.

    Returns
    -------
    probe : GridSearchCV
        Unfitted; it searches ``estimator__C`` of a
        :class:`~sklearn.multiclass.OneVsRestClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from skhead2toe.experiments import l1_probe
    >>> probe = l1_probe()
    >>> probe.param_grid
    {'estimator__C': [1.0, 10.0, 100.0]}

    On 20 features of which 4 are informative, a strong L1 penalty uses only a
    few of them (the columns with a non-zero weight for some class):

    >>> X, y = make_classification(
    ...     n_samples=150, n_features=20, n_informative=4, n_redundant=0,
    ...     n_classes=3, random_state=0,
    ... )
    >>> probe = l1_probe(Cs=(0.1,)).fit(X, y)
    >>> coef = np.vstack([lr.coef_ for lr in probe.best_estimator_.estimators_])
    >>> coef.shape  # one-vs-rest: one binary classifier per class
    (3, 20)
    >>> int(np.any(coef != 0, axis=0).sum()) < 20
    True
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier

    lr = LogisticRegression(l1_ratio=1.0, solver="liblinear", tol=tol)
    if lr.get_params().get("penalty") not in (None, "deprecated"):
        lr.set_params(penalty="l1")  # scikit-learn < 1.8
    return GridSearchCV(
        OneVsRestClassifier(lr), {"estimator__C": list(Cs)}, cv=cv, n_jobs=n_jobs
    )


def head2toe_cv(
    *,
    alphas=N_ALPHAS,
    keep_fractions=KEEP_FRACTIONS,
    groups=None,
    cv=3,
    n_jobs=None,
    random_state=0,
):
    """Head2Toe as the paper configures it: the fixed grid of the benchmarks.

    A :class:`~skhead2toe.GroupLassoClassifierCV` that chooses ``alpha`` on a
    warm-started path from ``alpha_max`` down, the fraction of features kept
    (among the paper's, without the all-features and last-layer candidates of the
    estimator's default search) and the ridge of their refit (1e-3, 1e-4, 1e-5)
    jointly by cross-validation on the training set.

    Parameters
    ----------
    alphas : int or sequence of float, default=N_ALPHAS
        Points of the ``alpha`` path (:data:`N_ALPHAS`).
    keep_fractions : sequence of float, default=KEEP_FRACTIONS
        Kept fractions tried (:data:`KEEP_FRACTIONS`).
    groups : array-like of int or None, default=None
        None: one group per feature (Head2Toe's feature selection); e.g.
        ``MultiLayerFeaturizer.feature_groups_`` selects whole layers.
    cv : int or cross-validation generator, default=3
        Folds of the cross-validation.
    n_jobs : int or None, default=None
        Parallel jobs of the cross-validation.
    random_state : int, default=0
        Seed of the solver.

    Returns
    -------
    head : GroupLassoClassifierCV
        Unfitted; ``fit`` tunes it along warm-started paths.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skhead2toe.experiments import head2toe_cv
    >>> head = head2toe_cv()
    >>> head.alphas, head.keep_fractions, head.cv
    (6, (0.01, 0.02, 0.05, 0.1, 0.2), 3)

    A small fit: a 3-point path and one kept fraction, a quarter of the 20
    features:

    >>> X, y = make_classification(
    ...     n_samples=150, n_features=20, n_informative=4, n_redundant=0,
    ...     n_classes=3, random_state=0,
    ... )
    >>> head = head2toe_cv(alphas=3, keep_fractions=(0.25,)).fit(X, y)
    >>> head.mean_scores_.shape  # alphas, kept fractions, refit ridges
    (3, 1, 3)
    >>> int(head.selected_features_.sum())
    5
    """
    from skhead2toe.linear_model import GroupLassoClassifierCV

    return GroupLassoClassifierCV(
        alphas=alphas,
        keep_fractions=keep_fractions,
        last_layer=False,
        refit_l2s=(1e-3, 1e-4, 1e-5),
        groups=groups,
        cv=cv,
        n_jobs=n_jobs,
        random_state=random_state,
    )


def head2toe_default(*, cv=3, n_jobs=None, random_state=0):
    """Head2Toe as the library fits it by default: the demo's head.

    ``GroupLassoClassifierCV()`` with its defaults: the paper's kept fractions
    along a 6-point ``alpha`` path, and its two baselines as candidates of the
    same cross-validation (the refit on every feature, All layers + L2, and on
    the last layer alone, the linear probe), the best mean CV score chosen. On a
    task where no selection pays, it chooses a baseline and says so
    (``candidate_``).

    Parameters
    ----------
    cv : int or cross-validation generator, default=3
        Folds of the cross-validation.
    n_jobs : int or None, default=None
        Parallel jobs of the cross-validation.
    random_state : int, default=0
        Seed of the solver.

    Returns
    -------
    head : GroupLassoClassifierCV
        Unfitted.

    Examples
    --------
    >>> from skhead2toe.experiments import head2toe_default
    >>> head = head2toe_default()
    >>> head.keep_fractions, head.last_layer, head.cv
    ('auto', True, 3)
    """
    from skhead2toe.linear_model import GroupLassoClassifierCV

    return GroupLassoClassifierCV(cv=cv, n_jobs=n_jobs, random_state=random_state)


def accuracy_ci95(y_true, y_pred):
    """Test accuracy and the half-width of its 95 % interval.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        Test labels and predictions.

    Returns
    -------
    accuracy : float
        Fraction of the ``n`` test images predicted right.
    half_width : float
        ``1.96 * sqrt(accuracy * (1 - accuracy) / n)``, the half-width of the
        normal-approximation 95 % interval: how much the accuracy may owe to the
        luck of the test sample (compare methods with :func:`paired_comparison`).

    Examples
    --------
    90 of 100 test images right:

    >>> import numpy as np
    >>> from skhead2toe.experiments import accuracy_ci95
    >>> y_true = np.zeros(100, dtype=int)
    >>> y_pred = y_true.copy()
    >>> y_pred[:10] = 1
    >>> accuracy, half_width = accuracy_ci95(y_true, y_pred)
    >>> print(f"{accuracy:.1%} +/- {half_width:.1%}")
    90.0% +/- 5.9%
    """
    accuracy = float(np.mean(y_pred == y_true))
    half_width = 1.96 * np.sqrt(accuracy * (1.0 - accuracy) / len(y_true))
    return accuracy, float(half_width)


def paired_comparison(y_true, pred, pred_other, other):
    """Head2Toe against another method on the same test images (McNemar's test).

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Test labels.
    pred, pred_other : ndarray of shape (n,)
        Head2Toe's predictions and the other method's.
    other : str
        The other method's name.

    Returns
    -------
    comparison : dict
        ``other``; ``difference`` in accuracy (Head2Toe minus other);
        ``only_head2toe_right`` and ``only_other_right``, the discordant counts;
        ``p_value`` of the exact two-sided McNemar test (a binomial test on the
        discordant pairs): small values mean the difference is unlikely to be
        the luck of the test sample.

    Examples
    --------
    On 100 test images, Head2Toe is right on 90 and the linear probe on 80;
    15 images only Head2Toe gets right, 5 only the probe:

    >>> import numpy as np
    >>> from skhead2toe.experiments import paired_comparison
    >>> y_true = np.zeros(100, dtype=int)
    >>> pred = y_true.copy()
    >>> pred[:10] = 1
    >>> pred_linear = y_true.copy()
    >>> pred_linear[5:25] = 1
    >>> result = paired_comparison(y_true, pred, pred_linear, "Linear")
    >>> result["other"], result["only_head2toe_right"], result["only_other_right"]
    ('Linear', 15, 5)
    >>> round(result["difference"], 3), round(result["p_value"], 3)
    (0.1, 0.041)
    """
    from scipy.stats import binomtest

    right, right_other = pred == y_true, pred_other == y_true
    only, only_other = (
        int(np.sum(right & ~right_other)),
        int(np.sum(~right & right_other)),
    )
    p_value = binomtest(only, only + only_other).pvalue if only + only_other else 1.0
    return {
        "other": other,
        "difference": float(np.mean(right) - np.mean(right_other)),
        "only_head2toe_right": only,
        "only_other_right": only_other,
        "p_value": float(p_value),
    }
