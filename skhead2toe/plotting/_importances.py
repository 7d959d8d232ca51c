"""The display of how a group-lasso head's selection spreads over layers."""

from ._base import _Display, _get_ax, _layer_axis, _names, _vector


class LayerImportanceDisplay(_Display):
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
    {figure_attributes}

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
        {ax}
        width : float, default=0.4
            Width of each bar (two bars per layer, one unit apart).
        title : str, default=None
            Title; None: "Layer importances", with the numbers of selected and
            total features when known.
        **kwargs : dict
            Passed to both :meth:`matplotlib.axes.Axes.bar` calls.

        {plot_returns}
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
        return self._store(ax)

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
        {from_tail}

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
        from ..inspection import layer_importances

        imp = layer_importances(estimator, groups, layer_names=layer_names)
        return cls(
            layer_names=imp.layer_names,
            norm_share=imp.norm_share,
            selected_share=imp.selected_share,
            n_selected=imp.n_selected,
            n_features=imp.n_features,
        ).plot(ax=ax, **kwargs)
