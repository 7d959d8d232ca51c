import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skhead2toe.transfer import make_cnn, transfer_network  # noqa: E402

torch.set_num_threads(1)


def _trainable(net):
    return [any(p.requires_grad for p in layer.parameters()) for layer in net]


def _frozen(net):
    return [not any(p.requires_grad for p in layer.parameters()) for layer in net]


def _same_weights(a, b):
    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(
        torch.equal(x, y) for x, y in zip(pa, pb, strict=True)
    )


def _all_weights_differ(a, b):
    """Every weight tensor differs (biases start at zero, so they are skipped)."""
    pairs = [
        (x, y)
        for x, y in zip(a.parameters(), b.parameters(), strict=True)
        if x.ndim > 1
    ]
    return bool(pairs) and all(not torch.equal(x, y) for x, y in pairs)


def _trained_like(net):
    """``net`` with random non-zero biases, as after training."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 1:
                p.copy_(torch.randn(p.shape, generator=gen))
    return net


@pytest.mark.parametrize(
    "image_size, n_conv, n_fc", [(8, 3, 2), (28, 3, 2), ((8, 12), 2, 1), (28, 4, 3)]
)
def test_make_cnn_layers_and_output(image_size, n_conv, n_fc):
    net = make_cnn(7, image_size=image_size, n_conv=n_conv, n_fc=n_fc, width=4)
    names = [name for name, _ in net.named_children()]
    assert names == [f"conv{i}" for i in range(1, n_conv + 1)] + [
        f"fc{i}" for i in range(n_conv + 1, n_conv + n_fc + 1)
    ]
    size = (image_size,) * 2 if np.ndim(image_size) == 0 else image_size
    out = net(torch.zeros(3, 1, *size))
    assert out.shape == (3, 7)
    assert all(p.requires_grad for p in net.parameters())


def test_make_cnn_is_seeded_and_leaves_the_global_rng(seed):
    state = torch.random.get_rng_state()
    a, b = make_cnn(5, random_state=3), make_cnn(5, random_state=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert _same_weights(a, b)
    assert _all_weights_differ(a, make_cnn(5, random_state=4))


@pytest.mark.parametrize("fine_tune", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_transfer_network_freezes_exactly_the_first_n_layers(n, fine_tune):
    base = make_cnn(5, random_state=0)
    net = transfer_network(base, n, fine_tune=fine_tune, random_state=1)
    n_layers = len(net)
    if fine_tune:
        assert _trainable(net) == [True] * n_layers
    else:
        assert _frozen(net) == [True] * n + [False] * (n_layers - n)
    # Every parameter of a layer shares the layer's status (weights and biases).
    for i, layer in enumerate(net):
        flags = {p.requires_grad for p in layer.parameters()}
        assert flags == {fine_tune or i >= n}
    # The base network is not touched.
    assert all(p.requires_grad for p in base.parameters())
    assert net is not base


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_transfer_network_copies_then_reinitialises(n):
    base = _trained_like(make_cnn(5, random_state=0))
    reference = [p.detach().clone() for p in base.parameters()]
    net = transfer_network(base, n, random_state=1)
    for i, (new, old) in enumerate(zip(net, base, strict=True)):
        if i < n:
            assert _same_weights(new, old), f"layer {i + 1} was not copied"
            assert all(
                p.data_ptr() != q.data_ptr()
                for p, q in zip(new.parameters(), old.parameters(), strict=True)
            ), "copied layers must not share storage with the base"
        else:
            assert _all_weights_differ(new, old), f"layer {i + 1} kept base weights"
            biases = [p for p in new.parameters() if p.ndim == 1]
            assert all(torch.all(b == 0) for b in biases), "biases not reset"
    # The base network's weights are unchanged.
    assert all(
        torch.equal(p, q) for p, q in zip(base.parameters(), reference, strict=True)
    )


def test_transfer_network_reinitialisation_is_seeded():
    base = make_cnn(5, random_state=0)
    a = transfer_network(base, 2, random_state=7)
    b = transfer_network(base, 2, random_state=7)
    c = transfer_network(base, 2, random_state=8)
    assert _same_weights(a, b)
    assert _all_weights_differ(a[2:], c[2:])
    assert _same_weights(a[:2], c[:2])


def test_transfer_network_new_number_of_classes():
    base = make_cnn(4, random_state=0)
    net = transfer_network(base, 3, n_classes=6)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 6)
    assert base(torch.zeros(2, 1, 8, 8)).shape == (2, 4)


def test_builder_errors():
    net = make_cnn(5)
    with pytest.raises(ValueError, match="n must be in 0 .. 4"):
        transfer_network(net, 5)
    with pytest.raises(ValueError, match="'n' parameter"):
        transfer_network(net, -1)
    with pytest.raises(TypeError, match="base must be a network built by"):
        transfer_network(torch.nn.Linear(3, 3), 1)
    with pytest.raises(ValueError, match="'n_classes' parameter"):
        make_cnn(1)
    with pytest.raises(ValueError, match="image_size must be"):
        make_cnn(3, image_size=(8, 8, 8))
