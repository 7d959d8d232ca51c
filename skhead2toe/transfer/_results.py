"""The results table of the experiment: its variants and columns, and summaries."""

import numpy as np
from sklearn.utils._param_validation import validate_params

#: Variants trained on task B for each depth ``n``, in the paper's order.
TRANSFER_VARIANTS = ("BnB", "BnB+", "AnB", "AnB+", "random")
#: Columns of the results table of :func:`run_transfer_experiment`.
RESULT_COLUMNS = ("seed", "variant", "n", "task", "accuracy")
_PROBE_VARIANTS = ("probe", "probe random")


def _check_variants(variants):
    """``variants`` as a list of :data:`TRANSFER_VARIANTS`, in the paper's order."""
    if variants is None:
        return list(TRANSFER_VARIANTS)
    variants = [variants] if isinstance(variants, str) else list(variants)
    unknown = [v for v in variants if v not in TRANSFER_VARIANTS]
    if unknown or not variants:
        raise ValueError(
            f"variants must be a non-empty subset of {list(TRANSFER_VARIANTS)}, got "
            f"{variants!r}."
        )
    return [v for v in TRANSFER_VARIANTS if v in variants]


def _to_frame(rows, as_frame):
    """``rows`` as they are, or as a pandas DataFrame with ``as_frame``."""
    if not as_frame:
        return rows
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "as_frame=True needs pandas, which is not installed: pip install pandas "
            "(or use as_frame=False for a list of dicts)."
        ) from exc
    return pd.DataFrame(rows)


def _rows(results):
    """Results as a list of dicts (from a DataFrame or a list), validated."""
    if hasattr(results, "to_dict"):
        results = results.to_dict("records")
    rows = list(results)
    if not rows or any(
        not isinstance(r, dict) or set(RESULT_COLUMNS) - set(r) for r in rows
    ):
        raise ValueError(
            "results must be the non-empty output of run_transfer_experiment: rows "
            f"with the columns {list(RESULT_COLUMNS)}."
        )
    return rows


def _relative(rows, baseline):
    """Rows of the baseline's task with accuracy minus the baseline's, per seed."""
    base = {}
    for r in rows:
        if r["variant"] == baseline:
            if r["seed"] in base:
                raise ValueError(
                    f"baseline={baseline!r}: seed {r['seed']!r} has more than one "
                    "baseline row; give each run its own int random_state."
                )
            base[r["seed"]] = r
    if not base:
        raise ValueError(
            f"baseline={baseline!r} names no variant of the results; use e.g. 'baseB'."
        )
    missing = {r["seed"] for r in rows} - set(base)
    if missing:
        raise ValueError(
            f"baseline={baseline!r}: no baseline row for seed(s) {sorted(missing)}."
        )
    return [
        r | dict(accuracy=float(r["accuracy"]) - float(base[r["seed"]]["accuracy"]))
        for r in rows
        if r["task"] == base[r["seed"]]["task"]
    ]


@validate_params(
    {"results": "no_validation", "baseline": [str, None], "as_frame": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def summarize_results(results, *, baseline=None, as_frame=False):
    """Mean and standard deviation of the accuracy over seeds.

    Parameters
    ----------
    results : list of dict or pandas.DataFrame
        Rows of :func:`run_transfer_experiment`, e.g. several seeds
        concatenated.
    baseline : str, default=None
        A variant, usually ``"baseB"``: summarise each accuracy minus the
        baseline's accuracy of the same seed (paired differences; rows of the
        other task are dropped). Each seed draws its own class split, so task
        B's difficulty varies between seeds; the paired differences remove
        that variation. None: the accuracies themselves.
    as_frame : bool, default=False
        Return a pandas DataFrame instead of a list of dicts.

    Returns
    -------
    summary : list of dict or pandas.DataFrame
        One row per (``variant``, ``n``, ``task``), in the order of first
        appearance, with ``mean``, ``std`` (population standard deviation, 0
        for one seed), ``min``, ``max`` and ``n_seeds``.

    Raises
    ------
    ValueError
        If ``results`` is empty or lacks a column, or a seed has no (or more
        than one) ``baseline`` row.

    Examples
    --------
    >>> from skhead2toe.transfer import summarize_results
    >>> rows = [
    ...     dict(seed=s, variant="AnB", n=1, task="B", accuracy=a)
    ...     for s, a in [(0, 0.8), (1, 0.9)]
    ... ]
    >>> summary = summarize_results(rows)
    >>> round(summary[0]["mean"], 3), summary[0]["n_seeds"]
    (0.85, 2)
    """
    rows = _rows(results)
    rows = rows if baseline is None else _relative(rows, baseline)
    groups = {}
    for r in rows:
        groups.setdefault((r["variant"], int(r["n"]), r["task"]), []).append(
            float(r["accuracy"])
        )
    summary = [
        dict(
            variant=variant,
            n=n,
            task=task,
            mean=float(np.mean(acc)),
            std=float(np.std(acc)),
            min=float(np.min(acc)),
            max=float(np.max(acc)),
            n_seeds=len(acc),
        )
        for (variant, n, task), acc in groups.items()
    ]
    return _to_frame(summary, as_frame)
