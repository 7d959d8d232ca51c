"""skhead2toe.export: the standalone torch module and the ONNX file."""

import errno
import json
import os

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skhead2toe import GroupLassoClassifier, GroupLassoClassifierCV
from skhead2toe.datasets import load_digits_images
from skhead2toe.export import ExportedPipeline, to_onnx, to_torch
from skhead2toe.export import _onnx as onnx_module
from skhead2toe.feature_extraction import MultiLayerFeaturizer
from skhead2toe.linear_model import LinearProbe

SIZE = 64  # the featurizer's input size: the images below are already at it
EARLY = "blocks.3.0"  # the early-layers head uses the layers before this one


def _images(n=30, n_class=3):
    """Digits upscaled to SIZE x SIZE, as float32 RGB (N, 3, SIZE, SIZE) in [0, 1]."""
    X, y = load_digits_images(n_class=n_class)
    X, y = X[:n], y[:n]
    big = np.kron(X, np.ones((SIZE // 8, SIZE // 8), dtype=np.uint8))
    rgb = np.repeat(big[:, None], 3, axis=1).astype(np.float32) / 255.0
    # a little per-channel noise so that the three channels differ
    noise = np.random.default_rng(0).random(rgb.shape, dtype=np.float32)
    return np.clip(rgb * 0.9 + 0.1 * noise, 0, 1).astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    return _images()


@pytest.fixture(scope="module")
def fitted(data):
    """One featurizer (two target sizes) and its features, built once."""
    X, _ = data
    feat = MultiLayerFeaturizer(image_size=SIZE, target_size=(64, 256), device="cpu")
    return feat, feat.fit_transform(X)


@pytest.fixture(scope="module")
def heads(fitted, data):
    """Fitted heads of several kinds, by name, on the module's features."""
    feat, Z = fitted
    y = data[1]
    early = np.flatnonzero(feat.layer_names_ == EARLY)[0]
    Z_early = np.where(feat.feature_groups_ < early, Z, 0).astype(np.float32)
    return {
        "top_fraction": GroupLassoClassifier(alpha=1e-2, keep_fraction=0.01).fit(Z, y),
        "group_lasso": GroupLassoClassifier(alpha=2e-2).fit(Z, y),
        # fitted on the early layers' columns only: the later rows of W are zero
        "early_layers": GroupLassoClassifier(alpha=1e-2).fit(Z_early, y),
        "probe": LinearProbe(C=1.0).fit(Z, y),
        "cv_renormalize": GroupLassoClassifierCV(
            alphas=2, cv=3, keep_fractions=[0.01, 0.05], renormalize=True
        ).fit(Z, y),
        "binary": LinearProbe(C=1.0).fit(Z[y < 2], y[y < 2]),
        "nothing": GroupLassoClassifier(alpha=10.0).fit(Z, y),  # W = 0
    }


def _pipe(fitted, head):
    return make_pipeline(fitted[0], head)


def _proba(module, X):
    with torch.inference_mode():
        return module(torch.from_numpy(X)).numpy()


def _graph_targets(module):
    return {str(n.target) for n in module.backbone.graph.nodes if n.op == "call_module"}


@pytest.mark.parametrize(
    "name",
    ["top_fraction", "group_lasso", "early_layers", "probe", "cv_renormalize"],
)
def test_probabilities_equal_predict_proba(fitted, heads, data, name):
    X, y = data
    pipe = _pipe(fitted, heads[name])
    module = to_torch(pipe)
    assert isinstance(module, ExportedPipeline)
    assert module.input_shape == (3, SIZE, SIZE) and module.image_size == SIZE
    proba = _proba(module, X)
    assert proba.dtype == np.float32 and proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=1e-5)
    assert module.classes.tolist() == heads[name].classes_.tolist()


def test_a_multi_layer_head_spans_layers_and_sizes(fitted, heads, data):
    feat, _ = fitted
    module = to_torch(_pipe(fitted, heads["top_fraction"]))
    assert len(module.layer_names) >= 3
    # columns, layers and target sizes agree with the featurizer's layout
    groups = feat.feature_groups_[module.columns]
    assert module.layer_names == tuple(feat.layer_names_[np.unique(groups)])
    assert set(feat.feature_target_sizes_[module.columns]) == {64, 256}
    assert module.n_features_used == np.count_nonzero(
        np.any(heads["top_fraction"]._W != 0, axis=1)
    )
    X = torch.from_numpy(data[0][:4])
    with torch.inference_mode():
        got = module.features(X).numpy()
    np.testing.assert_allclose(got, feat.transform(X.numpy())[:, module.columns])


def test_the_backbone_stops_after_the_last_used_layer(fitted, heads):
    feat, _ = fitted
    module = to_torch(_pipe(fitted, heads["early_layers"]))
    early = list(feat.layer_names_).index(EARLY)
    assert set(module.layer_names) <= set(feat.layer_names_[:early])
    assert module.last_layer == module.layer_names[-1]
    targets = _graph_targets(module)
    assert any(t.startswith(f"model.{module.last_layer}.") for t in targets)
    later = ("model.blocks.4", "model.blocks.5", "model.blocks.6", "model.conv_head")
    assert not [t for t in targets if t.startswith(later)]
    # the cut blocks are not even stored
    stored = {name for name, _ in module.backbone.named_modules()}
    assert "model.blocks.6" not in stored and "model.conv_head" not in stored
    n_params = sum(p.numel() for p in module.parameters())
    assert n_params < sum(p.numel() for p in feat._model.parameters()) / 4


def test_the_renormalizing_head_reads_its_kept_columns(fitted, heads):
    head = heads["cv_renormalize"]
    assert head._renorm is not None
    module = to_torch(_pipe(fitted, head))
    np.testing.assert_array_equal(
        module.columns, np.flatnonzero(head.selected_features_)
    )


def test_binary_head(fitted, heads, data):
    X, y = data
    pipe = _pipe(fitted, heads["binary"])
    proba = _proba(to_torch(pipe), X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=1e-5)


def test_a_head_without_features_runs_no_backbone(fitted, heads, data):
    X, _ = data
    pipe = _pipe(fitted, heads["nothing"])
    module = to_torch(pipe)
    assert module.backbone is None and module.n_features_used == 0
    assert module.last_layer is None
    np.testing.assert_allclose(_proba(module, X), pipe.predict_proba(X), atol=1e-6)


def test_standard_normalization_and_one_target_size(data):
    X, y = data
    feat = MultiLayerFeaturizer(
        image_size=SIZE, target_size=64, normalize="standard", device="cpu"
    )
    Z = feat.fit_transform(X)
    pipe = make_pipeline(feat, GroupLassoClassifier(alpha=5e-2, keep_fraction=0.02))
    pipe[-1].fit(Z, y)
    module = to_torch(pipe)
    assert len(module.layer_names) >= 2
    np.testing.assert_allclose(_proba(module, X), pipe.predict_proba(X), atol=1e-5)


def test_token_outputs_of_a_vit():
    X, y = _images(12)
    X, y = X[:, :, :32, :32].copy(), y
    feat = MultiLayerFeaturizer(
        "test_vit",
        pretrained=False,
        random_state=0,
        image_size=32,
        target_size=96,
        cls_token="separate",
        device="cpu",
    )
    pipe = make_pipeline(feat, LinearProbe(C=1.0)).fit(X, y)
    module = to_torch(pipe)
    assert "pre_logits" in module.layer_names
    np.testing.assert_allclose(_proba(module, X), pipe.predict_proba(X), atol=1e-5)


def test_torch_export_with_a_dynamic_batch(fitted, heads, data):
    X, _ = data
    pipe = _pipe(fitted, heads["top_fraction"])
    module = to_torch(pipe)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        module, (torch.from_numpy(X[:2]),), dynamic_shapes=({0: batch},)
    )
    with torch.inference_mode():
        got = program.module()(torch.from_numpy(X[:7])).numpy()
    np.testing.assert_allclose(got, pipe.predict_proba(X[:7]), atol=1e-5)


def test_wrong_input_is_refused(fitted, heads, data):
    module = to_torch(_pipe(fitted, heads["early_layers"]))
    with pytest.raises(ValueError, match=r"shape \(N, 3, 64, 64\).*resize"):
        module(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="torch.float32"):
        module(torch.zeros(2, 3, SIZE, SIZE, dtype=torch.float64))


# ------------------------------------------------------------------ errors
def test_pipelines_that_cannot_be_exported(fitted, heads, data):
    feat, Z = fitted
    X, y = data
    head = heads["early_layers"]
    with pytest.raises(TypeError, match="GroupLassoClassifier alone.*no featurizer"):
        to_torch(head)
    with pytest.raises(TypeError, match="MultiLayerFeaturizer alone"):
        to_torch(feat)
    with pytest.raises(TypeError, match=r"Pipeline of \['MultiLayerFeaturizer', "):
        to_torch(make_pipeline(feat, StandardScaler(), head))
    lr = LogisticRegression(max_iter=50).fit(Z, y)
    with pytest.raises(TypeError, match="LogisticRegression; export supports"):
        to_torch(make_pipeline(feat, lr))
    with pytest.raises(NotFittedError, match="GroupLassoClassifier in the pipeline"):
        to_torch(make_pipeline(feat, GroupLassoClassifier()))
    unfitted = MultiLayerFeaturizer(image_size=SIZE)
    with pytest.raises(NotFittedError, match="MultiLayerFeaturizer in the pipeline"):
        to_torch(make_pipeline(unfitted, head))
    other = LinearProbe().fit(Z[:, :10], y)
    with pytest.raises(ValueError, match="fitted on 10 features"):
        to_torch(make_pipeline(feat, other))


class _DataDependent(nn.Module):
    """Python control flow on tensor values: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = self.conv(x)
        if x.mean() > 0:
            x = -x
        return self.fc(x.mean(dim=(2, 3)))


class _CountingScale(nn.Module):
    """Adds its call count: a trace freezes the count it saw."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x + float(self.calls)


class _Stateful(nn.Module):
    """Traceable, but a layer's output depends on Python state."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.scale = _CountingScale()

    def forward(self, x):
        return self.scale(self.conv(x))


_PREP = {"mean": (0.5,) * 3, "std": (0.5,) * 3, "image_size": 16}


def _module_pipeline(net, layers):
    X, y = _images(12)
    X = X[:, :, :16, :16].copy()
    feat = MultiLayerFeaturizer(
        net, layers=layers, preprocessing=_PREP, target_size=32, device="cpu"
    )
    return make_pipeline(feat, LinearProbe()).fit(X, y)


def test_an_untraceable_module_is_refused():
    pipe = _module_pipeline(_DataDependent(), ["conv", "fc"])
    with pytest.raises(TypeError, match="_DataDependent: torch.fx cannot trace"):
        to_torch(pipe)


def test_the_check_catches_a_trace_that_differs():
    pipe = _module_pipeline(_Stateful(), ["conv", "scale"])
    with pytest.raises(RuntimeError, match="layer 'scale'.* differs"):
        to_torch(pipe)
    assert isinstance(to_torch(pipe, check=False), ExportedPipeline)


# -------------------------------------------------------------------- ONNX
@pytest.fixture(scope="module")
def onnx_file(fitted, heads, tmp_path_factory):
    pipe = _pipe(fitted, heads["early_layers"])
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return pipe, path, to_onnx(pipe, path, opset=18)


def test_onnx_matches_predict_proba(onnx_file, data):
    X, _ = data
    pipe, path, info = onnx_file
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and inp.shape[1:] == [3, SIZE, SIZE]
    assert not isinstance(inp.shape[0], int)  # the batch axis is dynamic
    for n in (1, len(X)):
        got = session.run(None, {"images": X[:n]})[0]
        np.testing.assert_allclose(got, pipe.predict_proba(X[:n]), rtol=0, atol=1e-4)
    assert info["max_abs_diff"] <= 1e-4


def test_onnx_records_the_opset_and_the_contract(onnx_file):
    pipe, path, info = onnx_file
    model = onnx.load(path)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert info["opset"] == 18 and opsets[""] == 18
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["skhead2toe.opset"] == "18"
    assert json.loads(meta["skhead2toe.classes"]) == pipe.classes_.tolist()
    assert json.loads(meta["skhead2toe.layer_names"]) == info["layer_names"]
    assert "[0, 1]" in meta["skhead2toe.input"]
    assert info["bytes"] == os.path.getsize(path)
    assert info["input_shape"] == ["batch", 3, SIZE, SIZE]
    json.dumps(info)  # plain values, for a command line to print


def test_onnx_failures_leave_no_file(onnx_file, tmp_path, monkeypatch):
    pipe, path, _ = onnx_file
    data = path.read_bytes()
    monkeypatch.setattr(onnx_module, "_export", lambda *a: onnx.load_from_string(data))
    target = tmp_path / "out.onnx"

    real_write = onnx_module.atomic_write

    def half_then_full_disk(path, write, **kwargs):
        def write_half(f):
            f.write(b"\x08" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real_write(path, write_half, **kwargs)

    monkeypatch.setattr(onnx_module, "atomic_write", half_then_full_disk)
    with pytest.raises(OSError, match="No space left"):
        to_onnx(pipe, target)
    assert list(tmp_path.iterdir()) == []
    # a failed check writes nothing either, and an existing file is kept
    monkeypatch.setattr(onnx_module, "atomic_write", real_write)
    monkeypatch.setattr(onnx_module, "_CHECK_TOL", -1.0)
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="nothing was written"):
        to_onnx(pipe, target)
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_onnx_refuses_a_folder_that_does_not_exist(onnx_file, tmp_path):
    pipe = onnx_file[0]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(pipe, tmp_path / "missing" / "model.onnx")
