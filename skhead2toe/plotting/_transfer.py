"""The display of the AnB / BnB transfer curves of Yosinski et al. (2014)."""

from ._base import _Display, _get_ax

#: Colours and markers of the paper's figure 2 (BnB blue, AnB red).
_STYLES = {
    "BnB": dict(color="tab:blue", marker="o"),
    "BnB+": dict(color="lightskyblue", marker="o", linestyle="--"),
    "AnB": dict(color="tab:red", marker="D"),
    "AnB+": dict(color="lightcoral", marker="D", linestyle="--"),
    "random": dict(color="tab:grey", marker="s", linestyle=":"),
}


class TransferCurvesDisplay(_Display):
    """Accuracy on task B versus the number of copied layers ``n``.

    The figure of Yosinski et al. (2014): for each variant (BnB, BnB+, AnB,
    AnB+, random) the mean test accuracy over seeds against ``n``, one small
    dot per seed, and baseB (a network trained on B from scratch, ``n = 0``) as
    a horizontal reference. Build it with :meth:`from_results`.

    Parameters
    ----------
    results : list of dict or pandas.DataFrame
        Rows of :func:`~skhead2toe.transfer.run_transfer_experiment`.

    Attributes
    ----------
    lines_ : dict of str to matplotlib.lines.Line2D
        The mean curve of each variant drawn.
    points_ : dict of str to matplotlib.collections.PathCollection
        The per-seed dots of each variant.
    base_line_ : matplotlib.lines.Line2D or None
        The baseB level (None without baseB rows).
    {figure_attributes}

    See Also
    --------
    skhead2toe.transfer.run_transfer_experiment : The rows behind the plot.
    TransferabilityCurveDisplay : The per-layer probe curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skhead2toe.plotting import TransferCurvesDisplay
    >>> rows = [
    ...     dict(seed=0, variant="baseB", n=0, task="B", accuracy=0.9),
    ...     dict(seed=0, variant="AnB", n=1, task="B", accuracy=0.88),
    ...     dict(seed=0, variant="AnB", n=2, task="B", accuracy=0.8),
    ... ]
    >>> disp = TransferCurvesDisplay.from_results(rows)
    >>> disp.lines_["AnB"].get_xdata().tolist()
    [1, 2]
    """

    def __init__(self, *, results):
        from ..transfer._results import _rows

        self.results = _rows(results)

    def plot(self, ax=None, *, variants=None, baseline=None, jitter=0.08):
        """Draw the curves.

        Parameters
        ----------
        {ax}
        variants : list of str, default=None
            Variants to draw, among
            :data:`~skhead2toe.transfer.TRANSFER_VARIANTS`; None: those in
            the results.
        baseline : str, default=None
            Plot each accuracy minus that of this variant (``"baseB"``) for
            the same seed, as in :func:`~skhead2toe.transfer.summarize_results`:
            useful when the seeds draw different class splits. None: the
            accuracies.
        jitter : float, default=0.08
            Horizontal offset between the dots of neighbouring variants.

        {plot_returns}
        """
        from ..transfer._results import (
            TRANSFER_VARIANTS,
            _check_variants,
            _relative,
            summarize_results,
        )

        ax = _get_ax(ax)
        rows = self.results if baseline is None else _relative(self.results, baseline)
        present = {r["variant"] for r in rows}
        if variants is None:
            variants = [v for v in TRANSFER_VARIANTS if v in present]
        variants = _check_variants(variants)
        summary = summarize_results(rows)
        self.lines_, self.points_ = {}, {}
        for k, variant in enumerate(variants):
            self._plot_variant(ax, variant, rows, summary, (k - 2) * jitter)
        self.base_line_ = self._plot_base(ax, summary)
        ax.set_xlabel("layer n at which the network is chopped and retrained")
        ax.set_ylabel(
            "top-1 accuracy on task B (test)"
            if baseline is None
            else f"accuracy on B minus {baseline}'s (same seed)"
        )
        ax.set_title("Transfer A \u2192 B (Yosinski et al., 2014)")
        ns = sorted({int(r["n"]) for r in self.results})
        ax.set_xticks(ns)
        ax.legend(fontsize="small")
        return self._store(ax)

    def _plot_variant(self, ax, variant, rows, summary, offset):
        style = _STYLES[variant]
        rows = [r for r in rows if r["variant"] == variant]
        self.points_[variant] = ax.scatter(
            [int(r["n"]) + offset for r in rows],
            [r["accuracy"] for r in rows],
            s=12,
            color=style["color"],
            alpha=0.6,
        )
        mean = [s for s in summary if s["variant"] == variant]
        (self.lines_[variant],) = ax.plot(
            [s["n"] for s in mean], [s["mean"] for s in mean], label=variant, **style
        )

    @staticmethod
    def _plot_base(ax, summary):
        base = [s for s in summary if s["variant"] == "baseB"]
        if not base:
            return None
        ax.plot([0], [base[0]["mean"]], "o", color="white", markeredgecolor="k")
        return ax.axhline(
            base[0]["mean"], color="k", linestyle=":", linewidth=1, label="baseB"
        )

    @classmethod
    def from_results(cls, results, *, ax=None, **kwargs):
        """Plot the rows of :func:`~skhead2toe.transfer.run_transfer_experiment`.

        Parameters
        ----------
        results : list of dict or pandas.DataFrame
            Rows of one or several runs (seeds).
        {from_tail}
        """
        return cls(results=results).plot(ax=ax, **kwargs)
