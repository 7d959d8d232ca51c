"""scikit-learn's common estimator checks, in an image version for the featurizer.

``check_estimator`` feeds 2-D tabular data, which a featurizer of images cannot
take, so the same properties are checked here on small images (as nilearn does
for brain images).
"""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from skhead2toe.feature_extraction import MultiLayerFeaturizer

CONFIGS = {
    "resnet-random": dict(backbone="test_resnet", pretrained=False, random_state=0),
    "vit-standard": dict(
        backbone="test_vit",
        pretrained=False,
        random_state=3,
        normalize="standard",
        cls_token="separate",
        image_size=32,
    ),
    "lite0-embedded": dict(backbone="efficientnet_lite0", layers="blocks"),
}


def _images(n=4, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8)


def _make(name):
    kw = {"image_size": 48, "target_size": 96, "device": "cpu", **CONFIGS[name]}
    return MultiLayerFeaturizer(**kw)


@pytest.fixture(params=sorted(CONFIGS))
def featurizer(request):
    return _make(request.param)


def test_sklearn_parameter_checks(featurizer):
    name = type(featurizer).__name__
    check_parameters_default_constructible(name, featurizer)
    check_no_attributes_set_in_init(name, featurizer)
    check_get_params_invariance(name, featurizer)
    check_set_params(name, featurizer)


def test_clone_and_get_set_params(featurizer):
    params = featurizer.get_params()
    twin = clone(featurizer)
    assert twin is not featurizer and twin.get_params() == params
    twin.set_params(target_size=7, batch_size=3)
    assert (twin.target_size, twin.batch_size) == (7, 3)
    assert featurizer.target_size == 96
    fitted = clone(featurizer).fit(_images(2))
    assert not hasattr(clone(fitted), "layer_names_")


def test_not_fitted_errors(featurizer):
    with pytest.raises(NotFittedError):
        featurizer.transform(_images(1))
    with pytest.raises(NotFittedError):
        featurizer.get_feature_names_out()


def test_fit_ignores_y_returns_self_and_is_idempotent(featurizer):
    X = _images()
    assert featurizer.fit(X, y=np.arange(4)) is featurizer
    first = featurizer.transform(X)
    attrs = {
        k: copy.deepcopy(v)
        for k, v in vars(featurizer).items()
        if k.endswith("_") and not k.startswith("_")
    }
    featurizer.fit(X)
    for key, value in attrs.items():
        np.testing.assert_array_equal(getattr(featurizer, key), value, err_msg=key)
    np.testing.assert_array_equal(featurizer.transform(X), first)
    np.testing.assert_allclose(
        clone(featurizer).fit_transform(X), first, rtol=1e-5, atol=1e-5
    )


def test_fitted_attributes_are_numpy(featurizer):
    featurizer.fit(_images())
    for key, value in vars(featurizer).items():
        if key.endswith("_") and not key.startswith("_"):
            assert not isinstance(value, torch.Tensor), key
    assert featurizer.layer_names_.dtype == object
    assert featurizer.layer_dims_.dtype == np.int64
    assert featurizer.feature_groups_.shape == (featurizer.n_features_out_,)
    np.testing.assert_array_equal(
        np.bincount(featurizer.feature_groups_), featurizer.layer_dims_
    )


def test_pickle_round_trip_without_weights(featurizer):
    X = _images()
    featurizer.fit(X)
    expected = featurizer.transform(X)
    blob = pickle.dumps(featurizer)
    n_weights = sum(p.numel() for p in featurizer._model.parameters())
    assert len(blob) < 100_000 < 4 * n_weights  # weights are not in the pickle
    loaded = pickle.loads(blob)
    assert loaded._model is None
    np.testing.assert_array_equal(loaded.transform(X), expected)
    np.testing.assert_array_equal(copy.deepcopy(featurizer).transform(X), expected)


def test_feature_names_out(featurizer):
    featurizer.fit(_images())
    names = featurizer.get_feature_names_out()
    assert names.dtype == object and len(names) == featurizer.n_features_out_
    assert len(set(names)) == len(names)
    first = featurizer.layer_names_[0]
    assert names[0] == f"{first}__0000"
    assert names[featurizer.layer_dims_[0]].startswith(featurizer.layer_names_[1])


def test_set_output_pandas(featurizer):
    pd = pytest.importorskip("pandas")
    X = _images()
    expected = clone(featurizer).fit_transform(X)
    featurizer.set_output(transform="pandas")
    df = featurizer.fit_transform(X)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(featurizer.get_feature_names_out())
    np.testing.assert_allclose(df.to_numpy(), expected, rtol=1e-5, atol=1e-5)
    assert isinstance(featurizer.transform(X), pd.DataFrame)


def test_output_dtype_and_shape(featurizer):
    Z = featurizer.fit_transform(_images(3))
    assert Z.dtype == np.float32 and Z.shape == (3, featurizer.n_features_out_)
    assert np.isfinite(Z).all()


@pytest.mark.parametrize(
    "param, value",
    [
        ("target_size", 0),
        ("normalize", "l2"),
        ("cls_token", "first"),
        ("batch_size", 0),
        ("num_workers", -1),
        ("pretrained", 3.5),
        ("image_size", 4),
        ("progress", "sometimes"),
        ("layers", 5),
    ],
)
def test_invalid_parameters_are_named(param, value):
    feat = _make("resnet-random").set_params(**{param: value})
    with pytest.raises(InvalidParameterError, match=param):
        feat.fit(_images(1))


def test_tags_say_images_not_tables():
    tags = _make("resnet-random").__sklearn_tags__()
    assert not tags.input_tags.two_d_array and not tags.target_tags.required
    assert tags.requires_fit


def test_joblib_workers_and_pipeline_memory(tmp_path):
    from joblib import Parallel, delayed
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    X, y = _images(8), np.array([0, 1] * 4)
    feat = _make("lite0-embedded").fit(X)
    expected = feat.transform(X)
    parts = Parallel(n_jobs=2)(delayed(feat.transform)(X[i::2]) for i in range(2))
    np.testing.assert_allclose(parts[0], expected[0::2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts[1], expected[1::2], rtol=1e-5, atol=1e-6)

    pipe = Pipeline(
        [("feat", _make("lite0-embedded")), ("clf", LogisticRegression(max_iter=200))],
        memory=str(tmp_path),
    )
    first = pipe.fit(X, y).predict_proba(X)
    second = pipe.fit(X, y).predict_proba(X)  # featurizer loaded from memory
    np.testing.assert_allclose(second, first, rtol=1e-5, atol=1e-6)
    assert pipe.named_steps["feat"].n_features_out_ == feat.n_features_out_
