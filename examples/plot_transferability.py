"""
=====================================================
Layer transferability and the random-weights control
=====================================================

How transferable is each layer of a pretrained network? Yosinski et al. (NeurIPS
2014) found that features go from *general* near the input (Gabor-like filters and
colour blobs, useful for any image task) to *specific* near the head (tuned to the
source task, ImageNet here). A per-layer linear probe traces this as a
**transferability curve**: the cross-validated accuracy of a logistic regression
trained on the features of one layer at a time, from input to head.

Two references make the curve readable:

* the same architecture with **random weights** (a fixed seed): what the
  architecture alone gives, with pooling and random filters but no learning;
* the **domain affinity** of Head2Toe (Evci et al., 2022): the accuracy of a
  linear probe on the pretrained last layer minus that of a model trained from
  scratch on the target data. Low affinity means the target is far from the
  source task, and the intermediate layers (what Head2Toe selects) matter most.

As in the other examples the digits are resized to 64x64 pixels for speed.
"""

# %%
# Features from the pretrained and the random-weights backbones
# ---------------------------------------------------------------
# :func:`~skhead2toe.inspection.random_weights_featurizer` returns an unfitted copy
# of a featurizer with ``pretrained=False`` and a fixed ``random_state``: same
# layers, same pooling, random filters.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from skhead2toe import MultiLayerFeaturizer
from skhead2toe.datasets import load_digits_images
from skhead2toe.inspection import (
    domain_affinity,
    probe_layers,
    random_weights_featurizer,
)
from skhead2toe.plotting import TransferabilityCurveDisplay

X, y = load_digits_images()
X, _, y, _ = train_test_split(X, y, train_size=500, stratify=y, random_state=0)

pretrained = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
Z = pretrained.fit_transform(X)
control = random_weights_featurizer(pretrained, random_state=0)
Z_random = control.fit_transform(X)
print(f"{Z.shape[1]} features from {len(pretrained.layer_names_)} layers")

# %%
# One probe per layer
# -------------------
# :func:`~skhead2toe.inspection.probe_layers` cross-validates a probe (by default
# standardised features and an L2 logistic regression) on each layer's columns,
# with the same splits for every layer. Passing the fitted featurizer as
# ``groups`` supplies the layer of each column and the layer names.
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
probes = probe_layers(Z, y, pretrained, cv=cv)
probes_random = probe_layers(Z_random, y, control, cv=cv)

print(f"{'layer':<12s} {'features':>8s} {'pretrained':>10s} {'random':>8s}")
for name, d, a, b in zip(
    probes.layer_names,
    probes.n_features,
    probes.mean_scores,
    probes_random.mean_scores,
    strict=True,
):
    print(f"{name:<12s} {d:8d} {a:10.3f} {b:8.3f}")

# %%
# The transferability curve
# -------------------------
# The gap between the two curves is what pretraining contributes at each depth. On
# 8x8 digits, far from ImageNet, the pretrained features are best in the early
# blocks and decline towards the head: the last layers are specific to the source
# task, and at the pre-logits the pretrained network is barely better than random
# filters. Near the input the two curves are close (much of what a probe needs
# there is the pooled image itself); from the middle blocks on, the random
# network falls behind.
display = TransferabilityCurveDisplay.from_probes(
    probes, control=probes_random, chance_level=0.1
)
display.ax_.set_title("Digits (64 px): per-layer linear probes")
display.figure_.tight_layout()
plt.show()

# %%
# Domain affinity
# ---------------
# The from-scratch baseline here is the same probe on the raw 8x8 pixels, a model
# that learns everything from the target data. A negative affinity says that the
# pretrained last layer is *worse* than the raw pixels: the target domain is far
# from ImageNet, so a last-layer linear probe is a poor transfer method and the
# intermediate layers are worth selecting, which is Head2Toe's case.
last = pretrained.feature_groups_ == len(pretrained.layer_names_) - 1
affinity = domain_affinity(Z[:, last], y, X_scratch=X.reshape(len(X), -1), cv=cv)
print(f"linear probe on the last layer: {affinity.linear_score:.3f}")
print(f"from scratch on raw pixels:     {affinity.scratch_score:.3f}")
print(f"domain affinity:                {affinity.affinity:+.3f}")
best = int(np.argmax(probes.mean_scores))
print(f"best single layer: {probes.layer_names[best]} ({probes.mean_scores[best]:.3f})")
