"""
=============================================
Scaling the search out with Dask
=============================================

scikit-learn parallelises cross-validation with joblib, and joblib can hand its
work to a Dask cluster: inside ``joblib.parallel_config(backend="dask")``, the
``n_jobs`` loops of :class:`~sklearn.model_selection.GridSearchCV` and of
:class:`~skhead2toe.GroupLassoClassifierCV` (one task per fold) run on the
cluster's workers. The same code scales from a laptop to many machines by
pointing the :class:`~distributed.Client` at a remote scheduler.

Here the "cluster" is a :class:`~distributed.LocalCluster` with two workers in
the current process (``processes=False``: threads, no start-up cost), enough to
show the mechanics. The features are extracted once (at 64x64 pixels, for
speed) and only the head is tuned on the cluster; the arrays are sent to the
workers once.
"""

# %%
# Features
# --------
import time

import joblib
from distributed import Client, LocalCluster
from sklearn.model_selection import GridSearchCV, train_test_split

from skhead2toe import (
    GroupLassoClassifier,
    GroupLassoClassifierCV,
    MultiLayerFeaturizer,
)
from skhead2toe.datasets import load_digits_images

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
feat = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
Z_train = feat.fit_transform(X_train)
Z_test = feat.transform(X_test)

# %%
# A local cluster
# ---------------
# ``dashboard_address=None`` turns the web dashboard off.
cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
)
client = Client(cluster)
print(f"{len(client.scheduler_info()['workers'])} workers")

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
# fold; with ``n_jobs=-1`` the folds are Dask tasks too.
path = GroupLassoClassifierCV(
    alphas=6, eps=3e-3, keep_fractions=[0.02], refit_l2s=[1e-4], cv=3, n_jobs=-1
)
tic = time.perf_counter()
with joblib.parallel_config(backend="dask"):
    path.fit(Z_train, y_train)
print(f"GroupLassoClassifierCV on Dask: {time.perf_counter() - tic:.1f} s")
print(f"alpha = {path.alpha_:.3g}, test accuracy {path.score(Z_test, y_test):.3f}")

# %%
# Shut the cluster down.
client.close()
cluster.close()
