"""The display of the group-lasso regularisation path."""

import numpy as np

from ._base import _band, _Display, _get_ax, _matrix, _vector


class RegularizationPathDisplay(_Display):
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
        {ax}
        ylabel : str, default="mean CV score"
            Label of the score axis.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` for every score line.

        {plot_returns}
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
        return self._store(ax)

    @classmethod
    def from_estimator(cls, cv_estimator, *, ax=None, **kwargs):
        """Plot the path of a fitted GroupLassoClassifierCV.

        Parameters
        ----------
        cv_estimator : GroupLassoClassifierCV or Pipeline
            Fitted; or a fitted pipeline whose last step is one.
        {ax}
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
        >>> len(disp.lines_)  # one curve per kept fraction (1.0: flat, no alpha)
        6
        """
        from sklearn.pipeline import Pipeline
        from sklearn.utils.validation import check_is_fitted

        from ..linear_model import GroupLassoClassifierCV

        if isinstance(cv_estimator, Pipeline):
            cv_estimator = cv_estimator.steps[-1][1]
        if not isinstance(cv_estimator, GroupLassoClassifierCV):
            raise TypeError(
                "cv_estimator must be a GroupLassoClassifierCV (or a Pipeline ending "
                f"with one), got {type(cv_estimator).__name__}."
            )
        check_is_fitted(cv_estimator, "scores_")
        fractions = list(cv_estimator.keep_fractions_)
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
