"""skhead2toe.experiments: the tasks, grids and heads of the demo and benchmarks."""

import ast
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.multiclass import OneVsRestClassifier

from skhead2toe import GroupLassoClassifierCV, experiments
from skhead2toe.experiments import (
    DATASETS,
    KEEP_FRACTIONS,
    L1_CS,
    N_ALPHAS,
    PROBE_CS,
    accuracy_ci95,
    head2toe_cv,
    head2toe_default,
    l1_probe,
    l2_probe,
    last_layer_mask,
    load_task,
    paired_comparison,
)
from skhead2toe.linear_model._cv import AUTO_KEEP_FRACTIONS

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _import_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def baselines():
    sys.path.insert(0, str(BENCHMARKS / "transfer"))
    import _baselines

    return _baselines


def _params(est):
    """get_params without the nested estimator objects (compared by their params)."""
    return {k: v for k, v in est.get_params().items() if not hasattr(v, "get_params")}


# ------------------------------------------------------------- one home
def test_demo_and_benchmarks_use_the_same_objects(baselines):
    from skhead2toe import _demo

    assert _demo.load_task is load_task
    assert _demo.paired_comparison is paired_comparison
    assert _demo.DATASETS is DATASETS
    bench = _import_path(
        "bench_fashion_selection", BENCHMARKS / "bench_fashion_selection.py"
    )
    assert bench.experiments is experiments
    cfg = baselines.Config()
    assert cfg.l2_Cs is PROBE_CS
    assert cfg.l1_Cs is L1_CS
    assert cfg.h2t_keep_fractions is KEEP_FRACTIONS
    assert cfg.h2t_alphas == N_ALPHAS
    assert baselines.TASK_BASES is DATASETS
    assert (baselines.LINEAR, baselines.ALL_L2, baselines.HEAD2TOE) == (
        experiments.LINEAR,
        experiments.ALL_LAYERS,
        experiments.HEAD2TOE,
    )


def test_benchmark_heads_are_the_experiments_heads(baselines):
    cfg = baselines.Config()
    assert _params(baselines._l2_probe(cfg)) == _params(l2_probe())
    assert _params(baselines._l1_probe(cfg)) == _params(l1_probe())
    assert _params(baselines._head2toe(cfg)) == _params(head2toe_cv())
    groups = np.repeat(np.arange(3), 4)
    layers = baselines._head2toe(cfg, groups)
    assert layers.groups is groups


def test_cli_fit_defaults_are_the_estimator_defaults():
    from skhead2toe import GroupLassoClassifierCV
    from skhead2toe._cli import _parser

    args = _parser().parse_args(["fit", "features.npz", "-o", "head.joblib"])
    default = GroupLassoClassifierCV()
    assert args.keep_fractions == list(AUTO_KEEP_FRACTIONS)
    assert args.alphas == default.alphas and args.selection == default.selection
    assert set(KEEP_FRACTIONS) < set(AUTO_KEEP_FRACTIONS)  # paper's grid and 1.0


def test_demo_fits_the_documented_heads(tmp_path, monkeypatch):
    from skhead2toe import _demo

    made = []

    def spy(constructor):
        def make(**kwargs):
            made.append((constructor.__name__, kwargs, constructor(**kwargs)))
            return made[-1][2]

        return make

    monkeypatch.setattr(_demo, "l2_probe", spy(l2_probe))
    monkeypatch.setattr(_demo, "head2toe_default", spy(head2toe_default))
    results = _demo.run_demo(
        n_train=100,
        n_test=60,
        backbone="test_resnet",
        pretrained=False,
        image_size=32,
        cv=2,
        output_dir=tmp_path,
        plots=False,
        random_state=3,
    )
    names = [name for name, _, _ in made]
    assert names == ["l2_probe", "l2_probe", "head2toe_default"]
    assert all(kwargs["cv"] == 2 for _, kwargs, _ in made)
    assert made[2][1]["random_state"] == 3
    head = made[2][2]
    # the library's default search: the paper's fractions and both baselines
    defaults = GroupLassoClassifierCV().get_params()
    runtime = {"cv": None, "random_state": None, "n_jobs": None}
    assert head.get_params() | runtime == defaults
    assert len(head.alphas_) == defaults["alphas"]
    assert set(head.cv_results_["candidate"]) >= {"all features", "last layer"}
    chosen = results["head2toe"]
    assert chosen["candidate"] == head.candidate_
    assert chosen["keep_fraction"] in AUTO_KEEP_FRACTIONS + (None,)
    assert (chosen["alpha"] is None) == (head.alpha_ is None)
    assert made[0][2].C_ in PROBE_CS


def _imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


@pytest.mark.parametrize(
    "path",
    [
        BENCHMARKS / "bench_fashion_selection.py",
        *sorted((BENCHMARKS / "transfer").glob("*.py")),
        *sorted((ROOT / "examples").glob("*.py")),
    ],
    ids=lambda p: p.name,
)
def test_benchmarks_and_examples_import_no_private_name(path):
    for module, names in _imported_modules(path):
        if module.split(".")[0] != "skhead2toe":
            continue
        if module == "skhead2toe._io":  # atomic_write: tolerated, no public home
            continue
        parts = module.split(".")[1:] + names
        assert not any(p.startswith("_") for p in parts), (module, names)


def _number_sequences(path):
    """Every tuple or list literal of numbers in a Python file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple | ast.List) and node.elts:
            if all(isinstance(e, ast.Constant) for e in node.elts):
                values = [e.value for e in node.elts]
                if all(isinstance(v, int | float) for v in values):
                    yield node.lineno, tuple(values)


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "skhead2toe" / "_demo.py",
        *sorted((ROOT / "skhead2toe" / "_cli").glob("*.py")),
        BENCHMARKS / "bench_fashion_selection.py",
        *sorted((BENCHMARKS / "transfer").glob("*.py")),
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_grid_is_declared_again(path):
    grids = {PROBE_CS, L1_CS, KEEP_FRACTIONS}
    again = [(line, v) for line, v in _number_sequences(path) if v in grids]
    assert again == []


# ---------------------------------------------------------- the grids
def test_grids_are_immutable_and_in_range():
    for grid in (PROBE_CS, L1_CS, KEEP_FRACTIONS):
        assert isinstance(grid, tuple) and list(grid) == sorted(grid)
    assert all(c > 0 for c in PROBE_CS + L1_CS)
    assert all(0 < f <= 1 for f in KEEP_FRACTIONS)
    assert isinstance(N_ALPHAS, int) and N_ALPHAS > 1


# ------------------------------------------------------------ the heads
def test_l2_probe_is_a_tuned_multinomial_logistic_regression():
    from skhead2toe.linear_model import LinearProbeCV

    probe = l2_probe()
    assert isinstance(probe, LinearProbeCV)
    assert tuple(probe.Cs) == PROBE_CS
    assert probe.cv == 3 and probe.n_jobs is None
    other = l2_probe(Cs=(1.0, 2.0), cv=5, n_jobs=2)
    assert tuple(other.Cs) == (1.0, 2.0)
    assert (other.cv, other.n_jobs) == (5, 2)
    assert _params(clone(probe)) == _params(probe)


def test_l1_probe_is_sparse_one_vs_rest():
    from sklearn.datasets import load_digits

    probe = l1_probe(Cs=(0.05,), cv=2)
    assert isinstance(probe.estimator, OneVsRestClassifier)
    lr = probe.estimator.estimator
    assert lr.solver == "liblinear" and lr.tol == 1e-3
    assert l1_probe().param_grid == {"estimator__C": list(L1_CS)}
    assert _params(clone(probe)) == _params(probe)
    X, y = load_digits(return_X_y=True)
    probe.fit(X[:300] / 16, y[:300])
    coef = np.vstack([e.coef_ for e in probe.best_estimator_.estimators_])
    assert 0 < np.count_nonzero(coef) < coef.size // 2  # an L1 fit: mostly zeros


def test_head2toe_cv_is_the_documented_head():
    head = head2toe_cv()
    assert isinstance(head, GroupLassoClassifierCV)
    assert head.alphas == N_ALPHAS and head.keep_fractions == KEEP_FRACTIONS
    assert head.cv == 3 and head.random_state == 0 and head.groups is None
    # every other parameter is the estimator's default
    params = head.get_params()
    assert params == {
        **GroupLassoClassifierCV().get_params(),
        "alphas": N_ALPHAS,
        "keep_fractions": KEEP_FRACTIONS,
        "last_layer": False,  # the paper's grid: no baseline candidates
        "refit_l2s": (1e-3, 1e-4, 1e-5),
        "groups": None,
        "cv": 3,
        "n_jobs": None,
        "random_state": 0,
    }
    assert clone(head).get_params() == params
    assert head2toe_cv(cv=5, n_jobs=2, random_state=1).get_params()["n_jobs"] == 2


def test_last_layer_mask():
    mask = last_layer_mask([0, 0, 1, 2, 2, 1])
    assert mask.dtype == bool
    assert mask.tolist() == [False, False, False, True, True, False]


# ------------------------------------------------------------- scoring
def test_accuracy_ci95():
    y = np.zeros(100, dtype=int)
    pred = np.r_[np.zeros(80, dtype=int), np.ones(20, dtype=int)]
    accuracy, half = accuracy_ci95(y, pred)
    assert accuracy == pytest.approx(0.8)
    assert half == pytest.approx(1.96 * np.sqrt(0.8 * 0.2 / 100))
    assert accuracy_ci95(y, y) == (1.0, 0.0)


def test_paired_comparison_counts_and_mcnemar_p_value():
    from scipy.stats import binom

    y = np.zeros(40, dtype=int)
    ours = np.zeros(40, dtype=int)
    other = np.zeros(40, dtype=int)
    ours[:3] = 1  # 3 images only the other method gets right
    other[3:13] = 1  # 10 images only Head2Toe gets right
    other[13:15] = ours[13:15] = 1  # 2 both get wrong
    cmp = paired_comparison(y, ours, other, "Linear")
    assert cmp["only_head2toe_right"] == 10 and cmp["only_other_right"] == 3
    assert cmp["difference"] == pytest.approx((10 - 3) / 40)
    # exact two-sided binomial test on the 13 discordant pairs, computed here
    assert cmp["p_value"] == pytest.approx(2 * binom.cdf(3, 13, 0.5))
    same = paired_comparison(y, ours, ours, "Linear")
    assert same["p_value"] == 1.0 and same["difference"] == 0.0


# --------------------------------------------------------------- tasks
def test_load_task_digits_is_a_stratified_split():
    X_train, X_test, y_train, y_test = load_task("digits", 100, 50, 0)
    assert X_train.shape == (100, 8, 8) and X_test.shape == (50, 8, 8)
    assert X_train.dtype == np.uint8
    assert np.bincount(y_train).min() >= 9  # 10 classes, stratified
    again = load_task("digits", 100, 50, 0)
    np.testing.assert_array_equal(again[0], X_train)
    _, X_rest, _, _ = load_task("digits", 1000, None, 0)
    assert len(X_rest) == 797


def test_load_task_errors():
    with pytest.raises(ValueError, match="leaves no test images"):
        load_task("digits", 1797, None, 0)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_task("cifar", 100, None, 0)


@pytest.mark.parametrize(
    ("choice", "line"),
    [
        (
            {"candidate": "top features", "alpha": 0.5, "alpha_over_alpha_max": 0.063,
             "keep_fraction": 0.2, "refit_l2": 1e-05},
            "Head2Toe chose alpha = 0.063 alpha_max, keep_fraction = 0.2, "
            "refit_l2 = 1e-05",
        ),
        (
            {"candidate": "all features", "alpha": None, "alpha_over_alpha_max": None,
             "keep_fraction": 1.0, "refit_l2": 1e-05},
            "Head2Toe chose the refit on every feature (as All layers + L2), "
            "refit_l2 = 1e-05",
        ),
        (
            {"candidate": "last layer", "alpha": None, "alpha_over_alpha_max": None,
             "keep_fraction": None, "refit_l2": 0.001},
            "Head2Toe chose the refit on the last layer (as Linear), refit_l2 = 0.001",
        ),
    ],
)  # fmt: skip
def test_demo_table_says_which_candidate_was_chosen(choice, line):
    from skhead2toe._demo import format_table

    results = {
        "dataset": "digits", "n_train": 10, "n_test": 5, "backbone": "b",
        "image_size": 32, "n_features": 8, "n_layers": 2, "methods": [],
        "head2toe": choice,
        "domain_affinity": {"affinity": 0.1, "linear_probe_cv_accuracy": 0.9,
                            "from_scratch_cv_accuracy": 0.8},
        "timings_s": {"extracting features": 2.0, "Head2Toe": 1.0}, "files": {},
    }  # fmt: skip
    lines = format_table(results).splitlines()
    assert line in lines
    assert "head work: 1.0 s (0.50x the extraction)" in lines[-1]
