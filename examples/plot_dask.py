"""
=============================================
Scaling extraction and search out with Dask
=============================================

Extraction is the expensive step: on a million images it belongs on a
cluster. :meth:`~skhead2toe.MultiLayerFeaturizer.transform` given a
:class:`dask.array.Array` of images chunked along the first axis returns a lazy
dask array of features, one task per chunk; each worker builds the backbone
once and reuses it for every chunk it gets. For image files,
:func:`~skhead2toe.feature_extraction.dask_transform` takes the list of paths.

The head is then tuned with scikit-learn's joblib parallelism handed to the
same cluster: inside ``joblib.parallel_config(backend="dask")``, the ``n_jobs``
loops of :class:`~sklearn.model_selection.GridSearchCV` and of
:class:`~skhead2toe.GroupLassoClassifierCV` (one task per fold) run on the
workers. The same code scales from a laptop to many machines by pointing the
:class:`~distributed.Client` at a remote scheduler (last section).

Here the "cluster" is a :class:`~distributed.LocalCluster` with two workers in
the current process (``processes=False``: threads, no start-up cost), enough to
show the mechanics. Worker threads of one process share one backbone and take
turns with it; on a real cluster every worker is a process of its own (see
:doc:`/dask`).
"""

# %%
# A local cluster
# ---------------
# ``dashboard_address=None`` turns the web dashboard off.
import shutil
import tempfile
import time
from pathlib import Path

import dask.array as da
import joblib
import numpy as np
from distributed import Client, LocalCluster
from PIL import Image
from sklearn.model_selection import GridSearchCV, train_test_split

from skhead2toe import (
    GroupLassoClassifier,
    GroupLassoClassifierCV,
    MultiLayerFeaturizer,
)
from skhead2toe.datasets import load_digits_images
from skhead2toe.feature_extraction import dask_transform

cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
)
client = Client(cluster)
print(f"{len(client.scheduler_info()['workers'])} workers")

# %%
# Fit on a sample, extract on the cluster
# ---------------------------------------
# Fitting needs no labels and only a few images: it builds the backbone and
# measures the layers. The fitted featurizer pickles without its weights, so it
# is small to send; it enters the task graph once.
X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
feat = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
feat.fit(X_train[:32])

# %%
# Chunk the images along the first axis only, in a multiple of ``batch_size``
# (32): every chunk then runs the same forward passes as an in-memory
# :meth:`~skhead2toe.MultiLayerFeaturizer.transform`.
images = da.from_array(X_train, chunks=(64, -1, -1))
Z_lazy = feat.transform(images)
print(Z_lazy)

# %%
# Straight to disk
# ----------------
# :func:`dask.array.to_npy_stack` computes the chunks on the workers and writes
# one ``.npy`` file per chunk; nothing is gathered in the client's memory. The
# folder is written under a temporary name and renamed once complete, so an
# interrupted run leaves no half-written store behind.
workdir = Path(tempfile.mkdtemp())
partial, store = workdir / "train.partial", workdir / "train"
tic = time.perf_counter()
da.to_npy_stack(partial, Z_lazy, axis=0)
partial.rename(store)
print(f"extracted on Dask: {time.perf_counter() - tic:.1f} s")
print(sorted(p.name for p in store.iterdir()))
Z_train = da.from_npy_stack(store).compute()
same = np.abs(Z_train[:64] - feat.transform(X_train[:64])).max()
print(f"largest difference to an in-memory transform: {same:.1e}")

# %%
# From image files
# ----------------
# A list of paths goes through :func:`~skhead2toe.feature_extraction.dask_transform`;
# the workers open the files, so on a real cluster the paths must name shared
# storage.
folder = workdir / "test_images"
folder.mkdir()
paths = []
for i, img in enumerate(X_test):
    paths.append(folder / f"{i:03d}.png")
    Image.fromarray(img).save(paths[-1])
Z_test = dask_transform(feat, paths, chunk_size=64).compute()
same = np.abs(Z_test[:64] - feat.transform(paths[:64])).max()
print(f"from files: {Z_test.shape}, difference to transform(paths) {same:.1e}")

# %%
# GridSearchCV on the cluster
# ---------------------------
# Nine fits (three ``alpha`` values times three folds) become nine Dask tasks.
grid = {"alpha": [3e-4, 1e-3, 3e-3], "keep_fraction": [0.02]}
search = GridSearchCV(GroupLassoClassifier(), grid, cv=3, n_jobs=-1)
tic = time.perf_counter()
with joblib.parallel_config(backend="dask"):
    search.fit(Z_train, y_train)
print(f"GridSearchCV on Dask: {time.perf_counter() - tic:.1f} s")
print(f"best {search.best_params_}, CV accuracy {search.best_score_:.3f}")
print(f"test accuracy: {search.score(Z_test, y_test):.3f}")

# %%
# The regularisation path on the cluster
# --------------------------------------
# :class:`~skhead2toe.GroupLassoClassifierCV` solves one warm-started path per
# fold; with ``n_jobs=-1`` the folds are Dask tasks too. It makes the same
# choice as with joblib's default (loky) backend.
path = GroupLassoClassifierCV(
    alphas=6, eps=3e-3, keep_fractions=[0.02], refit_l2s=[1e-4], cv=3, n_jobs=-1
)
tic = time.perf_counter()
with joblib.parallel_config(backend="dask"):
    path.fit(Z_train, y_train)
print(f"GroupLassoClassifierCV on Dask: {time.perf_counter() - tic:.1f} s")
print(f"alpha = {path.alpha_:.3g}, test accuracy {path.score(Z_test, y_test):.3f}")

# %%
# On a real cluster
# -----------------
# Start a scheduler on one machine and workers on the others, one process per
# worker with one thread (torch uses the cores of its process; on GPU machines,
# one worker per GPU)::
#
#     dask scheduler                      # on the scheduler machine, port 8786
#     dask worker tcp://scheduler:8786 --nworkers 1 --nthreads 1   # each machine
#
# Every machine needs the same skhead2toe, torch and timm versions (and the
# backbone's weights in its timm cache when offline). Then replace the
# :class:`~distributed.LocalCluster` above with::
#
#     client = Client("tcp://scheduler:8786")
#
# and nothing else changes. In a script, a local cluster of processes
# (``LocalCluster(processes=True)``, the default) needs the code under
# ``if __name__ == "__main__":``, because the workers are started by importing
# the script.

# %%
# Shut the cluster down and remove the files.
client.close()
cluster.close()
shutil.rmtree(workdir)
