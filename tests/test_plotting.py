import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import Bunch

from skhead2toe import (
    GroupLassoClassifier,
    GroupLassoClassifierCV,
    MultiLayerFeaturizer,
    alpha_max,
)
from skhead2toe.inspection import layer_importances, probe_layers
from skhead2toe.plotting import (
    LayerImportanceDisplay,
    RegularizationPathDisplay,
    TransferabilityCurveDisplay,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

N_LAYERS, WIDTH, SIGNAL = 6, 10, 3


def planted(n=200, seed=0):
    """6 layers of 10 features; only layer 3 depends on the class (3 classes)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, N_LAYERS * WIDTH))
    centers = 1.5 * rng.standard_normal((3, WIDTH))
    X[:, SIGNAL * WIDTH : (SIGNAL + 1) * WIDTH] += centers[y]
    return X, y, np.repeat(np.arange(N_LAYERS), WIDTH)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def lasso(data):
    X, y, _ = data
    return GroupLassoClassifier(alpha=0.2 * alpha_max(X, y)).fit(X, y)


@pytest.fixture(scope="module")
def path(data):
    X, y, _ = data
    return GroupLassoClassifierCV(alphas=4, eps=0.05, keep_fractions=None, cv=3).fit(
        X, y
    )


def _texts(labels):
    return [t.get_text() for t in labels]


# ------------------------------------------------------------ optional matplotlib
def test_import_does_not_import_matplotlib():
    code = (
        "import sys, skhead2toe.plotting, skhead2toe.inspection; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    disp = LayerImportanceDisplay(
        layer_names=["a"], norm_share=[1.0], selected_share=[1.0]
    )
    with pytest.raises(ImportError, match="pip install matplotlib"):
        disp.plot()


# ----------------------------------------------------------- layer importances
def test_layer_importance_display_from_estimator(lasso, data):
    _, _, groups = data
    names = [f"L{i}" for i in range(N_LAYERS)]
    disp = LayerImportanceDisplay.from_estimator(lasso, groups, layer_names=names)
    imp = layer_importances(lasso, groups, layer_names=names)
    assert set(disp.bars_) == {"norm_share", "selected_share"}
    for key, bars in disp.bars_.items():
        assert isinstance(bars, BarContainer) and len(bars) == N_LAYERS
        np.testing.assert_allclose([b.get_height() for b in bars], imp[key])
    # the two bars of a layer sit side by side around its tick, input side left
    centers = [b.get_x() + b.get_width() / 2 for b in disp.bars_["norm_share"]]
    assert np.all(np.diff(centers) > 0)
    np.testing.assert_allclose(disp.ax_.get_xticks(), np.arange(N_LAYERS))
    assert _texts(disp.ax_.get_xticklabels()) == names
    tallest = np.argmax([b.get_height() for b in disp.bars_["norm_share"]])
    assert tallest == SIGNAL
    assert disp.ax_.get_ylabel() == "share over layers"
    assert "input side" in disp.ax_.get_xlabel()
    n_sel = int(lasso.selected_features_.sum())
    assert disp.ax_.get_title() == (
        f"Layer importances ({n_sel} of {N_LAYERS * WIDTH} features selected)"
    )
    assert _texts(disp.legend_.get_texts()) == [
        "share of group norm",
        "share of selected features",
    ]
    assert disp.figure_ is disp.ax_.figure


def test_layer_importance_display_on_given_axes_with_kwargs(lasso, data):
    _, _, groups = data
    fig, ax = plt.subplots()
    disp = LayerImportanceDisplay.from_estimator(
        lasso, groups, ax=ax, width=0.3, title="mine", edgecolor="red"
    )
    assert disp.ax_ is ax and disp.figure_ is fig
    assert ax.get_title() == "mine"
    bar = disp.bars_["selected_share"][0]
    assert bar.get_width() == pytest.approx(0.3)
    assert bar.get_edgecolor() == matplotlib.colors.to_rgba("red")
    assert len(ax.patches) == 2 * N_LAYERS


def test_layer_importance_display_from_pipeline():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = np.arange(20) % 2
    X[y == 1, :16] //= 3
    feat = MultiLayerFeaturizer(
        "test_resnet",
        pretrained=False,
        image_size=32,
        target_size=32,
        device="cpu",
        progress=False,
        random_state=0,
    )
    alpha = 0.3 * alpha_max(feat.fit_transform(X), y)
    pipe = make_pipeline(feat, GroupLassoClassifier(alpha=alpha)).fit(X, y)
    disp = LayerImportanceDisplay.from_estimator(pipe)
    assert _texts(disp.ax_.get_xticklabels()) == list(feat.layer_names_)
    assert len(disp.bars_["norm_share"]) == len(feat.layer_names_)


def test_layer_importance_display_validation():
    with pytest.raises(ValueError, match="norm_share .* expected length 2, got 3"):
        LayerImportanceDisplay(
            layer_names=["a", "b"], norm_share=[1, 0, 0], selected_share=[1, 0]
        )
    with pytest.raises(ValueError, match="layer_names must be a non-empty"):
        LayerImportanceDisplay(layer_names=[], norm_share=[], selected_share=[])
    with pytest.raises(ValueError, match="n_selected .* expected length 1"):
        LayerImportanceDisplay(
            layer_names=["a"], norm_share=[1], selected_share=[1], n_selected=[1, 2]
        )


# ----------------------------------------------------------- transferability
@pytest.fixture(scope="module")
def probes(data):
    X, y, groups = data
    names = [f"L{i}" for i in range(N_LAYERS)]
    pretrained = probe_layers(X, y, groups, cv=3, layer_names=names)
    rng = np.random.default_rng(1)
    control = probe_layers(
        rng.permutation(X), y, groups, cv=3, layer_names=names
    )  # rows shuffled: no signal anywhere
    return pretrained, control


def test_transferability_display_from_probes(probes):
    pretrained, control = probes
    disp = TransferabilityCurveDisplay.from_probes(
        pretrained, control, chance_level=1 / 3
    )
    ax = disp.ax_
    np.testing.assert_allclose(disp.line_.get_xdata(), np.arange(N_LAYERS))
    np.testing.assert_allclose(disp.line_.get_ydata(), pretrained.mean_scores)
    np.testing.assert_allclose(disp.control_line_.get_ydata(), control.mean_scores)
    assert disp.control_line_.get_linestyle() == "--"
    assert disp.line_.get_linestyle() == "-"
    np.testing.assert_allclose(disp.chance_line_.get_ydata(), [1 / 3, 1 / 3])
    assert disp.band_ is not None and disp.control_band_ is not None
    # the band spans mean +- std
    lo, hi = disp.band_.get_paths()[0].get_extents().get_points()[:, 1]
    top = pretrained.mean_scores + pretrained.std_scores
    bottom = pretrained.mean_scores - pretrained.std_scores
    assert lo == pytest.approx(bottom.min()) and hi == pytest.approx(top.max())
    labels = ax.get_xticklabels()
    assert _texts(labels) == [f"L{i}" for i in range(N_LAYERS)]
    assert all(t.get_rotation() == 60 for t in labels)
    assert ax.get_ylabel() == "mean CV score"
    assert "input side" in ax.get_xlabel()
    legend = _texts(ax.get_legend().get_texts())
    assert legend == ["pretrained", "random weights (control)", "chance level"]
    assert len(ax.lines) == 3
    assert disp.figure_ is ax.figure


def test_transferability_display_without_control(probes):
    pretrained, _ = probes
    disp = TransferabilityCurveDisplay.from_probes(pretrained, name="digits", lw=3)
    assert disp.control_line_ is None and disp.chance_line_ is None
    assert disp.line_.get_label() == "digits" and disp.line_.get_linewidth() == 3
    assert len(disp.ax_.lines) == 1


def test_transferability_control_is_matched_by_layer_name(probes):
    pretrained, _ = probes
    control = Bunch(
        layer_names=np.array(["L5", "L0", "other"], dtype=object),
        mean_scores=np.array([0.5, 0.4, 0.9]),
        std_scores=np.array([0.01, 0.02, 0.03]),
    )
    disp = TransferabilityCurveDisplay.from_probes(pretrained, control)
    expected = [0.4, np.nan, np.nan, np.nan, np.nan, 0.5]
    np.testing.assert_allclose(disp.control_mean_scores, expected)
    np.testing.assert_allclose(disp.control_line_.get_ydata(), expected)
    unrelated = Bunch(layer_names=["x"], mean_scores=[0.5])
    with pytest.raises(ValueError, match="shares no layer name"):
        TransferabilityCurveDisplay.from_probes(pretrained, unrelated)


def test_transferability_display_validation():
    with pytest.raises(ValueError, match="std_scores .* expected length 2"):
        TransferabilityCurveDisplay(
            layer_names=["a", "b"], mean_scores=[1, 2], std_scores=[1]
        )
    with pytest.raises(ValueError, match="control_std_scores needs control_mean"):
        TransferabilityCurveDisplay(
            layer_names=["a"], mean_scores=[1], control_std_scores=[0.1]
        )
    with pytest.raises(ValueError, match="mean_scores must be 1-D"):
        TransferabilityCurveDisplay(layer_names=["a"], mean_scores=[[1]])


# -------------------------------------------------------- regularisation path
def test_regularization_path_display_from_estimator(path):
    disp = RegularizationPathDisplay.from_estimator(path)
    ax = disp.ax_
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "alpha"
    assert len(disp.lines_) == 1 and disp.lines_[0].get_label() == "no refit"
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), path.alphas_)
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), path.mean_scores_[:, 0, 0])
    np.testing.assert_allclose(disp.alpha_line_.get_xdata(), [path.alpha_] * 2)
    np.testing.assert_allclose(
        disp.nonzero_line_.get_ydata(), path.n_nonzero_.mean(axis=0)
    )
    assert disp.ax_nonzero_ is not ax
    assert disp.ax_nonzero_.get_shared_x_axes().joined(ax, disp.ax_nonzero_)
    assert disp.ax_nonzero_.get_ylabel() == "selected groups (features)"
    assert ax.get_ylabel() == "mean CV score"
    legend = _texts(ax.get_legend().get_texts())
    assert legend == [
        "no refit",
        "selected groups",
        f"chosen alpha = {path.alpha_:.3g}",
    ]
    assert disp.figure_ is ax.figure


def test_regularization_path_one_line_per_keep_fraction(data):
    X, y, _ = data
    cv = GroupLassoClassifierCV(
        alphas=3, eps=0.1, cv=3, keep_fractions=[0.1, 0.5], refit_l2s=[1e-2, 1e-4]
    ).fit(X, y)
    k = list(cv.refit_l2s_).index(cv.refit_l2_)  # curves at the chosen refit ridge
    fig, ax = plt.subplots()
    disp = RegularizationPathDisplay.from_estimator(
        make_pipeline(cv), ax=ax, linewidth=4
    )
    assert disp.ax_ is ax
    assert [ln.get_label() for ln in disp.lines_] == [
        "keep_fraction=0.1",
        "keep_fraction=0.5",
    ]
    assert all(ln.get_linewidth() == 4 for ln in disp.lines_)
    for j, line in enumerate(disp.lines_):
        np.testing.assert_allclose(line.get_ydata(), cv.mean_scores_[:, j, k])
    assert disp.alpha_line_.get_xdata()[0] == pytest.approx(cv.alpha_)


def test_regularization_path_display_without_alpha():
    disp = RegularizationPathDisplay(
        alphas=[1.0, 0.1], mean_scores=[0.3, 0.9], n_nonzero=[0, 5]
    ).plot()
    assert disp.alpha_line_ is None and len(disp.lines_) == 1


def test_regularization_path_display_validation(lasso):
    ok = {"alphas": [1.0, 0.1], "mean_scores": [0.3, 0.9], "n_nonzero": [0, 5]}
    with pytest.raises(ValueError, match="alphas must be positive"):
        RegularizationPathDisplay(**(ok | {"alphas": [1.0, 0.0]}))
    with pytest.raises(ValueError, match="mean_scores must have shape"):
        RegularizationPathDisplay(**(ok | {"mean_scores": [0.3, 0.9, 0.1]}))
    with pytest.raises(ValueError, match="n_nonzero .* expected length 2"):
        RegularizationPathDisplay(**(ok | {"n_nonzero": [1]}))
    with pytest.raises(ValueError, match="keep_fractions must name each of the 1"):
        RegularizationPathDisplay(**ok, keep_fractions=[0.1, 0.2])
    with pytest.raises(ValueError, match="std_scores must have the shape"):
        RegularizationPathDisplay(**ok, std_scores=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="alpha must be positive"):
        RegularizationPathDisplay(**ok, alpha=-1.0)
    with pytest.raises(TypeError, match="GroupLassoClassifierCV .* got Group"):
        RegularizationPathDisplay.from_estimator(lasso)
    with pytest.raises(TypeError, match="got LogisticRegression"):
        RegularizationPathDisplay.from_estimator(LogisticRegression())
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RegularizationPathDisplay.from_estimator(GroupLassoClassifierCV())


def test_new_figures_grow_with_the_number_of_layers():
    names = [f"blocks.{i}" for i in range(40)]
    disp = LayerImportanceDisplay(
        layer_names=names, norm_share=np.full(40, 1 / 40), selected_share=np.zeros(40)
    ).plot()
    assert disp.figure_.get_figwidth() == pytest.approx(2.0 + 0.3 * 40)
    small = TransferabilityCurveDisplay(layer_names=["a"], mean_scores=[0.5]).plot()
    assert small.figure_.get_figwidth() == pytest.approx(6.4)
