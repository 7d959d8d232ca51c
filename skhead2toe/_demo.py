"""The ``skhead2toe demo`` job: Head2Toe against its baselines on one small task.

It follows the comparison of Evci et al. (ICML 2022, Table 1) on a 1000-image
training set, with every hyper-parameter tuned by cross-validation on the training
set only, and a held-out test set scored once:

- **Linear**: a tuned L2 logistic probe on the last layer (the pre-logits);
- **All layers + L2**: the same probe on the features of every tapped layer;
- **Head2Toe**: group-lasso selection over all layers and a refit on the kept
  features, ``alpha``, ``keep_fraction`` and the refit's ridge tuned by
  :class:`~skhead2toe.GroupLassoClassifierCV`.

It also reports the task's domain affinity and writes the layer-importance and
transferability (Yosinski et al., NeurIPS 2014) plots.
"""

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skhead2toe._cache import atomic_write
from skhead2toe.linear_model._fista_numpy import one_blas_thread

__all__ = ["DATASETS", "run_demo"]

DATASETS = ("digits", "fashion-mnist")

# Inverse ridge strengths C = 1 / (n * l2) tried for the L2 logistic probes.
PROBE_CS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
# The Head2Toe paper's kept fractions (Evci et al., 2022, Sec. 4) up to 20 %.
KEEP_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
# alpha on a 6-point path from alpha_max to alpha_max / 100: in our runs the
# ranking of features (hence the kept set) changes little between neighbours.
N_ALPHAS = 6
LINEAR, ALL_LAYERS, HEAD2TOE = "Linear", "All layers + L2", "Head2Toe"


def _say(message):
    print(message, file=sys.stderr, flush=True)


@contextmanager
def _stage(name, timings):
    """Announce a stage on stderr and record its wall time in ``timings``."""
    _say(f"[skhead2toe demo] {name} ...")
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
    _say(f"[skhead2toe demo] {name}: {timings[name]:.1f} s")


def load_task(dataset, n_train, n_test, random_state):
    """Training and test images of a demo task.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}
        scikit-learn's digits (1797 images) or Fashion-MNIST (Debian's
        ``dataset-fashion-mnist``).
    n_train : int
        Training images.
    n_test : int or None
        Test images; None: the rest of digits, or 2000 Fashion-MNIST test images.
    random_state : int
        Seed of the split or the subsets.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        uint8 images and integer labels.
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


def _probe(cv, n_jobs):
    """A tuned L2 multinomial logistic probe (C by cross-validation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(
        LogisticRegression(max_iter=5000),
        {"C": list(PROBE_CS)},
        cv=cv,
        n_jobs=n_jobs,
    )


def run_demo(
    *,
    dataset="digits",
    n_train=1000,
    n_test=None,
    backbone="efficientnet_lite0",
    pretrained=True,
    image_size=None,
    cv=3,
    output_dir="skhead2toe-demo",
    cache=None,
    plots=True,
    random_state=0,
    n_jobs=None,
):
    """Run the Head2Toe comparison, print its table and write its plots.

    Parameters
    ----------
    dataset : {"digits", "fashion-mnist"}, default="digits"
        The target task.
    n_train : int, default=1000
        Training images (the paper's "1k" setting).
    n_test : int or None, default=None
        Test images (see :func:`load_task`).
    backbone : str, default="efficientnet_lite0"
        Backbone of :class:`~skhead2toe.MultiLayerFeaturizer`.
    pretrained : bool or path, default=True
        Its weights.
    image_size : int or None, default=None
        Model input size (None: the backbone's, 224 for the default).
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
    n_jobs : int or None, default=None
        Parallel jobs of the cross-validations.

    Returns
    -------
    results : dict
        The table (``"methods"``), timings, domain affinity and written files.
    """
    from skhead2toe import GroupLassoClassifierCV, MultiLayerFeaturizer
    from skhead2toe.inspection import domain_affinity

    if plots:
        _require_matplotlib()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    with _stage("loading images", timings):
        X_train, X_test, y_train, y_test = load_task(
            dataset, n_train, n_test, random_state
        )
    _say(
        f"[skhead2toe demo] {dataset}: {len(y_train)} training and "
        f"{len(y_test)} test images"
    )
    feat = MultiLayerFeaturizer(
        backbone,
        pretrained=pretrained,
        image_size=image_size,
        cache=cache,
        progress=True,
        random_state=random_state,
    )
    with _stage("extracting features", timings):
        Z_train = feat.fit_transform(X_train)
        Z_test = feat.transform(X_test)
    groups = feat.feature_groups_
    last = groups == groups.max()

    # The heads run on one BLAS thread: threaded OpenBLAS is slower on these
    # small problems (the All layers + L2 probe on digits: 31 s of wall time with
    # two threads on two cores, 18 s with one). Extraction above is torch's.
    with one_blas_thread():
        rows, predictions = [], {}
        with _stage(LINEAR, timings):
            linear = _probe(cv, n_jobs).fit(Z_train[:, last], y_train)
        predictions[LINEAR] = linear.predict(Z_test[:, last])
        rows.append(_row(LINEAR, y_test, predictions[LINEAR], last.sum(), timings))
        with _stage(ALL_LAYERS, timings):
            every = _probe(cv, n_jobs).fit(Z_train, y_train)
        predictions[ALL_LAYERS] = every.predict(Z_test)
        rows.append(
            _row(ALL_LAYERS, y_test, predictions[ALL_LAYERS], Z_train.shape[1], timings)
        )
        head = GroupLassoClassifierCV(
            alphas=N_ALPHAS,
            keep_fractions=KEEP_FRACTIONS,
            cv=cv,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        with _stage(HEAD2TOE, timings):
            head.fit(Z_train, y_train)
        predictions[HEAD2TOE] = head.predict(Z_test)
        rows.append(
            _row(
                HEAD2TOE,
                y_test,
                predictions[HEAD2TOE],
                head.selected_features_.sum(),
                timings,
            )
        )
        paired = [
            paired_comparison(y_test, predictions[HEAD2TOE], predictions[other], other)
            for other in (LINEAR, ALL_LAYERS)
        ]
        with _stage("domain affinity", timings):
            affinity = domain_affinity(
                Z_train[:, last],
                y_train,
                X_scratch=X_train.reshape(len(X_train), -1) / 255.0,
                estimator=linear.best_estimator_,
                cv=cv,
            )
    results = {
        "dataset": dataset,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "backbone": feat.backbone_tag_ or type(feat.backbone).__name__,
        "image_size": int(feat.data_config_["image_size"]),
        "n_features": int(Z_train.shape[1]),
        "n_layers": int(len(feat.layer_names_)),
        "methods": rows,
        "head2toe_vs": paired,
        "head2toe": {
            "alpha": float(head.alpha_),
            "alpha_over_alpha_max": float(head.alpha_ / head.alphas_[0]),
            "keep_fraction": head.keep_fraction_,
            "refit_l2": head.refit_l2_,
        },
        "domain_affinity": {
            "affinity": float(affinity.affinity),
            "linear_probe_cv_accuracy": float(affinity.linear_score),
            "from_scratch_cv_accuracy": float(affinity.scratch_score),
            "from_scratch_model": "the same probe on raw pixels",
        },
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "files": {},
    }
    if plots:
        results["files"] = _plots(
            out,
            feat,
            head,
            X_train,
            Z_train,
            y_train,
            cv,
            random_state,
            n_jobs,
            timings,
        )
        results["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    results["files"]["results"] = os.fspath(out / "results.json")
    text = json.dumps(results, indent=2).encode()
    atomic_write(out / "results.json", lambda f: f.write(text))
    print(format_table(results))
    return results


def _row(name, y_test, pred, n_features, timings):
    accuracy = float(np.mean(pred == y_test))
    # half-width of the normal-approximation 95% interval of the test accuracy
    half = 1.96 * np.sqrt(accuracy * (1.0 - accuracy) / len(y_test))
    return {
        "method": name,
        "test_accuracy": accuracy,
        "ci95": round(float(half), 4),
        "n_features": int(n_features),
        "seconds": round(timings[name], 2),
    }


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
    with _stage("transferability probes (pretrained and random weights)", timings):
        probes = probe_layers(
            Z_train, y_train, feat, cv=cv, n_jobs=n_jobs, progress=True
        )
        control_feat = random_weights_featurizer(feat, random_state=random_state)
        control_feat.set_params(cache=None)
        Z_random = control_feat.fit_transform(X_train)
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
    h2t = results["head2toe"]
    aff = results["domain_affinity"]
    lines += [
        f"Head2Toe chose alpha = {h2t['alpha_over_alpha_max']:.3g} alpha_max, "
        f"keep_fraction = {h2t['keep_fraction']}, refit_l2 = {h2t['refit_l2']}",
        f"domain affinity = {aff['affinity']:+.3f} (linear probe "
        f"{aff['linear_probe_cv_accuracy']:.3f} vs from scratch "
        f"{aff['from_scratch_cv_accuracy']:.3f}, CV on the training set)",
        f"feature extraction: {results['timings_s']['extracting features']:.1f} s",
    ]
    for name, path in results["files"].items():
        lines.append(f"wrote {name}: {path}")
    return "\n".join(lines)
