"""
=======================================
Regularisation path and keep_fraction
=======================================

:class:`~skhead2toe.GroupLassoClassifierCV` tunes the strength ``alpha`` of the
group-lasso penalty and the Head2Toe ``keep_fraction`` together. For every fold it
solves the problem along a decreasing grid ``alpha_max * geomspace(1, eps, n)``,
each solution warm-starting the next, and scores every ``keep_fraction`` at every
``alpha``. At ``alpha_max`` (see :func:`~skhead2toe.alpha_max`) every weight is
zero; as ``alpha`` decreases, features enter the model one group at a time.

This example draws the path with
:class:`~skhead2toe.plotting.RegularizationPathDisplay`, then shows which layers
the chosen model uses with :class:`~skhead2toe.plotting.LayerImportanceDisplay`.
Images are resized to 64x64 pixels for speed.
"""

# %%
# Features
# --------
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from skhead2toe import GroupLassoClassifierCV, MultiLayerFeaturizer, alpha_max
from skhead2toe.datasets import load_digits_images
from skhead2toe.inspection import layer_importances
from skhead2toe.plotting import LayerImportanceDisplay, RegularizationPathDisplay

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=400, test_size=200, stratify=y, random_state=0
)
feat = MultiLayerFeaturizer(image_size=64, target_size=256, random_state=0)
Z_train = feat.fit_transform(X_train)
Z_test = feat.transform(X_test)
print(f"alpha_max = {alpha_max(Z_train, y_train):.4g} for {Z_train.shape[1]} features")

# %%
# The path, with three keep fractions
# -----------------------------------
# For each ``alpha`` on the path, the Head2Toe recipe keeps the ``keep_fraction``
# of features with the largest row norms and refits an L2 head on them; the
# ridge strength of that refit is tuned as well (``refit_l2s``, three values by
# default). The table shows, for each fraction, the best mean CV accuracy over
# the refit ridges.
clf = GroupLassoClassifierCV(
    alphas=8, eps=3e-3, keep_fractions=[0.005, 0.01, 0.02], cv=3, random_state=0
)
clf.fit(Z_train, y_train)

fractions = "  ".join(f"{f:>6}" for f in clf.keep_fractions)
print(f"{'alpha / alpha_max':>18s} {'nonzero':>8s}  {fractions}")
best_over_ridge = clf.mean_scores_.max(axis=2)
for alpha, nnz, scores in zip(
    clf.alphas_, clf.n_nonzero_.mean(axis=0), best_over_ridge, strict=True
):
    row = "  ".join(f"{s:6.3f}" for s in scores)
    print(f"{alpha / clf.alphas_[0]:18.4f} {nnz:8.1f}  {row}")
print(
    f"chosen: alpha = {clf.alpha_:.3g}, keep_fraction = {clf.keep_fraction_}, "
    f"refit_l2 = {clf.refit_l2_:g}"
)
print(
    f"test accuracy: {clf.score(Z_test, y_test):.3f} with "
    f"{int(clf.selected_features_.sum())} of {Z_train.shape[1]} features"
)

# %%
# Even at ``alpha_max``, where no row is non-zero, the refit scores well above
# chance: when fewer than ``keep_fraction * n_features`` rows are non-zero, the
# top fraction is filled up with the zero rows whose gradient is largest, the
# features closest to entering the model (at ``alpha_max`` this ranks features
# by their marginal correlation with the class residuals).
#
# The number of non-zero rows (right axis) grows as ``alpha`` falls; the CV
# accuracy rises quickly and then levels off. The vertical line marks the chosen
# ``alpha``.
display = RegularizationPathDisplay.from_estimator(clf)
display.figure_.tight_layout()
plt.show()

# %%
# Which layers does the chosen model use?
# ---------------------------------------
# :func:`~skhead2toe.inspection.layer_importances` sums, per layer, the selected
# features and the norms of their weights; the display draws both shares.
importances = layer_importances(
    clf, feat.feature_groups_, layer_names=feat.layer_names_
)
for name, n_sel, share in zip(
    importances.layer_names, importances.n_selected, importances.norm_share, strict=True
):
    if n_sel:
        print(f"{name:<12s} {n_sel:3d} features, {share:5.1%} of the weight norm")

importance_display = LayerImportanceDisplay.from_estimator(
    clf, feat.feature_groups_, layer_names=feat.layer_names_
)
importance_display.figure_.tight_layout()
plt.show()
