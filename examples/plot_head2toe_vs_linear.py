"""
=======================================
Head2Toe versus linear probing
=======================================

The paper's comparison (Evci et al., ICML 2022, Table 1) on a small scale. Three
heads on the same frozen backbone:

* **Linear probe**: an L2-regularised logistic regression on the last layer (the
  pooled pre-logits), the classic way to transfer a frozen network;
* **All layers + L2**: the same head on the features of every layer;
* **Head2Toe**: group-lasso selection over every layer, then an L2 refit on the
  selected features, with ``alpha`` and ``keep_fraction`` tuned by
  :class:`~skhead2toe.GroupLassoClassifierCV`.

The backbone is the expensive part, so the features are extracted once and the
three heads are tuned by 3-fold cross-validation on the same training arrays.
Images are 64x64 pixels (instead of 224) so that the example runs in seconds.
"""

# %%
# Extract the features once
# -------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skhead2toe import GroupLassoClassifierCV, MultiLayerFeaturizer
from skhead2toe.datasets import load_digits_images
from skhead2toe.linear_model import LinearProbeCV

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
feat = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
tic = time.perf_counter()
Z_train = feat.fit_transform(X_train)
Z_test = feat.transform(X_test)
print(
    f"features: {Z_train.shape[1]} from {len(feat.layer_names_)} layers "
    f"({time.perf_counter() - tic:.1f} s for {len(X_train) + len(X_test)} images)"
)

# %%
# The last tapped layer, ``bn2``, is globally pooled: its 1280 columns are the
# backbone's pre-logits, the input of the linear probe.
last = feat.feature_groups_ == len(feat.layer_names_) - 1
print(f"last layer: {feat.layer_names_[-1]!r}, {int(last.sum())} features")

# %%
# Three heads, each tuned by cross-validation
# -------------------------------------------
# The features of each layer have unit L2 norm per image, so the useful inverse
# regularisation strengths ``C`` of the L2 probe are large. The two baselines use
# :class:`~skhead2toe.linear_model.LinearProbeCV`: the model of scikit-learn's
# :class:`~sklearn.linear_model.LogisticRegression` with ``C`` chosen by CV, solved
# to a certified optimum in the row space of the images (one Gram matrix for all
# folds), so that All layers + L2 on every feature takes seconds.
Cs = [1.0, 10.0, 100.0, 1000.0]
heads = {
    "Linear probe": (LinearProbeCV(Cs=Cs, cv=3), last),
    "All layers + L2": (LinearProbeCV(Cs=Cs, cv=3), np.ones_like(last)),
    "Head2Toe": (
        GroupLassoClassifierCV(alphas=6, eps=3e-3, keep_fractions=[0.01, 0.02], cv=3),
        np.ones_like(last),
    ),
}

results = {}
for name, (model, columns) in heads.items():
    tic = time.perf_counter()
    model.fit(Z_train[:, columns], y_train)
    seconds = time.perf_counter() - tic
    accuracy = model.score(Z_test[:, columns], y_test)
    if name == "Head2Toe":
        used = int(model.selected_features_.sum())
    else:
        used = int(columns.sum())
    results[name] = (accuracy, used)
    print(
        f"{name:<16s} test accuracy {accuracy:.3f}, {used:5d} features, "
        f"tuned in {seconds:.1f} s"
    )

h2t = heads["Head2Toe"][0]
print(
    f"Head2Toe chose alpha = {h2t.alpha_:.2e} and keep_fraction = {h2t.keep_fraction_}"
)

# %%
# Accuracy and size
# -----------------
# Head2Toe matches or beats the heads that use every feature while keeping a small
# fraction of them, and clearly beats the last-layer probe: on 8x8 digits the
# ImageNet pre-logits are too specialised, and the useful information sits in the
# early layers.
names = list(results)
accuracies = [results[n][0] for n in names]
used = [results[n][1] for n in names]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ax1.bar(names, accuracies, color=["C0", "C1", "C2"])
ax1.set_ylim(min(accuracies) - 0.05, 1.0)
ax1.set_ylabel("test accuracy")
for i, a in enumerate(accuracies):
    ax1.text(i, a + 0.005, f"{a:.3f}", ha="center")
ax2.bar(names, used, color=["C0", "C1", "C2"])
ax2.set_yscale("log")
ax2.set_ylabel("features used")
for i, u in enumerate(used):
    ax2.text(i, u * 1.1, str(u), ha="center")
for ax in (ax1, ax2):
    ax.tick_params(axis="x", labelsize=8)
fig.tight_layout()
plt.show()

# %%
# The default head: one search that contains all three
# ----------------------------------------------------
# ``GroupLassoClassifierCV()`` with its defaults runs this whole comparison inside
# its cross-validation: the paper's kept fractions at every ``alpha``, the refit on
# every feature (All layers + L2) and the refit on the last layer alone (the
# linear probe; it finds the layers from the features' per-layer unit norms). Its
# ``cv_results_`` table shows every candidate and what was chosen.
default = GroupLassoClassifierCV(cv=3, random_state=0).fit(Z_train, y_train)
table = default.cv_results_
print(
    f"chosen: {default.candidate_} (keep_fraction = {default.keep_fraction_}, "
    f"refit_l2 = {default.refit_l2_}), {int(default.selected_features_.sum())} "
    f"features, test accuracy {default.score(Z_test, y_test):.3f}"
)
print("best candidate of each kind (mean CV accuracy, features):")
for kind in ("top features", "all features", "last layer"):
    rows = np.flatnonzero(table["candidate"] == kind)
    best = rows[np.argmax(table["mean_test_score"][rows])]
    print(
        f"  {kind:<13s} {table['mean_test_score'][best]:.3f} "
        f"+/- {table['std_test_score'][best]:.3f}, "
        f"{table['n_features'][best]:6.0f} features"
    )
