"""Every candidate of the default head's CV, scored by CV *and* on the test set.

The suite (``run_suite.py``) records the one head each method chose. To choose
the default *rules* (the ridge grid, the selection rule) by evidence rather than
by one run per rule, this script records, for every (task, seed), the whole CV
table of one :class:`~skhead2toe.GroupLassoClassifierCV` fit on a wide grid,
and next to each candidate its test accuracy when fitted on all the training
data. Any sub-grid and any selection rule can then be evaluated offline
(``_candidates_report.py``), and so can the best candidate in hindsight: an
upper bound on what a selection rule can reach on this candidate set.

The test accuracies come from :func:`skhead2toe.linear_model.holdout_scores`:
one more "fold" of the same CV code, whose training part is the whole training
set and whose held-out part is the test set, so every candidate is fitted
exactly as the CV fits it (same path, same warm starts, same refits) on all the
training data, and scored on the test images.

Usage (features come from the suite's cache; run ``run_suite.py`` first)::

    OMP_NUM_THREADS=1 python benchmarks/transfer/run_candidates.py [--tasks ...]
    # the default head on a pool of two target sizes (its own feature cache)
    python benchmarks/transfer/run_candidates.py --grid default \
        --target-size 1024 4096 --name pool-default
    python benchmarks/transfer/_candidates_report.py
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _baselines as B  # noqa: E402
import _suite as S  # noqa: E402
import numpy as np  # noqa: E402

#: The wide grid: the default's ridges and two weaker ones (C up to ~1e4 on
#: 800 rows, as the L2 probe's grid). Every default candidate is in it, with the
#: same fits (the weaker ridges are warm-started after the default's).
WIDE = dict(refit_l2s=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7))

#: The head's parameters of each ``--grid``: the wide grid, or the default head.
GRIDS = {"wide": WIDE, "default": {}}


def feature_cache(cache, sizes):
    """The feature cache root of a pool of target ``sizes``.

    The suite's own (``sizes == [1024]``) is ``cache``; any other pool has its
    own root, ``cache/pool-t<size>-<size>...``, so the two never mix.
    """
    if list(sizes) == [1024]:
        return Path(cache)
    return Path(cache) / ("pool-t" + "-".join(str(s) for s in sizes))


def _log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def test_scores(head, split):
    """Test accuracy, features and predictions of every candidate of ``head``.

    :func:`~skhead2toe.linear_model.holdout_scores`: one more fold of ``head``'s
    own CV code, whose training part is the training set and whose held-out
    part is the test set.
    """
    from skhead2toe.linear_model import holdout_scores

    result = holdout_scores(
        head,
        split.Z_train,
        split.y_train,
        split.Z_test,
        split.y_test,
        return_predictions=True,
    )
    return result.test_score, result.n_features, result.predictions


def record(task, seed, split, params):
    """Fit the wide-grid head; its CV table and every candidate's test accuracy."""
    from skhead2toe import GroupLassoClassifierCV

    head = GroupLassoClassifierCV(**params)
    with B.Timer() as t_cv:
        warned = B._quiet_fit(head, split.Z_train, split.y_train)
    with B.Timer() as t_test:
        test, n_test_features, preds = test_scores(head, split)
    for n, pred in enumerate(preds):  # the recorder's order check
        assert np.isclose(np.mean(pred == split.y_test), test[n])
    table = head.cv_results_
    n_splits = sum(k.startswith("split") for k in table)
    columns = ("candidate", "alpha", "keep_fraction", "refit_l2", "n_features")
    return {
        "task": task,
        "seed": int(seed),
        "params": {
            k: list(v) if isinstance(v, tuple) else v for k, v in params.items()
        },
        "n_features_total": int(split.Z_train.shape[1]),
        "cv_cpu_s": round(t_cv.cpu, 2),
        "test_cpu_s": round(t_test.cpu, 2),
        "convergence_warnings": int(warned),
        "table": {
            **{k: [_plain(v) for v in table[k]] for k in columns},
            "splits": [
                [float(v) for v in table[f"split{i}_test_score"]]
                for i in range(n_splits)
            ],
            "test_accuracy": [float(v) for v in test],
            "n_features_full": [int(v) for v in n_test_features],
        },
        "predictions": [S.encode_labels(p) for p in preds],
    }


def _plain(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (str, np.str_)):
        return str(v)
    return float(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(S.TASKS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(S.SEEDS))
    p.add_argument("--cache-dir", type=Path, default=S.DEFAULT_CACHE)
    p.add_argument("--name", default="wide", help="record folder (default: wide)")
    p.add_argument(
        "--grid", choices=sorted(GRIDS), default="wide", help="the head's candidates"
    )
    p.add_argument(
        "--target-size",
        nargs="+",
        type=int,
        default=[1024],
        help="target sizes of the feature pool (default: 1024, the suite's)",
    )
    args = p.parse_args(argv)
    size = args.target_size[0] if len(args.target_size) == 1 else args.target_size
    cfg = B.Config(image_size=128, target_size=size, n_train=1000, n_test=2000)
    features = feature_cache(args.cache_dir, args.target_size)
    for task in args.tasks:
        pool = S.build_pool(task, list(S.SEEDS), n_train=cfg.n_train, n_test=2000)
        Z, info = S.load_or_extract(task, pool, cfg.featurizer, features, log=_log)
        for seed in args.seeds:
            path = args.cache_dir / "candidates" / args.name / S._slug(task)
            path = path / f"seed{seed}.json"
            if path.exists():
                continue
            split = S.seed_split(Z, info, pool, seed)
            rec = record(task, seed, split, GRIDS[args.grid])
            rec["target_size"] = list(args.target_size)
            path.parent.mkdir(parents=True, exist_ok=True)
            B.write_json(path, rec)
            _log(
                f"{task} seed {seed}: CV {rec['cv_cpu_s']:.0f} s, "
                f"test fold {rec['test_cpu_s']:.0f} s CPU"
            )


if __name__ == "__main__":
    main()
