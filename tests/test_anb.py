import doctest
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skhead2toe import anb  # noqa: E402
from skhead2toe.anb import (  # noqa: E402
    RESULT_COLUMNS,
    TRANSFER_VARIANTS,
    TransferCurvesDisplay,
    layer_features,
    make_cnn,
    run_transfer_experiment,
    score_network,
    split_classes,
    summarize_results,
    train_network,
    transfer_network,
)
from skhead2toe.datasets import load_digits_images  # noqa: E402

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


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    rng = np.random.default_rng(0)
    keep = rng.choice(len(X), 400, replace=False)
    return X[keep], y[keep]


# ---------------------------------------------------------------- networks
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


# ---------------------------------------------------------------- classes
@pytest.mark.parametrize("n_classes", [2, 5, 10, 11])
def test_split_classes_disjoint_and_covering(n_classes):
    y = np.repeat(np.arange(n_classes) * 3 + 1, 4)
    a, b = split_classes(y, random_state=0)
    assert set(a).isdisjoint(b)
    assert sorted(np.concatenate([a, b])) == sorted(np.unique(y))
    assert len(a) == n_classes // 2 and len(b) == n_classes - n_classes // 2
    assert list(a) == sorted(a) and list(b) == sorted(b)


def test_split_classes_is_seeded():
    y = np.arange(10)
    first = split_classes(y, random_state=0)
    np.testing.assert_array_equal(first[0], split_classes(y, random_state=0)[0])
    splits = {tuple(split_classes(y, random_state=s)[0]) for s in range(10)}
    assert len(splits) > 1


def test_split_classes_string_labels():
    a, b = split_classes(["cat", "dog", "cat", "bird"], random_state=0)
    assert sorted([*a, *b]) == ["bird", "cat", "dog"]


# ---------------------------------------------------------------- experiment
def test_run_transfer_experiment_table(digits):
    X, y = digits
    rows = run_transfer_experiment(
        X, y, epochs=3, width=8, batch_size=16, random_state=3
    )
    assert all(set(r) == set(RESULT_COLUMNS) for r in rows)
    keys = [(r["variant"], r["n"], r["task"]) for r in rows]
    assert len(keys) == len(set(keys))
    expected = {("baseA", 0, "A"), ("baseB", 0, "B")}
    for variant in (*TRANSFER_VARIANTS, "probe", "probe random"):
        expected |= {(variant, n, "B") for n in range(1, 5)}
    assert set(keys) == expected
    accuracies = np.array([r["accuracy"] for r in rows])
    assert np.all((accuracies >= 0) & (accuracies <= 1))
    assert {r["seed"] for r in rows} == {3}
    # Trained, even for 3 epochs: far above the chance level of 5 classes (0.2).
    base = {r["variant"]: r["accuracy"] for r in rows if r["n"] == 0}
    assert base["baseA"] > 0.5 and base["baseB"] > 0.5


def test_run_transfer_experiment_is_reproducible(digits):
    X, y = digits
    kwargs = dict(
        epochs=1, width=4, n_values=[1, 3], variants=["AnB", "BnB+"], random_state=0
    )
    first = run_transfer_experiment(X, y, **kwargs, probe=False)
    assert first == run_transfer_experiment(X, y, **kwargs, probe=False)
    assert {r["n"] for r in first} == {0, 1, 3}


def test_run_transfer_experiment_given_test_set_and_halves(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    X_test, y_test = load_digits_images()
    X_test, y_test = X_test[-200:], y_test[-200:]
    df = run_transfer_experiment(
        X,
        y,
        X_test=X_test,
        y_test=y_test,
        classes_a=[0, 1, 2],
        n_values=[4],
        variants="AnB",
        epochs=1,
        width=4,
        probe=False,
        as_frame=True,
        random_state=None,
    )
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(RESULT_COLUMNS)
    assert df["variant"].tolist() == ["baseA", "baseB", "AnB"]
    assert df["seed"].isna().all()


BAD = [
    (dict(epochs=0), "'epochs' parameter"),
    (dict(lr=-0.1), "'lr' parameter"),
    (dict(weight_decay=-1.0), "'weight_decay' parameter"),
    (dict(batch_size=0), "'batch_size' parameter"),
    (dict(test_size=1.5), "'test_size' parameter"),
    (dict(n_conv=0), "'n_conv' parameter"),
    (dict(n_values=[0]), "n_values must be"),
    (dict(n_values=[5]), r"n_values must be .* 1 \.\. 4"),
    (dict(n_values=[1.5]), "n_values must be"),
    (dict(variants=["XnB"]), "variants must be"),
    (dict(classes_a=[0]), "at least 2 classes in each half"),
    (dict(classes_a=[0, 42]), r"classes_a must be classes of y; \[42\]"),
    (dict(X_test=np.zeros((3, 8, 8))), "Give both X_test and y_test"),
    (dict(X_test=np.zeros((3, 9, 9)), y_test=[0, 1, 2]), "X_test and y_test must"),
]


@pytest.mark.parametrize("kwargs, match", BAD, ids=[m for _, m in BAD])
def test_run_transfer_experiment_bad_parameters(digits, kwargs, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        run_transfer_experiment(X, y, **kwargs)


def test_run_transfer_experiment_bad_data(digits):
    X, y = digits
    with pytest.raises(ValueError, match="at least 4 classes"):
        run_transfer_experiment(X[y < 3], y[y < 3])
    with pytest.raises(ValueError, match="X must hold images"):
        run_transfer_experiment(X.reshape(len(X), -1)[:, :, None, None, None], y)
    with pytest.raises(ValueError, match="one label per image"):
        run_transfer_experiment(X, y[:-1])


def test_builder_and_trainer_errors():
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
    X = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"class indices 0 \.\. 4"):
        train_network(net, X, [0, 1, 2, 5])
    with pytest.raises(ValueError, match="contains NaN"):
        score_network(net, np.full((4, 8, 8), np.nan), [0, 1, 2, 3])
    frozen = transfer_network(net, 4)
    frozen[-1].requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        train_network(frozen, X, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="n_layers must be at most 5"):
        layer_features(net, X, n_layers=6)


# ---------------------------------------------------------------- results
def _fake_rows():
    rows = [dict(seed=s, variant="baseB", n=0, task="B", accuracy=0.9) for s in (0, 1)]
    for s, shift in ((0, 0.0), (1, 0.02)):
        for variant in TRANSFER_VARIANTS:
            rows += [
                dict(seed=s, variant=variant, n=n, task="B", accuracy=0.8 + shift)
                for n in (1, 2, 3)
            ]
    return rows


def test_summarize_results():
    summary = summarize_results(_fake_rows())
    anb = [s for s in summary if s["variant"] == "AnB"]
    assert [s["n"] for s in anb] == [1, 2, 3]
    assert anb[0]["n_seeds"] == 2
    assert anb[0]["mean"] == pytest.approx(0.81)
    assert anb[0]["std"] == pytest.approx(0.01)
    assert (anb[0]["min"], anb[0]["max"]) == pytest.approx((0.8, 0.82))
    with pytest.raises(ValueError, match="results must be"):
        summarize_results([])
    with pytest.raises(ValueError, match="results must be"):
        summarize_results([dict(variant="AnB")])


def test_summarize_results_paired_with_a_baseline():
    rows = [
        dict(seed=0, variant="baseA", n=0, task="A", accuracy=0.7),
        dict(seed=0, variant="baseB", n=0, task="B", accuracy=0.9),
        dict(seed=0, variant="AnB", n=1, task="B", accuracy=0.8),
        dict(seed=1, variant="baseB", n=0, task="B", accuracy=0.6),
        dict(seed=1, variant="AnB", n=1, task="B", accuracy=0.58),
    ]
    summary = {s["variant"]: s for s in summarize_results(rows, baseline="baseB")}
    assert set(summary) == {"baseB", "AnB"}  # baseA is on another task
    assert summary["AnB"]["mean"] == pytest.approx(-0.06)
    assert summary["AnB"]["std"] == pytest.approx(0.04)
    assert summary["baseB"]["mean"] == 0
    with pytest.raises(ValueError, match="baseline='baseX' names no variant"):
        summarize_results(rows, baseline="baseX")
    with pytest.raises(ValueError, match="more than one baseline row"):
        summarize_results(rows + rows[1:2], baseline="baseB")
    with pytest.raises(ValueError, match=r"no baseline row for seed\(s\) \[2\]"):
        summarize_results([*rows, dict(rows[2], seed=2)], baseline="baseB")


def test_transfer_curves_display():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    disp = TransferCurvesDisplay.from_results(_fake_rows())
    assert set(disp.lines_) == set(TRANSFER_VARIANTS)
    np.testing.assert_allclose(disp.lines_["AnB"].get_ydata(), [0.81] * 3)
    assert disp.lines_["AnB"].get_xdata().tolist() == [1, 2, 3]
    assert disp.base_line_.get_ydata()[0] == pytest.approx(0.9)
    assert len(disp.points_["BnB"].get_offsets()) == 6
    disp = TransferCurvesDisplay.from_results(_fake_rows(), baseline="baseB")
    np.testing.assert_allclose(disp.lines_["AnB"].get_ydata(), [-0.09] * 3)
    assert disp.base_line_.get_ydata()[0] == 0
    assert "minus baseB" in disp.ax_.get_ylabel()
    disp = TransferCurvesDisplay.from_results(_fake_rows(), variants=["AnB"])
    assert set(disp.lines_) == {"AnB"}
    with pytest.raises(ValueError, match="variants must be"):
        TransferCurvesDisplay.from_results(_fake_rows(), variants=["probe"])
    plt.close("all")


# ---------------------------------------------------------------- module
def test_import_does_not_load_torch():
    code = "import sys, skhead2toe.anb; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_doctests():
    result = doctest.testmod(
        anb, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0
