"""
===========
Quick start
===========

Head2Toe in one scikit-learn pipeline: a :class:`~skhead2toe.MultiLayerFeaturizer`
taps every layer of a frozen, pretrained backbone, pools each layer to a few hundred
values and normalises it; a :class:`~skhead2toe.GroupLassoClassifier` then selects
the few useful features among thousands and refits a linear head on them.

To run in seconds on a laptop CPU, this example resizes scikit-learn's 8x8 digits to
64x64 pixels (the backbone's native input is 224x224) and keeps at most 256 features
per layer.
"""

# %%
# The data
# --------
# :func:`~skhead2toe.datasets.load_digits_images` returns the digits as uint8
# images of shape (n, 8, 8). We keep 600 of them: 400 to train, 200 to test.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer
from skhead2toe.datasets import load_digits_images

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
print(f"train images: {X_train.shape}, test images: {X_test.shape}")

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, image, label in zip(axes, X_train[:8], y_train[:8], strict=True):
    ax.imshow(image, cmap="gray_r")
    ax.set_title(int(label))
    ax.axis("off")

# %%
# The pipeline
# ------------
# The featurizer needs no labels: ``fit`` builds the backbone (EfficientNet-Lite0
# with ImageNet weights shipped in a Python package, so nothing is downloaded) and
# measures its layers. The head minimises a mean cross-entropy plus ``alpha`` times
# the sum of the norms of the rows of its weight matrix (one row per feature), so
# most rows are exactly zero. With ``keep_fraction=0.01`` it then ranks the
# features by the norm of their row, keeps the top 1% and refits an L2-regularised
# multinomial head on them (the Head2Toe recipe).
pipe = make_pipeline(
    MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0),
    GroupLassoClassifier(alpha=2e-4, keep_fraction=0.01),
)
pipe.fit(X_train, y_train)
print(f"test accuracy: {pipe.score(X_test, y_test):.3f}")

# %%
# Which features does it use?
# ---------------------------
# The fitted featurizer knows the name and width of every tapped layer, and the
# layer of every output column (``feature_groups_``). The head's
# ``selected_features_`` is a boolean mask over those columns.
feat, head = pipe[0], pipe[-1]
n_features = feat.n_features_out_
n_selected = int(head.selected_features_.sum())
n_nonzero = int(np.count_nonzero(head.feature_importances_))
print(f"{len(feat.layer_names_)} layers, {n_features} features in all")
print(f"nonzero rows in the group-lasso solution: {n_nonzero}")
print(f"kept after the refit: {n_selected} ({n_selected / n_features:.1%})")

per_layer = np.bincount(
    feat.feature_groups_[head.selected_features_], minlength=len(feat.layer_names_)
)
for name, dim, count in zip(
    feat.layer_names_, feat.layer_dims_, per_layer, strict=True
):
    print(f"  {name:<12s} {count:3d} of {dim:4d}")

# %%
# Selected features come from many depths, not only from the last layer that a
# classic linear probe would use.
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar(np.arange(len(per_layer)), per_layer)
ax.set_xticks(np.arange(len(per_layer)), feat.layer_names_, rotation=90)
ax.set_ylabel("selected features")
ax.set_title("Features kept per layer (input on the left, head on the right)")
fig.tight_layout()
plt.show()
