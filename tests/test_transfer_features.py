import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skhead2toe.transfer import layer_features, make_cnn  # noqa: E402

torch.set_num_threads(1)


def test_layer_features_groups_and_names():
    net = make_cnn(5, image_size=28, random_state=0)
    X = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    feats = layer_features(net, X, target_size=300)
    assert feats.layer_names.tolist() == ["conv1", "conv2", "conv3", "fc4"]
    assert feats.features.shape == (6, feats.groups.shape[0])
    assert feats.features.dtype == np.float32
    dims = np.bincount(feats.groups)
    assert len(dims) == 4 and np.all(dims <= 300) and np.all(dims > 0)
    last = layer_features(net, X, n_layers=5)
    assert np.bincount(last.groups)[-1] == 5  # the logits
    np.testing.assert_allclose(
        last.features[:, last.groups == 4],
        net.eval()(torch.from_numpy(X[:, None] / np.float32(255))).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_layer_features_errors():
    net = make_cnn(5)
    X = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="n_layers must be at most 5"):
        layer_features(net, X, n_layers=6)
