"""The transfer suite's methods and the result cache of its cells.

Part of ``_suite.py`` (see there): the method names (rows of the table), the
methods (:data:`METHODS`), each a named function of one :class:`Split`, and the
result cache, one JSON record per (task, seed, method) (:func:`run_cell`).
"""

import base64
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import _baselines as B
import numpy as np
from _suite_tasks import _now, _slug, git_commit, source_hash

from skhead2toe import experiments

# Method names (rows of the table), in table order.
LINEAR = experiments.LINEAR
ALL_L2 = experiments.ALL_LAYERS
ORACLE = "Oracle"
HEAD2TOE_PAPER = "Head2Toe (paper)"
DEFAULT = "Default"
DEFAULT_1SE = "Default (1se)"
DEFAULT_RENORM = "Default (renorm)"
DEFAULT_AVG = "Default (avg)"
BASELINE_METHODS = (LINEAR, ALL_L2, ORACLE, HEAD2TOE_PAPER)
DEFAULT_METHODS = (DEFAULT, DEFAULT_1SE, DEFAULT_RENORM, DEFAULT_AVG)

#: Ridge strengths of the Oracle's layer screen (kernel ridge on one-hot labels;
#: every layer has unit norm per image, so the kernel's diagonal is about 2).
ORACLE_RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


# ------------------------------------------------------------------ methods
@dataclass
class Split:
    """One seed of a task: features, labels and the featurizer's layout."""

    Z_train: np.ndarray
    y_train: np.ndarray
    Z_test: np.ndarray
    y_test: np.ndarray
    groups: np.ndarray
    layer_names: list
    X_train: np.ndarray = None  # training images, for the domain affinity


@dataclass
class MethodResult:
    """What a method returns: test predictions, columns used, details."""

    pred: np.ndarray
    n_features: int
    convergence_warnings: int = 0
    extra: dict = field(default_factory=dict)
    #: Results of other methods computed from this one's fit (method name ->
    #: (MethodResult, extra CPU seconds)), cached as their own records.
    derived: dict = field(default_factory=dict)


class MethodUnavailable(RuntimeError):
    """A method cannot run here yet (e.g. the API it needs has not landed)."""


def _probe_on(split, cols, cfg):
    probe = B._l2_probe(cfg)
    warned = B._quiet_fit(probe, split.Z_train[:, cols], split.y_train)
    return MethodResult(
        probe.predict(split.Z_test[:, cols]),
        int(np.sum(cols)),
        warned,
        {"C": probe.C_},
    )


def linear(split, cfg):
    """Linear: the L2 probe on the last tapped layer."""
    return _probe_on(split, experiments.last_layer_mask(split.groups), cfg)


def all_layers_l2(split, cfg):
    """All layers + L2: the L2 probe on every column."""
    return _probe_on(split, np.ones(split.Z_train.shape[1], bool), cfg)


def _kernel_ridge_cv(K, y, folds, ridges):
    """Best mean CV accuracy over ``ridges`` of kernel ridge on one-hot labels.

    ``K`` is the linear kernel of the training images (plus 1 for an intercept
    is added here); each fold is solved once by an eigendecomposition.
    """
    Y = np.eye(int(y.max()) + 1)[y]
    acc = np.zeros(len(ridges))
    for tr, te in folds:
        w, V = np.linalg.eigh(K[np.ix_(tr, tr)] + 1.0)
        proj = V.T @ Y[tr]
        K_te = K[np.ix_(te, tr)] + 1.0
        for i, lam in enumerate(ridges):
            A = V @ (proj / (np.maximum(w, 0.0) + lam)[:, None])
            acc[i] += np.mean((K_te @ A).argmax(1) == y[te])
    return float(acc.max() / len(folds))


def oracle(split, cfg):
    """Oracle (Evci et al.): the last layer plus the best single other layer.

    Every other layer is screened by the 3-fold CV accuracy (same folds for all)
    of a kernel ridge on the last layer's and its columns over
    :data:`ORACLE_RIDGES`; the best layer (ties: the earliest) joins the last
    layer and the two are refitted with the L2 probe of Linear.
    """
    from sklearn.model_selection import StratifiedKFold

    Z = np.asarray(split.Z_train, dtype=np.float64)
    groups = np.asarray(split.groups)
    last = experiments.last_layer_mask(groups)
    folds = list(
        StratifiedKFold(cfg.cv, shuffle=True, random_state=cfg.random_state).split(
            Z, split.y_train
        )
    )
    K_last = Z[:, last] @ Z[:, last].T
    scores = {}
    for g in np.unique(groups[~last]):
        Zg = Z[:, groups == g]
        scores[int(g)] = _kernel_ridge_cv(
            K_last + Zg @ Zg.T, split.y_train, folds, ORACLE_RIDGES
        )
    best = max(scores, key=scores.get)
    res = _probe_on(split, last | (groups == best), cfg)
    res.extra.update(
        oracle_layer=split.layer_names[best],
        oracle_cv_accuracy=round(scores[best], 4),
        layer_cv_accuracy={
            split.layer_names[g]: round(v, 4) for g, v in scores.items()
        },
    )
    return res


def _head_result(head, split, warned):
    sel = np.asarray(head.selected_features_, bool)
    groups = np.asarray(split.groups)
    extra = {
        "n_layers_used": int(len(np.unique(groups[sel]))),
        "last_layer_only": bool(np.all(groups[sel] == groups.max())),
    }
    for name in ("alpha_", "keep_fraction_", "refit_l2_"):
        value = getattr(head, name, None)
        if value is not None:
            extra[name.rstrip("_")] = float(value)
    alphas = getattr(head, "alphas_", None)
    if alphas is not None and "alpha" in extra and np.size(alphas):
        extra["alpha_over_alpha_max"] = float(extra["alpha"] / np.max(alphas))
    for name in ("selection", "renormalize", "average_scores"):
        if name in head.get_params():
            extra[name] = head.get_params()[name]
    return MethodResult(head.predict(split.Z_test), int(sel.sum()), warned, extra)


def head2toe_paper(split, cfg):
    """Head2Toe (paper): ``experiments.head2toe_cv`` on its fixed grid."""
    head = B._head2toe(cfg)
    warned = B._quiet_fit(head, split.Z_train, split.y_train)
    return _head_result(head, split, warned)


#: Parameters the new ``GroupLassoClassifierCV`` API must have for the Default rows.
DEFAULT_API = ("selection", "renormalize", "average_scores", "last_layer", "layers")


def default_head(**params):
    """A ``GroupLassoClassifierCV(**params)`` factory, checked against the new API.

    Raises :class:`MethodUnavailable` (the cell stays uncached) while the
    estimator lacks the parameters of :data:`DEFAULT_API`.
    """

    def method(split, cfg):
        from skhead2toe import GroupLassoClassifierCV

        have = inspect.signature(GroupLassoClassifierCV).parameters
        missing = [p for p in (*DEFAULT_API, *params) if p not in have]
        if missing:
            raise MethodUnavailable(
                f"GroupLassoClassifierCV has no {', '.join(missing)} parameter yet"
            )
        head = GroupLassoClassifierCV(**params)
        warned = B._quiet_fit(head, split.Z_train, split.y_train)
        res = _head_result(head, split, warned)
        if not params:
            res.derived = _shared_cv_variants(head, split)
        return res

    method.__doc__ = (
        f"GroupLassoClassifierCV({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    )
    return method


def _shared_cv_variants(head, split):
    """``Default (1se)`` and ``Default (avg)`` from the Default fit (``_variants``)."""
    import _variants as V

    out = {}
    with B.Timer() as t:
        index = V.one_se_index(head)
        if index == head.best_index_:
            pred, mask = head.predict(split.Z_test), head.selected_features_
        else:
            predict, mask = V.refit_candidate(head, index, split.Z_train, split.y_train)
            pred = predict(split.Z_test)
    extra = {"candidate": str(head.cv_results_["candidate"][index]), "index": index}
    out[DEFAULT_1SE] = (MethodResult(pred, int(mask.sum()), 0, extra), t.cpu)
    with B.Timer() as t:
        avg = V.fold_averaged(head, split.Z_train, split.y_train)
    res = _head_result(head if avg is None else avg, split, 0)
    out[DEFAULT_AVG] = (res, t.cpu)
    return out


#: Methods by name: ``METHODS[name](split, cfg) -> MethodResult``. Add rows here.
METHODS = {
    LINEAR: linear,
    ALL_L2: all_layers_l2,
    ORACLE: oracle,
    HEAD2TOE_PAPER: head2toe_paper,
    DEFAULT: default_head(),
    DEFAULT_1SE: default_head(selection="1se"),
    DEFAULT_RENORM: default_head(renormalize=True),
    DEFAULT_AVG: default_head(average_scores=True),
}


# ---------------------------------------------------------------- records
def encode_labels(y):
    """Class indices (< 256) as a compact base64 string of uint8."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() > 255):
        raise ValueError("labels must lie in 0..255 to be stored as uint8")
    return base64.b64encode(y.astype(np.uint8).tobytes()).decode("ascii")


def decode_labels(s):
    """Inverse of :func:`encode_labels`."""
    return np.frombuffer(base64.b64decode(s), dtype=np.uint8).astype(np.int64)


def record_path(cache, task, seed, method):
    """Where the JSON record of a (task, seed, method) cell lives."""
    return (
        Path(cache) / "results" / _slug(task) / f"seed{seed}" / f"{_slug(method)}.json"
    )


def read_json(path):
    """The JSON object in ``path``, or None if there is none."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


def run_cell(task, seed, method, split, cfg, cache, *, force=False, log=print):
    """One (task, seed, method) result: from the cache, else computed and cached.

    Returns
    -------
    record : dict or None
        ``test_accuracy``, ``predictions`` (:func:`encode_labels`),
        ``n_features``, ``cpu_s`` / ``wall_s`` of the method (process CPU,
        :class:`_baselines.Timer`), ``convergence_warnings``, ``git_commit``,
        ``extra``; None if the method is :class:`MethodUnavailable`.
    """
    path = record_path(cache, task, seed, method)
    if not force and (rec := read_json(path)) is not None:
        return rec
    try:
        with B.Timer() as t:
            res = METHODS[method](split, cfg)
    except MethodUnavailable as exc:
        log(f"{task} seed {seed}: {method}: skipped ({exc})")
        return None
    pred = np.asarray(res.pred)
    rec = {
        "task": task,
        "seed": int(seed),
        "method": method,
        "test_accuracy": float(np.mean(pred == split.y_test)),
        "n_features": int(res.n_features),
        "n_features_total": int(split.Z_train.shape[1]),
        "cpu_s": round(t.cpu, 2),
        "wall_s": round(t.wall, 2),
        "convergence_warnings": int(res.convergence_warnings),
        "extra": res.extra,
        "git_commit": git_commit(),
        "source_hash": source_hash(),
        "date_utc": _now(),
        "predictions": encode_labels(pred),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    B.write_json(path, rec)
    log(
        f"{task} seed {seed}: {method}: accuracy {rec['test_accuracy']:.4f}, "
        f"{rec['n_features']} features, {rec['cpu_s']:.1f} s CPU"
    )
    for name, (sub, cpu) in res.derived.items():
        # its cost is the shared fit's plus its own last step
        derived = {**rec, "method": name, "derived_from": method}
        derived |= {
            "test_accuracy": float(np.mean(np.asarray(sub.pred) == split.y_test)),
            "n_features": int(sub.n_features),
            "cpu_s": round(t.cpu + cpu, 2),
            "extra": sub.extra,
            "predictions": encode_labels(np.asarray(sub.pred)),
        }
        B.write_json(record_path(cache, task, seed, name), derived)
        log(f"{task} seed {seed}: {name}: accuracy {derived['test_accuracy']:.4f}")
    return rec
