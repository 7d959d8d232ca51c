"""Benchmark the demo's stages: each one's time over the feature extraction.

The demo task (digits, 1000 training and 797 test images, the embedded
EfficientNet-Lite0 at 224 px, ``"head2toe"`` taps) is extracted once, pretrained
and with random weights (the transferability control); then every head stage runs
twice on the same features, in one process:

- **before**, the reference: what the demo ran before the row-space probe, i.e. a
  grid search of scikit-learn's ``LogisticRegression`` for Linear and All layers +
  L2 (one BLAS thread, as the demo's heads), its best estimator for the domain
  affinity, and ``probe_layers`` with threaded BLAS, its former default;
- **after**, the library as it stands: :func:`skhead2toe.experiments.l2_probe`
  (``LinearProbeCV``), ``LinearProbe`` for the affinity, ``probe_layers`` on one
  BLAS thread per layer, every stage with ``--n-jobs``.

Head2Toe is the paper's fixed grid in "before"
(:func:`~skhead2toe.experiments.head2toe_cv`, the demo's head before the default
search) and the library's default search in "after"
(:func:`~skhead2toe.experiments.head2toe_default`: the paper's fractions and both
baselines as candidates), each with ``--n-jobs``. The table
gives each stage's seconds and its ratio to the extraction (the target: all head
work at most 0.5x), the accuracies and chosen ``C`` of the two probes, Head2Toe's
accuracy and choice in each column, and the largest difference of the per-layer
probe scores (the target: within 0.3 points).

Usage::

    python benchmarks/bench_head2toe.py [--n-jobs 2] [--output results.json]
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: no spinning

import numpy as np  # noqa: E402

from skhead2toe import MultiLayerFeaturizer  # noqa: E402
from skhead2toe import experiments as ex  # noqa: E402
from skhead2toe.inspection import (  # noqa: E402
    default_probe,
    domain_affinity,
    probe_layers,
    random_weights_featurizer,
)
from skhead2toe.linear_model import LinearProbe  # noqa: E402


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _blas_one_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _extract(args):
    """The demo's features: train and test, pretrained, and the random control."""
    X_train, X_test, y_train, y_test = ex.load_task("digits", 1000, None, 0)
    feat = MultiLayerFeaturizer(random_state=0, batch_size=32)
    (Z_train, Z_test), t_pre = _timed(
        lambda: (feat.fit_transform(X_train), feat.transform(X_test))
    )
    control = random_weights_featurizer(feat, random_state=0)
    Z_random, t_rand = _timed(lambda: control.fit_transform(X_train))
    data = dict(
        X_train=X_train, y_train=y_train, y_test=y_test, Z_train=Z_train,
        Z_test=Z_test, Z_random=Z_random, groups=feat.feature_groups_,
    )  # fmt: skip
    return data, {"extracting features": t_pre, "extracting random weights": t_rand}


def _old_grid_probe(cv):
    """The demo's former L2 probe: GridSearchCV over LogisticRegression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(
        LogisticRegression(max_iter=5000), {"C": list(ex.PROBE_CS)}, cv=cv
    )


def _old_probe_layers(Z, y, groups, cv):
    """``probe_layers`` as it was: threaded BLAS, one layer after another."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    splits = list(StratifiedKFold(cv).split(Z, y))
    return np.array(
        [
            cross_val_score(default_probe(), Z[:, groups == i], y, cv=splits).mean()
            for i in range(groups.max() + 1)
        ]
    )


def _probes(d, last, version, n_jobs, cv):
    """Fit Linear and All layers + L2; their test accuracies, C and seconds."""
    out = {}
    for name, cols in ((ex.LINEAR, last), (ex.ALL_LAYERS, slice(None))):
        if version == "before":
            probe = _old_grid_probe(cv)
            with _blas_one_thread():
                _, t = _timed(probe.fit, d["Z_train"][:, cols], d["y_train"])
            C = probe.best_params_["C"]
        else:
            probe = ex.l2_probe(cv=cv, n_jobs=n_jobs)
            _, t = _timed(probe.fit, d["Z_train"][:, cols], d["y_train"])
            C = probe.C_
        acc = float(probe.score(d["Z_test"][:, cols], d["y_test"]))
        out[name] = {"seconds": t, "test_accuracy": acc, "C": C}
    return out


def _affinity(d, last, C, version, cv):
    if version == "before":
        from sklearn.linear_model import LogisticRegression

        est = LogisticRegression(C=C, max_iter=5000)
    else:
        est = LinearProbe(C=C)
    pixels = d["X_train"].reshape(len(d["X_train"]), -1) / 255.0
    with _blas_one_thread():
        res, t = _timed(
            lambda: domain_affinity(
                d["Z_train"][:, last],
                d["y_train"],
                X_scratch=pixels,
                estimator=est,
                cv=cv,
            )  # fmt: skip
        )
    return float(res.affinity), t


def _layer_probes(d, version, n_jobs, cv):
    scores, total = [], 0.0
    for Z in (d["Z_train"], d["Z_random"]):
        if version == "before":
            s, t = _timed(_old_probe_layers, Z, d["y_train"], d["groups"], cv)
        else:
            r, t = _timed(
                probe_layers, Z, d["y_train"], d["groups"], cv=cv, n_jobs=n_jobs
            )
            s = r.mean_scores
        scores.append(s)
        total += t
    return np.concatenate(scores), total


def _head2toe(d, version, n_jobs, cv):
    """Head2Toe's CV: the paper's grid (before) or the default search (after)."""
    make = ex.head2toe_cv if version == "before" else ex.head2toe_default
    head = make(cv=cv, n_jobs=n_jobs)
    with _blas_one_thread():
        _, t = _timed(lambda: head.fit(d["Z_train"], d["y_train"]))
    alpha = "-" if head.alpha_ is None else f"{head.alpha_ / head.alphas_[0]:.3g}"
    return {
        "seconds": t,
        "test_accuracy": float(head.score(d["Z_test"], d["y_test"])),
        "n_features": int(head.selected_features_.sum()),
        "choice": f"{head.candidate_} (alpha/alpha_max {alpha}, keep_fraction "
        f"{head.keep_fraction_}, refit_l2 {head.refit_l2_})",
    }


def run(n_jobs, cv):
    """Every stage before and after; returns the report as a dict."""
    d, extraction = _extract(None)
    last = ex.last_layer_mask(d["groups"])
    report = {"extraction_s": extraction, "stages": {}, "probes": {}}
    for version in ("before", "after"):
        jobs = None if version == "before" else n_jobs
        probes = _probes(d, last, version, jobs, cv)
        affinity, t_aff = _affinity(d, last, probes[ex.LINEAR]["C"], version, cv)
        layer_scores, t_layers = _layer_probes(d, version, jobs, cv)
        stages = {name: p["seconds"] for name, p in probes.items()}
        stages |= {"domain affinity": t_aff, "transferability probes": t_layers}
        report["stages"][version] = stages
        report["probes"][version] = probes | {"affinity": affinity}
        report.setdefault("layer_scores", {})[version] = layer_scores.tolist()
        h2t = _head2toe(d, version, n_jobs, cv)
        report["stages"][version][ex.HEAD2TOE] = h2t.pop("seconds")
        report.setdefault("head2toe", {})[version] = h2t
    return report


def _print(report):
    ext = sum(report["extraction_s"].values())
    before, after = report["stages"]["before"], report["stages"]["after"]
    print(f"extraction (pretrained + random weights): {ext:.1f} s")
    print(f"{'stage':26s} {'before s':>9s} {'after s':>8s} {'before/ext':>10s} "
          f"{'after/ext':>9s} {'speed-up':>8s}")  # fmt: skip
    for name in before:
        b, a = before[name], after[name]
        print(f"{name:26s} {b:9.1f} {a:8.1f} {b / ext:10.2f} {a / ext:9.2f} "
              f"{b / a:8.1f}")  # fmt: skip
    tb, ta = sum(before.values()), sum(after.values())
    print(f"{'all head work':26s} {tb:9.1f} {ta:8.1f} {tb / ext:10.2f} "
          f"{ta / ext:9.2f} {tb / ta:8.1f}")  # fmt: skip
    for name in (ex.LINEAR, ex.ALL_LAYERS):
        pb, pa = report["probes"]["before"][name], report["probes"]["after"][name]
        print(f"{name}: test accuracy {pb['test_accuracy']:.4f} (C={pb['C']:g}) "
              f"before, {pa['test_accuracy']:.4f} (C={pa['C']:g}) after")  # fmt: skip
    lb, la = (np.array(report["layer_scores"][v]) for v in ("before", "after"))
    gap = 100 * np.abs(la - lb).max()
    print(f"per-layer probe scores: largest difference {gap:.2f} points "
          f"({la.size} points of the two curves)")  # fmt: skip
    for version in ("before", "after"):
        h = report["head2toe"][version]
        print(f"Head2Toe ({version}): test accuracy {h['test_accuracy']:.4f}, "
              f"{h['n_features']} features, chose {h['choice']}")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-jobs", type=int, default=2, help="jobs of 'after'")
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--output", default="benchmarks/results/bench_head2toe.json")
    args = parser.parse_args(argv)
    report = run(args.n_jobs, args.cv)
    _print(report)
    with open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
