"""
======================================================
Feature cache: tune the head, run the backbone once
======================================================

In a pipeline ``featurizer -> head``, the backbone's forward pass is the
expensive step and the head is cheap. A grid search over the head's ``alpha``
would normally run the backbone again for every candidate and every fold: with
3 candidates and 3 folds, each training image goes through the network 6 times
and each test image 3 times, plus the final refit. ``Pipeline(memory=...)`` does
not help with the test folds, which are transformed again for every candidate.

``MultiLayerFeaturizer(cache=directory)`` keeps one feature row per image on
disk, keyed by the featurizer's parameters and a hash of the image content. The
first candidate computes the features; every later fit and transform reads them.
Images are resized to 64x64 pixels for speed.
"""

# %%
# A grid search over the head's alpha
# -----------------------------------
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer
from skhead2toe.datasets import load_digits_images

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=300, test_size=150, stratify=y, random_state=0
)

cache_dir = tempfile.TemporaryDirectory()
pipe = make_pipeline(
    MultiLayerFeaturizer(
        image_size=64, target_size=256, cache=cache_dir.name, random_state=0
    ),
    GroupLassoClassifier(keep_fraction=0.01),
)
grid = {"grouplassoclassifier__alpha": [1e-4, 3e-4, 1e-3]}


def n_cached():
    """Number of feature rows stored in the cache directory."""
    return sum(1 for _ in Path(cache_dir.name).rglob("*.f32"))


tic = time.perf_counter()
search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
first = time.perf_counter() - tic
print(f"first search:  {first:5.1f} s, {n_cached()} feature rows in the cache")
print(f"best alpha: {search.best_params_}, CV accuracy {search.best_score_:.3f}")

# %%
# The cache holds one row per training image: the backbone ran once per image.
# Without the cache, the 9 fits on two thirds of the images, the 9 transforms of
# the remaining third and the final refit on all of them would have sent
# ``3 * 3 * 300 + 300 = 3000`` images through the backbone, ten times as many.
# How long does the backbone take for the 300 images, without a cache?
assert n_cached() == len(X_train)
n_without_cache = 3 * len(grid["grouplassoclassifier__alpha"]) * len(X_train)
n_without_cache += len(X_train)
tic = time.perf_counter()
MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0).fit_transform(
    X_train
)
once = time.perf_counter() - tic
print(f"one pass over {len(X_train)} images: {once:.1f} s")
print(
    f"without the cache: {n_without_cache} images through the backbone, "
    f"about {once * n_without_cache / len(X_train):.0f} s of forward passes"
)

# %%
# Search again
# ------------
# A second search over other head parameters (here ``keep_fraction``) on the same
# images reads every feature from the cache: the backbone does no work, and the
# time left is the head's fits and the cost of building the featurizer.
grid2 = {
    "grouplassoclassifier__alpha": [search.best_params_["grouplassoclassifier__alpha"]],
    "grouplassoclassifier__keep_fraction": [0.005, 0.01, 0.02],
}
tic = time.perf_counter()
search2 = GridSearchCV(pipe, grid2, cv=3).fit(X_train, y_train)
second = time.perf_counter() - tic
print(f"second search: {second:5.1f} s, {n_cached()} feature rows in the cache")
print(f"best: {search2.best_params_}, CV accuracy {search2.best_score_:.3f}")

# %%
# At 64 pixels the backbone is cheap and most of the time goes to the head's
# fits. At the backbone's native 224 pixels it costs far more per image, and the
# cache saves most of a search.
#
# Only the new test images go through the backbone when the tuned pipeline
# predicts.
print(f"test accuracy: {search2.score(X_test, y_test):.3f}")
print(f"{n_cached()} rows cached for {len(X_train) + len(X_test)} distinct images")

# %%
# The cache is an ordinary directory; this one was temporary.
cache_dir.cleanup()
