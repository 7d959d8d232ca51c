"""Which layers matter: layer importances, per-layer probes and controls.

Tools for the two analyses that go with Head2Toe:

- :func:`layer_importances` reads a fitted group-lasso head and tells how its
  selection and its weight are spread over the backbone's layers (Evci et al.,
  ICML 2022, Figure 5).
- :func:`probe_layers` fits one linear probe per layer: the transferability curve
  from general (input side) to specific (head side) layers of Yosinski et al.
  (NeurIPS 2014); :func:`random_weights_featurizer` gives the random-filter
  control curve of the same paper.
- :func:`domain_affinity` measures how close the target task is to the source
  task, which predicts how much the intermediate layers help.
"""

import sys
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from ._memory import releases_memory
from .linear_model import GroupLassoClassifier, GroupLassoClassifierCV
from .linear_model._numpy import one_blas_thread
from .linear_model._path import make_groups

__all__ = [
    "default_probe",
    "domain_affinity",
    "layer_importances",
    "probe_layers",
    "random_weights_featurizer",
]


# ----------------------------------------------------------------- helpers
def _featurizer_class():
    """``MultiLayerFeaturizer`` if its module is loaded, else None.

    No instance can exist before ``skhead2toe.feature_extraction.featurizer`` is
    imported, so this avoids importing torch just to answer ``isinstance``.
    """
    module = sys.modules.get("skhead2toe.feature_extraction.featurizer")
    return None if module is None else module.MultiLayerFeaturizer


def _is_featurizer(obj):
    cls = _featurizer_class()
    return cls is not None and isinstance(obj, cls)


def _find_featurizer(steps):
    """The last MultiLayerFeaturizer among pipeline steps (nested pipelines too)."""
    found = None
    for _, step in steps:
        if isinstance(step, Pipeline):
            step = _find_featurizer(step.steps)
        if _is_featurizer(step):
            found = step
    return found


def _featurizer_groups(featurizer, what):
    check_is_fitted(
        featurizer,
        "feature_groups_",
        msg=f"The MultiLayerFeaturizer in {what} is not fitted yet: fit it first.",
    )
    return featurizer.feature_groups_, featurizer.layer_names_


def _head_groups(head):
    """Layer labels from the head's own ``groups`` parameter, or None.

    Index lists are read as the estimators read them (:func:`make_groups`):
    group ``i`` of the list is layer ``i``.
    """
    groups = getattr(head, "groups", None)
    if groups is None:
        return None
    if isinstance(groups, list | tuple):
        return make_groups(groups, head.feature_importances_.shape[0]).ids
    return np.asarray(groups)


def _unwrap(estimator):
    """The group-lasso head, and the featurizer when ``estimator`` is a pipeline."""
    featurizer = None
    head = estimator
    if isinstance(estimator, Pipeline):
        head = estimator.steps[-1][1]
        featurizer = _find_featurizer(estimator.steps[:-1])
    if not isinstance(head, GroupLassoClassifier | GroupLassoClassifierCV):
        raise TypeError(
            "estimator must be a GroupLassoClassifier, a GroupLassoClassifierCV or a "
            f"Pipeline ending with one; got {type(head).__name__}."
        )
    check_is_fitted(
        head,
        "feature_importances_",
        msg=(
            f"This {type(head).__name__} is not fitted yet: call fit before "
            "inspecting its layer importances."
        ),
    )
    return head, featurizer


def _check_groups(groups, n_features, layer_names):
    """Validate ``groups`` (int per column) and ``layer_names``; return both."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_features:
        raise ValueError(
            f"groups must be a 1-D array with one layer id per feature: expected "
            f"length {n_features}, got shape {groups.shape}."
        )
    if groups.size and not (
        np.issubdtype(groups.dtype, np.integer)
        or np.all(np.equal(np.mod(groups, 1), 0))
    ):
        raise ValueError("groups must hold integer layer ids.")
    groups = groups.astype(np.int64)
    if groups.size and groups.min() < 0:
        raise ValueError(f"groups must be non-negative, got {groups.min()}.")
    n_layers = int(groups.max()) + 1 if groups.size else 0
    if layer_names is None:
        layer_names = [f"layer {i}" for i in range(n_layers)]
    layer_names = np.asarray(layer_names, dtype=object)
    if layer_names.ndim != 1 or len(layer_names) < n_layers:
        raise ValueError(
            f"layer_names must name every layer id in groups: got "
            f"{len(layer_names)} names for layer ids up to {n_layers - 1}."
        )
    return groups, layer_names


def _share(values):
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values, dtype=float)


# ----------------------------------------------------- layer importances
def layer_importances(estimator, groups=None, *, layer_names=None):
    """Per-layer share of the features selected by a group-lasso head.

    Sums the fitted head's ``selected_features_`` and ``feature_importances_``
    (the norm of each feature's row of the group-lasso solution, before any
    ``keep_fraction`` refit) over the layers of the backbone. Head2Toe's finding
    is that, for targets far from the source domain, much of the selection comes
    from intermediate layers rather than the last one.

    Parameters
    ----------
    estimator : GroupLassoClassifier, GroupLassoClassifierCV or Pipeline
        A fitted head, or a fitted pipeline whose last step is one. When the
        pipeline contains a fitted :class:`~skhead2toe.MultiLayerFeaturizer`, its
        ``feature_groups_`` and ``layer_names_`` are used by default.
    groups : array-like of shape (n_features,) of int, default=None
        Layer id of each input column of the head (``0 .. n_layers - 1``). None:
        from the pipeline's featurizer, else from the head's ``groups``
        parameter when it describes the columns.
    layer_names : array-like of str of shape (n_layers,), default=None
        Names of the layers; None: the featurizer's ``layer_names_``, else
        ``"layer 0"``, ``"layer 1"``...

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        Arrays with one entry per layer, input side first:

        - ``layer_names``: names of the layers;
        - ``n_features``: number of features of the layer;
        - ``n_selected``: number of selected features of the layer;
        - ``selected_fraction``: ``n_selected / n_features`` (0 for an empty
          layer);
        - ``selected_share``: ``n_selected`` over the total number selected (all
          zeros when nothing is selected);
        - ``norm_share``: sum of ``feature_importances_`` over the layer divided
          by their total (all zeros when the solution is zero).

    Raises
    ------
    TypeError
        If ``estimator`` is not a group-lasso head or a pipeline ending with one.
    sklearn.exceptions.NotFittedError
        If the head (or the pipeline's featurizer) is not fitted.
    ValueError
        If no groups are available, or ``groups`` / ``layer_names`` do not match
        the head's features.

    See Also
    --------
    skhead2toe.plotting.LayerImportanceDisplay : Bar plot of the result.
    probe_layers : Accuracy of a separate probe on each layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe import GroupLassoClassifier
    >>> from skhead2toe.inspection import layer_importances
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GroupLassoClassifier(alpha=1e-2).fit(X[:500] / 16, y[:500])
    >>> groups = np.arange(64) // 8  # pretend each image row is a layer
    >>> imp = layer_importances(clf, groups)
    >>> imp.layer_names[:2].tolist()
    ['layer 0', 'layer 1']
    >>> bool(np.isclose(imp.norm_share.sum(), 1.0))
    True
    """
    head, featurizer = _unwrap(estimator)
    if groups is None and featurizer is not None:
        groups, names = _featurizer_groups(featurizer, "the pipeline")
        layer_names = names if layer_names is None else layer_names
    if groups is None:
        groups = _head_groups(head)
    if groups is None:
        raise ValueError(
            "No layer groups available: pass groups (one layer id per feature, "
            "e.g. MultiLayerFeaturizer.feature_groups_) or a Pipeline that contains "
            "a fitted MultiLayerFeaturizer."
        )
    importances = np.asarray(head.feature_importances_, dtype=float)
    groups, layer_names = _check_groups(groups, importances.shape[0], layer_names)
    n_layers = len(layer_names)
    selected = np.asarray(head.selected_features_, dtype=bool)
    n_features = np.bincount(groups, minlength=n_layers)
    n_selected = np.bincount(groups, weights=selected, minlength=n_layers)
    n_selected = n_selected.astype(np.int64)
    norm = np.bincount(groups, weights=importances, minlength=n_layers)
    fraction = np.divide(
        n_selected, n_features, out=np.zeros(n_layers), where=n_features > 0
    )
    return Bunch(
        layer_names=layer_names,
        n_features=n_features,
        n_selected=n_selected,
        selected_fraction=fraction,
        selected_share=_share(n_selected.astype(float)),
        norm_share=_share(norm),
    )


# ------------------------------------------------------------ probes
def default_probe():
    """The linear probe used when no estimator is given.

    A :class:`~sklearn.preprocessing.StandardScaler` followed by an L2
    multinomial :class:`~sklearn.linear_model.LogisticRegression` with
    ``C=0.1`` (lbfgs, ``max_iter=1000``).

    The featurizer scales each layer to unit norm per image, so a layer of
    ``d`` features has values of order ``1 / sqrt(d)``: with a fixed ``C`` a
    wide layer would be regularised far more than a narrow one. Standardising
    each feature gives every layer the same scale, so one ``C`` is a fair choice
    across layers. ``C=0.1`` is a moderate ridge for a few hundred to a few
    thousand training images and hundreds of features (scikit-learn sums the
    loss over samples, so the penalty per sample is ``1 / (C n)``), and it keeps
    lbfgs fast. It is not tuned: pass
    ``estimator=make_pipeline(StandardScaler(), LogisticRegressionCV())`` to
    :func:`probe_layers` for a tuned probe at several times the cost.

    Returns
    -------
    probe : Pipeline
        An unfitted scaler + logistic-regression pipeline.

    Examples
    --------
    >>> from skhead2toe.inspection import default_probe
    >>> default_probe()[-1].C
    0.1
    """
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))


def _check_Xy(X, y, name="X"):
    X = check_array(X, dtype=[np.float64, np.float32], input_name=name)
    y = column_or_1d(y, warn=True)
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name} and y have different numbers of samples: {X.shape[0]} and "
            f"{y.shape[0]}."
        )
    return X, y


def _splits(cv, X, y):
    """Materialised CV splits, so that every probe sees the same folds."""
    return list(check_cv(cv, y, classifier=True).split(X, y))


def _cv_scores(estimator, X, y, splits, scoring, n_jobs=None):
    """Score of a clone of ``estimator`` on each split, ``n_jobs`` folds at once.

    The folds go to joblib's ``Parallel``, not through ``cross_val_score``:
    scikit-learn's ``Parallel`` sends the caller's warning filters to its
    workers, and once torch is imported (by the featurizer) those filters name
    torch's warning classes, so every worker imports torch to unpickle them:
    seconds per worker, and half a gigabyte that later makes loky replace it.
    """
    jobs = (
        delayed(_fold_score)(estimator, X, y, train, test, scoring)
        for train, test in splits
    )
    return np.array(Parallel(n_jobs=n_jobs)(jobs), dtype=float)


@releases_memory
def _fold_score(estimator, X, y, train, test, scoring):
    # One layer's fits are small (hundreds of columns): threaded BLAS costs more
    # to wake than it saves, and one thread makes the demo's probes 8x faster
    # (benchmarks/bench_head2toe.py). Spend cores on layers instead (n_jobs).
    with one_blas_thread():
        model = clone(estimator).fit(X[train], y[train])
        return check_scoring(model, scoring=scoring)(model, X[test], y[test])


def probe_layers(
    X,
    y,
    groups,
    *,
    estimator=None,
    cv=5,
    scoring=None,
    layer_names=None,
    n_jobs=None,
    progress=False,
):
    """Cross-validated linear probe on each layer: the transferability curve.

    For every layer, ``estimator`` is cross-validated on the columns of that
    layer only. Plotted from the input side to the head side, the scores show
    where the features turn from general to specific to the source task
    (Yosinski et al., 2014): on a target close to the source task the scores
    rise towards the head; on a distant one they peak earlier, and the
    intermediate layers are what Head2Toe selects. Probing the features of
    :func:`random_weights_featurizer` gives the control curve: what the
    architecture alone, with random filters, achieves.

    All layers use the same CV splits.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features of all layers, e.g. the output of a
        :class:`~skhead2toe.MultiLayerFeaturizer`.
    y : array-like of shape (n_samples,)
        Class labels.
    groups : array-like of shape (n_features,) of int, or MultiLayerFeaturizer
        Layer id of each column (``0 .. n_layers - 1``), or a fitted featurizer
        whose ``feature_groups_`` (and ``layer_names_``) are used.
    estimator : classifier, default=None
        The probe, cloned for each layer and fold. None: :func:`default_probe`
        (standardised features, L2 multinomial logistic regression, ``C=0.1``).
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.check_cv` (stratified k-fold for
        an int).
    scoring : str or callable, default=None
        As in :func:`~sklearn.model_selection.cross_val_score`; None: the
        estimator's ``score`` (accuracy for classifiers).
    layer_names : array-like of str of shape (n_layers,), default=None
        Names of the layers; None: the featurizer's ``layer_names_``, else
        ``"layer 0"``, ``"layer 1"``...
    n_jobs : int, default=None
        Layers probed in parallel through joblib. Each layer's fits run on one
        BLAS thread (faster on these small problems), so spend the cores here.
    progress : bool, default=False
        Show a tqdm progress bar over the layers.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``layer_names``: ndarray of shape (n_layers,);
        - ``n_features``: ndarray of shape (n_layers,), columns per layer;
        - ``scores``: ndarray of shape (n_layers, n_splits), test score of every
          layer and fold;
        - ``mean_scores``, ``std_scores``: ndarray of shape (n_layers,), their
          mean and standard deviation over folds.

    Raises
    ------
    ValueError
        If the shapes of ``X``, ``y``, ``groups`` or ``layer_names`` do not
        match, or a layer has no columns.

    See Also
    --------
    skhead2toe.plotting.TransferabilityCurveDisplay : Plot of the result.
    random_weights_featurizer : Featurizer for the random-filter control.

    References
    ----------
    Yosinski, J., Clune, J., Bengio, Y. and Lipson, H. (2014). How transferable
    are features in deep neural networks? NeurIPS. Features go from general near
    the input to specific near the output; this probe measures it per layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.inspection import probe_layers
    >>> X, y = load_digits(return_X_y=True)
    >>> groups = np.arange(64) // 16  # four "layers" of 16 pixels
    >>> probes = probe_layers(X, y, groups, cv=3)
    >>> probes.scores.shape
    (4, 3)
    """
    names = None
    if _is_featurizer(groups):
        groups, names = _featurizer_groups(groups, "groups")
    layer_names = names if layer_names is None else layer_names
    X, y = _check_Xy(X, y)
    groups, layer_names = _check_groups(groups, X.shape[1], layer_names)
    n_features = np.bincount(groups, minlength=len(layer_names))
    empty = np.flatnonzero(n_features == 0)
    if empty.size:
        raise ValueError(
            f"Layer {layer_names[empty[0]]!r} (id {empty[0]}) has no columns in X; "
            "every layer id below the largest must occur in groups."
        )
    estimator = default_probe() if estimator is None else estimator
    splits = _splits(cv, X, y)
    jobs = (
        delayed(_cv_scores)(estimator, X[:, groups == i], y, splits, scoring)
        for i in range(len(layer_names))
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(layer_names), desc="probing layers")
    scores = np.asarray(list(results), dtype=float).reshape(len(layer_names), -1)
    return Bunch(
        layer_names=layer_names,
        n_features=n_features,
        scores=scores,
        mean_scores=scores.mean(axis=1),
        std_scores=scores.std(axis=1),
    )


# ----------------------------------------------------- random control
def random_weights_featurizer(featurizer, random_state=0):
    """The same featurizer with seeded random weights: the random-filter control.

    Yosinski et al. (2014) compare transferred features with the features of
    the same architecture with random, untrained filters: whatever a probe
    reaches on those is due to the architecture (pooling, normalisation, the
    width of the layers), not to what pretraining learned. This returns an
    unfitted clone of ``featurizer`` with ``pretrained=False`` and the given
    seed; probing its features with :func:`probe_layers` gives the control
    curve.

    Parameters
    ----------
    featurizer : MultiLayerFeaturizer
        Fitted or not; its parameters are copied, fitted state is not.
    random_state : int, default=0
        Seed of the random weights (the torch seed), so the control is
        reproducible.

    Returns
    -------
    control : MultiLayerFeaturizer
        An unfitted featurizer with ``pretrained=False`` and
        ``random_state=random_state``.

    Raises
    ------
    TypeError
        If ``featurizer`` is not a MultiLayerFeaturizer, or ``random_state`` is
        not an int.
    ValueError
        If the featurizer's backbone is a ``torch.nn.Module``: its weights are
        given by the user, and ``pretrained`` does not apply.

    Examples
    --------
    >>> from skhead2toe import MultiLayerFeaturizer
    >>> from skhead2toe.inspection import random_weights_featurizer
    >>> control = random_weights_featurizer(MultiLayerFeaturizer(), random_state=1)
    >>> control.pretrained, control.random_state
    (False, 1)
    """
    if not _is_featurizer(featurizer):
        raise TypeError(
            "featurizer must be a skhead2toe.MultiLayerFeaturizer, got "
            f"{type(featurizer).__name__}."
        )
    if not isinstance(random_state, Integral) or isinstance(random_state, bool):
        raise TypeError(
            f"random_state must be an int (a fixed seed), got {random_state!r}."
        )
    if not isinstance(featurizer.backbone, str):
        raise ValueError(
            "random_weights_featurizer needs a backbone given by name: with a "
            "torch.nn.Module backbone, pretrained is ignored. Re-initialise a copy "
            "of your module (e.g. call reset_parameters on its layers) and pass it "
            "to a new MultiLayerFeaturizer instead."
        )
    return clone(featurizer).set_params(pretrained=False, random_state=random_state)


# ------------------------------------------------------- domain affinity
def domain_affinity(
    X_last,
    y,
    *,
    X_scratch=None,
    scratch_score=None,
    estimator=None,
    cv=5,
    scoring=None,
    n_jobs=None,
):
    r"""Domain affinity of a target task to the source task (Head2Toe).

    Head2Toe (Evci et al., 2022) measures how close a target task is to the
    source (pretraining) task by how much a linear probe on the pretrained
    last-layer features beats a model trained from scratch on the target data:

    .. math::

        \mathrm{affinity} = \mathrm{acc}_\mathrm{linear}
        - \mathrm{acc}_\mathrm{scratch}

    where :math:`\mathrm{acc}_\mathrm{linear}` is the cross-validated score of a
    linear probe on ``X_last`` and :math:`\mathrm{acc}_\mathrm{scratch}` the
    score of the from-scratch baseline (in the same units, e.g. accuracy in
    ``[0, 1]``).

    How to read it: a high affinity means the last layer already carries what
    the target needs (the source domain is close); a low or negative affinity
    means the target is far from the source domain and the last layer's
    specialised features help little, so intermediate layers matter more.
    Head2Toe's gain over the linear probe is negatively correlated with the
    affinity.

    Parameters
    ----------
    X_last : array-like of shape (n_samples, n_features)
        Pretrained last-layer features (e.g. a featurizer with
        ``layers="last"``).
    y : array-like of shape (n_samples,)
        Class labels.
    X_scratch : array-like of shape (n_samples, n_inputs), default=None
        Inputs of the from-scratch baseline, e.g. the raw pixels flattened; the
        same probe is cross-validated on them, on the same splits. Give exactly
        one of ``X_scratch`` and ``scratch_score``.
    scratch_score : float, default=None
        A from-scratch score measured elsewhere (e.g. a CNN trained from scratch
        on the target data), in the units of ``scoring``.
    estimator : classifier, default=None
        The probe; None: :func:`default_probe`.
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`~sklearn.model_selection.check_cv`.
    scoring : str or callable, default=None
        As in :func:`~sklearn.model_selection.cross_val_score`; None: accuracy.
    n_jobs : int, default=None
        Folds fitted in parallel (joblib).

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        - ``affinity``: float, ``linear_score - scratch_score``;
        - ``linear_score``: float, mean CV score of the probe on ``X_last``;
        - ``scratch_score``: float, the from-scratch score;
        - ``linear_scores``: ndarray of shape (n_splits,), per-fold scores on
          ``X_last``;
        - ``scratch_scores``: ndarray of shape (n_splits,) per-fold scores on
          ``X_scratch``, or None when ``scratch_score`` was given.

    Raises
    ------
    ValueError
        If neither or both of ``X_scratch`` and ``scratch_score`` are given, or
        the numbers of samples differ.

    References
    ----------
    Evci, U., Dumoulin, V., Larochelle, H. and Mozer, M. C. (2022). Head2Toe:
    Utilizing Intermediate Representations for Better Transfer Learning. ICML.
    The domain affinity is defined there, and Head2Toe's gain over a linear
    probe falls as it rises.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhead2toe.inspection import domain_affinity
    >>> X, y = load_digits(return_X_y=True)
    >>> res = domain_affinity(X[:, :32], y, scratch_score=0.5, cv=3)
    >>> bool(res.affinity == res.linear_score - 0.5)
    True
    """
    if (X_scratch is None) == (scratch_score is None):
        raise ValueError(
            "Give exactly one of X_scratch (inputs of a from-scratch baseline, "
            "cross-validated with the same probe) and scratch_score (a score "
            "measured elsewhere); got " + ("neither." if X_scratch is None else "both.")
        )
    X_last, y = _check_Xy(X_last, y, "X_last")
    estimator = default_probe() if estimator is None else estimator
    splits = _splits(cv, X_last, y)
    linear_scores = _cv_scores(estimator, X_last, y, splits, scoring, n_jobs)
    scratch_scores = None
    if X_scratch is not None:
        X_scratch, _ = _check_Xy(X_scratch, y, "X_scratch")
        scratch_scores = _cv_scores(estimator, X_scratch, y, splits, scoring, n_jobs)
        scratch_score = scratch_scores.mean()
    elif not isinstance(scratch_score, Real) or not np.isfinite(scratch_score):
        raise ValueError(
            f"scratch_score must be a finite number, got {scratch_score!r}."
        )
    linear_score = float(linear_scores.mean())
    scratch_score = float(scratch_score)
    return Bunch(
        affinity=linear_score - scratch_score,
        linear_score=linear_score,
        scratch_score=scratch_score,
        linear_scores=linear_scores,
        scratch_scores=scratch_scores,
    )
