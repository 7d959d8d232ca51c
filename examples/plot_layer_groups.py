"""
==========================================
Layer-wise groups: selecting whole layers
==========================================

By default :class:`~skhead2toe.GroupLassoClassifier` puts each feature in its own
group (one row of the weight matrix, shared by all classes), so it selects
individual features from any layer. With ``groups=feat.feature_groups_`` every
layer is one group instead: the penalty ``alpha * sum_g w_g ||W_g||_F`` then
switches whole layers on or off, with the default weights ``w_g = sqrt(|g|)``
so that wide layers are not favoured. This answers a different question: which
*layers* are worth computing at all? (A network can then be cut after the
deepest selected layer.)

Images are resized to 64x64 pixels for speed.
"""

# %%
# Features
# --------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer, alpha_max
from skhead2toe.datasets import load_digits_images

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
feat = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
Z_train = feat.fit_transform(X_train)
Z_test = feat.transform(X_test)
layers = feat.feature_groups_
n_layers = len(feat.layer_names_)
print(f"{Z_train.shape[1]} features in {n_layers} layers")

# %%
# Layers enter the model one at a time
# ------------------------------------
# ``alpha_max`` depends on the groups: it is the smallest ``alpha`` at which every
# group is zero. Going down from it, layers enter one at a time.
amax = alpha_max(Z_train, y_train, groups=layers)
print(f"alpha_max with layer groups: {amax:.4g}")
for fraction in [0.8, 0.5, 0.2, 0.1, 0.05]:
    clf = GroupLassoClassifier(alpha=fraction * amax, groups=layers).fit(
        Z_train, y_train
    )
    chosen = feat.layer_names_[clf.group_norms_ > 0]
    print(
        f"alpha = {fraction:4.2f} alpha_max: test accuracy "
        f"{clf.score(Z_test, y_test):.3f}, {len(chosen)} layers: {', '.join(chosen)}"
    )

# %%
# Whole layers versus single features
# -----------------------------------
# We compare the layer-wise model at ``0.2 alpha_max`` with the default
# per-feature groups at an ``alpha`` that gives a similar test accuracy. The
# layer-wise model uses every feature of the layers it selects; the per-feature
# model picks a few features from many layers.
by_layer = GroupLassoClassifier(alpha=0.2 * amax, groups=layers).fit(Z_train, y_train)
by_feature = GroupLassoClassifier(alpha=0.01 * alpha_max(Z_train, y_train)).fit(
    Z_train, y_train
)
for name, clf in [("layer groups", by_layer), ("feature groups", by_feature)]:
    used = clf.feature_importances_ > 0
    print(
        f"{name:<15s} test accuracy {clf.score(Z_test, y_test):.3f}, "
        f"{int(used.sum()):4d} features from {len(np.unique(layers[used]))} layers"
    )


# %%
# The share of the weight norm carried by each layer, for the two models.
def norm_share(clf):
    """Share of the squared weight norm in each layer."""
    per_layer = np.bincount(layers, clf.feature_importances_**2, minlength=n_layers)
    return per_layer / per_layer.sum()


x = np.arange(n_layers)
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.bar(x - 0.2, norm_share(by_layer), width=0.4, label="layer groups")
ax.bar(x + 0.2, norm_share(by_feature), width=0.4, label="feature groups")
ax.set_xticks(x, feat.layer_names_, rotation=90)
ax.set_ylabel("share of squared weight norm")
ax.legend()
fig.tight_layout()
plt.show()
