"""The ``skhead2toe demo`` job: Head2Toe against its baselines on one small task.

It follows the comparison of Evci et al. (ICML 2022, Table 1) on a 1000-image
training set, with every hyper-parameter tuned by cross-validation on the training
set only, and a held-out test set scored once:

- **Linear**: a tuned L2 logistic probe on the last layer (the pre-logits);
- **All layers + L2**: the same probe on the features of every tapped layer;
- **Head2Toe**: :class:`~skhead2toe.GroupLassoClassifierCV` with its defaults,
  the library's head: group-lasso selection over all layers and a refit on the
  kept features (``alpha``, ``keep_fraction`` and the refit's ridge tuned by
  cross-validation), in one search with the refits on every feature and on the
  last layer, so that it chooses a baseline where no selection pays.

It also reports the task's domain affinity and writes the layer-importance and
transferability (Yosinski et al., NeurIPS 2014) plots.
"""

import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skhead2toe._io import atomic_write
from skhead2toe.experiments import (
    ALL_LAYERS,
    DATASETS,
    HEAD2TOE,
    KEEP_FRACTIONS,  # noqa: F401 (the grids' old home: import them from experiments)
    LINEAR,
    N_ALPHAS,  # noqa: F401
    PROBE_CS,  # noqa: F401
    accuracy_ci95,
    head2toe_default,
    l2_probe,
    last_layer_mask,
    load_task,
    paired_comparison,
)
from skhead2toe.linear_model._numpy import one_blas_thread

__all__ = ["DATASETS", "format_table", "run_demo", "split_timings"]


def _say(message):
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _quiet_worker_restarts():
    """Silence joblib's notice that it replaced a worker (results are unaffected).

    loky restarts a worker whose memory grew by 300 MB, which the folds of a
    15,000-feature CV do, and warns "A worker stopped while some jobs were
    given to the executor" when jobs were queued: noise for a demo user.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="A worker stopped while some jobs", category=UserWarning
        )
        yield


@contextmanager
def _stage(name, timings):
    """Announce a stage on stderr and record its wall time in ``timings``."""
    _say(f"[skhead2toe demo] {name} ...")
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    _say(f"[skhead2toe demo] {name}: {timings[name]:.1f} s")


def run_demo(
    *,
    dataset="digits",
    n_train=1000,
    n_test=None,
    backbone="efficientnet_lite0",
    pretrained=True,
    image_size=None,
    layers="head2toe",
    target_size=1024,
    batch_size=32,
    device="auto",
    cv=3,
    output_dir="skhead2toe-demo",
    cache=None,
    plots=True,
    random_state=0,
    n_jobs=-1,
):
    """Run the Head2Toe comparison, print its table and write its plots.

    The heads and their grids are those of :mod:`skhead2toe.experiments`.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}, default="digits"
        The target task.
    n_train : int, default=1000
        Training images (the paper's "1k" setting).
    n_test : int or None, default=None
        Test images (see :func:`~skhead2toe.experiments.load_task`).
    backbone : str, default="efficientnet_lite0"
        Backbone of :class:`~skhead2toe.MultiLayerFeaturizer`.
    pretrained : bool or path, default=True
        Its weights.
    image_size : int or None, default=None
        Model input size (None: the backbone's, 224 for the default).
    layers : str or list of str, default="head2toe"
        Layers to tap (see :class:`~skhead2toe.MultiLayerFeaturizer`).
    target_size : int, default=1024
        Largest number of pooled features per layer.
    batch_size : int, default=32
        Images per forward pass.
    device : str, default="auto"
        Device of the backbone.
    cv : int, default=3
        Folds of every cross-validated choice (on the training set only).
    output_dir : path-like, default="skhead2toe-demo"
        Where ``results.json`` and the PNG plots go (created if needed).
    cache : path-like or None, default=None
        Feature cache directory (a second run skips the backbone).
    plots : bool, default=True
        Write the layer-importance and transferability plots (needs matplotlib).
    random_state : int, default=0
        Seed of the split, the random-weights control and the solvers.
    n_jobs : int or None, default=-1
        Parallel jobs of the cross-validations and layer probes (-1: every
        core; the heads then take about half the time on 2 cores).

    Returns
    -------
    results : dict
        The table (``"methods"``), timings, domain affinity and written files.
    """
    from skhead2toe import MultiLayerFeaturizer

    if plots:
        _require_matplotlib()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    X_train, X_test, y_train, y_test = _load(
        dataset, n_train, n_test, random_state, timings
    )
    feat = MultiLayerFeaturizer(
        backbone,
        layers=layers,
        target_size=target_size,
        pretrained=pretrained,
        image_size=image_size,
        device=device,
        batch_size=batch_size,
        cache=cache,
        progress=True,
        random_state=random_state,
    )
    with _stage("extracting features", timings):
        Z_train = feat.fit_transform(X_train)
        Z_test = feat.transform(X_test)
    last = last_layer_mask(feat.feature_groups_)
    # The heads run on one BLAS thread: threaded OpenBLAS is slower on these
    # small problems. Extraction above is torch's.
    with one_blas_thread(), _quiet_worker_restarts():
        heads, rows, paired = _fit_heads(
            (Z_train, y_train, Z_test, y_test), last, cv, n_jobs, random_state, timings
        )
        affinity = _domain_affinity(
            X_train, Z_train[:, last], y_train, heads[LINEAR], cv, n_jobs, timings
        )
    results = _results(dataset, feat, Z_train, y_test, rows, paired, heads, affinity)
    results["timings_s"] = _rounded(timings)
    if plots:
        results["files"] = _plots(
            out,
            feat,
            heads[HEAD2TOE],
            X_train,
            Z_train,
            y_train,
            cv,
            random_state,
            n_jobs,
            timings,
        )
        results["timings_s"] = _rounded(timings)
    results["files"]["results"] = os.fspath(out / "results.json")
    text = json.dumps(results, indent=2).encode()
    atomic_write(out / "results.json", lambda f: f.write(text))
    print(format_table(results))
    return results


def _load(dataset, n_train, n_test, random_state, timings):
    """The task's images and labels (a timed stage), announced."""
    with _stage("loading images", timings):
        X_train, X_test, y_train, y_test = load_task(
            dataset, n_train, n_test, random_state
        )
    _say(
        f"[skhead2toe demo] {dataset}: {len(y_train)} training and "
        f"{len(y_test)} test images"
    )
    return X_train, X_test, y_train, y_test


def _fit_heads(data, last, cv, n_jobs, random_state, timings):
    """Fit and score the three heads in the table's order.

    Returns the fitted heads by method name, the table rows, and Head2Toe's
    paired comparisons with the two others.
    """
    Z_train, y_train, Z_test, y_test = data
    every = slice(None)  # all columns, without a copy
    heads = {
        LINEAR: (l2_probe(cv=cv, n_jobs=n_jobs), last),
        ALL_LAYERS: (l2_probe(cv=cv, n_jobs=n_jobs), every),
        HEAD2TOE: (
            head2toe_default(cv=cv, n_jobs=n_jobs, random_state=random_state),
            every,
        ),
    }
    rows, predictions = [], {}
    for name, (model, columns) in heads.items():
        with _stage(name, timings):
            model.fit(Z_train[:, columns], y_train)
        predictions[name] = model.predict(Z_test[:, columns])
        if name == HEAD2TOE:
            n_features = model.selected_features_.sum()
        else:
            n_features = last.sum() if columns is last else Z_train.shape[1]
        rows.append(_row(name, y_test, predictions[name], n_features, timings))
    paired = [
        paired_comparison(y_test, predictions[HEAD2TOE], predictions[other], other)
        for other in (LINEAR, ALL_LAYERS)
    ]
    return {name: model for name, (model, _) in heads.items()}, rows, paired


def _domain_affinity(X_train, Z_last, y_train, linear, cv, n_jobs, timings):
    """The task's domain affinity, with the tuned linear probe on raw pixels."""
    from skhead2toe.inspection import domain_affinity
    from skhead2toe.linear_model import LinearProbe

    with _stage("domain affinity", timings):
        return domain_affinity(
            Z_last,
            y_train,
            X_scratch=X_train.reshape(len(X_train), -1) / 255.0,
            estimator=LinearProbe(C=linear.C_),
            cv=cv,
            n_jobs=n_jobs,
        )


def _rounded(timings):
    return {k: round(v, 2) for k, v in timings.items()}


def _results(dataset, feat, Z_train, y_test, rows, paired, heads, affinity):
    """The demo's results (written to ``results.json``), but timings and files."""
    head = heads[HEAD2TOE]
    return {
        "dataset": dataset,
        "n_train": int(Z_train.shape[0]),
        "n_test": int(len(y_test)),
        "backbone": feat.backbone_tag_ or type(feat.backbone).__name__,
        "image_size": int(feat.data_config_["image_size"]),
        "n_features": int(Z_train.shape[1]),
        "n_layers": int(len(feat.layer_names_)),
        "methods": rows,
        "head2toe_vs": paired,
        "head2toe": {
            "candidate": head.candidate_,
            "alpha": None if head.alpha_ is None else float(head.alpha_),
            "alpha_over_alpha_max": (
                None if head.alpha_ is None else float(head.alpha_ / head.alphas_[0])
            ),
            "keep_fraction": head.keep_fraction_,
            "refit_l2": head.refit_l2_,
        },
        "domain_affinity": {
            "affinity": float(affinity.affinity),
            "linear_probe_cv_accuracy": float(affinity.linear_score),
            "from_scratch_cv_accuracy": float(affinity.scratch_score),
            "from_scratch_model": "the same probe on raw pixels",
        },
        "timings_s": {},
        "files": {},
    }


def _row(name, y_test, pred, n_features, timings):
    accuracy, half = accuracy_ci95(y_test, pred)
    return {
        "method": name,
        "test_accuracy": accuracy,
        "ci95": round(half, 4),
        "n_features": int(n_features),
        "seconds": round(timings[name], 2),
    }


def _plots(
    out, feat, head, X_train, Z_train, y_train, cv, random_state, n_jobs, timings
):
    """Layer importances and transferability curves, as PNG files in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhead2toe.inspection import probe_layers, random_weights_featurizer
    from skhead2toe.plotting import LayerImportanceDisplay, TransferabilityCurveDisplay

    files = {}
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    LayerImportanceDisplay.from_estimator(
        head, feat.feature_groups_, layer_names=feat.layer_names_, ax=ax
    )
    files["layer_importances"] = _save(fig, out / "layer_importances.png")
    with _stage("extracting random-weights features", timings):
        control_feat = random_weights_featurizer(feat, random_state=random_state)
        control_feat.set_params(cache=None)
        Z_random = control_feat.fit_transform(X_train)
    with (
        _stage("transferability probes (pretrained and random weights)", timings),
        _quiet_worker_restarts(),
    ):
        probes = probe_layers(
            Z_train, y_train, feat, cv=cv, n_jobs=n_jobs, progress=True
        )
        control = probe_layers(
            Z_random, y_train, control_feat, cv=cv, n_jobs=n_jobs, progress=True
        )
    fig, ax = plt.subplots(figsize=(9, 4), layout="constrained")
    TransferabilityCurveDisplay.from_probes(
        probes, control, chance_level=1.0 / len(np.unique(y_train)), ax=ax
    )
    files["transferability"] = _save(fig, out / "transferability.png")
    return files


def _save(fig, path):
    """Save as PNG atomically: a failed write leaves no half-written file."""
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=120))
    finally:
        plt.close(fig)
    return os.fspath(path)


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the demo's plots need matplotlib: pip install 'skhead2toe[demo]', "
            "or run the demo with --no-plots"
        ) from exc


def split_timings(timings):
    """Seconds of feature extraction and of head work in the demo's ``timings_s``.

    Extraction is every stage whose name says "extract" (the pretrained and the
    random-weights features); head work is every other stage but loading images.

    Parameters
    ----------
    timings : dict of str to float
        The ``timings_s`` of :func:`run_demo`'s results.

    Returns
    -------
    extraction, head : float
    """
    extraction = sum(t for name, t in timings.items() if "extract" in name)
    head = sum(
        t
        for name, t in timings.items()
        if "extract" not in name and name != "loading images"
    )
    return extraction, head


#: How the demo names the baseline candidates that Head2Toe's CV may choose.
_BASELINE_CHOICES = {
    "all features": "every feature (as All layers + L2)",
    "last layer": "the last layer (as Linear)",
}


def _choice(h2t):
    """The line saying which candidate Head2Toe's CV chose."""
    if h2t.get("alpha") is None:  # a baseline: all features or the last layer
        which = _BASELINE_CHOICES.get(h2t.get("candidate"), h2t.get("candidate"))
        return f"Head2Toe chose the refit on {which}, refit_l2 = {h2t['refit_l2']}"
    return (
        f"Head2Toe chose alpha = {h2t['alpha_over_alpha_max']:.3g} alpha_max, "
        f"keep_fraction = {h2t['keep_fraction']}, refit_l2 = {h2t['refit_l2']}"
    )


def format_table(results):
    """The demo's results as a plain-text table.

    Parameters
    ----------
    results : dict
        What :func:`run_demo` returns.

    Returns
    -------
    table : str
    """
    lines = [
        f"{results['dataset']}: {results['n_train']} training / {results['n_test']} "
        f"test images, {results['backbone']} at {results['image_size']} px, "
        f"{results['n_features']} features from {results['n_layers']} layers",
        f"{'method':18s} {'test acc':>9s} {'+-95%':>7s} {'features':>9s} "
        f"{'seconds':>8s}",
    ]
    for row in results["methods"]:
        lines.append(
            f"{row['method']:18s} {row['test_accuracy']:9.4f} {row['ci95']:7.4f} "
            f"{row['n_features']:9d} {row['seconds']:8.1f}"
        )
    for cmp in results.get("head2toe_vs", []):
        lines.append(
            f"Head2Toe vs {cmp['other']}: {cmp['difference']:+.4f} "
            f"({cmp['only_head2toe_right']} test images right only with Head2Toe, "
            f"{cmp['only_other_right']} only with {cmp['other']}; "
            f"McNemar p = {cmp['p_value']:.3g})"
        )
    aff = results["domain_affinity"]
    lines += [
        _choice(results["head2toe"]),
        f"domain affinity = {aff['affinity']:+.3f} (linear probe "
        f"{aff['linear_probe_cv_accuracy']:.3f} vs from scratch "
        f"{aff['from_scratch_cv_accuracy']:.3f}, CV on the training set)",
    ]
    extraction, head = split_timings(results["timings_s"])
    lines.append(f"feature extraction: {extraction:.1f} s; head work: {head:.1f} s")
    if extraction > 0:
        lines[-1] += f" ({head / extraction:.2f}x the extraction)"
    for name, path in results["files"].items():
        lines.append(f"wrote {name}: {path}")
    return "\n".join(lines)
