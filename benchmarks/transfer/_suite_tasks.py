"""The transfer suite's tasks: transforms, image pools and the feature cache.

Part of ``_suite.py`` (see there): the suite's fixed image transforms
(:data:`SUITE_VARIANTS`), the tasks (:data:`TASKS`) as pools of images with one
training / test split per seed (:func:`build_pool`), and the feature cache, one
extraction per task of every image its seeds need (:func:`load_or_extract`).
"""

import datetime
import functools
import json
import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import _baselines as B
import numpy as np

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)

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
