"""What the displays share: their base class, matplotlib on demand, input checks.

Every display follows one protocol: ``plot(ax=None, ...)`` draws on ``ax`` (or
on new axes), stores the artists and returns the display; the class methods
build a display and plot it; ``ax_`` and ``figure_`` hold the axes and the
figure. :class:`_Display` gives the protocol's code and the documentation of
its shared parts (:data:`_DOC_PARTS`) one home.
"""

import re
import textwrap

import numpy as np

#: Docstring parts of the display protocol. A line ``{name}`` of a display's
#: docstring (or of one of its methods') is replaced by the part ``name``,
#: indented as the line is, with ``{cls}`` the name of the display.
_DOC_PARTS = {
    "ax": """\
ax : matplotlib.axes.Axes, default=None
    Axes to draw on; None creates a figure.""",
    "plot_returns": """\
Returns
-------
display : {cls}
    ``self``, with the artists stored.""",
    "from_tail": """\
ax : matplotlib.axes.Axes, default=None
    Axes to draw on; None creates a figure.
**kwargs : dict
    Passed to :meth:`plot`.

Returns
-------
display : {cls}
    The plotted display.""",
    "figure_attributes": """\
ax_ : matplotlib.axes.Axes
    Axes of the plot.
figure_ : matplotlib.figure.Figure
    Figure of the plot.""",
}

_DOC_PART_LINE = re.compile(r"^( *)\{(\w+)\}$", flags=re.MULTILINE)


def _fill_doc(doc, cls_name):
    """``doc`` with its ``{name}`` lines replaced by the parts of the protocol."""

    def part(match):
        text = _DOC_PARTS[match.group(2)].format(cls=cls_name)
        return textwrap.indent(text, match.group(1))

    return _DOC_PART_LINE.sub(part, doc)


class _Display:
    """Base class of the displays: the shared docstring parts and ``_store``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__doc__ = _fill_doc(cls.__doc__, cls.__name__)
        for member in vars(cls).values():
            func = getattr(member, "__func__", member)  # class or static method
            if callable(func) and func.__doc__:
                func.__doc__ = _fill_doc(func.__doc__, cls.__name__)

    def _store(self, ax):
        """Keep ``ax`` and its figure as ``ax_`` and ``figure_``; return ``self``."""
        self.ax_, self.figure_ = ax, ax.figure
        return self


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


def _band(ax, x, mean, std, line):
    if std is None:
        return None
    return ax.fill_between(
        x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0
    )


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
