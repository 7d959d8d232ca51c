import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skhead2toe import (
    GroupLassoClassifier,
    GroupLassoClassifierCV,
    MultiLayerFeaturizer,
    alpha_max,
)
from skhead2toe.inspection import (
    default_probe,
    domain_affinity,
    layer_importances,
    probe_layers,
    random_weights_featurizer,
)

N_LAYERS, WIDTH, SIGNAL = 6, 10, 3


def planted(n=200, seed=0):
    """6 layers of 10 features; only layer 3 depends on the class (3 classes)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, N_LAYERS * WIDTH))
    centers = 1.5 * rng.standard_normal((3, WIDTH))
    X[:, SIGNAL * WIDTH : (SIGNAL + 1) * WIDTH] += centers[y]
    groups = np.repeat(np.arange(N_LAYERS), WIDTH)
    return X, y, groups


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def lasso(data):
    X, y, _ = data
    clf = GroupLassoClassifier(alpha=0.2 * alpha_max(X, y)).fit(X, y)
    assert 0 < clf.selected_features_.sum() < X.shape[1]
    return clf


def images(n=24, size=32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = np.arange(n) % 2
    X[y == 1, : size // 2] //= 3  # a darker top half for class 1
    return X, y


def tiny_featurizer(**kw):
    kw = {
        "pretrained": False,
        "image_size": 32,
        "target_size": 32,
        "device": "cpu",
        "progress": False,
        "random_state": 0,
    } | kw
    return MultiLayerFeaturizer(kw.pop("backbone", "test_resnet"), **kw)


@pytest.fixture(scope="module")
def pipe():
    X, y = images()
    feat = tiny_featurizer()
    Z = feat.fit_transform(X)
    head = GroupLassoClassifier(alpha=0.3 * alpha_max(Z, y))
    return make_pipeline(feat, head).fit(X, y)


# ------------------------------------------------------------ layer_importances
def test_layer_importances_shares_and_counts(lasso, data):
    _, _, groups = data
    imp = layer_importances(lasso, groups)
    assert list(imp.layer_names) == [f"layer {i}" for i in range(N_LAYERS)]
    np.testing.assert_array_equal(imp.n_features, np.full(N_LAYERS, WIDTH))
    expected = np.bincount(groups, weights=lasso.selected_features_)
    np.testing.assert_array_equal(imp.n_selected, expected)
    np.testing.assert_allclose(imp.selected_fraction, expected / WIDTH)
    np.testing.assert_allclose(imp.selected_share, expected / expected.sum())
    norms = np.bincount(groups, weights=lasso.feature_importances_)
    np.testing.assert_allclose(imp.norm_share, norms / norms.sum())
    assert imp.norm_share.sum() == pytest.approx(1.0)
    assert imp.selected_share.sum() == pytest.approx(1.0)
    # the planted layer carries most of the weight
    assert np.argmax(imp.norm_share) == SIGNAL
    assert imp.norm_share[SIGNAL] > 0.5


def test_layer_importances_norm_share_is_before_the_refit(lasso, data):
    X, y, groups = data
    kept = GroupLassoClassifier(alpha=lasso.alpha, keep_fraction=0.1).fit(X, y)
    imp = layer_importances(kept, groups)
    assert imp.n_selected.sum() == 6 == kept.selected_features_.sum()
    np.testing.assert_allclose(
        imp.norm_share, layer_importances(lasso, groups).norm_share, rtol=1e-6
    )
    assert np.argmax(imp.n_selected) == SIGNAL


def test_layer_importances_of_a_cv_estimator(data):
    X, y, groups = data
    cv = GroupLassoClassifierCV(alphas=3, eps=0.1, keep_fractions=None, cv=3)
    cv.fit(X, y)
    imp = layer_importances(cv, groups, layer_names=list("abcdef"))
    assert list(imp.layer_names) == list("abcdef")
    assert imp.n_selected.sum() == cv.selected_features_.sum()
    assert np.argmax(imp.norm_share) == SIGNAL


def test_layer_importances_zero_solution(data):
    X, y, groups = data
    clf = GroupLassoClassifier(alpha=2 * alpha_max(X, y)).fit(X, y)
    imp = layer_importances(clf, groups)
    np.testing.assert_array_equal(imp.n_selected, 0)
    np.testing.assert_array_equal(imp.selected_share, 0.0)
    np.testing.assert_array_equal(imp.norm_share, 0.0)


def test_layer_importances_uses_the_heads_groups(data):
    X, y, groups = data
    clf = GroupLassoClassifier(alpha=0.1 * alpha_max(X, y, groups=groups))
    clf.set_params(groups=groups).fit(X, y)
    imp = layer_importances(clf)
    np.testing.assert_array_equal(imp.n_features, np.full(N_LAYERS, WIDTH))
    # layer-wise groups select whole layers
    assert set(imp.selected_fraction) <= {0.0, 1.0}
    assert imp.selected_fraction[SIGNAL] == 1.0
    as_lists = [np.flatnonzero(groups == g) for g in range(N_LAYERS)]
    clf_lists = GroupLassoClassifier(alpha=clf.alpha, groups=as_lists).fit(X, y)
    np.testing.assert_allclose(
        layer_importances(clf_lists).norm_share, imp.norm_share, rtol=1e-6
    )


def test_layer_importances_reads_index_lists_as_the_estimators_do(data):
    X, y, groups = data
    as_lists = [np.flatnonzero(groups == g) for g in range(N_LAYERS)]
    clf = GroupLassoClassifier(alpha=1e-2, groups=as_lists).fit(X, y)
    from_tuple = clf.set_params(groups=tuple(as_lists))
    np.testing.assert_array_equal(
        layer_importances(from_tuple).n_features, np.full(N_LAYERS, WIDTH)
    )
    # groups that no longer partition the columns: the estimators' own error
    overlapping = [np.r_[as_lists[0], as_lists[1][:1]], *as_lists[1:]]
    with pytest.raises(ValueError, match="groups overlap"):
        layer_importances(clf.set_params(groups=overlapping))


def test_layer_importances_pipeline_matches_estimator_and_groups(pipe):
    feat, head = pipe[0], pipe[-1]
    from_pipe = layer_importances(pipe)
    direct = layer_importances(
        head, feat.feature_groups_, layer_names=feat.layer_names_
    )
    assert list(from_pipe.layer_names) == list(feat.layer_names_)
    assert from_pipe.keys() == direct.keys()
    for key in direct:
        np.testing.assert_array_equal(from_pipe[key], direct[key])
    np.testing.assert_array_equal(from_pipe.n_features, feat.layer_dims_)
    assert from_pipe.n_selected.sum() == head.selected_features_.sum() > 0
    # explicit groups and names win over the featurizer's
    ones = np.zeros(feat.n_features_out_, dtype=int)
    assert layer_importances(pipe, ones, layer_names=["all"]).n_features.tolist() == [
        feat.n_features_out_
    ]


def test_layer_importances_errors(lasso, data):
    X, y, groups = data
    with pytest.raises(NotFittedError, match="not fitted yet"):
        layer_importances(GroupLassoClassifier(), groups)
    with pytest.raises(ValueError, match="expected length 60, got shape \\(59,\\)"):
        layer_importances(lasso, groups[:-1])
    with pytest.raises(ValueError, match="No layer groups available"):
        layer_importances(lasso)
    with pytest.raises(ValueError, match="non-negative"):
        layer_importances(lasso, groups - 1)
    with pytest.raises(ValueError, match="integer layer ids"):
        layer_importances(lasso, groups + 0.5)
    with pytest.raises(ValueError, match="got 2 names for layer ids up to 5"):
        layer_importances(lasso, groups, layer_names=["a", "b"])
    with pytest.raises(TypeError, match="got LogisticRegression"):
        layer_importances(LogisticRegression().fit(X, y), groups)
    unfitted_feat = make_pipeline(tiny_featurizer(), lasso)
    with pytest.raises(NotFittedError, match="MultiLayerFeaturizer in the pipeline"):
        layer_importances(unfitted_feat)


# ------------------------------------------------------------- probe_layers
def test_probe_layers_finds_the_signal_layer(data):
    X, y, groups = data
    probes = probe_layers(X, y, groups, cv=3)
    assert probes.scores.shape == (N_LAYERS, 3)
    np.testing.assert_allclose(probes.mean_scores, probes.scores.mean(1))
    np.testing.assert_allclose(probes.std_scores, probes.scores.std(1))
    np.testing.assert_array_equal(probes.n_features, np.full(N_LAYERS, WIDTH))
    assert np.argmax(probes.mean_scores) == SIGNAL
    assert probes.mean_scores[SIGNAL] > 0.85
    noise = np.delete(probes.mean_scores, SIGNAL)
    assert noise.max() < 0.55  # chance is 1/3


def test_probe_layers_equals_cross_val_score_per_layer(data):
    X, y, groups = data
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    probes = probe_layers(
        X, y, groups, estimator=probe, cv=cv, scoring="balanced_accuracy"
    )
    for layer in (0, SIGNAL):
        expected = cross_val_score(
            probe, X[:, groups == layer], y, cv=cv, scoring="balanced_accuracy"
        )
        np.testing.assert_allclose(probes.scores[layer], expected)


def test_probe_layers_parallel_and_progress(data, capsys):
    X, y, groups = data
    serial = probe_layers(X, y, groups, cv=3)
    parallel = probe_layers(X, y, groups, cv=3, n_jobs=2, progress=True)
    np.testing.assert_allclose(parallel.scores, serial.scores)
    assert "probing layers" in capsys.readouterr().err


def test_probe_layers_with_a_featurizer(pipe):
    feat = pipe[0]
    X, y = images()
    Z = feat.transform(X)
    probes = probe_layers(Z, y, feat, cv=2)
    assert list(probes.layer_names) == list(feat.layer_names_)
    np.testing.assert_array_equal(probes.n_features, feat.layer_dims_)
    assert probes.scores.shape == (len(feat.layer_names_), 2)
    named = probe_layers(Z, y, feat.feature_groups_, cv=2)
    np.testing.assert_allclose(named.scores, probes.scores)
    assert named.layer_names[0] == "layer 0"


def test_default_probe_is_a_scaled_l2_logistic_regression():
    probe = default_probe()
    assert isinstance(probe[0], StandardScaler)
    assert isinstance(probe[-1], LogisticRegression)
    assert probe[-1].C == 0.1
    assert probe[-1].l1_ratio in (None, 0, 0.0)  # pure L2 (penalty is deprecated)
    assert default_probe() is not probe


def test_probe_layers_errors(data):
    X, y, groups = data
    gappy = np.where(groups == 2, 3, groups)
    with pytest.raises(ValueError, match="'layer 2' \\(id 2\\) has no columns"):
        probe_layers(X, y, gappy, cv=3)
    with pytest.raises(ValueError, match="different numbers of samples: 200 and 199"):
        probe_layers(X, y[:-1], groups, cv=3)
    with pytest.raises(ValueError, match="expected length 59, got shape \\(60,\\)"):
        probe_layers(X[:, :-1], y, groups, cv=3)
    with pytest.raises(NotFittedError, match="MultiLayerFeaturizer in groups"):
        probe_layers(X, y, tiny_featurizer(), cv=3)


# ---------------------------------------------------- random_weights_featurizer
def test_random_weights_featurizer_params(pipe):
    feat = pipe[0]
    control = random_weights_featurizer(feat.set_params(pretrained=True), 7)
    feat.set_params(pretrained=False)
    assert control.pretrained is False and control.random_state == 7
    assert not hasattr(control, "layer_names_")  # an unfitted clone
    assert hasattr(feat, "layer_names_")  # the original is untouched
    same = {"backbone", "layers", "target_size", "image_size", "normalize"}
    params, original = control.get_params(), feat.get_params()
    assert {k: params[k] for k in same} == {k: original[k] for k in same}
    unfitted = random_weights_featurizer(MultiLayerFeaturizer("resnet50"))
    assert unfitted.get_params()["random_state"] == 0
    assert unfitted.backbone == "resnet50"


def test_random_weights_features_differ_from_pretrained():
    X, _ = images(n=4)
    kw = {"layers": "last", "image_size": 32, "device": "cpu", "progress": False}
    pretrained = MultiLayerFeaturizer("efficientnet_lite0", pretrained=True, **kw)
    control = random_weights_featurizer(pretrained, random_state=0)
    Z_pre = pretrained.fit_transform(X)
    Z_rand = control.fit_transform(X)
    assert control.weights_.startswith("random")
    assert Z_pre.shape == Z_rand.shape
    assert not np.allclose(Z_pre, Z_rand, atol=1e-3)
    # the seed makes the control reproducible, and different seeds differ
    again = random_weights_featurizer(pretrained, random_state=0).fit_transform(X)
    np.testing.assert_array_equal(again, Z_rand)
    other = random_weights_featurizer(pretrained, random_state=1).fit_transform(X)
    assert not np.allclose(other, Z_rand, atol=1e-3)


def test_random_weights_featurizer_errors():
    with pytest.raises(TypeError, match="must be a skhead2toe.MultiLayerFeaturizer"):
        random_weights_featurizer(StandardScaler())
    with pytest.raises(TypeError, match="random_state must be an int"):
        random_weights_featurizer(tiny_featurizer(), random_state=None)
    module = MultiLayerFeaturizer(nn.Conv2d(3, 4, 3))
    with pytest.raises(ValueError, match="backbone given by name"):
        random_weights_featurizer(module)


# ------------------------------------------------------------- domain_affinity
def test_domain_affinity_with_a_measured_scratch_score(data):
    X, y, _ = data
    cv = StratifiedKFold(3)
    res = domain_affinity(X, y, scratch_score=0.25, cv=cv)
    expected = cross_val_score(default_probe(), X, y, cv=cv).mean()
    assert res.linear_score == pytest.approx(expected)
    assert res.scratch_score == 0.25
    assert res.affinity == pytest.approx(expected - 0.25)
    assert res.scratch_scores is None and res.linear_scores.shape == (3,)


def test_domain_affinity_with_scratch_inputs(data):
    X, y, groups = data
    X_last, X_scratch = X[:, groups == SIGNAL], X[:, groups == 0]
    probe = make_pipeline(StandardScaler(), LogisticRegression())
    res = domain_affinity(
        X_last, y, X_scratch=X_scratch, estimator=probe, cv=4, scoring="accuracy"
    )
    cv = StratifiedKFold(4)
    lin = cross_val_score(probe, X_last, y, cv=cv)
    scratch = cross_val_score(probe, X_scratch, y, cv=cv)
    np.testing.assert_allclose(res.linear_scores, lin)
    np.testing.assert_allclose(res.scratch_scores, scratch)
    assert res.affinity == pytest.approx(lin.mean() - scratch.mean())
    assert res.affinity > 0.3  # informative "pretrained" features vs noise
    flipped = domain_affinity(X_scratch, y, X_scratch=X_last, estimator=probe, cv=4)
    assert flipped.affinity == pytest.approx(-res.affinity)
    parallel = domain_affinity(
        X_last, y, X_scratch=X_scratch, estimator=probe, cv=4, n_jobs=2
    )
    np.testing.assert_allclose(parallel.linear_scores, res.linear_scores)
    np.testing.assert_allclose(parallel.scratch_scores, res.scratch_scores)


def test_domain_affinity_errors(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="exactly one of X_scratch .* got neither"):
        domain_affinity(X, y)
    with pytest.raises(ValueError, match="exactly one of X_scratch .* got both"):
        domain_affinity(X, y, X_scratch=X, scratch_score=0.5)
    with pytest.raises(ValueError, match="X_scratch and y have different numbers"):
        domain_affinity(X, y, X_scratch=X[:-1], cv=3)
    with pytest.raises(ValueError, match="scratch_score must be a finite number"):
        domain_affinity(X, y, scratch_score=np.nan, cv=3)
