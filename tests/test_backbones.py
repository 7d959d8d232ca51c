import numpy as np
import pytest
import timm
import torch
from torch import nn

from skhead2toe.feature_extraction.backbones import (
    ALIASES,
    EMBEDDED,
    build_backbone,
    list_layers,
    resolve_layers,
)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_aliases_are_explicit_imagenet_1k_tags():
    assert ALIASES["vit_b16"] == "vit_base_patch16_224.augreg_in1k"
    assert ALIASES["resnet50"].startswith("resnet50.") and "in1k" in ALIASES["resnet50"]
    assert "21k" not in ALIASES["resnet50"]
    for tag in ALIASES.values():
        arch, _, pretrained_tag = tag.partition(".")
        assert timm.is_model(arch)
        if pretrained_tag:
            assert timm.models.get_pretrained_cfg(tag) is not None


def test_alias_tag_is_recorded():
    built = build_backbone("resnet50", pretrained=False, seed=0)
    assert built.tag == "resnet50.tv_in1k"
    assert built.weights == "random(seed=0)"
    assert built.data_config["image_size"] == 224


def test_embedded_default_weights_load_offline():
    built = build_backbone("efficientnet_lite0")
    assert built.tag == "tf_efficientnet_lite0" and built.weights == EMBEDDED
    assert built.data_config["mean"] == built.data_config["std"] == (0.5, 0.5, 0.5)
    assert not built.model.training
    random = build_backbone("efficientnet_lite0", pretrained=False, seed=0)
    assert not _equal_states(_state(built.model), _state(random.model))


def test_random_weights_are_seeded():
    a = build_backbone("test_resnet", pretrained=False, seed=3)
    b = build_backbone("test_resnet", pretrained=False, seed=3)
    c = build_backbone("test_resnet", pretrained=False, seed=4)
    assert _equal_states(_state(a.model), _state(b.model))
    assert not _equal_states(_state(a.model), _state(c.model))
    # the global torch generator is left alone
    torch.manual_seed(0)
    x = torch.rand(3)
    torch.manual_seed(0)
    build_backbone("test_resnet", pretrained=False, seed=3)
    assert torch.equal(torch.rand(3), x)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file(tmp_path, suffix):
    source = build_backbone("test_resnet", pretrained=False, seed=7).model
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    built = build_backbone("test_resnet", pretrained=str(path))
    assert built.weights == f"file:{path.resolve()}"
    assert _equal_states(_state(built.model), _state(source))


def test_bad_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("test_resnet", pretrained=str(tmp_path / "missing.pth"))
    txt = tmp_path / "weights.txt"
    txt.write_text("x")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        build_backbone("test_resnet", pretrained=txt)


def test_failed_download_explains_local_files(monkeypatch):
    real = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained and "pretrained_cfg_overlay" not in kwargs:
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"pretrained='/path/to/model.safetensors'"):
        build_backbone("resnet50", pretrained=True)


def test_unknown_backbone():
    with pytest.raises(ValueError, match=r"timm.list_models"):
        build_backbone("no_such_net", pretrained=False)
    with pytest.raises(ValueError, match="preprocessing is only used"):
        build_backbone("test_resnet", pretrained=False, preprocessing={"mean": 1})


def test_image_size_reaches_vit_position_embeddings():
    built = build_backbone("test_vit", pretrained=False, image_size=64)
    assert built.data_config["image_size"] == 64
    out = built.model(torch.zeros(1, 3, 64, 64))
    assert out.shape[0] == 1


def test_head2toe_presets():
    vit = list_layers("test_vit", preset="head2toe")
    assert vit[:3] == ["patch_embed", "pos_drop", "blocks.0.norm1"]
    assert {"blocks.5.attn", "blocks.5.mlp.act", "blocks.5.mlp.fc2"} <= set(vit)
    assert vit[-2:] == ["norm", "pre_logits"]
    eff = list_layers("efficientnet_lite0", preset="head2toe")
    assert eff[0] == "bn1" and eff[-2:] == ["bn2", "pre_logits"]
    assert "blocks.5.3" in eff  # every sub-block
    res = list_layers("test_resnet", preset="head2toe")
    assert res[0] == "act1" and "layer1.0" in res
    cnx = list_layers("test_convnext", preset="head2toe")
    assert cnx[0] == "stem" and "stages.3.blocks.0" in cnx
    assert list_layers("test_resnet", preset="last") == ["pre_logits"]
    with pytest.raises(ValueError, match="no 'head2toe' preset"):
        list_layers("test_byobnet", preset="head2toe")


def test_blocks_preset_is_feature_info():
    model = timm.create_model("test_efficientnet", pretrained=False)
    assert resolve_layers(model, "blocks") == [d["module"] for d in model.feature_info]


def test_explicit_names_and_globs():
    model = timm.create_model("test_vit", pretrained=False)
    names = resolve_layers(model, ["blocks.*.mlp.act", "norm", "last", "norm"])
    assert names == [f"blocks.{i}.mlp.act" for i in range(6)] + ["norm", "pre_logits"]
    all_mlp = resolve_layers(model, "blocks.0.mlp.*")
    assert "blocks.0.mlp.fc1" in all_mlp
    # identity-like modules are skipped by patterns, kept when named
    assert "blocks.0.mlp.drop1" not in all_mlp and "blocks.0.mlp.norm" not in all_mlp
    assert resolve_layers(model, "blocks.0.mlp.drop1") == ["blocks.0.mlp.drop1"]


def test_unknown_layer_says_how_to_list():
    model = timm.create_model("test_vit", pretrained=False)
    with pytest.raises(
        ValueError, match=r"unknown layer 'blocks.0.mlp.gelu'.*list_layers"
    ):
        resolve_layers(model, ["blocks.0.mlp.gelu"])
    with pytest.raises(ValueError, match=r"matches no module.*list_layers"):
        resolve_layers(model, "encoder.*")
    with pytest.raises(ValueError, match="empty"):
        resolve_layers(model, [])
    with pytest.raises(ValueError, match="preset must be"):
        list_layers("test_vit", preset="all")


def test_user_module_needs_preprocessing():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match="preprocessing="):
        build_backbone(net)
    with pytest.raises(ValueError, match="lacks"):
        build_backbone(net, preprocessing={"mean": (0, 0, 0), "image_size": 8})
    built = build_backbone(
        net, preprocessing={"mean": (0, 0, 0), "std": (1, 1, 1), "image_size": 8}
    )
    assert built.tag is None and built.model is not net  # a private copy
    assert list_layers(net) == ["0", "1"]
    with pytest.raises(ValueError, match="needs a timm model"):
        resolve_layers(net, "head2toe")


def _bad_weights(tmp_path, kind, suffix):
    path = tmp_path / f"{kind}{suffix}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    else:  # the first half of a valid file
        source = build_backbone("test_resnet", pretrained=False).model.state_dict()
        full = tmp_path / f"full{suffix}"
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(source, str(full))
        else:
            torch.save(source, full)
        data = full.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".bin"])
@pytest.mark.parametrize("kind", ["empty", "random", "truncated"])
def test_unreadable_weights_file_is_named(tmp_path, kind, suffix):
    path = _bad_weights(tmp_path, kind, suffix)
    with pytest.raises(ValueError, match="not a readable") as info:
        build_backbone("test_resnet", pretrained=path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert ("safetensors" if suffix == ".safetensors" else "PyTorch") in message
    assert "weights_only=False" not in message
    cause = info.value.__cause__
    assert cause is None or "weights_only=False" not in str(cause)


def test_checkpoint_with_training_args_still_loads(tmp_path):
    # timm allows argparse.Namespace (its training checkpoints' "args")
    import argparse

    source = build_backbone("test_resnet", pretrained=False, seed=5).model
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": source.state_dict(), "args": argparse.Namespace()}, path)
    built = build_backbone("test_resnet", pretrained=path)
    assert _equal_states(_state(built.model), _state(source))
    legacy = tmp_path / "legacy.pth"
    torch.save(source.state_dict(), legacy, _use_new_zipfile_serialization=False)
    built = build_backbone("test_resnet", pretrained=legacy)
    assert _equal_states(_state(built.model), _state(source))


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """A hub endpoint on a closed local port and an empty hub cache."""
    import socket

    from huggingface_hub import constants

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections refused
    monkeypatch.setattr(
        constants, "ENDPOINT", f"http://127.0.0.1:{closed.getsockname()[1]}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    yield tmp_path / "hub"
    closed.close()


def test_unreachable_hub_fails_fast_and_names_the_ways_out(unreachable_hub, caplog):
    import time

    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE") as info:
        build_backbone("test_resnet", pretrained=True)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "timm/test_resnet.r160_in1k" in message  # the hub repository
    assert "pretrained='/path/to/model.safetensors'" in message
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]


def test_unreachable_hub_still_reads_the_local_hub_cache(unreachable_hub):
    from safetensors.torch import save_file

    source = build_backbone("test_resnet", pretrained=False, seed=9).model
    repo = unreachable_hub / "models--timm--test_resnet.r160_in1k"
    commit = "0" * 40
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file(
        source.state_dict(), str(repo / "snapshots" / commit / "model.safetensors")
    )
    built = build_backbone("test_resnet", pretrained=True)
    assert built.weights == "timm hub"
    assert _equal_states(_state(built.model), _state(source))


# ---------------------------------------------------------------- ResNet presets
RESNET50_DEPTHS = (3, 4, 6, 3)  # bottlenecks per stage


def _resnet_blocks(depths):
    return [f"layer{i + 1}.{j}" for i, d in enumerate(depths) for j in range(d)]


@pytest.fixture(scope="module")
def resnet50():
    # zero_init_last=False: timm zero-initialises each bottleneck's last norm, which
    # makes the blocks without a downsample identities at random init
    return timm.create_model("resnet50", pretrained=False, zero_init_last=False).eval()


def _images(n=2, size=64):
    return np.random.default_rng(0).random((n, size, size, 3)).astype(np.float32)


def test_resnet50_head2toe_taps_three_points_per_bottleneck():
    names = list_layers("resnet50", preset="head2toe")
    expected = ["act1"]
    for block in _resnet_blocks(RESNET50_DEPTHS):
        expected += [f"{block}.act1", f"{block}.act2", block]
    assert names == [*expected, "pre_logits"]
    assert len(names) == 1 + 16 * 3 + 1 == 50
    assert set(names) <= set(list_layers("resnet50"))


def test_resnet50_head2toe_taps_follow_the_forward_pass(resnet50):
    names = list_layers("resnet50", preset="head2toe")
    modules = dict(resnet50.named_modules())
    assert all(name in modules for name in names[:-1])
    seen = []
    handles = [
        modules[name].register_forward_hook(lambda *_, n=name: seen.append(n))
        for name in names[:-1]
    ]
    try:
        with torch.no_grad():
            resnet50(torch.zeros(1, 3, 32, 32))
    finally:
        for handle in handles:
            handle.remove()
    assert seen == names[:-1]  # each module runs once, in the preset's order
    assert names[-1] == "pre_logits"


@pytest.mark.parametrize(
    ("backbone", "depths", "inner"),
    [
        ("resnet18", (2, 2, 2, 2), ("act1",)),  # BasicBlock: conv2 reads act1
        ("resnet34", (3, 4, 6, 3), ("act1",)),
        ("resnet101", (3, 4, 23, 3), ("act1", "act2")),
        ("resnet152", (3, 8, 36, 3), ("act1", "act2")),
    ],
)
def test_resnet_head2toe_rule_per_block_type(backbone, depths, inner):
    names = list_layers(backbone, preset="head2toe")
    expected = ["act1"]
    for block in _resnet_blocks(depths):
        expected += [*(f"{block}.{act}" for act in inner), block]
    assert names == [*expected, "pre_logits"]
    assert set(names) <= set(list_layers(backbone))


def test_head2toe_blocks_preset_keeps_one_tap_per_block():
    old = ["act1", *_resnet_blocks(RESNET50_DEPTHS), "pre_logits"]
    assert list_layers("resnet50", preset="head2toe_blocks") == old
    assert len(old) == 18
    # the block-level taps are the head2toe taps minus those inside the blocks
    full = list_layers("resnet50", preset="head2toe")
    assert [n for n in full if ".act" not in n] == old
    assert list_layers("test_resnet", preset="head2toe_blocks") == [
        "act1",
        *_resnet_blocks((1, 1, 1, 1)),
        "pre_logits",
    ]
    vit = list_layers("test_vit", preset="head2toe_blocks")
    assert vit == ["patch_embed", "pos_drop", *(f"blocks.{i}" for i in range(6))] + [
        "norm",
        "pre_logits",
    ]
    for cnn in ("test_efficientnet", "test_convnext"):
        assert list_layers(cnn, preset="head2toe_blocks") == list_layers(
            cnn, preset="head2toe"
        )
    with pytest.raises(ValueError, match="no 'head2toe_blocks' preset"):
        list_layers("test_byobnet", preset="head2toe_blocks")


@pytest.mark.parametrize(
    ("layers", "n_layers"), [("head2toe", 50), ("head2toe_blocks", 18)]
)
def test_featurizer_taps_every_resnet50_preset_layer(resnet50, layers, n_layers):
    from skhead2toe import MultiLayerFeaturizer

    # target_size above layer4's 2048 x 2 x 2 values: its blocks are not pooled
    # to the pre-logits (an exact repeat, which the featurizer would drop)
    feat = MultiLayerFeaturizer(
        resnet50, layers=layers, image_size=64, target_size=8192, device="cpu"
    )
    Z = feat.fit_transform(_images())
    assert list(feat.layer_names_) == list_layers("resnet50", preset=layers)
    assert len(feat.layer_names_) == n_layers
    assert Z.shape == (2, feat.layer_dims_.sum()) and np.isfinite(Z).all()
    assert np.bincount(feat.feature_groups_).tolist() == feat.layer_dims_.tolist()


def test_featurizer_on_the_resnet50_alias_with_random_weights():
    from skhead2toe import MultiLayerFeaturizer

    feat = MultiLayerFeaturizer(
        "resnet50", pretrained=False, image_size=64, target_size=8192, device="cpu"
    )
    Z = feat.fit_transform(_images())
    names = list_layers("resnet50", preset="head2toe")
    # timm zero-initialises the last norm of each bottleneck, so at random init a
    # block without a downsample returns its input: its output repeats the
    # previous block's exactly and is dropped; every act1/act2 tap stays
    repeats = [b for b in _resnet_blocks(RESNET50_DEPTHS) if not b.endswith(".0")]
    assert list(feat.layer_names_) == [n for n in names if n not in repeats]
    assert len(feat.layer_names_) == 50 - 12
    assert Z.shape == (2, feat.layer_dims_.sum())
