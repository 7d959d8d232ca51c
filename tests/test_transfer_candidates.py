"""benchmarks/transfer: the candidate records and the rules evaluated on them."""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "transfer"))

import _candidates_report as R  # noqa: E402
import _suite as S  # noqa: E402
import run_candidates as RC  # noqa: E402


def _table():
    """Five candidates: 3 top-features (ridges 1e-3, 1e-5, 1e-7), all, last."""
    return {
        "candidate": ["top features"] * 3 + ["all features", "last layer"],
        "refit_l2": [1e-3, 1e-5, 1e-7, 1e-5, 1e-3],
        "n_features": [10, 10, 10, 100, 30],
        "splits": [
            [0.90, 0.96, 0.99, 0.95, 0.80],
            [0.92, 0.96, 0.99, 0.95, 0.80],
            [0.91, 0.96, 0.98, 0.96, 0.80],
        ],
    }


def test_best_respects_the_allowed_ridges():
    table = _table()
    everything = R.allowed_mask(table, R.ALL_RIDGES)
    assert R.rule_best(table, everything) == 2
    assert R.rule_best(table, R.allowed_mask(table, (1e-3, 1e-5))) == 1


def test_standard_error_rule_takes_the_fewest_features_near_the_best():
    table = _table()
    table["n_features"] = [10, 5, 50, 100, 30]
    allowed = R.allowed_mask(table, (1e-3, 1e-5))
    # best is candidate 1 (0.96, se 0); the all-features 0.953 is not within it
    assert R.rule_se(1.0)(table, allowed) == 1
    table["splits"] = [[0.9, 0.96, 0.9, 0.96, 0.8], [0.9, 0.94, 0.9, 0.94, 0.8]]
    assert R.rule_se(1.0)(table, allowed) == 1  # 5 features beat 100 at a tie


def test_baseline_unless_margin():
    table = _table()
    allowed = R.allowed_mask(table, (1e-3, 1e-5))
    # top 0.96 against all features 0.9533: +0.0067
    assert R.rule_baseline_margin(0.005)(table, allowed) == 1
    assert R.rule_baseline_margin(0.01)(table, allowed) == 3


def test_hindsight_caps_the_features():
    rec = {"n_features_total": 100, "table": _table()}
    rec["table"]["n_features_full"] = [10, 10, 10, 100, 30]
    rec["table"]["test_accuracy"] = [0.5, 0.6, 0.7, 0.9, 0.8]
    assert R.hindsight(1.0)(rec, R.ALL_RIDGES) == 3
    assert R.hindsight(0.25)(rec, R.ALL_RIDGES) == 2
    assert R.hindsight(0.25)(rec, (1e-3, 1e-5)) == 1


def test_evaluate_pools_seeds_and_flags_significant_losses():
    y = np.zeros(200, dtype=int)
    wrong = np.ones(200, dtype=int)
    good = y.copy()
    bad = y.copy()
    bad[:40] = 1  # 80 % right, against 100 % for the baseline
    rec = {
        "n_features_total": 100,
        "table": {"n_features_full": [10, 100]},
        "predictions": [S.encode_labels(good), S.encode_labels(bad)],
    }
    base = {S.LINEAR: wrong, S.ALL_L2: y}
    cells = {("t", 0): (rec, y, base), ("t", 1): (rec, y, base)}
    rows = R.evaluate(cells, lambda rec: 1)
    assert rows["t"]["accuracy"] == pytest.approx(0.8)
    assert rows["t"]["vs All layers + L2"] == pytest.approx(-0.2)
    assert rows["t"]["worse_than_best_baseline"]
    assert rows["t"]["features"] == pytest.approx(1.0)
    rows = R.evaluate(cells, lambda rec: 0)
    assert not rows["t"]["worse_than_best_baseline"]
    assert rows["t"]["features"] == pytest.approx(0.1)


def test_a_record_holds_the_cv_table_and_each_candidates_test_predictions():
    X, y = make_classification(
        n_samples=240, n_features=40, n_informative=6, n_classes=3, random_state=0
    )
    X = np.abs(X)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    split = S.Split(X[:160], y[:160], X[160:], y[160:], np.zeros(40, int), ["a"])
    params = dict(alphas=3, cv=3, refit_l2s=(1e-3, 1e-5), random_state=0)
    rec = RC.record("t", 0, split, params)
    table = rec["table"]
    n = len(table["candidate"])
    assert len(table["splits"]) == 3 and len(table["splits"][0]) == n
    assert len(rec["predictions"]) == n == len(table["test_accuracy"])
    for encoded, acc in zip(rec["predictions"], table["test_accuracy"], strict=True):
        assert np.mean(S.decode_labels(encoded) == y[160:]) == pytest.approx(acc)


def test_grids_whose_ridges_were_not_recorded_are_left_out():
    # a record of the default head (--grid default) has the default ridges only
    table = _table()
    table["refit_l2"] = [1e-3, 1e-4, 1e-5, 1e-5, 1e-3]
    cells = {("t", 0): ({"table": table}, None, {})}
    assert R.recorded(cells, (1e-3, 1e-4, 1e-5))
    assert not R.recorded(cells, (1e-5, 1e-6, 1e-7))
    wide = {("t", 0): ({"table": _table()}, None, {})}
    assert not R.recorded(wide, (1e-3, 1e-4, 1e-5))  # 1e-4 missing there


def test_each_pool_of_target_sizes_has_its_own_feature_cache(tmp_path):
    assert RC.feature_cache(tmp_path, [1024]) == tmp_path
    assert RC.feature_cache(tmp_path, [1024, 4096]) == tmp_path / "pool-t1024-4096"
    assert RC.GRIDS["default"] == {} and RC.GRIDS["wide"] is RC.WIDE
