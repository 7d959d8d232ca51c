"""Head2Toe-shaped benchmark problems.

Head2Toe concatenates pooled activations of every layer of a frozen backbone,
normalises each layer's block of features to unit L2 norm per sample, and fits a
group-lasso multinomial head on the result.  The synthetic problems below mimic
that shape: ``n`` samples, ``d`` features split into blocks ("layers") of
strongly correlated, non-negative (ReLU-like) columns, each row of each block
scaled to unit L2 norm, a few dozen informative features spread over the
layers, stored as float32.

Real features produced by the featurizer can be loaded from an ``.npz`` file
holding ``X``, ``y`` and optionally ``groups`` (the layer index of each
feature).
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Problem:
    """One benchmark problem.

    Attributes
    ----------
    name : str
        Short identifier used in tables and CSV files.
    X : ndarray of shape (n, d), float32
        Features.
    y : ndarray of shape (n,), int
        Class labels in ``0 .. K-1``.
    groups : ndarray of shape (d,), int
        Layer (block) index of each feature; informative only, the benchmark
        penalises each feature as its own group.
    info : dict
        Generation parameters (for the CSV).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def d(self):
        return self.X.shape[1]

    @property
    def n_classes(self):
        return int(self.y.max()) + 1


def _block_sizes(d, n_blocks, rng):
    """Split ``d`` into ``n_blocks`` uneven sizes (later layers are wider)."""
    weights = np.linspace(1.0, 4.0, n_blocks) * rng.uniform(0.7, 1.3, n_blocks)
    sizes = np.floor(weights / weights.sum() * d).astype(int)
    sizes = np.maximum(sizes, 1)
    sizes[-1] += d - sizes.sum()
    return sizes


def make_head2toe_problem(
    n=1000,
    d=5000,
    n_classes=10,
    n_blocks=12,
    n_informative=40,
    rank=16,
    signal=1.0,
    noise=0.5,
    random_state=0,
):
    """Synthetic multi-layer backbone features with a sparse class signal.

    Each block ``l`` (a "layer") is ``relu(Z_l A_l + noise * E + shift)`` with a
    block-specific low-rank factor ``Z_l`` (so columns within a block are
    strongly correlated); a class-dependent latent code is added to
    ``n_informative`` columns spread over the blocks.  Then every row of every
    block is divided by its L2 norm (Head2Toe's "unit" normalisation).

    Parameters
    ----------
    n, d, n_classes : int
        Samples, features, classes.
    n_blocks : int
        Number of layers.
    n_informative : int
        Number of columns that carry class signal.
    rank : int
        Rank of the shared within-block component.
    signal, noise : float
        Strength of the class signal and of the independent noise.
    random_state : int
        Seed.

    Returns
    -------
    problem : Problem
    """
    rng = np.random.default_rng(random_state)
    y = rng.integers(0, n_classes, size=n)
    # make sure every class is present
    y[:n_classes] = np.arange(n_classes)
    rng.shuffle(y)

    q = 8  # dimension of the class code
    centroids = rng.standard_normal((n_classes, q)).astype(np.float32)
    code = centroids[y] + 0.5 * rng.standard_normal((n, q)).astype(np.float32)

    sizes = _block_sizes(d, n_blocks, rng)
    groups = np.repeat(np.arange(n_blocks), sizes)
    informative = np.sort(rng.choice(d, size=n_informative, replace=False))

    X = np.empty((n, d), dtype=np.float32)
    start = 0
    for size in sizes:
        stop = start + size
        Z = rng.standard_normal((n, rank), dtype=np.float32)
        A = rng.standard_normal((rank, size), dtype=np.float32) / np.sqrt(rank)
        block = Z @ A
        block += noise * rng.standard_normal((n, size), dtype=np.float32)
        block += rng.uniform(0.0, 1.0, size).astype(np.float32)
        cols = informative[(informative >= start) & (informative < stop)] - start
        if cols.size:
            V = rng.standard_normal((q, cols.size)).astype(np.float32)
            block[:, cols] += signal * (code @ V) / np.sqrt(q)
        np.maximum(block, 0.0, out=block)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        block /= norms
        X[:, start:stop] = block
        start = stop

    name = f"synth_n{n}_d{d}_K{n_classes}"
    info = dict(
        kind="synthetic",
        n=n,
        d=d,
        K=n_classes,
        n_blocks=n_blocks,
        n_informative=n_informative,
        seed=random_state,
    )
    return Problem(name, X, y, groups, info)


def load_features(path, name=None):
    """Load real features from an ``.npz`` file with ``X``, ``y`` (and ``groups``).

    Labels are re-encoded to ``0 .. K-1``; ``X`` is cast to float32.
    """
    with np.load(path, allow_pickle=False) as data:
        X = np.ascontiguousarray(data["X"], dtype=np.float32)
        _, y = np.unique(data["y"], return_inverse=True)
        if "groups" in data.files:
            groups = np.asarray(data["groups"]).astype(int)
        else:
            groups = np.zeros(X.shape[1], dtype=int)
    if name is None:
        import os

        name = os.path.splitext(os.path.basename(path))[0]
    K = int(y.max()) + 1
    info = dict(kind="features", path=str(path), n=X.shape[0], d=X.shape[1], K=K)
    return Problem(f"{name}_n{X.shape[0]}_d{X.shape[1]}_K{K}", X, y, groups, info)


def load_digits_features(cache, n_samples=1000, backbone="efficientnet_lite0"):
    """Real Head2Toe features: the embedded backbone on scikit-learn's digits.

    The first ``n_samples`` 8x8 digit images go through
    :class:`skhead2toe.MultiLayerFeaturizer` (every layer tapped, pooled, each layer
    normalised to unit norm, 224-pixel inputs). The featurizer caches the features
    per image in ``cache``, so the backbone runs once per machine.

    Parameters
    ----------
    cache : str
        Directory of the featurizer's cache.
    n_samples : int, default=1000
        Number of images (the first ones).
    backbone : str, default="efficientnet_lite0"
        Backbone of the featurizer.

    Returns
    -------
    problem : Problem
        ``groups`` holds the layer of every feature (``feature_groups_``).
    """
    from skhead2toe import MultiLayerFeaturizer
    from skhead2toe.datasets import load_digits_images

    images, target = load_digits_images()
    images, target = images[:n_samples], target[:n_samples]
    featurizer = MultiLayerFeaturizer(backbone, cache=cache, progress=False)
    X = np.ascontiguousarray(featurizer.fit_transform(images), dtype=np.float32)
    _, y = np.unique(target, return_inverse=True)
    groups = np.asarray(featurizer.feature_groups_).astype(int)
    K = int(y.max()) + 1
    info = dict(kind="digits-features", backbone=backbone, n=X.shape[0], d=X.shape[1])
    name = f"digits_{backbone}_n{X.shape[0]}_d{X.shape[1]}_K{K}"
    return Problem(name, X, y, groups, info)


def benchmark_problems(sizes, n_classes_list, n=1000, random_state=0):
    """Yield the synthetic problems for every ``d`` in ``sizes`` and ``K``."""
    for d in sizes:
        for K in n_classes_list:
            yield make_head2toe_problem(
                n=n, d=d, n_classes=K, random_state=random_state
            )
