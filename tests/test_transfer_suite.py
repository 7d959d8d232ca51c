"""Fast checks of benchmarks/transfer/_suite.py and run_suite.py (the transfer suite).

No Fashion-MNIST here: a fake loader stands in for it, the features come from a
fake featurizer (one test runs the real one at 32 px on digits), and the heads
are the cheap probes or fakes.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

TRANSFER = Path(__file__).resolve().parents[1] / "benchmarks" / "transfer"
sys.path.insert(0, str(TRANSFER))

import _baselines as B  # noqa: E402
import _suite as S  # noqa: E402
import run_suite  # noqa: E402

from skhead2toe import experiments  # noqa: E402

N_FAKE_TRAIN, N_FAKE_TEST = 400, 150


def fake_loader(subset):
    """A tiny stand-in for Fashion-MNIST: label-dependent 28 x 28 images."""
    n = N_FAKE_TRAIN if subset == "train" else N_FAKE_TEST
    rng = np.random.default_rng(0 if subset == "train" else 1)
    y = np.arange(n) % 10
    X = rng.integers(0, 60, size=(n, 28, 28))
    for c in range(10):  # a bright bar whose row tells the class
        X[y == c, 2 * c + 2 : 2 * c + 5, 4:24] += 150
    return X.astype(np.uint8), y.astype(np.int64)


class FakeFeaturizer:
    """Three 'layers' of cheap features of uint8 images, unit norm per layer."""

    layer_names_ = ["early", "middle", "pre_logits"]

    def __init__(self):
        self.calls = 0

    def fit_transform(self, X):
        self.calls += 1
        flat = X.reshape(len(X), -1).astype(float) / 255.0
        rng = np.random.default_rng(0)
        blocks = [
            flat[:, :: max(1, flat.shape[1] // 16)][:, :16],  # a few pixels
            flat.reshape(len(X), X.shape[1], -1).mean(2),  # row means
            flat @ rng.normal(size=(flat.shape[1], 8)),  # random projection
        ]
        blocks = [
            b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-12) for b in blocks
        ]
        self.feature_groups_ = np.concatenate(
            [np.full(b.shape[1], i) for i, b in enumerate(blocks)]
        )
        return np.hstack(blocks).astype(np.float32)


def small_config():
    return B.Config(n_train=100, n_test=80, cv=3, l2_Cs=(1.0, 100.0))


# ---------------------------------------------------------------- transforms
def test_low_res_averages_blocks_and_keeps_shape():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    out = S.low_res(X, factor=4)
    assert out.shape == X.shape and out.dtype == np.uint8
    block = X[1, 4:8, 8:12].astype(float)
    assert np.all(out[1, 4:8, 8:12] == np.rint(block.mean()))
    assert len(np.unique(out[0].reshape(7, 4, 7, 4).transpose(0, 2, 1, 3)[2, 3])) == 1
    assert not np.array_equal(out, X)
    with pytest.raises(ValueError, match="do not split"):
        S.low_res(np.zeros((1, 10, 10), np.uint8), factor=4)


def test_add_noise_is_a_fixed_function_of_each_image():
    rng = np.random.default_rng(0)
    X = np.full((4, 28, 28), 128, np.uint8)
    X[1:] = rng.integers(0, 256, size=(3, 28, 28))
    out = S.add_noise(X, sigma=20.0)
    assert out.dtype == np.uint8 and out.shape == X.shape
    # the same image gets the same noise wherever it is
    np.testing.assert_array_equal(S.add_noise(X[::-1], sigma=20.0), out[::-1])
    np.testing.assert_array_equal(S.add_noise(X[2:3], sigma=20.0), out[2:3])
    assert not np.array_equal(S.add_noise(X, sigma=20.0, seed=1), out)
    # mid-grey: the noise is unclipped there, of the asked spread
    assert abs(np.std(out[0].astype(float) - 128) - 20.0) < 2.0
    saturated = S.add_noise(np.full((1, 28, 28), 250, np.uint8), sigma=64.0)
    assert saturated.max() == 255  # clipped, not wrapped around
    assert set(S.SUITE_VARIANTS) == {"low-res", "noise"}
    assert not set(S.SUITE_VARIANTS) & set(B.VARIANTS)


def test_split_task_accepts_suite_tasks_and_rejects_others():
    for task in S.TASKS:
        S.split_task(task)
    assert S.split_task("fashion-mnist+low-res") == ("fashion-mnist", "low-res")
    with pytest.raises(ValueError, match="base"):
        S.split_task("cifar+invert")
    with pytest.raises(ValueError, match="variant"):
        S.split_task("digits+blur")
    assert len(S.TASKS) >= 8


# --------------------------------------------------------------------- pools
def test_fashion_pool_draws_per_seed_and_shares_the_test_set():
    X_tr, y_tr = fake_loader("train")
    X_te, _ = fake_loader("test")
    pool = S.build_pool(
        "fashion-mnist", (0, 1, 2), n_train=50, n_test=40, loader=fake_loader
    )
    tests = [pool.splits[s][1] for s in (0, 1, 2)]
    assert all(np.array_equal(t, tests[0]) for t in tests)
    trains = [pool.splits[s][0] for s in (0, 1, 2)]
    assert all(len(t) == 50 for t in trains)
    assert not np.array_equal(pool.images[trains[0]], pool.images[trains[1]])
    assert not set(trains[0]) & set(tests[0])
    # seed 0 draws the images load_fashion_mnist(n_samples, random_state=0) draws
    keep = S._draw(N_FAKE_TRAIN, 50, 0)
    np.testing.assert_array_equal(pool.images[trains[0]], X_tr[keep])
    np.testing.assert_array_equal(pool.labels[trains[0]], y_tr[keep])
    np.testing.assert_array_equal(
        pool.images[tests[0]], X_te[S._draw(N_FAKE_TEST, 40, 0)]
    )
    inv = S.build_pool(
        "fashion-mnist+invert", (0, 1, 2), n_train=50, n_test=40, loader=fake_loader
    )
    np.testing.assert_array_equal(inv.images, 255 - pool.images)
    np.testing.assert_array_equal(inv.labels, pool.labels)


def test_few_shot_two_class_and_twenty_class_pools():
    shot = S.build_pool("fashion-mnist-10shot", (0, 1), n_test=40, loader=fake_loader)
    for s in (0, 1):
        assert np.all(np.bincount(shot.labels[shot.splits[s][0]]) == 10)
    shirts = S.build_pool(
        "fashion-mnist-shirts", (0,), n_train=30, n_test=500, loader=fake_loader
    )
    assert set(np.unique(shirts.labels)) == {0, 1}
    n_test_shirts = np.isin(fake_loader("test")[1], S.SHIRT_CLASSES).sum()
    assert len(shirts.splits[0][1]) == n_test_shirts  # all of them: fewer than n_test
    twenty = S.build_pool(
        "digits-fashion-20", (0, 1), n_train=200, n_test=60, loader=fake_loader
    )
    tr, te = twenty.splits[1]
    assert twenty.images.shape[1:] == (28, 28)
    assert len(tr) == 200 and np.sum(twenty.labels[tr] < 10) == 100
    assert set(np.unique(twenty.labels)) == set(range(20))
    assert not set(tr) & set(te)
    assert np.sum(twenty.labels[te] >= 10) == 30


def test_digits_pool_is_the_stratified_split_of_experiments():
    pool = S.build_pool("digits+block-shuffle", (0, 2), n_train=1000)
    X_tr, X_te, y_tr, y_te = B.load_task("digits+block-shuffle", 1000, None, 2)
    tr, te = pool.splits[2]
    assert len(tr) == 1000 and len(te) == 797
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(1797))
    np.testing.assert_array_equal(np.bincount(pool.labels[tr]), np.bincount(y_tr))
    # the same images as experiments.load_task (which does not sort them)
    assert sorted(map(bytes, pool.images[te])) == sorted(map(bytes, X_te))


# ------------------------------------------------------------------ records
def test_labels_round_trip_compactly():
    y = np.array([0, 3, 19, 255, 7])
    s = S.encode_labels(y)
    np.testing.assert_array_equal(S.decode_labels(s), y)
    assert len(S.encode_labels(np.zeros(2000, int))) < 3000
    with pytest.raises(ValueError, match="0..255"):
        S.encode_labels([256])


def _counting(monkeypatch, name, method):
    calls = []

    def wrapped(split, cfg):
        calls.append(1)
        return method(split, cfg)

    monkeypatch.setitem(S.METHODS, name, wrapped)
    return calls


def test_run_task_caches_features_and_cells_and_resumes(tmp_path, monkeypatch):
    feat = FakeFeaturizer()
    cfg = small_config()
    calls = _counting(monkeypatch, "Fake", S.linear)
    kw = dict(
        seeds=(0, 1),
        loader=fake_loader,
        make_featurizer=lambda: feat,
        log=lambda m: None,
    )
    out = S.run_task("fashion-mnist", cfg, tmp_path, methods=["Linear", "Fake"], **kw)
    assert feat.calls == 1 and len(calls) == 2
    rec = out[1, "Linear"]
    assert rec["n_features"] == 8 and rec["n_features_total"] == 52
    assert 0 <= rec["test_accuracy"] <= 1 and rec["cpu_s"] >= 0
    assert len(S.decode_labels(rec["predictions"])) == 80
    seed_rec = S.read_json(
        tmp_path / "results" / "fashion-mnist" / "seed1" / "split.json"
    )
    assert "affinity" in seed_rec["domain_affinity"]
    assert (
        np.mean(
            S.decode_labels(rec["predictions"]) == S.decode_labels(seed_rec["y_test"])
        )
        == rec["test_accuracy"]
    )
    # a second run reads everything from the cache
    again = S.run_task("fashion-mnist", cfg, tmp_path, methods=["Linear", "Fake"], **kw)
    assert feat.calls == 1 and len(calls) == 2
    assert again[1, "Linear"] == rec
    # --force recomputes that method only
    S.run_task(
        "fashion-mnist", cfg, tmp_path, methods=["Linear", "Fake"], force={"Fake"}, **kw
    )
    assert len(calls) == 4 and feat.calls == 1
    meta = json.loads(
        (tmp_path / "features" / "fashion-mnist" / "meta.json").read_text()
    )
    assert meta["layer_names"] == FakeFeaturizer.layer_names_
    assert meta["n_images"] == len(
        np.load(tmp_path / "features" / "fashion-mnist" / "Z.npy")
    )


def test_unavailable_method_is_skipped_then_computed(tmp_path, monkeypatch):
    state = {"ready": False}

    def later(split, cfg):
        if not state["ready"]:
            raise S.MethodUnavailable("not landed")
        return S.MethodResult(np.zeros(len(split.y_test), int), 3)

    monkeypatch.setitem(S.METHODS, "Later", later)
    kw = dict(
        seeds=(0,),
        loader=fake_loader,
        make_featurizer=FakeFeaturizer,
        log=lambda m: None,
    )
    out = S.run_task("fashion-mnist", small_config(), tmp_path, methods=["Later"], **kw)
    assert out == {}
    assert not S.record_path(tmp_path, "fashion-mnist", 0, "Later").exists()
    state["ready"] = True
    out = S.run_task("fashion-mnist", small_config(), tmp_path, methods=["Later"], **kw)
    assert out[0, "Later"]["n_features"] == 3


def test_cached_features_of_another_pool_are_refused(tmp_path):
    feat = FakeFeaturizer()
    kw = dict(loader=fake_loader, make_featurizer=lambda: feat, log=lambda m: None)
    S.run_task("fashion-mnist", small_config(), tmp_path, seeds=(0,), methods=[], **kw)
    # other seeds of the suite reuse the features: the pool holds every seed
    S.run_task(
        "fashion-mnist", small_config(), tmp_path, seeds=(1, 2), methods=[], **kw
    )
    assert feat.calls == 1
    other = B.Config(n_train=50, n_test=80)
    with pytest.raises(RuntimeError, match="force-extract"):
        S.run_task("fashion-mnist", other, tmp_path, seeds=(0,), methods=[], **kw)
    S.run_task(
        "fashion-mnist",
        other,
        tmp_path,
        seeds=(0,),
        methods=[],
        force_extract=True,
        **kw,
    )
    assert feat.calls == 2


def test_default_rows_wait_for_the_new_api(monkeypatch):
    import skhead2toe

    class OldHead:
        def __init__(self, alphas=20, *, keep_fractions=None, cv=None):
            pass

    monkeypatch.setattr(skhead2toe, "GroupLassoClassifierCV", OldHead)
    split = S.Split(
        np.zeros((6, 2)),
        np.arange(6) % 2,
        np.zeros((2, 2)),
        np.zeros(2),
        np.zeros(2),
        ["a"],
    )
    with pytest.raises(S.MethodUnavailable, match="selection"):
        S.METHODS[S.DEFAULT_1SE](split, small_config())


# ------------------------------------------------------------------ methods
def _layered_split(informative, n=150, seed=0):
    """Four 'layers' of 6 columns; only ``informative`` carries the label."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    Z = rng.normal(size=(n, 24))
    Z[:, 6 * informative : 6 * informative + 3] += 3.0 * np.eye(3)[y]
    groups = np.repeat(np.arange(4), 6)
    return S.Split(
        Z[:100], y[:100], Z[100:], y[100:], groups, ["l0", "l1", "l2", "last"]
    )


@pytest.mark.parametrize("informative", [0, 2])
def test_oracle_adds_the_informative_layer(informative):
    split = _layered_split(informative)
    res = S.oracle(split, small_config())
    assert res.extra["oracle_layer"] == f"l{informative}"
    assert res.n_features == 12
    assert np.mean(res.pred == split.y_test) > 0.9
    lin = S.linear(split, small_config())
    assert lin.n_features == 6 and np.mean(lin.pred == split.y_test) < 0.7


def test_kernel_ridge_cv_scores_separable_data_high():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    X = np.eye(3)[y] + 0.05 * rng.normal(size=(90, 3))
    folds = [
        (np.flatnonzero(np.arange(90) % 5 != k), np.flatnonzero(np.arange(90) % 5 == k))
        for k in range(3)
    ]
    assert S._kernel_ridge_cv(X @ X.T, y, folds, (0.1,)) == 1.0
    noise = rng.normal(size=(90, 3))
    assert S._kernel_ridge_cv(noise @ noise.T, y, folds, (0.1,)) < 0.7


# ------------------------------------------------------------------- report
def _write_cells(cache, task, preds_by_method, y, n_total=100):
    """Synthetic cached records: ``preds_by_method[m][seed]`` predictions."""
    for seed in range(len(y)):
        d = cache / "results" / S._slug(task) / f"seed{seed}"
        d.mkdir(parents=True)
        B.write_json(
            d / "split.json",
            {
                "n_train": 10,
                "n_test": len(y[seed]),
                "n_classes": 2,
                "n_features": n_total,
                "y_test": S.encode_labels(y[seed]),
                "domain_affinity": {"affinity": 0.1 * (seed + 1)},
            },
        )
        for m, preds in preds_by_method.items():
            B.write_json(
                S.record_path(cache, task, seed, m),
                {
                    "method": m,
                    "test_accuracy": float(np.mean(preds[seed] == y[seed])),
                    "predictions": S.encode_labels(preds[seed]),
                    "n_features": {"Linear": 10}.get(m, 50),
                    "n_features_total": n_total,
                    "cpu_s": 1.0,
                    "convergence_warnings": 0,
                    "git_commit": "abc",
                },
            )


def _flip(y, k):
    out = y.copy()
    out[:k] = 1 - out[:k]
    return out


def test_report_pools_seeds_and_counts_significant_losses(tmp_path):
    y = [np.array([0, 1] * 50), np.array([1, 0] * 50)]
    # task a: Default far behind All layers + L2 (30 errors per seed against 0)
    _write_cells(
        tmp_path,
        "a",
        {
            "Linear": [_flip(v, 20) for v in y],
            "All layers + L2": [v.copy() for v in y],
            "Default": [_flip(v, 30) for v in y],
        },
        y,
    )
    # task b: Default two errors behind Linear: not significant
    _write_cells(
        tmp_path,
        "b",
        {
            "Linear": [v.copy() for v in y],
            "All layers + L2": [_flip(v, 5) for v in y],
            "Default": [_flip(v, 1) for v in y],
        },
        y,
    )
    report = S.build_report(tmp_path, tasks=("a", "b", "missing"), seeds=(0, 1))
    assert [t["task"] for t in report["tasks"]] == ["a", "b"]
    a, b = report["tasks"]
    assert a["best_baseline"] == "All layers + L2" and b["best_baseline"] == "Linear"
    vs = a["methods"]["Default"]["vs_all_l2"]
    assert vs["n_pairs"] == 200 and vs["only_other_right"] == 60
    cmp = experiments.paired_comparison(
        np.concatenate(y),
        np.concatenate([_flip(v, 30) for v in y]),
        np.concatenate(y),
        "x",
    )
    assert vs["p_value"] == pytest.approx(cmp["p_value"])
    assert a["domain_affinity"] == pytest.approx(0.15)
    s = report["summary"]["Default"]
    assert s["significantly_worse_than_best_baseline"] == ["a"]
    assert s["mean_gain_vs_all_l2"] == pytest.approx((-0.30 + 0.04) / 2)
    assert s["mean_gain_vs_linear"] == pytest.approx((-0.10 - 0.01) / 2)
    assert s["mean_feature_fraction"] == pytest.approx(0.5)
    assert "| a " in report["rst"] and "Default" in report["rst"]
    assert "70.00 -" in report["rst"]  # Default on task a, significantly below
    g = report["gain_vs_affinity"]["Default"]
    assert [p[0] for p in g["points"]] == ["a", "b"] and g["pearson_r"] is None

    out = tmp_path / "out"
    S.write_report(report, out)
    for name in (
        "suite_results.csv",
        "suite_results.json",
        "suite_table.rst",
        "suite_gain_vs_affinity.png",
    ):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "suite_results.csv").open()))
    assert len(rows) == 6 and rows[0]["task"] == "a"
    assert (
        json.loads((out / "suite_results.json").read_text())["summary"]["Default"][
            "n_tasks"
        ]
        == 2
    )


def test_rst_table_is_a_valid_grid_table():
    core = pytest.importorskip("docutils.core")
    from docutils import nodes

    text = S.rst_table(["x", "long header"], [["1", "2"], ["333", ""]])
    tree = core.publish_doctree(text, settings_overrides={"report_level": 5})
    assert not list(tree.findall(nodes.system_message))
    (table,) = tree.findall(nodes.table)
    assert "long header" in table.astext() and "333" in table.astext()


def test_partial_seeds_are_not_in_the_suite_means(tmp_path):
    y = [np.array([0, 1] * 10)] * 2
    _write_cells(tmp_path, "a", {"Linear": [v.copy() for v in y]}, y)
    (S.record_path(tmp_path, "a", 1, "Linear")).unlink()
    report = S.build_report(tmp_path, tasks=("a",), seeds=(0, 1))
    assert report["tasks"][0]["methods_complete"] == []
    assert report["summary"] == {}
    assert "(1s)" in report["rst"]


# ---------------------------------------------------------------- command line
def test_command_line_checks_names():
    args = run_suite.parse_args(["--tasks", "digits", "--methods", "Linear"])
    assert args.tasks == ["digits"] and args.seeds == [0, 1, 2]
    with pytest.raises(SystemExit):
        run_suite.parse_args(["--methods", "Nope"])
    with pytest.raises(ValueError, match="variant"):
        run_suite.parse_args(["--tasks", "digits+blur"])


def test_real_featurizer_extracts_and_caches_its_layout(tmp_path):
    pytest.importorskip("timm")
    cfg = B.Config(image_size=32, target_size=64, n_test=30, cv=3, l2_Cs=(10.0,))
    task = "fashion-mnist-10shot"
    out = S.run_task(
        task,
        cfg,
        tmp_path,
        seeds=(0,),
        methods=["Linear"],
        loader=fake_loader,
        log=lambda m: None,
    )
    d = tmp_path / "features" / "fashion-mnist-10shot"
    meta = json.loads((d / "meta.json").read_text())
    # every seed's images of the pool (seeds 0, 1, 2), though only seed 0 ran
    n_images = len(S.build_pool(task, S.SEEDS, n_test=30, loader=fake_loader).labels)
    assert 130 < n_images <= 330
    assert meta["extraction_cpu_s"] > 0 and meta["n_images"] == n_images
    groups = np.load(d / "pool.npz")["feature_groups"]
    assert len(meta["layer_names"]) == groups.max() + 1 > 2
    assert np.load(d / "Z.npy").shape == (n_images, len(groups))
    assert out[0, "Linear"]["n_features"] == np.sum(experiments.last_layer_mask(groups))
