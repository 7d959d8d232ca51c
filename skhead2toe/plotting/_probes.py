"""The display of the per-layer probe scores (the transferability curve)."""

import numpy as np

from ._base import _band, _Display, _get_ax, _layer_axis, _names, _vector


class TransferabilityCurveDisplay(_Display):
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
    {figure_attributes}

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
        {ax}
        name : str, default="pretrained"
            Legend label of the curve.
        control_name : str, default="random weights (control)"
            Legend label of the control curve.
        ylabel : str, default="mean CV score"
            Label of the y axis.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for the main curve.

        {plot_returns}
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
        return self._store(ax)

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
        {from_tail}

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
