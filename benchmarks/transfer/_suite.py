"""The transfer suite: many image tasks across domain affinity, cached and resumable.

The parts of ``run_suite.py``:

- the tasks (:data:`TASKS`): digits, Fashion-MNIST and tasks built from them
  (fixed, label-preserving image transforms, a few-shot draw, a 2-class and a
  20-class task), each a *pool* of images with one training / test split per
  seed (:func:`build_pool`);
- the feature cache: one extraction per task of every image its seeds need
  (:func:`load_or_extract`);
- the methods (:data:`METHODS`), each a named function of one split, so more can
  be added by name;
- the result cache: one JSON record per (task, seed, method) (:func:`run_cell`),
  so an interrupted run resumes where it stopped;
- the report: table, paired tests, targets, CSV / JSON / reStructuredText and
  the gain-versus-affinity plot (:func:`build_report` and the writers).
"""

import base64
import datetime
import functools
import inspect
import json
import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import _baselines as B
import numpy as np

from skhead2toe import experiments

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache"
SEEDS = (0, 1, 2)

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

#: Fashion-MNIST classes of the 2-class task: "T-shirt/top" against "Shirt".
SHIRT_CLASSES = (0, 6)


# ---------------------------------------------------------------- transforms
def low_res(X, *, factor=4):
    """Average ``factor x factor`` blocks, then blow them back up (nearest).

    A 28 x 28 image becomes 7 x 7 grey levels shown at 28 x 28: fine detail is
    gone, the layout stays. A fixed function of each image.

    Parameters
    ----------
    X : ndarray of shape (n, H, W) of uint8
        Images; ``H`` and ``W`` must be multiples of ``factor``.
    factor : int, default=4
        Side of the averaged blocks.

    Returns
    -------
    out : ndarray of shape (n, H, W) of uint8
        Constant on every block, equal to the block's rounded mean.
    """
    n, h, w = X.shape
    if h % factor or w % factor:
        raise ValueError(f"images of {h}x{w} px do not split into {factor}-px blocks")
    blocks = X.reshape(n, h // factor, factor, w // factor, factor).astype(float)
    small = np.rint(blocks.mean(axis=(2, 4))).astype(X.dtype)
    return np.repeat(np.repeat(small, factor, axis=1), factor, axis=2)


def add_noise(X, *, sigma=64.0, seed=0):
    """Additive Gaussian noise, clipped to ``0..255``, a fixed function of each image.

    The noise of an image is drawn from a generator seeded by ``seed`` and the
    CRC-32 of the image's bytes, so an image gets the same noise wherever it
    appears (in a training draw or in a test set, in any pool).

    Parameters
    ----------
    X : ndarray of shape (n, H, W) of uint8
        Images.
    sigma : float, default=64.0
        Standard deviation of the noise, in grey levels (a quarter of the range).
    seed : int, default=0
        Seed mixed with each image's checksum.

    Returns
    -------
    out : ndarray of shape (n, H, W) of uint8
    """
    out = np.empty_like(X)
    for i, img in enumerate(X):
        rng = np.random.default_rng([seed, zlib.crc32(img.tobytes())])
        noisy = img.astype(float) + rng.normal(0.0, sigma, img.shape)
        out[i] = np.clip(np.rint(noisy), 0, 255).astype(X.dtype)
    return out


#: The suite's transforms, next to :data:`_baselines.VARIANTS` (the same rules:
#: label-preserving fixed functions of the image, for train and test alike).
SUITE_VARIANTS = {"low-res": low_res, "noise": add_noise}
ALL_VARIANTS = {**B.VARIANTS, **SUITE_VARIANTS}


# --------------------------------------------------------------------- pools
@dataclass
class Pool:
    """The images of a task and one (train, test) split of them per seed.

    ``images`` (uint8, (n, H, W)) and ``labels`` (0 .. K-1) hold every image
    some seed needs; ``splits[seed]`` is ``(train_idx, test_idx)`` into them.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: dict = field(default_factory=dict)
    description: str = ""


def _draw(n, k, seed):
    """``k`` sorted indices out of ``n``, as ``load_fashion_mnist`` draws them."""
    from sklearn.utils import check_random_state

    return np.sort(check_random_state(seed).choice(n, k, replace=False))


def _union_pool(train_X, train_y, train_draws, test_X, test_y, test_idx):
    """Pool of the union of per-seed training draws and one shared test set."""
    union = np.unique(np.concatenate(list(train_draws.values())))
    images = np.concatenate([train_X[union], test_X[test_idx]])
    labels = np.concatenate([train_y[union], test_y[test_idx]])
    test = len(union) + np.arange(len(test_idx))
    splits = {s: (np.searchsorted(union, d), test) for s, d in train_draws.items()}
    return images, labels, splits


def _fashion(loader, seeds, n_train, n_test, *, classes=None, per_class=None):
    """Fashion-MNIST pool: per-seed training draws, a shared test draw (seed 0)."""
    X_tr, y_tr = loader("train")
    X_te, y_te = loader("test")
    if classes is not None:
        keep_tr, keep_te = np.isin(y_tr, classes), np.isin(y_te, classes)
        X_tr, y_tr, X_te, y_te = (
            X_tr[keep_tr],
            y_tr[keep_tr],
            X_te[keep_te],
            y_te[keep_te],
        )
        y_tr, y_te = np.searchsorted(classes, y_tr), np.searchsorted(classes, y_te)
    draws = {}
    for s in seeds:
        if per_class is None:
            draws[s] = _draw(len(y_tr), n_train, s)
        else:
            rng = np.random.default_rng(s)
            draws[s] = np.sort(
                np.concatenate(
                    [
                        rng.choice(np.flatnonzero(y_tr == c), per_class, replace=False)
                        for c in np.unique(y_tr)
                    ]
                )
            )
    test_idx = _draw(len(y_te), min(n_test, len(y_te)), 0)
    return _union_pool(X_tr, y_tr, draws, X_te, y_te, test_idx)


def _digit_splits(y, seeds, n_train):
    """Stratified (train, rest) splits of the digits, one per seed."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    out = {}
    for s in seeds:
        tr, te = train_test_split(idx, train_size=n_train, stratify=y, random_state=s)
        out[s] = (np.sort(tr), np.sort(te))
    return out


def _resize(X, size):
    """uint8 images resized to ``size x size`` (PIL bilinear)."""
    from PIL import Image

    return np.stack(
        [np.asarray(Image.fromarray(x).resize((size, size), Image.BILINEAR)) for x in X]
    )


def _digits_fashion(loader, seeds, n_train, n_test):
    """20 classes: digits (0-9, resized to 28 px) and Fashion-MNIST (10-19)."""
    from skhead2toe.datasets import load_digits_images

    Xd, yd = load_digits_images()
    Xf, yf, fsplits = _fashion(loader, seeds, n_train - n_train // 2, n_test // 2)
    dsplits = _digit_splits(yd, seeds, n_train // 2)
    images = np.concatenate([_resize(Xd, Xf.shape[1]), Xf])
    labels = np.concatenate([yd, yf + 10])
    off = len(yd)
    splits = {
        s: tuple(np.concatenate([dsplits[s][k], fsplits[s][k] + off]) for k in (0, 1))
        for s in seeds
    }
    return images, labels, splits


def _base_pool(base, seeds, n_train, n_test, loader):
    """(images, labels, splits, description) of a base task."""
    from skhead2toe.datasets import load_digits_images

    if base == "digits":
        X, y = load_digits_images()
        return (
            X,
            y,
            _digit_splits(y, seeds, n_train),
            (f"scikit-learn digits: stratified {n_train} / rest, split per seed"),
        )
    if base == "fashion-mnist":
        return *_fashion(loader, seeds, n_train, n_test), (
            f"Fashion-MNIST: {n_train} training images drawn per seed, "
            f"{n_test} test images shared by the seeds"
        )
    if base == "fashion-mnist-10shot":
        return *_fashion(loader, seeds, n_train, n_test, per_class=10), (
            "Fashion-MNIST, 10 training images per class drawn per seed, "
            f"{n_test} shared test images"
        )
    if base == "fashion-mnist-shirts":
        return *_fashion(loader, seeds, n_train, n_test, classes=SHIRT_CLASSES), (
            f"Fashion-MNIST T-shirt/top vs Shirt: {n_train} training images per "
            f"seed, {n_test} shared test images"
        )
    if base == "digits-fashion-20":
        return *_digits_fashion(loader, seeds, n_train, n_test), (
            "digits (resized to 28 px) + Fashion-MNIST as 20 classes: half of the "
            "training images from each, test: the other digits and shared "
            "Fashion-MNIST test images"
        )
    raise ValueError(f"unknown base task {base!r}; one of {BASES}")


BASES = (
    "digits",
    "fashion-mnist",
    "fashion-mnist-10shot",
    "fashion-mnist-shirts",
    "digits-fashion-20",
)

#: The suite's tasks, in priority order (extraction and runs follow it).
TASKS = (
    "digits",
    "fashion-mnist",
    "fashion-mnist+invert",
    "fashion-mnist+block-shuffle",
    "fashion-mnist+low-res",
    "fashion-mnist+noise",
    "fashion-mnist-10shot",
    "fashion-mnist-shirts",
    "digits-fashion-20",
    "digits+block-shuffle",
    "fashion-mnist+pixel-shuffle",
    "fashion-mnist+rotate-invert",
)


def split_task(name):
    """``"fashion-mnist+noise"`` -> ``("fashion-mnist", "noise")``."""
    base, _, variant = name.partition("+")
    if base not in BASES:
        raise ValueError(f"task {name!r}: base must be one of {BASES}")
    if variant and variant not in ALL_VARIANTS:
        raise ValueError(
            f"task {name!r}: variant must be one of {sorted(ALL_VARIANTS)}"
        )
    return base, variant or None


def _load_fashion(subset):
    from skhead2toe.datasets import load_fashion_mnist

    return load_fashion_mnist(subset=subset)


def build_pool(task, seeds=SEEDS, *, n_train=1000, n_test=2000, loader=None):
    """The :class:`Pool` of a task.

    Parameters
    ----------
    task : str
        A base of :data:`BASES`, optionally ``+<variant>`` with a variant of
        :data:`ALL_VARIANTS` (applied to every image of the pool).
    seeds : sequence of int, default=SEEDS
        One training draw (digits: one stratified split) per seed.
    n_train : int, default=1000
        Training images per seed (ignored by the 10-shot task: 10 per class).
    n_test : int, default=2000
        Fashion-MNIST test images (shared by the seeds; digits test on the rest).
    loader : callable or None, default=None
        ``loader(subset) -> (images, labels)`` of the whole Fashion-MNIST
        ``"train"`` / ``"test"`` set; None reads Debian's copy.

    Returns
    -------
    pool : Pool
    """
    base, variant = split_task(task)
    images, labels, splits, desc = _base_pool(
        base, tuple(seeds), n_train, n_test, loader or _load_fashion
    )
    if variant is not None:
        images = ALL_VARIANTS[variant](images)
        desc += f"; transform {variant!r}"
    return Pool(np.ascontiguousarray(images), np.asarray(labels), splits, desc)


# --------------------------------------------------------------- features
def _slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def git_commit(path=HERE):
    """``HEAD``'s commit (with ``+dirty`` if ``skhead2toe/`` has changes), or None."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=path, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", "../../skhead2toe")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


@functools.cache
def source_hash(root=HERE.parents[1] / "skhead2toe"):
    """Short SHA-256 of the library's Python sources, read once per process.

    Rows computed from uncommitted changes all read ``<commit>+dirty``; this
    tells apart rows computed from different working trees. It is read at the
    first record of the process, after its first method ran, so it is the code
    that process imported (unless the sources changed in between).
    """
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(root).rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _feature_dir(cache, task):
    return Path(cache) / "features" / _slug(task)


def _check_pool(meta, pool, task):
    """Raise if the cached features were extracted for another pool."""
    same = np.array_equal(meta["labels"], pool.labels) and all(
        f"train_{s}" in meta
        and np.array_equal(meta[f"train_{s}"], tr)
        and np.array_equal(meta[f"test_{s}"], te)
        for s, (tr, te) in pool.splits.items()
    )
    if not same:
        raise RuntimeError(
            f"{task}: the cached features are of another image pool (seeds, "
            "sizes or data changed); rerun with --force-extract"
        )


def extract(pool, featurizer):
    """Features of every pool image, with their layout and the extraction time.

    Returns
    -------
    Z : ndarray of shape (n_images, n_features) of float32
    info : dict
        ``feature_groups``, ``layer_names``, ``extraction_cpu_s`` /
        ``extraction_wall_s`` (:class:`_baselines.Timer`).
    """
    with B.Timer() as t:
        Z = featurizer.fit_transform(pool.images)
    return np.asarray(Z, dtype=np.float32), {
        "feature_groups": np.asarray(featurizer.feature_groups_),
        "layer_names": list(featurizer.layer_names_),
        "extraction_cpu_s": round(t.cpu, 2),
        "extraction_wall_s": round(t.wall, 2),
    }


def _save_features(d, Z, info, pool, extra):
    from skhead2toe._io import atomic_write

    d.mkdir(parents=True, exist_ok=True)
    arrays = {"labels": pool.labels, "images": pool.images}
    arrays["feature_groups"] = info["feature_groups"]
    for s, (tr, te) in pool.splits.items():
        arrays[f"train_{s}"], arrays[f"test_{s}"] = tr, te
    atomic_write(d / "Z.npy", lambda f: np.save(f, Z), suffix=".npy")
    atomic_write(d / "pool.npz", lambda f: np.savez(f, **arrays), suffix=".npz")
    meta = {k: v for k, v in info.items() if k != "feature_groups"}
    B.write_json(d / "meta.json", {**meta, **extra, "description": pool.description})


def load_or_extract(task, pool, featurizer_factory, cache, *, force=False, log=print):
    """The task's features: from the cache, else extracted once and cached.

    Parameters
    ----------
    task : str
    pool : Pool
        From :func:`build_pool`; checked against the cached one.
    featurizer_factory : callable
        Returns an unfitted ``MultiLayerFeaturizer`` (called only to extract).
    cache : path-like
        Cache root; features go to ``features/<task>/``.
    force : bool, default=False
        Extract again even if cached.
    log : callable, default=print

    Returns
    -------
    Z : ndarray of shape (n_images, n_features)
        Memory-mapped when read from the cache.
    info : dict
        As :func:`extract` returns, from ``meta.json``.
    """
    d = _feature_dir(cache, task)
    if force or not (d / "meta.json").exists():
        feat = featurizer_factory()
        log(f"{task}: extracting {len(pool.labels)} images")
        Z, info = extract(pool, feat)
        extra = {
            "task": task,
            "n_images": int(len(pool.labels)),
            "featurizer": repr(feat),
            "git_commit": git_commit(),
            "date_utc": _now(),
        }
        _save_features(d, Z, info, pool, extra)
        log(
            f"{task}: extraction {info['extraction_cpu_s']:.1f} s CPU, "
            f"{Z.shape[1]} features"
        )
    meta = np.load(d / "pool.npz")
    _check_pool(meta, pool, task)
    info = json.loads((d / "meta.json").read_text())
    info["feature_groups"] = meta["feature_groups"]
    return np.load(d / "Z.npy", mmap_mode="r"), info


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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
        {"C": probe.best_params_["C"]},
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
    from skhead2toe import MultiLayerFeaturizer

    return lambda: MultiLayerFeaturizer(
        cfg.backbone,
        pretrained=cfg.pretrained,
        image_size=cfg.image_size,
        target_size=cfg.target_size,
        progress=False,
        random_state=cfg.random_state,
    )


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


# ------------------------------------------------------------------ report
def _task_dir(cache, task):
    return Path(cache) / "results" / _slug(task)


def load_cells(cache, task, seeds):
    """Cached records of a task: ``(seed_records, {method: {seed: record}})``."""
    seed_recs, cells = {}, {}
    for seed in seeds:
        d = _task_dir(cache, task) / f"seed{seed}"
        if (rec := read_json(d / "split.json")) is None:
            continue
        seed_recs[seed] = rec
        for f in sorted(d.glob("*.json")):
            if f.name != "split.json":
                r = read_json(f)
                cells.setdefault(r["method"], {})[seed] = r
    return seed_recs, cells


def _pooled(seed_recs, a, b):
    """(y, pred_a, pred_b) concatenated over the seeds both methods have."""
    seeds = [s for s in seed_recs if s in a and s in b]
    if not seeds:
        return None
    cat = np.concatenate
    return (
        cat([decode_labels(seed_recs[s]["y_test"]) for s in seeds]),
        cat([decode_labels(a[s]["predictions"]) for s in seeds]),
        cat([decode_labels(b[s]["predictions"]) for s in seeds]),
    )


def paired(seed_recs, a, b, other):
    """Exact McNemar test of ``a`` against ``b`` on the pooled (seed, image) pairs.

    Returns :func:`skhead2toe.experiments.paired_comparison`'s dict (plus the
    number of pooled pairs), or None when no seed has both methods.
    """
    pooled = _pooled(seed_recs, a, b)
    if pooled is None:
        return None
    y, pa, pb = pooled
    out = experiments.paired_comparison(y, pa, pb, other)
    out["n_pairs"] = int(len(y))
    return out


def _cell(recs, seed_recs, refs):
    """Aggregate one (task, method) over its seeds."""
    seeds = sorted(recs)
    acc = [recs[s]["test_accuracy"] for s in seeds]
    cell = {
        "seeds": seeds,
        "test_accuracy": float(np.mean(acc)),
        "test_accuracy_per_seed": {str(s): a for s, a in zip(seeds, acc, strict=True)},
        "n_features": float(np.mean([recs[s]["n_features"] for s in seeds])),
        "feature_fraction": float(
            np.mean(
                [recs[s]["n_features"] / recs[s]["n_features_total"] for s in seeds]
            )
        ),
        "cpu_s": float(np.mean([recs[s]["cpu_s"] for s in seeds])),
        "convergence_warnings": int(
            sum(recs[s]["convergence_warnings"] for s in seeds)
        ),
        "git_commits": sorted({str(recs[s].get("git_commit")) for s in seeds}),
        "source_hashes": sorted({str(recs[s].get("source_hash")) for s in seeds}),
        "extra_per_seed": {str(s): recs[s].get("extra", {}) for s in seeds},
    }
    for key, ref in refs.items():
        if ref is not None:
            cell[f"vs_{key}"] = paired(seed_recs, recs, ref, key)
    return cell


def _task_meta(cache, task, seed_recs):
    meta = read_json(_feature_dir(cache, task) / "meta.json") or {}
    affs = [
        r["domain_affinity"]["affinity"]
        for r in seed_recs.values()
        if "domain_affinity" in r
    ]
    first = next(iter(seed_recs.values()))
    return {
        "task": task,
        "description": meta.get("description"),
        "n_train": first["n_train"],
        "n_test": first["n_test"],
        "n_classes": first["n_classes"],
        "n_features": first["n_features"],
        "n_images_extracted": meta.get("n_images"),
        "extraction_cpu_s": meta.get("extraction_cpu_s"),
        "domain_affinity": float(np.mean(affs)) if affs else None,
        "domain_affinity_per_seed": {
            str(s): r.get("domain_affinity") for s, r in seed_recs.items()
        },
    }


def task_report(cache, task, seeds):
    """The report of one task (None if nothing is cached for it)."""
    seed_recs, cells = load_cells(cache, task, seeds)
    if not seed_recs:
        return None
    refs = {"linear": cells.get(LINEAR), "all_l2": cells.get(ALL_L2)}
    order = [m for m in METHODS if m in cells] + sorted(set(cells) - set(METHODS))
    out = _task_meta(cache, task, seed_recs)
    out["methods"] = {m: _cell(cells[m], seed_recs, refs) for m in order}
    out["methods_complete"] = [
        m for m in order if set(cells[m]) >= set(seed_recs) == set(seeds)
    ]
    best = _best_reference(out["methods"])
    if best is not None:
        ref = cells[best]
        for m in order:
            out["methods"][m]["vs_best_baseline"] = paired(
                seed_recs, cells[m], ref, best
            )
    out["best_baseline"] = best
    return out


def _best_reference(cells):
    """The better (mean test accuracy) of Linear and All layers + L2, or None."""
    if LINEAR not in cells or ALL_L2 not in cells:
        return None
    return max((ALL_L2, LINEAR), key=lambda m: cells[m]["test_accuracy"])


def _significant(cmp, alpha=0.05, sign=-1):
    """Whether ``cmp`` (a :func:`paired` dict) is significantly behind (-1) / ahead."""
    return (
        cmp is not None
        and cmp["p_value"] <= alpha
        and np.sign(cmp["difference"]) == sign
    )


def summarize(tasks, alpha=0.05):
    """Suite means per method and the targets of the Default rows.

    Per method, over the tasks where it has every seed: mean test accuracy,
    mean gain over All layers + L2 and over Linear (tasks where those have
    every seed too), the tasks where it is significantly behind (``p <=
    alpha`` and behind) or ahead of the better of the two, mean feature
    fraction and mean CPU time.
    """
    methods = []
    for t in tasks:
        methods += [m for m in t["methods_complete"] if m not in methods]
    out = {}
    for m in methods:
        ts = [t for t in tasks if m in t["methods_complete"]]
        cells = [t["methods"][m] for t in ts]

        def gain(ref, ts=ts, m=m):
            d = [
                t["methods"][m]["test_accuracy"] - t["methods"][ref]["test_accuracy"]
                for t in ts
                if ref in t["methods_complete"]
            ]
            return float(np.mean(d)) if d else None

        out[m] = {
            "n_tasks": len(ts),
            "tasks": [t["task"] for t in ts],
            "mean_test_accuracy": float(np.mean([c["test_accuracy"] for c in cells])),
            "mean_gain_vs_all_l2": gain(ALL_L2),
            "mean_gain_vs_linear": gain(LINEAR),
            "significantly_worse_than_best_baseline": [
                t["task"]
                for t in ts
                if _significant(t["methods"][m].get("vs_best_baseline"), alpha)
            ],
            "significantly_better_than_best_baseline": [
                t["task"]
                for t in ts
                if _significant(t["methods"][m].get("vs_best_baseline"), alpha, +1)
            ],
            "mean_feature_fraction": float(
                np.mean([c["feature_fraction"] for c in cells])
            ),
            "mean_n_features": float(np.mean([c["n_features"] for c in cells])),
            "mean_cpu_s": float(np.mean([c["cpu_s"] for c in cells])),
            "convergence_warnings": int(sum(c["convergence_warnings"] for c in cells)),
            "source_hashes": sorted({h for c in cells for h in c["source_hashes"]}),
        }
    return out


def _corr(x, y):
    """(Pearson r, Spearman rho) of two sequences, None where undefined."""
    from scipy.stats import pearsonr, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None, None
    return float(pearsonr(x, y)[0]), float(spearmanr(x, y)[0])


def gain_affinity(tasks, method, ref=LINEAR):
    """Points ``(task, affinity, gain over ref)`` and their correlations."""
    pts = [
        (
            t["task"],
            t["domain_affinity"],
            t["methods"][method]["test_accuracy"] - t["methods"][ref]["test_accuracy"],
        )
        for t in tasks
        if {method, ref} <= set(t["methods_complete"])
        and t["domain_affinity"] is not None
    ]
    r, rho = _corr([p[1] for p in pts], [p[2] for p in pts]) if pts else (None, None)
    return {"points": pts, "pearson_r": r, "spearman_rho": rho}


def build_report(cache, *, tasks=TASKS, seeds=SEEDS, cfg=None, alpha=0.05):
    """Everything cached for ``tasks`` x ``seeds``: per task, summary, text.

    Returns
    -------
    report : dict
        ``tasks`` (:func:`task_report` of each task with results), ``summary``
        (:func:`summarize`), ``gain_vs_affinity`` (per method, over Linear),
        ``metadata``, ``config`` and ``rst`` (:func:`format_rst`).
    """
    reps = [r for t in tasks if (r := task_report(cache, t, seeds)) is not None]
    report = {
        "metadata": {
            "seeds": list(seeds),
            "alpha": alpha,
            "paired_test": (
                "exact McNemar (skhead2toe.experiments.paired_comparison) on the "
                "(seed, test image) pairs pooled over the seeds both methods have"
            ),
            "cpu_time": (
                "time.process_time() of the method on one (task, seed), one "
                "thread; feature extraction (once per task) not included"
            ),
            "date_utc": _now(),
            "git_commit": git_commit(),
        },
        "config": cfg.to_dict() if cfg is not None else None,
        "tasks": reps,
        "summary": summarize(reps, alpha),
        "gain_vs_affinity": {
            m: gain_affinity(reps, m) for m in (DEFAULT, HEAD2TOE_PAPER, *METHODS)
        },
    }
    report["rst"] = format_rst(report)
    return report


def rst_table(header, rows):
    """A reStructuredText grid table of string cells."""
    cols = list(zip(header, *rows, strict=True))
    widths = [max(len(c) for c in col) for col in cols]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells):
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    out = [line, fmt(header), line.replace("-", "=")]
    for r in rows:
        out += [fmt(r), line]
    return "\n".join(out)


def _pct(x, signed=False, nd=2):
    if x is None:
        return "-"
    return f"{100 * x:+.{nd}f}" if signed else f"{100 * x:.{nd}f}"


def _mark(cmp, alpha):
    if _significant(cmp, alpha, +1):
        return " +"
    if _significant(cmp, alpha, -1):
        return " -"
    return ""


def _methods_of(report):
    seen = []
    for t in report["tasks"]:
        seen += [m for m in t["methods"] if m not in seen]
    return seen


def _accuracy_table(report, alpha):
    methods = _methods_of(report)
    rows = []
    for t in report["tasks"]:
        cells = []
        for m in methods:
            c = t["methods"].get(m)
            if c is None:
                cells.append("")
                continue
            partial = "" if m in t["methods_complete"] else f" ({len(c['seeds'])}s)"
            cells.append(
                _pct(c["test_accuracy"]) + _mark(c.get("vs_all_l2"), alpha) + partial
            )
        rows.append([t["task"], _pct(t["domain_affinity"], True, 1), *cells])
    s = report["summary"]
    rows.append(
        [
            "suite mean",
            "",
            *[_pct(s[m]["mean_test_accuracy"]) if m in s else "" for m in methods],
        ]
    )
    return rst_table(["task", "affinity", *methods], rows)


def _detail_table(report):
    rows = []
    for t in report["tasks"]:
        for m, c in t["methods"].items():
            vs = c.get("vs_all_l2")
            per_seed = " / ".join(
                _pct(a, nd=1) for a in c["test_accuracy_per_seed"].values()
            )
            rows.append(
                [
                    t["task"],
                    m,
                    _pct(c["test_accuracy"]),
                    per_seed,
                    ""
                    if vs is None or m == ALL_L2
                    else f"{100 * vs['difference']:+.1f}",
                    "" if vs is None or m == ALL_L2 else f"{vs['p_value']:.2g}",
                    f"{c['n_features']:.0f}",
                    f"{c['cpu_s']:.1f}",
                ]
            )
    return rst_table(
        [
            "task",
            "method",
            "accuracy",
            "per seed",
            "vs All+L2",
            "p",
            "features",
            "CPU s",
        ],
        rows,
    )


def _tasks_table(report):
    rows = [
        [
            t["task"],
            str(t["n_train"]),
            str(t["n_test"]),
            str(t["n_classes"]),
            _pct(t["domain_affinity"], True, 1),
            " / ".join(
                _pct((a or {}).get("affinity"), True, 1)
                for a in t["domain_affinity_per_seed"].values()
            ),
            "-" if t["extraction_cpu_s"] is None else f"{t['extraction_cpu_s']:.0f}",
            str(t["n_images_extracted"]),
        ]
        for t in report["tasks"]
    ]
    header = ["task", "train", "test", "classes", "affinity", "per seed"]
    return rst_table([*header, "extraction CPU s", "images"], rows)


def _summary_table(report):
    rows = []
    for m, v in report["summary"].items():
        worse = v["significantly_worse_than_best_baseline"]
        rows.append(
            [
                m,
                str(v["n_tasks"]),
                _pct(v["mean_test_accuracy"]),
                _pct(v["mean_gain_vs_all_l2"], True),
                _pct(v["mean_gain_vs_linear"], True),
                str(len(worse)),
                str(len(v["significantly_better_than_best_baseline"])),
                f"{100 * v['mean_feature_fraction']:.1f} %",
                f"{v['mean_cpu_s']:.1f}",
                str(v["convergence_warnings"]),
            ]
        )
    return rst_table(
        [
            "method",
            "tasks",
            "mean acc.",
            "vs All+L2",
            "vs Linear",
            "worse than best baseline",
            "better",
            "features",
            "CPU s",
            "warnings",
        ],
        rows,
    )


def _worse_list(report):
    """Bullet lines naming the tasks each head is significantly worse on."""
    lines = []
    for m, v in report["summary"].items():
        if m in (LINEAR, ALL_L2):
            continue
        worse = v["significantly_worse_than_best_baseline"]
        lines.append(f"* {m}: {', '.join(f'``{t}``' for t in worse) or 'none'}")
    if not lines:
        return []
    return [
        "Tasks where a head is significantly worse than the better of Linear and"
        " All layers + L2:",
        "",
        *lines,
        "",
    ]


def format_rst(report):
    """The report as reStructuredText: accuracy, summary and detail tables."""
    alpha = report["metadata"]["alpha"]
    n = len(report["metadata"]["seeds"])
    parts = [
        f"Test accuracy (%, mean over {n} seeds); affinity in points. ``+`` / ``-``:"
        f" significantly above / below All layers + L2 (exact McNemar on the pooled"
        f" (seed, image) pairs, p <= {alpha}); ``(ks)``: only k seeds so far.",
        "",
        _accuracy_table(report, alpha),
        "",
        "Per method, over the tasks where it has every seed: mean accuracy (%), mean"
        " gain (points) over All layers + L2 and over Linear, tasks where it is"
        " significantly worse / better than the better of Linear and All layers +"
        f" L2 (p <= {alpha}), mean fraction of the features used, mean CPU s per"
        " (task, seed) at one thread, extraction excluded, and the convergence"
        " warnings of all its fits.",
        "",
        _summary_table(report),
        "",
        *_worse_list(report),
        "Per task and method: accuracy (%, mean and per seed), difference to All"
        " layers + L2 (points) and its pooled McNemar p value, features used and"
        " CPU s (means over the seeds):",
        "",
        _detail_table(report),
        "",
        "Tasks: training / test images per seed (test sizes of seed 0), classes,"
        " domain affinity (points; mean and per seed), CPU s of the one feature"
        " extraction of the task's images (every seed's).",
        "",
        _tasks_table(report),
    ]
    return "\n".join(parts) + "\n"


CSV_COLUMNS = (
    "task",
    "method",
    "n_seeds",
    "test_accuracy",
    "test_accuracy_per_seed",
    "diff_vs_all_l2",
    "p_vs_all_l2",
    "diff_vs_best_baseline",
    "p_vs_best_baseline",
    "n_features",
    "feature_fraction",
    "cpu_s",
    "convergence_warnings",
    "domain_affinity",
    "extraction_cpu_s",
    "git_commits",
)


def csv_rows(report):
    """One flat row per (task, method) with :data:`CSV_COLUMNS`."""
    rows = []
    for t in report["tasks"]:
        for m, c in t["methods"].items():
            vs, best = c.get("vs_all_l2") or {}, c.get("vs_best_baseline") or {}
            rows.append(
                {
                    "task": t["task"],
                    "method": m,
                    "n_seeds": len(c["seeds"]),
                    "test_accuracy": round(c["test_accuracy"], 4),
                    "test_accuracy_per_seed": " ".join(
                        f"{a:.4f}" for a in c["test_accuracy_per_seed"].values()
                    ),
                    "diff_vs_all_l2": _round(vs.get("difference")),
                    "p_vs_all_l2": _round(vs.get("p_value")),
                    "diff_vs_best_baseline": _round(best.get("difference")),
                    "p_vs_best_baseline": _round(best.get("p_value")),
                    "n_features": round(c["n_features"], 1),
                    "feature_fraction": round(c["feature_fraction"], 4),
                    "cpu_s": round(c["cpu_s"], 2),
                    "convergence_warnings": c["convergence_warnings"],
                    "domain_affinity": _round(t["domain_affinity"]),
                    "extraction_cpu_s": t["extraction_cpu_s"],
                    "git_commits": " ".join(c["git_commits"]),
                }
            )
    return rows


def _round(x, nd=4):
    return "" if x is None else round(float(x), nd)


def write_report(report, out, *, plot=True):
    """``suite_results.{csv,json}``, ``suite_table.rst`` (and the plot) in ``out``."""
    from skhead2toe._io import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    B.write_csv(out / "suite_results.csv", csv_rows(report), columns=CSV_COLUMNS)
    B.write_json(
        out / "suite_results.json", {k: v for k, v in report.items() if k != "rst"}
    )
    data = report["rst"].encode()
    atomic_write(out / "suite_table.rst", lambda f: f.write(data), suffix=".rst")
    if plot:
        plot_gain_vs_affinity(report, out / "suite_gain_vs_affinity.png")


def plot_gain_vs_affinity(report, path, methods=(DEFAULT, HEAD2TOE_PAPER)):
    """Gain over Linear against domain affinity, one point per task, as a PNG.

    The legend gives each method's Pearson and Spearman correlation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhead2toe._io import atomic_write

    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    labelled = False
    for method, marker in zip(methods, "os^v", strict=False):
        g = report["gain_vs_affinity"].get(method) or gain_affinity(
            report["tasks"], method
        )
        if not g["points"]:
            continue
        names, x, y = zip(*g["points"], strict=True)
        x, y = 100 * np.asarray(x), 100 * np.asarray(y)
        r, rho = g["pearson_r"], g["spearman_rho"]
        corr = (
            "" if r is None else f" (Pearson r = {r:+.2f}, Spearman rho = {rho:+.2f})"
        )
        ax.scatter(x, y, marker=marker, s=50, alpha=0.8, label=f"{method}{corr}")
        if not labelled:
            order = np.argsort(x)  # alternate above / below along the x axis
            for k, i in enumerate(order):
                ax.annotate(
                    names[i],
                    (x[i], y[i]),
                    textcoords="offset points",
                    xytext=(4, 5 if k % 2 == 0 else -10),
                    fontsize=7,
                )
            labelled = True
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title(
        "Gain over the linear probe vs domain affinity (one point per task)",
        fontsize=10,
    )
    ax.set_xlabel("domain affinity (linear probe - pixels probe, CV accuracy, points)")
    ax.set_ylabel("test accuracy gain over Linear (points, mean of seeds)")
    ax.legend(fontsize=7)
    try:
        atomic_write(
            Path(path), lambda f: fig.savefig(f, format="png", dpi=120), suffix=".png"
        )
    finally:
        plt.close(fig)
