import os
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from torch import nn

from skhead2toe.feature_extraction import MultiLayerFeaturizer
from skhead2toe.feature_extraction._hooks import TapSet, pooled_dim


def _images(n=6, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _feat(backbone="test_resnet", **kw):
    kw.setdefault("pretrained", False)
    kw.setdefault("image_size", 64)
    kw.setdefault("random_state", 0)
    kw.setdefault("device", "cpu")
    return MultiLayerFeaturizer(backbone, **kw)


def _input(feat, X):
    """The normalised model input for X, as the featurizer computes it."""
    from skhead2toe.feature_extraction._images import as_source, to_model_input

    batch = as_source(X).load(range(len(X)), size=feat.data_config_["image_size"])
    return to_model_input(batch, feat.data_config_, torch.device("cpu"))


def _split(feat, Z):
    bounds = np.cumsum(feat.layer_dims_)[:-1]
    return dict(zip(feat.layer_names_, np.split(Z, bounds, axis=1), strict=True))


@pytest.mark.parametrize(
    "backbone", ["test_efficientnet", "test_resnet", "test_convnext", "test_vit"]
)
def test_blocks_equal_forward_intermediates(backbone):
    X = _images(3)
    feat = _feat(backbone, layers="blocks", target_size=10**7, normalize=None)
    Z = feat.fit_transform(X)
    model = feat._model
    with torch.inference_mode():
        if backbone == "test_vit":
            inter = model.forward_intermediates(
                _input(feat, X),
                intermediates_only=True,
                output_fmt="NLC",
                return_prefix_tokens=True,
            )
            # (N, T, C) tokens with the class token first, flattened channel-major
            inter = [torch.cat([p, t], dim=1) for t, p in inter]
            inter = [t.transpose(1, 2) for t in inter]
        else:
            inter = model.forward_intermediates(
                _input(feat, X), intermediates_only=True
            )
    expected = [t.flatten(1).numpy() for t in inter]
    assert len(feat.layer_names_) == len(expected)
    for got, exp in zip(_split(feat, Z).values(), expected, strict=True):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backbone", ["test_resnet", "test_vit", "test_convnext"])
def test_last_equals_pre_logits(backbone):
    X = _images(3)
    feat = _feat(backbone, layers="last", normalize=None)
    Z = feat.fit_transform(X)
    with torch.inference_mode():
        m = feat._model
        expected = m.forward_head(m.forward_features(_input(feat, X)), pre_logits=True)
    assert list(feat.layer_names_) == ["pre_logits"]
    np.testing.assert_allclose(Z, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_head2toe_on_embedded_backbone_drops_the_pooled_twin():
    feat = MultiLayerFeaturizer(image_size=64, target_size=512, device="cpu")
    Z = feat.fit_transform(_images(2))
    names = list(feat.layer_names_)
    assert names[0] == "bn1" and "blocks.6.0" in names
    # bn2 globally pooled (1280 >= 512 channels) equals the pre-logits: kept once
    assert "bn2" in names and "pre_logits" not in names
    assert Z.shape == (2, feat.n_features_out_) and Z.dtype == np.float32
    assert feat.backbone_tag_ == "tf_efficientnet_lite0"


def test_identity_taps_are_dropped():
    feat = _feat("test_vit", layers=["blocks.0.mlp.fc2", "blocks.0.mlp.drop2"])
    feat.fit(_images(1))
    assert list(feat.layer_names_) == ["blocks.0.mlp.fc2"]


@pytest.mark.parametrize("target_size", [50, 300, 1000, 5000])
def test_pooled_sizes_follow_the_rule(target_size):
    feat = _feat("test_efficientnet", layers="head2toe", target_size=target_size)
    feat.fit(_images(1))
    model = feat._model
    shapes = {}
    hooks = [
        dict(model.named_modules())[n].register_forward_hook(
            lambda m, a, o, n=n: shapes.setdefault(n, tuple(o.shape[1:])) and None
        )
        for n in feat.layer_names_
        if n != "pre_logits"
    ]
    with torch.inference_mode():
        pre = model.forward_head(
            model.forward_features(torch.zeros(1, 3, 64, 64)), pre_logits=True
        )
    shapes["pre_logits"] = tuple(pre.shape[1:])
    for h in hooks:
        h.remove()
    for name, dim in zip(feat.layer_names_, feat.layer_dims_, strict=True):
        assert dim == pooled_dim(shapes[name], target_size), name
        channels = shapes[name][0]
        assert dim <= target_size or dim == channels


def test_vit_cls_token_modes():
    dims = {}
    for mode in ("pool", "only", "separate"):
        feat = _feat(
            "test_vit",
            layers=["patch_embed", "norm"],
            target_size=256,
            image_size=32,
            cls_token=mode,
        )
        feat.fit(_images(1))
        dims[mode] = dict(zip(feat.layer_names_, feat.layer_dims_, strict=True))
    # patch_embed has no class token: pooled the same way in every mode
    assert dims["pool"]["patch_embed"] == dims["only"]["patch_embed"] == 256
    assert dims["only"]["norm"] == 64
    assert dims["pool"]["norm"] == 64 * 3  # 5 tokens -> window 2 -> 3 positions
    assert dims["separate"]["norm"] == 64 + 64 * 2  # cls + 4 patches in budget 192


def test_unit_norm_per_layer():
    feat = _feat("test_convnext", layers="head2toe", target_size=200)
    Z = feat.fit_transform(_images(4))
    for name, block in _split(feat, Z).items():
        np.testing.assert_allclose(
            np.linalg.norm(block, axis=1), 1, rtol=1e-5, err_msg=name
        )


def test_standard_normalisation_learned_in_fit():
    X = _images(8)
    feat = _feat(normalize="standard", target_size=64)
    Z = feat.fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-4)
    std = Z.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-3) | (std == 0))
    np.testing.assert_allclose(feat.transform(X), Z, rtol=1e-5, atol=1e-5)
    raw = _feat(normalize=None, target_size=64).fit_transform(X)
    np.testing.assert_allclose(feat.mean_, raw.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        feat.scale_, np.where(raw.std(0) > 0, raw.std(0), 1), rtol=1e-4, atol=1e-7
    )
    feat.set_params(normalize=None).fit(X)  # a refit drops stale statistics
    assert not hasattr(feat, "mean_") and not hasattr(feat, "scale_")


def test_batch_size_invariance_and_repeatability():
    X = _images(7)
    feat = _feat("test_vit", target_size=128, batch_size=7)
    Z = feat.fit_transform(X)
    for bs in (1, 3):
        np.testing.assert_allclose(
            feat.set_params(batch_size=bs).transform(X), Z, rtol=1e-5, atol=1e-6
        )
    np.testing.assert_array_equal(feat.transform(X), feat.transform(X))


def test_seeded_random_weights_are_reproducible():
    X = _images(2)
    a = _feat(random_state=1).fit_transform(X)
    b = _feat(random_state=1).fit_transform(X)
    c = _feat(random_state=2).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    feat = _feat(random_state=None).fit(X)
    again = _feat(random_state=feat.seed_).fit(X)
    np.testing.assert_array_equal(feat.transform(X), again.transform(X))


def test_input_kinds_give_the_same_features(tmp_path):
    from PIL import Image

    X = _images(3)
    feat = _feat(target_size=64).fit(X)
    Z = feat.transform(X)
    paths = []
    for i, im in enumerate(X):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    np.testing.assert_allclose(feat.transform(paths), Z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        feat.set_params(num_workers=2).transform(paths), Z, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        feat.transform(torch.from_numpy(X).permute(0, 3, 1, 2)), Z, rtol=1e-5, atol=1e-6
    )
    gray = feat.transform(X[..., 0])
    assert gray.shape == Z.shape


def test_bad_inputs_name_the_problem(tmp_path):
    feat = _feat(target_size=64).fit(_images(1))
    X = _images(4).astype(np.float32) / 255
    X[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="image 2 contains NaN"):
        feat.transform(X)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        feat.transform(np.zeros((2, 16, 16, 4), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        feat.transform(np.zeros((0, 16, 16), np.uint8))
    with pytest.raises(FileNotFoundError, match="gone.png"):
        feat.transform([str(tmp_path / "gone.png")])


def test_out_array_and_memmap(tmp_path):
    X = _images(5)
    feat = _feat(target_size=64).fit(X)
    Z = feat.transform(X)
    out = np.zeros_like(Z)
    assert feat.transform(X, out=out) is out
    np.testing.assert_array_equal(out, Z)
    mm = feat.transform(X, out=tmp_path / "features.npy")
    assert isinstance(mm, np.memmap)
    del mm
    np.testing.assert_array_equal(np.load(tmp_path / "features.npy", mmap_mode="r"), Z)
    with pytest.raises(ValueError, match="expected"):
        feat.transform(X, out=np.zeros((5, 3), np.float32))


def test_cuda_out_of_memory_halves_the_batch(monkeypatch):
    X = _images(9)
    feat = _feat("test_efficientnet", target_size=64, batch_size=8)
    Z = feat.fit_transform(X)
    run, sizes = TapSet.run, []

    def flaky(self, x, *, n_features):
        sizes.append(len(x))
        if len(x) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return run(self, x, n_features=n_features)

    monkeypatch.setattr(TapSet, "run", flaky)
    with pytest.warns(RuntimeWarning, match="retrying with batch_size") as rec:
        Z2 = feat.transform(X)
    assert [str(w.message)[-1] for w in rec] == ["4", "2"]
    np.testing.assert_allclose(Z2, Z, rtol=1e-5, atol=1e-6)
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) <= 2

    def always(self, x, *, n_features):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(TapSet, "run", always)
    with pytest.raises(torch.OutOfMemoryError), pytest.warns(RuntimeWarning):
        feat.transform(X)


def test_train_mode_restored_and_hooks_removed():
    feat = _feat("test_vit", target_size=64, image_size=32).fit(_images(1))
    feat._model.train()
    feat.transform(_images(2))
    assert feat._model.training
    assert all(not m._forward_hooks for m in feat._model.modules())


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.conv2(self.act1(self.conv1(x)))
        return self.fc(self.pool(x).flatten(1))


def test_user_module_backbone(seed):
    net = SmallNet().eval()
    prep = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "image_size": 16}
    feat = MultiLayerFeaturizer(
        net, layers=["conv*", "fc"], preprocessing=prep, target_size=100, device="cpu"
    )
    Z = feat.fit_transform(_images(3, size=16))
    assert list(feat.layer_names_) == ["conv1", "conv2", "fc"]
    assert list(feat.layer_dims_) == [8 * 3 * 3, 64, 5]
    assert feat.backbone_tag_ is None and feat._model is not net
    assert np.isfinite(Z).all()
    with pytest.raises(ValueError, match="needs a timm model.*list_layers"):
        MultiLayerFeaturizer(net, layers="head2toe", preprocessing=prep).fit(_images(1))


def test_progress_bar(capsys):
    feat = _feat(target_size=32, progress=True, batch_size=2).fit(_images(1))
    feat.transform(_images(4))
    assert re.search(r"features.*4/4", capsys.readouterr().err)
    feat.set_params(progress="auto").transform(_images(4))  # not a terminal
    assert capsys.readouterr().err == ""


def test_invalid_device():
    with pytest.raises(ValueError, match="device='gpu0'"):
        _feat(device="gpu0").fit_transform(_images(1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_closely():
    X = _images(4)
    cpu = _feat("test_resnet", target_size=128).fit(X)
    gpu = _feat("test_resnet", target_size=128, device="cuda").fit(X)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), atol=5e-2)


def test_embedded_weights_recognise_a_temple():
    from sklearn.datasets import load_sample_image

    china = load_sample_image("china.jpg")  # a pagoda-like temple among trees
    feat = MultiLayerFeaturizer(layers="last", normalize=None, device="cpu").fit(
        china[None]
    )
    pre_logits = torch.from_numpy(feat.transform(china[None]))
    with torch.inference_mode():
        logits = feat._model.get_classifier()(pre_logits)
    top5 = set(logits.topk(5).indices[0].tolist())
    info = timm.data.ImageNetInfo()
    temple_like = {442, 832, 663, 698, 497}  # bell cote, stupa, monastery, palace,
    assert "bell cote" in info.index_to_description(442)  # church
    assert "stupa" in info.index_to_description(832)
    assert len(top5 & temple_like) >= 2, [info.index_to_description(i) for i in top5]


def test_pipeline_with_group_lasso_head(tmp_path, monkeypatch):
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline

    from skhead2toe.datasets import load_digits_images
    from skhead2toe.linear_model import GroupLassoClassifier

    X, y = load_digits_images(n_class=3)
    X, y = X[:90], y[:90]
    seen = []
    forward = MultiLayerFeaturizer._forward

    def counting(self, source, idx, *args):
        seen.extend(source.hashes(idx))
        return forward(self, source, idx, *args)

    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", counting)
    feat = MultiLayerFeaturizer(
        image_size=32, target_size=128, layers="blocks", device="cpu", cache=tmp_path
    )
    pipe = make_pipeline(feat, GroupLassoClassifier(alpha=1e-3))
    search = GridSearchCV(
        pipe, {"grouplassoclassifier__alpha": [1e-3, 1e-2]}, cv=3
    ).fit(X, y)
    assert search.best_score_ > 0.8
    # with the cache, the backbone saw each distinct image once in the whole search
    assert len(seen) == len(set(seen)) == len({h for h in feat_hashes(X)})

    plain = make_pipeline(
        MultiLayerFeaturizer(image_size=32, target_size=128, layers="blocks"),
        GroupLassoClassifier(alpha=1e-3),
    )
    scores = cross_val_score(plain, X, y, cv=3, n_jobs=2)
    assert scores.shape == (3,) and scores.mean() > 0.8


def feat_hashes(X):
    from skhead2toe.feature_extraction._images import as_source

    return as_source(X).hashes(range(len(X)))


def test_old_import_paths_give_the_same_objects():
    import skhead2toe
    from skhead2toe import backbones, feature_extraction, featurizer

    assert featurizer.MultiLayerFeaturizer is MultiLayerFeaturizer
    assert skhead2toe.MultiLayerFeaturizer is MultiLayerFeaturizer
    assert backbones.list_layers is feature_extraction.list_layers
    assert skhead2toe.list_layers is feature_extraction.list_layers


def _fail_at_image(monkeypatch, bad=5):
    forward, seen = MultiLayerFeaturizer._forward, []

    def failing(self, source, idx, *args):
        seen.extend(int(i) for i in idx)
        if bad in idx:
            raise OSError(f"cannot decode image {bad} (simulated)")
        return forward(self, source, idx, *args)

    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", failing)
    return seen


def test_out_path_is_written_only_on_success(tmp_path, monkeypatch):
    X = _images(8)
    feat = _feat(target_size=64, batch_size=2).fit(X)
    target = tmp_path / "features.npy"
    _fail_at_image(monkeypatch)
    with pytest.raises(OSError, match="image 5"):
        feat.transform(X, out=target)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp file
    target.write_bytes(b"an earlier result")
    with pytest.raises(OSError, match="image 5"):
        feat.transform(X, out=target)
    assert target.read_bytes() == b"an earlier result"  # left as it was
    assert list(tmp_path.iterdir()) == [target]
    monkeypatch.undo()
    Z = feat.transform(X)
    mm = feat.transform(X, out=target)
    assert isinstance(mm, np.memmap) and Path(mm.filename) == target.resolve()
    np.testing.assert_array_equal(mm, Z)
    del mm
    np.testing.assert_array_equal(np.load(target), Z)
    assert list(tmp_path.iterdir()) == [target]


def test_out_path_checks_free_space_first(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    X = _images(4)
    feat = _feat(target_size=64).fit(X)
    needed = 4 * feat.n_features_out_ * 4
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 0, 1000))
    seen = _fail_at_image(monkeypatch, bad=-1)
    target = tmp_path / "features.npy"
    with pytest.raises(OSError, match="features.npy") as info:
        feat.transform(X, out=target)
    needed_text, free_text = re.search(
        r"([\d,]+) bytes needed, ([\d,]+) bytes available", str(info.value)
    ).groups()
    assert int(needed_text.replace(",", "")) > needed and free_text == "1,000"
    assert seen == []  # nothing was extracted
    assert list(tmp_path.iterdir()) == []


def test_out_path_write_errors_are_clear(tmp_path, monkeypatch):
    import errno

    X = _images(4)
    feat = _feat(target_size=64).fit(X)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    target = tmp_path / "features.npy"
    with pytest.raises(OSError, match=r"features.npy.*No space left") as info:
        feat.transform(X, out=target)
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="features.npy"):
        feat.transform(X, out=tmp_path / "missing" / "features.npy")


def test_a_device_this_machine_lacks_is_a_clear_error(monkeypatch):
    # the Python API gets the check the CLI makes, not torch's driver traceback
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    feat = _feat(device="cuda", target_size=32, progress=False)
    with pytest.raises(RuntimeError, match=r"device='cuda': CUDA is not available"):
        feat.fit_transform(_images(2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"has 1 CUDA device \(cuda:0\)"):
        _feat(device="cuda:1", target_size=32, progress=False).fit_transform(_images(2))


# ------------------------------------------------ several target sizes at once


def _parse_name(name):
    """``(layer, size or None, index)`` of a feature name."""
    layer, *size, index = name.split("__")
    return layer, (int(size[0][1:]) if size else None), int(index)


@pytest.mark.parametrize(
    "backbone, sizes",
    # EfficientNet at 64 px: bn2 is 256 x 2 x 2, so at 4096 it is kept unpooled
    # and differs from the pre-logits, while at 64 it is pooled globally and the
    # pre-logits repeat it: the kept layers differ between the sizes
    [("test_efficientnet", (4096, 64)), ("test_vit", (16, 64, 300))],
)
def test_each_size_block_equals_the_single_size_run(backbone, sizes):
    X = _images(3)
    multi = _feat(backbone, target_size=sizes)
    Z = multi.fit_transform(X)
    dims = multi.layer_dims_
    assert dims.shape == (len(sizes), len(multi.layer_names_))
    assert Z.shape == (3, multi.n_features_out_) and multi.n_features_out_ == dims.sum()
    if backbone == "test_efficientnet":
        assert dims[1, list(multi.layer_names_).index("pre_logits")] == 0
        assert (dims[0] > 0).all()
    np.testing.assert_array_equal(np.bincount(multi.feature_groups_), dims.sum(axis=0))
    names = [_parse_name(n) for n in multi.get_feature_names_out()]
    for size, row in zip(sizes, dims, strict=True):
        single = _feat(backbone, target_size=size)
        expected = single.fit_transform(X)
        block = multi.feature_target_sizes_ == size
        np.testing.assert_array_equal(Z[:, block], expected)
        assert list(multi.layer_names_[row > 0]) == list(single.layer_names_)
        np.testing.assert_array_equal(row[row > 0], single.layer_dims_)
        np.testing.assert_array_equal(
            multi.layer_names_[multi.feature_groups_[block]],
            single.layer_names_[single.feature_groups_],
        )
        single_names = [_parse_name(n) for n in single.get_feature_names_out()]
        assert [n for n, b in zip(names, block, strict=True) if b] == [
            (layer, size, j) for layer, _, j in single_names
        ]


def test_a_one_size_tuple_equals_the_int():
    X = _images(3)
    plain = _feat(target_size=64)
    Z = plain.fit_transform(X)
    one = _feat(target_size=(64,))
    Z1 = one.fit_transform(X)
    assert Z1.tobytes() == Z.tobytes()  # bit for bit
    assert plain.layer_dims_.shape == (len(plain.layer_names_),)
    np.testing.assert_array_equal(one.layer_dims_, plain.layer_dims_[None])
    np.testing.assert_array_equal(one.feature_groups_, plain.feature_groups_)
    for feat in (plain, one):
        assert feat.feature_target_sizes_.dtype == np.int64
        np.testing.assert_array_equal(
            feat.feature_target_sizes_, np.full(feat.n_features_out_, 64)
        )
    names = plain.get_feature_names_out()
    assert not any("__t" in n for n in names)  # an int keeps today's names
    assert names[0] == f"{plain.layer_names_[0]}__0000"
    tagged = [n.replace("__", "__t64__", 1) for n in names]
    assert list(one.get_feature_names_out()) == tagged


def test_sizes_keep_the_given_order_size_major():
    X = _images(2)
    feat = _feat(target_size=[256, 32])  # a list is accepted too
    Z = feat.fit_transform(X)
    sizes = feat.feature_target_sizes_
    starts = np.flatnonzero(np.diff(sizes)) + 1
    assert [int(block[0]) for block in np.split(sizes, starts)] == [256, 32]
    for size, row in zip((256, 32), feat.layer_dims_, strict=True):
        groups = feat.feature_groups_[sizes == size]
        np.testing.assert_array_equal(groups, np.repeat(np.arange(len(row)), row))
        # each (size, layer) block has unit norm per image on its own
        parts = np.split(Z[:, sizes == size], np.cumsum(row)[:-1], axis=1)
        for part in parts:
            np.testing.assert_allclose(np.linalg.norm(part, axis=1), 1, rtol=1e-5)
    swapped = _feat(target_size=(32, 256)).fit_transform(X)
    reordered = np.concatenate([Z[:, sizes == 32], Z[:, sizes == 256]], axis=1)
    np.testing.assert_array_equal(swapped, reordered)


def test_several_sizes_run_the_backbone_once_per_batch():
    feat = _feat(target_size=(32, 64, 128), batch_size=8).fit(_images(1))
    calls = []
    first = feat._model.get_submodule(feat.layer_names_[0])
    handle = first.register_forward_hook(lambda *args: calls.append(1))
    try:
        Z = feat.transform(_images(4))
    finally:
        handle.remove()
    assert calls == [1]
    assert Z.shape == (4, feat.n_features_out_)


@pytest.mark.parametrize(
    "value, problem",
    [
        ((), "it is empty"),
        ([], "it is empty"),
        ((64, 64), "it repeats a size"),
        ((64, 0), "0 is not an int >= 1"),
        ([64, -3], "-3 is not an int >= 1"),
        ((64, 2.5), "2.5 is not an int >= 1"),
        ((True, 64), "True is not an int >= 1"),
        ((64, "128"), "'128' is not an int >= 1"),
    ],
)
def test_invalid_target_sizes_are_clear(value, problem):
    feat = _feat(target_size=value)
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        feat.fit(_images(1))
    assert "'target_size' parameter" in str(info.value)
    assert not hasattr(feat, "backbone_tag_")  # refused before building anything


@pytest.mark.parametrize("value", [0, 64.0, "64", None, {32, 64}])
def test_target_size_of_the_wrong_type_is_refused(value):
    with pytest.raises(ValueError, match="'target_size' parameter"):
        _feat(target_size=value).fit(_images(1))


def test_cache_keys_distinguish_sizes(tmp_path, monkeypatch):
    from skhead2toe.feature_extraction import featurizer as featurizer_module

    seen, keys = [], []
    forward = MultiLayerFeaturizer._forward

    def counting(self, source, idx, *args):
        seen.extend(int(i) for i in idx)
        return forward(self, source, idx, *args)

    params_key = featurizer_module.params_key

    def recording(params):
        keys.append(params["target_size"])
        return params_key(params)

    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", counting)
    monkeypatch.setattr(featurizer_module, "params_key", recording)
    X = _images(3)

    def run(target_size):
        seen.clear()
        feat = _feat(target_size=target_size, cache=tmp_path)
        return feat, feat.fit_transform(X)

    multi, Z = run((32, 64))
    assert sorted(seen) == [0, 1, 2] and keys[-1] == [32, 64]
    seen.clear()
    np.testing.assert_array_equal(multi.transform(X), Z)
    assert seen == []  # its own entries are found
    _, Z64 = run(64)
    assert sorted(seen) == [0, 1, 2]  # not the tuple's entries
    assert type(keys[-1]) is int and keys[-1] == 64  # the key an int always had
    np.testing.assert_array_equal(Z64, Z[:, multi.feature_target_sizes_ == 64])
    _, swapped = run((64, 32))
    assert sorted(seen) == [0, 1, 2]  # another column order, another key
    _, one = run((64,))
    assert seen == []  # a 1-tuple shares the int's entries (same features)
    np.testing.assert_array_equal(one, Z64)
    folders = {p.parent.parent for p in tmp_path.rglob("*.f32")}
    assert len(folders) == 3


def test_standard_normalisation_per_column_with_several_sizes():
    X = _images(4)
    multi = _feat(target_size=(32, 128), normalize="standard")
    Z = multi.fit_transform(X)
    assert multi.mean_.shape == multi.scale_.shape == (multi.n_features_out_,)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    for size in (32, 128):
        single = _feat(target_size=size, normalize="standard")
        expected = single.fit_transform(X)
        block = multi.feature_target_sizes_ == size
        np.testing.assert_array_equal(Z[:, block], expected)
        np.testing.assert_array_equal(multi.scale_[block], single.scale_)
    np.testing.assert_array_equal(multi.transform(X), Z)


def test_several_sizes_survive_pickling_and_clone():
    import pickle

    from sklearn.base import clone

    assert not hasattr(MultiLayerFeaturizer(), "feature_target_sizes_")
    X = _images(2)
    feat = _feat(target_size=(32, 64))
    Z = feat.fit_transform(X)
    loaded = pickle.loads(pickle.dumps(feat))
    np.testing.assert_array_equal(loaded.transform(X), Z)
    np.testing.assert_array_equal(
        loaded.get_feature_names_out(), feat.get_feature_names_out()
    )
    np.testing.assert_array_equal(
        loaded.feature_target_sizes_, feat.feature_target_sizes_
    )
    assert clone(feat).get_params()["target_size"] == (32, 64)
    # a featurizer pickled before tuple sizes existed (no _target_sizes) works
    plain = _feat(target_size=64)
    expected = plain.fit_transform(X)
    old = pickle.loads(pickle.dumps(plain))
    del old._target_sizes
    np.testing.assert_array_equal(old.transform(X), expected)
    np.testing.assert_array_equal(
        old.get_feature_names_out(), plain.get_feature_names_out()
    )
