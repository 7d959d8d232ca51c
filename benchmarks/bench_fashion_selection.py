"""Head2Toe vs All layers + L2 on Fashion-MNIST-1k, scored on all 10,000 test images.

``skhead2toe demo --dataset fashion-mnist`` scores on 2000 test images, where one
point of accuracy is 20 images and the 95% interval is about +-1.5 points. This
benchmark fits the demo's three methods exactly as the demo does (same training
images, same features, 3-fold cross-validation on the training set only) and scores
them on the whole Fashion-MNIST test set, with McNemar's paired test. It then
scores, on the same test set, the Head2Toe heads that cross-validation did *not*
pick (every alpha of the path at every kept fraction and refit ridge), so that one
sees whether another ranking of the features or another refit would have closed
the gap: an ablation, not a tuning (the test set picks nothing). Last, a control:
the same refit on random feature subsets of each kept size, against the subsets
the group-lasso ranking picks. Where the ranking beats chance, selection works;
where it no longer does, no ranking can close a gap to the whole pool.

The three heads and their grids are those of :mod:`skhead2toe.experiments`.
Needs Debian's ``dataset-fashion-mnist``; a cold feature cache puts 11,000 images
through the backbone, a warm one skips it (timings: ``benchmarks/README.rst``)::

    python benchmarks/bench_fashion_selection.py --cache ~/.cache/skhead2toe
    python benchmarks/bench_fashion_selection.py --target-size 4096  # a larger pool
    python benchmarks/bench_fashion_selection.py --normalize standard

``--target-size`` and ``--normalize`` name the results file, e.g.
``results/bench_fashion_selection_t4096.json`` or ``..._t1024_standard.json``.
"""

import argparse
import json
import os
import time

import numpy as np

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer, experiments
from skhead2toe.datasets import load_fashion_mnist


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=None, help="feature cache directory")
    p.add_argument("--target-size", type=int, default=1024)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument(
        "--normalize",
        choices=("unit", "standard"),
        default="unit",
        help="the featurizer's normalisation; 'standard' features are then scaled "
        "by one global factor so that the fixed C and ridge grids keep their "
        "relative strengths",
    )
    p.add_argument(
        "--refit-l2s",
        type=float,
        nargs="+",
        default=None,
        help="the refit ridge grid (default: GroupLassoClassifierCV's own)",
    )
    p.add_argument(
        "--no-ablation",
        action="store_true",
        help="skip scoring every head of the CV grid (the slow part on a big pool)",
    )
    p.add_argument(
        "--random-subsets",
        type=int,
        default=3,
        help="random feature subsets per kept fraction in the control (0: none)",
    )
    p.add_argument("--out", default=None, help="JSON results (default: results/)")
    args = p.parse_args(argv)

    X_train, _, y_train, _ = experiments.load_task("fashion-mnist", 1000, None, 0)
    X_test, y_test = load_fashion_mnist(subset="test")
    feat = MultiLayerFeaturizer(
        target_size=args.target_size,
        normalize=args.normalize,
        cache=args.cache,
        progress=True,
        random_state=0,
    )
    t0 = time.perf_counter()
    Z_train = feat.fit_transform(X_train)
    Z_test = feat.transform(X_test)
    if args.normalize == "standard":
        # One global factor changes no method, only where the fixed grids (the
        # probe's C, the refit's ridge, both set for unit layers) fall: scaled
        # to the mean square n_layers / n_features of unit layers, they cover the
        # same range of relative strengths.
        scale = np.float32(np.sqrt(len(feat.layer_names_) / Z_train.shape[1]))
        Z_train *= scale
        Z_test *= scale
    print(f"features: {Z_train.shape[1]} in {time.perf_counter() - t0:.0f} s")
    last = experiments.last_layer_mask(feat.feature_groups_)

    linear = experiments.l2_probe(cv=args.cv).fit(Z_train[:, last], y_train)
    every = experiments.l2_probe(cv=args.cv).fit(Z_train, y_train)
    head = experiments.head2toe_cv(cv=args.cv, random_state=0)
    if args.refit_l2s is not None:
        head.set_params(refit_l2s=args.refit_l2s)
    head.fit(Z_train, y_train)
    pred = {
        experiments.LINEAR: linear.predict(Z_test[:, last]),
        experiments.ALL_LAYERS: every.predict(Z_test),
        experiments.HEAD2TOE: head.predict(Z_test),
    }
    n_features = {
        experiments.LINEAR: int(last.sum()),
        experiments.ALL_LAYERS: Z_train.shape[1],
        experiments.HEAD2TOE: int(head.selected_features_.sum()),
    }
    rows = []
    print(f"\n{'method':18s} {'test acc':>9s} {'+-95%':>7s} {'features':>9s}")
    for name, p_ in pred.items():
        acc, half = experiments.accuracy_ci95(y_test, p_)
        rows.append({"method": name, "test_accuracy": acc, "ci95": half})
        print(f"{name:18s} {acc:9.4f} {half:7.4f} {n_features[name]:9d}")
    comparisons = [
        experiments.paired_comparison(y_test, pred[experiments.HEAD2TOE], pred[o], o)
        for o in (experiments.LINEAR, experiments.ALL_LAYERS)
    ]
    for c in comparisons:
        print(
            f"Head2Toe vs {c['other']}: {c['difference']:+.4f}, McNemar p = "
            f"{c['p_value']:.3g} ({c['only_head2toe_right']} vs "
            f"{c['only_other_right']} discordant images)"
        )
    print(
        f"CV chose alpha = {head.alpha_ / head.alphas_[0]:.3g} alpha_max, "
        f"keep_fraction = {head.keep_fraction_}, refit_l2 = {head.refit_l2_}"
    )

    # ablation: every (alpha, fraction, ridge) of the grid, scored on the test set
    grid = []
    if not args.no_ablation:
        print("\nablation (test accuracy; CV picked the starred one):")
        print(
            f"{'alpha/amax':>10s} {'fraction':>8s} "
            + " ".join(f"l2={v:<8g}" for v in head.refit_l2s_)
        )
        clf = GroupLassoClassifier(warm_start=True, random_state=0)
        for alpha in head.alphas_:
            clf.set_params(alpha=alpha, keep_fraction=None).fit(Z_train, y_train)
            for fraction in experiments.KEEP_FRACTIONS:
                accs = []
                for l2 in head.refit_l2s_:
                    clf.set_params(keep_fraction=fraction, refit_l2=l2).fit(
                        Z_train, y_train
                    )
                    accs.append(float(clf.score(Z_test, y_test)))
                    clf.set_params(keep_fraction=None)
                chosen = (alpha, fraction) == (head.alpha_, head.keep_fraction_)
                grid.append(
                    {
                        "alpha_over_max": alpha / head.alphas_[0],
                        "fraction": fraction,
                        "accuracies": accs,
                    }
                )
                print(
                    f"{alpha / head.alphas_[0]:10.3g} {fraction:8g} "
                    + " ".join(f"{a:10.4f}" for a in accs)
                    + (" *" if chosen else "")
                )
        best = max(max(g["accuracies"]) for g in grid)
        print(f"best Head2Toe head of the whole grid on the test set: {best:.4f}")

    # control: the same refit on random subsets of each size. Where the ranking's
    # edge over chance vanishes, no ranking can close a gap to all the features.
    control = []
    if args.random_subsets:
        print(
            f"\ncontrol: refit (l2={head.refit_l2_:g}) on {args.random_subsets} random "
            "subsets of each size, against the group-lasso ranking at the chosen alpha"
        )
        print(f"{'fraction':>8s} {'ranked':>8s} {'random (mean, min-max)':>24s}")
        ranked = GroupLassoClassifier(
            alpha=head.alpha_, refit_l2=head.refit_l2_, random_state=0
        )
        rng = np.random.default_rng(0)
        d = Z_train.shape[1]
        for fraction in experiments.KEEP_FRACTIONS:
            ranked.set_params(keep_fraction=fraction).fit(Z_train, y_train)
            k = int(ranked.selected_features_.sum())
            accs = []
            for _ in range(args.random_subsets):
                cols = np.sort(rng.choice(d, size=k, replace=False))
                ridge = GroupLassoClassifier(
                    alpha=0.0, l2=head.refit_l2_, random_state=0
                ).fit(Z_train[:, cols], y_train)
                accs.append(float(ridge.score(Z_test[:, cols], y_test)))
            acc = float(ranked.score(Z_test, y_test))
            control.append(
                {"fraction": fraction, "n_features": k, "ranked": acc, "random": accs}
            )
            print(
                f"{fraction:8g} {acc:8.4f} {np.mean(accs):10.4f} "
                f"({min(accs):.4f}-{max(accs):.4f})"
            )

    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "results",
        f"bench_fashion_selection_t{args.target_size}"
        + ("" if args.normalize == "unit" else f"_{args.normalize}")
        + ".json",
    )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(
            {
                "target_size": args.target_size,
                "normalize": args.normalize,
                "n_features": Z_train.shape[1],
                "methods": rows,
                "head2toe_vs": comparisons,
                "grid": grid,
                "random_subsets": control,
                "refit_l2s": [float(v) for v in head.refit_l2s_],
                "chosen": {
                    "alpha_over_max": head.alpha_ / head.alphas_[0],
                    "keep_fraction": head.keep_fraction_,
                    "refit_l2": head.refit_l2_,
                },
            },
            f,
            indent=1,
        )
    os.replace(out + ".tmp", out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
