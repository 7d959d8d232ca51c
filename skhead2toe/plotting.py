"""Plots in scikit-learn's Display style (matplotlib is optional).

Each ``*Display`` stores the data to plot; ``plot`` draws it and keeps the
matplotlib artists as attributes ending in ``_``; class methods build a display
from fitted objects and plot it. matplotlib is imported only when plotting:
``import skhead2toe.plotting`` works without it.
"""

import numpy as np

__all__ = [
    "LayerImportanceDisplay",
    "RegularizationPathDisplay",
    "TransferabilityCurveDisplay",
]


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "Plotting needs matplotlib, which is not installed: "
            "pip install matplotlib (or pip install 'skhead2toe[demo]')."
        ) from exc
    return plt


def _get_ax(ax, n_layers=None):
    """``ax``, or new axes (wide enough for ``n_layers`` tick labels)."""
    plt = _pyplot()
    if ax is None:
        width = 6.4 if n_layers is None else max(6.4, 2.0 + 0.3 * n_layers)
        _, ax = plt.subplots(figsize=(width, 4.8))
    return ax


def _vector(values, name, n=None, *, allow_none=False):
    """A finite-or-nan float vector of length ``n``."""
    if values is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required.")
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"{name} must have one value per layer/alpha: expected length {n}, "
            f"got {arr.shape[0]}."
        )
    return arr


def _names(layer_names):
    names = np.asarray(layer_names, dtype=object)
    if names.ndim != 1 or names.size == 0:
        raise ValueError(
            f"layer_names must be a non-empty 1-D list, got shape {names.shape}."
        )
    return [str(n) for n in names]


def _layer_axis(ax, names):
    x = np.arange(len(names))
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlabel("layer (input side \u2192 head side)")
    return x


# ------------------------------------------------------------ importances
class LayerImportanceDisplay:
    """Bar plot of how a group-lasso head's selection spreads over layers.

    Two bars per layer, from the input side (left) to the head side (right): the
    layer's share of the total group norm and its share of the selected
    features. Build it with :meth:`from_estimator`, or from the output of
    :func:`~skhead2toe.inspection.layer_importances`.

    Parameters
    ----------
    layer_names : array-like of str of shape (n_layers,)
        Names of the layers, input side first.
    norm_share : array-like of shape (n_layers,)
        Share of the total ``feature_importances_`` in each layer.
    selected_share : array-like of shape (n_layers,)
        Share of the selected features in each layer.
    n_selected : array-like of int of shape (n_layers,), default=None
        Selected features per layer (the total goes in the title).
    n_features : array-like of int of shape (n_layers,), default=None
        Features per layer (the total goes in the title).

    Attributes
    ----------
    bars_ : dict of str to matplotlib.container.BarContainer
        ``"norm_share"`` and ``"selected_share"`` bars.
    legend_ : matplotlib.legend.Legend
        The legend.
    ax_ : matplotlib.axes.Axes
        Axes of the plot.
    figure_ : matplotlib.figure.Figure
        Figure of the plot.

    See Also
    --------
    skhead2toe.inspection.layer_importances : The numbers behind the plot.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhead2toe.plotting import LayerImportanceDisplay
    >>> disp = LayerImportanceDisplay(
    ...     layer_names=["stem", "block 1", "head"],
    ...     norm_share=[0.2, 0.5, 0.3],
    ...     selected_share=[0.1, 0.6, 0.3],
    ... ).plot()
    >>> len(disp.bars_["norm_share"])
    3
    """

    def __init__(
        self,
        *,
        layer_names,
        norm_share,
        selected_share,
        n_selected=None,
        n_features=None,
    ):
        self.layer_names = _names(layer_names)
        n = len(self.layer_names)
        self.norm_share = _vector(norm_share, "norm_share", n)
        self.selected_share = _vector(selected_share, "selected_share", n)
        self.n_selected = _vector(n_selected, "n_selected", n, allow_none=True)
        self.n_features = _vector(n_features, "n_features", n, allow_none=True)

    def plot(self, ax=None, *, width=0.4, title=None, **kwargs):
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        width : float, default=0.4
            Width of each bar (two bars per layer, one unit apart).
        title : str, default=None
            Title; None: "Layer importances", with the numbers of selected and
            total features when known.
        **kwargs : dict
            Passed to both :meth:`matplotlib.axes.Axes.bar` calls.

        Returns
        -------
        display : LayerImportanceDisplay
            ``self``, with the artists stored.
        """
        ax = _get_ax(ax, len(self.layer_names))
        x = _layer_axis(ax, self.layer_names)
        self.bars_ = {
            "norm_share": ax.bar(
                x - width / 2,
                self.norm_share,
                width,
                label="share of group norm",
                **kwargs,
            ),
            "selected_share": ax.bar(
                x + width / 2,
                self.selected_share,
                width,
                label="share of selected features",
                **kwargs,
            ),
        }
        ax.set_ylabel("share over layers")
        ax.set_xlim(-0.5, len(x) - 0.5)
        if title is None:
            title = "Layer importances"
            if self.n_selected is not None and self.n_features is not None:
                title += (
                    f" ({int(self.n_selected.sum())} of "
                    f"{int(self.n_features.sum())} features selected)"
                )
        ax.set_title(title)
        self.legend_ = ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(
        cls, estimator, groups=None, *, layer_names=None, ax=None, **kwargs
    ):
        """Plot the layer importances of a fitted group-lasso head or pipeline.

        Parameters
        ----------
        estimator : GroupLassoClassifier, GroupLassoClassifierCV or Pipeline
            As in :func:`~skhead2toe.inspection.layer_importances`.
        groups : array-like of shape (n_features,) of int, default=None
            Layer id of each column; None: from the pipeline's featurizer.
        layer_names : array-like of str, default=None
            Names of the layers; None: from the featurizer, else "layer i".
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : LayerImportanceDisplay
            The plotted display.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skhead2toe import GroupLassoClassifier
        >>> from skhead2toe.plotting import LayerImportanceDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = GroupLassoClassifier(alpha=1e-2).fit(X[:500] / 16, y[:500])
        >>> disp = LayerImportanceDisplay.from_estimator(clf, np.arange(64) // 8)
        >>> len(disp.ax_.get_xticklabels())
        8
        """
        from .inspection import layer_importances

        imp = layer_importances(estimator, groups, layer_names=layer_names)
        return cls(
            layer_names=imp.layer_names,
            norm_share=imp.norm_share,
            selected_share=imp.selected_share,
            n_selected=imp.n_selected,
            n_features=imp.n_features,
        ).plot(ax=ax, **kwargs)


# -------------------------------------------------------- transferability
class TransferabilityCurveDisplay:
    """Probe score of each layer, from general (input) to specific (head).

    The transferability curve of Yosinski et al. (2014): the mean CV score of a
    probe on each layer's features, with a band of one standard deviation, the
    same curve for a random-weights backbone (dashed; the control) and the
    chance level. Build it with :meth:`from_probes` from the output of
    :func:`~skhead2toe.inspection.probe_layers`.

    Parameters
    ----------
    layer_names : array-like of str of shape (n_layers,)
        Names of the layers, input side first.
    mean_scores : array-like of shape (n_layers,)
        Mean CV score of each layer's probe.
    std_scores : array-like of shape (n_layers,), default=None
        Their standard deviation over folds (drawn as a band).
    control_mean_scores : array-like of shape (n_layers,), default=None
        Mean scores of the random-weights control (nan where a layer has none).
    control_std_scores : array-like of shape (n_layers,), default=None
        Standard deviation of the control scores.
    chance_level : float, default=None
        Score of a trivial classifier (e.g. the majority-class frequency),
        drawn as a horizontal line.

    Attributes
    ----------
    line_ : matplotlib.lines.Line2D
        The pretrained curve.
    band_ : matplotlib.collections.PolyCollection or None
        Its standard-deviation band.
    control_line_ : matplotlib.lines.Line2D or None
        The control curve.
    control_band_ : matplotlib.collections.PolyCollection or None
        Its standard-deviation band.
    chance_line_ : matplotlib.lines.Line2D or None
        The chance level.
    ax_ : matplotlib.axes.Axes
        Axes of the plot.
    figure_ : matplotlib.figure.Figure
        Figure of the plot.

    See Also
    --------
    skhead2toe.inspection.probe_layers : The probes behind the plot.
    skhead2toe.inspection.random_weights_featurizer : The control's featurizer.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhead2toe.plotting import TransferabilityCurveDisplay
    >>> disp = TransferabilityCurveDisplay(
    ...     layer_names=["stem", "block 1", "head"],
    ...     mean_scores=[0.6, 0.8, 0.9],
    ...     control_mean_scores=[0.5, 0.5, 0.4],
    ...     chance_level=0.1,
    ... ).plot()
    >>> disp.control_line_.get_linestyle()
    '--'
    """

    def __init__(
        self,
        *,
        layer_names,
        mean_scores,
        std_scores=None,
        control_mean_scores=None,
        control_std_scores=None,
        chance_level=None,
    ):
        self.layer_names = _names(layer_names)
        n = len(self.layer_names)
        self.mean_scores = _vector(mean_scores, "mean_scores", n)
        self.std_scores = _vector(std_scores, "std_scores", n, allow_none=True)
        self.control_mean_scores = _vector(
            control_mean_scores, "control_mean_scores", n, allow_none=True
        )
        self.control_std_scores = _vector(
            control_std_scores, "control_std_scores", n, allow_none=True
        )
        if self.control_std_scores is not None and self.control_mean_scores is None:
            raise ValueError("control_std_scores needs control_mean_scores.")
        if chance_level is not None and not np.isfinite(chance_level):
            raise ValueError(f"chance_level must be a number, got {chance_level!r}.")
        self.chance_level = chance_level

    def plot(
        self,
        ax=None,
        *,
        name="pretrained",
        control_name="random weights (control)",
        ylabel="mean CV score",
        **kwargs,
    ):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        name : str, default="pretrained"
            Legend label of the curve.
        control_name : str, default="random weights (control)"
            Legend label of the control curve.
        ylabel : str, default="mean CV score"
            Label of the y axis.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the main curve.

        Returns
        -------
        display : TransferabilityCurveDisplay
            ``self``, with the artists stored.
        """
        ax = _get_ax(ax, len(self.layer_names))
        x = _layer_axis(ax, self.layer_names)
        kwargs = {"marker": "o", "label": name} | kwargs
        (self.line_,) = ax.plot(x, self.mean_scores, **kwargs)
        self.band_ = _band(ax, x, self.mean_scores, self.std_scores, self.line_)
        self.control_line_ = self.control_band_ = self.chance_line_ = None
        if self.control_mean_scores is not None:
            (self.control_line_,) = ax.plot(
                x, self.control_mean_scores, "--", marker="s", label=control_name
            )
            self.control_band_ = _band(
                ax,
                x,
                self.control_mean_scores,
                self.control_std_scores,
                self.control_line_,
            )
        if self.chance_level is not None:
            self.chance_line_ = ax.axhline(
                self.chance_level, color="grey", linestyle=":", label="chance level"
            )
        ax.set_ylabel(ylabel)
        ax.set_title("Layer transferability: general \u2192 specific")
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_probes(cls, probes, control=None, *, chance_level=None, ax=None, **kwargs):
        """Plot the output of :func:`~skhead2toe.inspection.probe_layers`.

        Parameters
        ----------
        probes : Bunch
            ``probe_layers`` on the pretrained features.
        control : Bunch, default=None
            ``probe_layers`` on the features of the random-weights featurizer;
            its layers are matched to ``probes``' by name (a layer missing from
            the control gets no control point).
        chance_level : float, default=None
            Score of a trivial classifier, drawn as a horizontal line.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : TransferabilityCurveDisplay
            The plotted display.

        Raises
        ------
        ValueError
            If ``control`` shares no layer name with ``probes``.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from sklearn.datasets import load_digits
        >>> from skhead2toe.inspection import probe_layers
        >>> from skhead2toe.plotting import TransferabilityCurveDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> probes = probe_layers(X, y, np.arange(64) // 16, cv=3)
        >>> disp = TransferabilityCurveDisplay.from_probes(probes, chance_level=0.1)
        >>> len(disp.line_.get_xdata())
        4
        """
        control_mean = control_std = None
        if control is not None:
            control_mean, control_std = _align(probes, control)
        return cls(
            layer_names=probes.layer_names,
            mean_scores=probes.mean_scores,
            std_scores=probes.get("std_scores"),
            control_mean_scores=control_mean,
            control_std_scores=control_std,
            chance_level=chance_level,
        ).plot(ax=ax, **kwargs)


def _band(ax, x, mean, std, line):
    if std is None:
        return None
    return ax.fill_between(
        x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0
    )


def _align(probes, control):
    """Control mean and std in the order of ``probes``' layers (nan if missing)."""
    names = [str(n) for n in probes.layer_names]
    index = {str(n): i for i, n in enumerate(control.layer_names)}
    if not set(names) & set(index):
        raise ValueError(
            "control shares no layer name with probes: probe the random-weights "
            "featurizer's features with the same layers (and layer_names)."
        )
    pick = [index.get(n) for n in names]

    def take(values):
        values = np.asarray(values, dtype=float)
        return np.array([np.nan if i is None else values[i] for i in pick])

    std = control.get("std_scores")
    return take(control.mean_scores), None if std is None else take(std)


# ------------------------------------------------------- regularisation path
class RegularizationPathDisplay:
    """CV score and sparsity along the group-lasso regularisation path.

    One line of mean CV score against ``alpha`` (log scale) per
    ``keep_fraction`` ("no refit": the plain group lasso), the number of
    non-zero groups on a twin axis (the number of selected features with the
    default one group per feature), and a vertical line at the chosen
    ``alpha``. Build it with :meth:`from_estimator` from a fitted
    :class:`~skhead2toe.GroupLassoClassifierCV`.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        The alpha grid (positive).
    mean_scores : array-like of shape (n_alphas,) or (n_alphas, n_keep_fractions)
        Mean CV score at each alpha (and keep fraction).
    n_nonzero : array-like of shape (n_alphas,)
        Number of non-zero groups at each alpha (e.g. the mean over folds).
    std_scores : array-like of the shape of ``mean_scores``, default=None
        Standard deviation of the scores over folds (drawn as bands).
    alpha : float, default=None
        The chosen alpha, marked by a vertical line.
    keep_fractions : list of float or None, default=None
        Keep fraction of each column of ``mean_scores``; None entries are the
        plain group lasso. Default: ``[None]`` for one column.

    Attributes
    ----------
    lines_ : list of matplotlib.lines.Line2D
        One score line per keep fraction.
    nonzero_line_ : matplotlib.lines.Line2D
        The number of non-zero groups.
    alpha_line_ : matplotlib.lines.Line2D or None
        The vertical line at ``alpha``.
    ax_ : matplotlib.axes.Axes
        Axes of the scores.
    ax_nonzero_ : matplotlib.axes.Axes
        Twin axes of the number of non-zero groups.
    figure_ : matplotlib.figure.Figure
        Figure of the plot.

    See Also
    --------
    skhead2toe.GroupLassoClassifierCV : Computes the path.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhead2toe.plotting import RegularizationPathDisplay
    >>> disp = RegularizationPathDisplay(
    ...     alphas=[1.0, 0.1, 0.01],
    ...     mean_scores=[0.1, 0.8, 0.85],
    ...     n_nonzero=[0, 12, 40],
    ...     alpha=0.01,
    ... ).plot()
    >>> disp.ax_.get_xscale()
    'log'
    """

    def __init__(
        self,
        *,
        alphas,
        mean_scores,
        n_nonzero,
        std_scores=None,
        alpha=None,
        keep_fractions=None,
    ):
        self.alphas = _vector(alphas, "alphas")
        if self.alphas.size == 0 or np.any(self.alphas <= 0):
            raise ValueError("alphas must be positive (they are drawn on a log axis).")
        n = len(self.alphas)
        self.mean_scores = _matrix(mean_scores, "mean_scores", n)
        self.std_scores = (
            None if std_scores is None else _matrix(std_scores, "std_scores", n)
        )
        if self.std_scores is not None and self.std_scores.shape != (
            self.mean_scores.shape
        ):
            raise ValueError(
                f"std_scores must have the shape of mean_scores "
                f"{self.mean_scores.shape}, got {self.std_scores.shape}."
            )
        self.n_nonzero = _vector(n_nonzero, "n_nonzero", n)
        if keep_fractions is None:
            keep_fractions = [None] * self.mean_scores.shape[1]
        self.keep_fractions = list(np.ravel(np.asarray(keep_fractions, dtype=object)))
        if len(self.keep_fractions) != self.mean_scores.shape[1]:
            raise ValueError(
                f"keep_fractions must name each of the {self.mean_scores.shape[1]} "
                f"columns of mean_scores, got {len(self.keep_fractions)}."
            )
        if alpha is not None and not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha!r}.")
        self.alpha = alpha

    def plot(self, ax=None, *, ylabel="mean CV score", **kwargs):
        """Draw the path.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        ylabel : str, default="mean CV score"
            Label of the score axis.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for every score line.

        Returns
        -------
        display : RegularizationPathDisplay
            ``self``, with the artists stored.
        """
        ax = _get_ax(ax)
        self.lines_ = []
        for j, fraction in enumerate(self.keep_fractions):
            label = "no refit" if fraction is None else f"keep_fraction={fraction:g}"
            (line,) = ax.plot(
                self.alphas,
                self.mean_scores[:, j],
                **({"marker": "o", "label": label} | kwargs),
            )
            std = None if self.std_scores is None else self.std_scores[:, j]
            _band(ax, self.alphas, self.mean_scores[:, j], std, line)
            self.lines_.append(line)
        ax.set_xscale("log")
        ax.set_xlabel("alpha")
        ax.set_ylabel(ylabel)
        self.ax_nonzero_ = ax.twinx()
        (self.nonzero_line_,) = self.ax_nonzero_.plot(
            self.alphas,
            self.n_nonzero,
            color="grey",
            linestyle="--",
            label="selected groups",
        )
        self.ax_nonzero_.set_ylabel("selected groups (features)")
        self.alpha_line_ = None
        if self.alpha is not None:
            self.alpha_line_ = ax.axvline(
                self.alpha,
                color="black",
                linestyle=":",
                label=f"chosen alpha = {self.alpha:.3g}",
            )
        handles = self.lines_ + [self.nonzero_line_]
        handles += [self.alpha_line_] if self.alpha_line_ is not None else []
        ax.legend(handles=handles, loc="best")
        ax.set_title("Regularisation path")
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_estimator(cls, cv_estimator, *, ax=None, **kwargs):
        """Plot the path of a fitted GroupLassoClassifierCV.

        Parameters
        ----------
        cv_estimator : GroupLassoClassifierCV or Pipeline
            Fitted; or a fitted pipeline whose last step is one.
        ax : matplotlib.axes.Axes, default=None
            Axes to draw on; None creates a figure.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : RegularizationPathDisplay
            The plotted display: mean and standard deviation over folds of
            ``scores_`` (at the selected refit ridge ``refit_l2_``), mean over
            folds of ``n_nonzero_``, and ``alpha_``.

        Raises
        ------
        TypeError
            If ``cv_estimator`` is not a GroupLassoClassifierCV.
        sklearn.exceptions.NotFittedError
            If it is not fitted.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import load_digits
        >>> from skhead2toe import GroupLassoClassifierCV
        >>> from skhead2toe.plotting import RegularizationPathDisplay
        >>> X, y = load_digits(return_X_y=True)
        >>> cv = GroupLassoClassifierCV(alphas=3, cv=3).fit(X[:300] / 16, y[:300])
        >>> disp = RegularizationPathDisplay.from_estimator(cv)
        >>> len(disp.lines_)
        1
        """
        from sklearn.pipeline import Pipeline
        from sklearn.utils.validation import check_is_fitted

        from .linear_model import GroupLassoClassifierCV

        if isinstance(cv_estimator, Pipeline):
            cv_estimator = cv_estimator.steps[-1][1]
        if not isinstance(cv_estimator, GroupLassoClassifierCV):
            raise TypeError(
                "cv_estimator must be a GroupLassoClassifierCV (or a Pipeline ending "
                f"with one), got {type(cv_estimator).__name__}."
            )
        check_is_fitted(cv_estimator, "scores_")
        fractions = cv_estimator.keep_fractions
        fractions = (
            [None] if fractions is None else [float(f) for f in np.ravel(fractions)]
        )
        # One curve per keep_fraction, at the selected ridge of the refit.
        k = 0
        if cv_estimator.refit_l2_ is not None:
            k = int(
                np.flatnonzero(cv_estimator.refit_l2s_ == cv_estimator.refit_l2_)[0]
            )
        return cls(
            alphas=cv_estimator.alphas_,
            mean_scores=cv_estimator.mean_scores_[..., k],
            std_scores=cv_estimator.scores_[..., k].std(axis=0),
            n_nonzero=cv_estimator.n_nonzero_.mean(axis=0),
            alpha=cv_estimator.alpha_,
            keep_fractions=fractions,
        ).plot(ax=ax, **kwargs)


def _matrix(values, name, n):
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must have shape (n_alphas,) or (n_alphas, n_keep_fractions) "
            f"with n_alphas={n}, got {np.shape(values)}."
        )
    return arr
