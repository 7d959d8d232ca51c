"""The transfer suite: many image tasks across domain affinity, cached and resumable.

The parts of ``run_suite.py``, in four modules:

- ``_suite_tasks.py``: the tasks (:data:`TASKS`): digits, Fashion-MNIST and
  tasks built from them (fixed, label-preserving image transforms, a few-shot
  draw, a 2-class and a 20-class task), each a *pool* of images with one
  training / test split per seed (:func:`build_pool`); the feature cache: one
  extraction per task of every image its seeds need (:func:`load_or_extract`);
- ``_suite_methods.py``: the methods (:data:`METHODS`), each a named function
  of one split, so more can be added by name; the result cache: one JSON record
  per (task, seed, method) (:func:`run_cell`), so an interrupted run resumes
  where it stopped;
- ``_suite_report.py``: the report: table, paired tests, targets, CSV / JSON /
  reStructuredText and the gain-versus-affinity plot (:func:`build_report` and
  the writers);
- this module: the runs of a task (:func:`run_task`: per-seed splits and
  records, domain affinity) and every name of the three others, so
  ``_suite.<name>`` reaches them all.
"""

from pathlib import Path

import _baselines as B
import numpy as np
from _suite_methods import (  # noqa: F401
    ALL_L2,
    BASELINE_METHODS,
    DEFAULT,
    DEFAULT_1SE,
    DEFAULT_API,
    DEFAULT_AVG,
    DEFAULT_METHODS,
    DEFAULT_RENORM,
    HEAD2TOE_PAPER,
    LINEAR,
    METHODS,
    ORACLE,
    ORACLE_RIDGES,
    MethodResult,
    MethodUnavailable,
    Split,
    _head_result,
    _kernel_ridge_cv,
    _probe_on,
    _shared_cv_variants,
    all_layers_l2,
    decode_labels,
    default_head,
    encode_labels,
    head2toe_paper,
    linear,
    oracle,
    read_json,
    record_path,
    run_cell,
)
from _suite_report import (  # noqa: F401
    CSV_COLUMNS,
    _accuracy_table,
    _best_reference,
    _cell,
    _corr,
    _detail_table,
    _mark,
    _methods_of,
    _pct,
    _pooled,
    _round,
    _significant,
    _summary_table,
    _task_dir,
    _task_meta,
    _tasks_table,
    _worse_list,
    build_report,
    csv_rows,
    format_rst,
    gain_affinity,
    load_cells,
    paired,
    plot_gain_vs_affinity,
    rst_table,
    summarize,
    task_report,
    write_report,
)
from _suite_tasks import (  # noqa: F401
    ALL_VARIANTS,
    BASES,
    HERE,
    SEEDS,
    SHIRT_CLASSES,
    SUITE_VARIANTS,
    TASKS,
    Pool,
    _base_pool,
    _check_pool,
    _digit_splits,
    _digits_fashion,
    _draw,
    _fashion,
    _feature_dir,
    _load_fashion,
    _now,
    _resize,
    _save_features,
    _slug,
    _union_pool,
    add_noise,
    build_pool,
    extract,
    git_commit,
    load_or_extract,
    low_res,
    source_hash,
    split_task,
)

from skhead2toe import experiments

DEFAULT_CACHE = HERE / "cache"


# ------------------------------------------------------------------- tasks
def seed_split(Z, info, pool, seed):
    """The :class:`Split` of one seed (features copied out of the cache)."""
    tr, te = pool.splits[seed]
    return Split(
        np.asarray(Z[tr]),
        pool.labels[tr],
        np.asarray(Z[te]),
        pool.labels[te],
        np.asarray(info["feature_groups"]),
        list(info["layer_names"]),
        pool.images[tr],
    )


def affinity(split, C, cfg):
    """Domain affinity as ``run_baselines.py`` measures it, with Linear's ``C``.

    The tuned linear probe (``LogisticRegression(C)``) is cross-validated on
    the last layer and on the raw pixels (scaled to 0..1), on the same folds.
    """
    from sklearn.linear_model import LogisticRegression

    from skhead2toe.inspection import domain_affinity

    last = experiments.last_layer_mask(split.groups)
    with B.Timer() as t:
        aff = domain_affinity(
            split.Z_train[:, last],
            split.y_train,
            X_scratch=split.X_train.reshape(len(split.X_train), -1) / 255.0,
            estimator=LogisticRegression(C=C, max_iter=5000),
            cv=cfg.cv,
        )
    return {
        "affinity": float(aff.affinity),
        "linear_probe_cv_accuracy": float(aff.linear_score),
        "from_scratch_cv_accuracy": float(aff.scratch_score),
        "C": C,
        "cpu_s": round(t.cpu, 2),
    }


def seed_record(task, seed, split, cfg, cache, *, log=print):
    """The (task, seed) record: split sizes, test labels, domain affinity.

    The affinity needs the Linear cell (its ``C``); it is added on the first
    call after that cell exists, then cached.
    """
    path = Path(cache) / "results" / _slug(task) / f"seed{seed}" / "split.json"
    rec = read_json(path) or {
        "task": task,
        "seed": int(seed),
        "n_train": int(len(split.y_train)),
        "n_test": int(len(split.y_test)),
        "n_classes": int(len(np.unique(split.y_train))),
        "n_features": int(split.Z_train.shape[1]),
        "y_test": encode_labels(split.y_test),
    }
    linear_rec = read_json(record_path(cache, task, seed, LINEAR))
    if "domain_affinity" not in rec and linear_rec is not None:
        rec["domain_affinity"] = affinity(split, linear_rec["extra"]["C"], cfg)
        log(
            f"{task} seed {seed}: domain affinity "
            f"{rec['domain_affinity']['affinity']:+.4f}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    B.write_json(path, rec)
    return rec


def featurizer_factory(cfg):
    """The suite's featurizer: ``MultiLayerFeaturizer`` as ``cfg`` says."""
    return cfg.featurizer


def run_task(
    task,
    cfg,
    cache,
    *,
    seeds=SEEDS,
    methods=BASELINE_METHODS,
    force=(),
    force_extract=False,
    loader=None,
    make_featurizer=None,
    log=print,
):
    """Every (seed, method) cell of a task that is not cached yet.

    Parameters
    ----------
    task : str
        One of :data:`TASKS` (or any name :func:`split_task` accepts).
    cfg : _baselines.Config
        Featurizer and probe settings (``n_train``, ``n_test``, ``cv``, grids).
    cache : path-like
        Cache root (features and results).
    seeds : sequence of int, default=SEEDS
        Seeds to run. The pool (and its cached features) always holds the
        images of :data:`SEEDS` too, so a run of some seeds reuses them.
    methods : sequence of str, default=BASELINE_METHODS
        Names of :data:`METHODS`, run in this order for each seed.
    force : collection of str, default=()
        Methods to recompute even if cached.
    force_extract : bool, default=False
        Extract the features again.
    loader, make_featurizer : callable or None
        Fashion-MNIST loader (:func:`build_pool`) and featurizer factory
        (default :func:`featurizer_factory`), for tests.
    log : callable, default=print

    Returns
    -------
    computed : dict
        ``{(seed, method): record}`` of the cells available after the run
        (cached or new; methods that could not run are missing).
    """
    pool = build_pool(
        task,
        sorted(set(SEEDS) | set(seeds)),  # the cached pool, whatever seeds are run
        n_train=cfg.n_train,
        n_test=cfg.n_test or 2000,
        loader=loader,
    )
    Z, info = load_or_extract(
        task,
        pool,
        make_featurizer or featurizer_factory(cfg),
        cache,
        force=force_extract,
        log=log,
    )
    out = {}
    for seed in seeds:
        split = seed_split(Z, info, pool, seed)
        for method in methods:
            rec = run_cell(
                task, seed, method, split, cfg, cache, force=method in force, log=log
            )
            if rec is not None:
                out[seed, method] = rec
        seed_record(task, seed, split, cfg, cache, log=log)
    return out
