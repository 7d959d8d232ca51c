import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_transfer_models import _all_weights_differ, _same_weights  # noqa: E402

from skhead2toe.transfer import (  # noqa: E402
    make_cnn,
    score_network,
    train_network,
    transfer_network,
)

torch.set_num_threads(1)


def test_training_leaves_frozen_layers_unchanged():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, 96)
    base = make_cnn(5, random_state=0)
    frozen = train_network(transfer_network(base, 2), X, y, epochs=2)
    assert _same_weights(frozen[:2], base[:2])
    assert _all_weights_differ(frozen[2:], transfer_network(base, 2)[2:])
    tuned = train_network(transfer_network(base, 2, fine_tune=True), X, y, epochs=2)
    assert _all_weights_differ(tuned[:2], base[:2])


def test_training_with_a_frozen_prefix_matches_a_plain_loop():
    # train_network computes a frozen prefix once; check against a plain loop.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    net = transfer_network(make_cnn(3, random_state=0), 2, random_state=1)
    plain = transfer_network(make_cnn(3, random_state=0), 2, random_state=1)
    train_network(net, X, y, epochs=1, batch_size=50, momentum=0.0, lr=0.1)
    opt = torch.optim.SGD(
        [p for p in plain.parameters() if p.requires_grad], lr=0.1, weight_decay=5e-4
    )
    loss = torch.nn.functional.cross_entropy(
        plain(torch.from_numpy(X)[:, None]), torch.from_numpy(y)
    )
    loss.backward()
    opt.step()
    for p, q in zip(net.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_train_and_score_learn_an_easy_task():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8, 8)).astype(np.float32)
    y = (X[:, :4].mean(axis=(1, 2)) > 0).astype(int)
    net = make_cnn(2, random_state=0)
    before = score_network(net, X, y)
    train_network(net, X, y, epochs=20)
    assert score_network(net, X, y) > max(0.9, before)
    assert not net.training


def test_trainer_errors():
    net = make_cnn(5)
    X = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"class indices 0 \.\. 4"):
        train_network(net, X, [0, 1, 2, 5])
    with pytest.raises(ValueError, match="contains NaN"):
        score_network(net, np.full((4, 8, 8), np.nan), [0, 1, 2, 3])
    frozen = transfer_network(net, 4)
    frozen[-1].requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        train_network(frozen, X, [0, 1, 2, 3])
