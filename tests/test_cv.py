"""GroupLassoClassifierCV's recipe: candidates, the CV table, selection, layers."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

from skhead2toe import GroupLassoClassifier, GroupLassoClassifierCV
from skhead2toe.linear_model import select_candidate
from skhead2toe.linear_model._layers import (
    infer_layers,
    last_layer,
    layers_from_names,
    normalize_layers,
    resolve_layers,
)

WIDTHS = (12, 8, 20, 10)  # four "layers"; the last one carries the signal


def _unit_blocks(X, widths):
    out, start = [], 0
    for w in widths:
        block = X[:, start : start + w]
        norm = np.linalg.norm(block, axis=1, keepdims=True)
        out.append(block / np.where(norm > 0, norm, 1.0))
        start += w
    return np.hstack(out)


@pytest.fixture(scope="module")
def layered():
    """Features laid out as the featurizer's: unit-norm blocks, signal last."""
    X, y = make_classification(
        n_samples=240,
        n_features=sum(WIDTHS),
        n_informative=6,
        n_redundant=0,
        n_classes=3,
        shuffle=False,
        random_state=0,
    )
    X = np.roll(X, sum(WIDTHS) - 6, axis=1)  # the informative columns at the end
    return _unit_blocks(np.abs(X), WIDTHS), y


@pytest.fixture(scope="module")
def fitted(layered):
    X, y = layered
    return GroupLassoClassifierCV(alphas=3, cv=3, random_state=0).fit(X, y)


# ----------------------------------------------------------------- layers
def test_infer_layers_finds_the_unit_norm_blocks(layered):
    X, _ = layered
    expected = np.repeat(np.arange(len(WIDTHS)), WIDTHS)
    np.testing.assert_array_equal(infer_layers(X), expected)
    np.testing.assert_array_equal(infer_layers(X[::7]), expected)  # any rows
    np.testing.assert_array_equal(infer_layers(X.astype(np.float32)), expected)


def test_infer_layers_on_other_features_is_none():
    rng = np.random.default_rng(0)
    assert infer_layers(rng.random((50, 30))) is None
    assert infer_layers(rng.standard_normal((50, 30))) is None
    assert infer_layers(np.ones((5, 1))) is None


def test_zero_rows_of_a_layer_do_not_hide_its_end(layered):
    X, _ = layered
    X = X.copy()
    X[:100, :12] = 0  # the first layer is zero on many rows (zero-safe norm)
    np.testing.assert_array_equal(
        infer_layers(X), np.repeat(np.arange(len(WIDTHS)), WIDTHS)
    )


def test_names_give_the_layers_and_win_over_the_data(layered):
    X, _ = layered
    names = [f"l{i}__{j:04d}" for i, w in enumerate((30, 20)) for j in range(w)]
    np.testing.assert_array_equal(layers_from_names(names), np.repeat([0, 1], [30, 20]))
    multi = ["a__t8__0000", "a__t8__0001", "a__t16__0000", "b__t16__0000"]
    np.testing.assert_array_equal(layers_from_names(multi), [0, 0, 1, 2])
    assert layers_from_names(["x0", "x1"]) is None
    np.testing.assert_array_equal(
        resolve_layers("auto", X, names), np.repeat([0, 1], [30, 20])
    )


def test_explicit_layers_are_relabelled_and_checked(layered):
    X, _ = layered
    labels = np.repeat([7, 3, 9, 1], WIDTHS)
    ids = resolve_layers(labels, X)
    np.testing.assert_array_equal(ids, np.repeat(np.arange(4), WIDTHS))
    assert last_layer(ids).sum() == WIDTHS[-1]
    np.testing.assert_array_equal(resolve_layers(None, X), 0)
    with pytest.raises(ValueError, match="one layer label per column"):
        resolve_layers(labels[:-1], X)


def test_normalize_layers_gives_unit_rows_per_layer():
    rng = np.random.default_rng(1)
    X = rng.random((6, 7))
    X[2, :3] = 0
    ids = np.array([0, 0, 0, 2, 2, 5, 5])
    out = normalize_layers(X, ids)
    for layer in np.unique(ids):
        norms = np.linalg.norm(out[:, ids == layer], axis=1)
        expected = np.where(np.linalg.norm(X[:, ids == layer], axis=1) > 0, 1, 0)
        np.testing.assert_allclose(norms, expected, atol=1e-12)
    assert normalize_layers(X.astype(np.float32), ids).dtype == np.float32


# ------------------------------------------------------------- candidates
def test_default_search_contains_both_baselines(fitted, layered):
    X, _ = layered
    res = fitted.cv_results_
    assert fitted.layers_.max() == len(WIDTHS) - 1
    kinds = set(res["candidate"])
    assert kinds == {"top features", "all features", "last layer"}
    n_l2 = len(fitted.refit_l2s_)
    last = res["candidate"] == "last layer"
    everything = res["candidate"] == "all features"
    assert last.sum() == everything.sum() == n_l2
    np.testing.assert_array_equal(res["n_features"][last], WIDTHS[-1])
    np.testing.assert_array_equal(res["n_features"][everything], X.shape[1])
    assert np.isnan(res["alpha"][last | everything]).all()
    top = res["candidate"] == "top features"
    assert top.sum() == len(fitted.alphas_) * 5 * n_l2  # the paper's 5 fractions


def test_cv_table_is_consistent(fitted):
    res = fitted.cv_results_
    splits = np.stack([res[f"split{k}_test_score"] for k in range(3)])
    np.testing.assert_allclose(res["mean_test_score"], splits.mean(0))
    np.testing.assert_allclose(res["std_test_score"], splits.std(0))
    best = fitted.best_index_
    assert res["rank_test_score"][best] == 1
    assert res["mean_test_score"][best] == res["mean_test_score"].max()
    assert res["params"][best]["candidate"] == fitted.candidate_
    assert len(res["params"]) == len(res["mean_test_score"])
    # the alpha grid view agrees with the table
    top = np.flatnonzero(res["candidate"] == "top features")
    assert np.nanmax(fitted.mean_scores_) == pytest.approx(
        max(
            res["mean_test_score"][top].max(),
            res["mean_test_score"][res["candidate"] == "all features"].max(),
        )
    )


def _refit_by_hand(X, y, mask, l2, layers=None):
    X_kept = X[:, mask] if layers is None else normalize_layers(X[:, mask], layers)
    return GroupLassoClassifier(alpha=0.0, l2=l2, tol=1e-9, random_state=0).fit(
        X_kept, y
    )


def _flat(estimator, X, y, sample_weight=None):
    """A scorer under which every candidate ties (1se then takes the smallest)."""
    return 0.5


@pytest.mark.parametrize("kind", ["last layer", "all features"])
@pytest.mark.parametrize("renormalize", [False, True])
def test_a_chosen_baseline_is_that_ridge_refit(layered, kind, renormalize):
    X, y = layered
    est = GroupLassoClassifierCV(
        keep_fractions=(1.0,),
        last_layer=kind == "last layer",
        selection="1se",
        scoring=_flat,
        renormalize=renormalize,
        cv=3,
        tol=1e-9,
        random_state=0,
    ).fit(X, y)
    assert est.candidate_ == kind and est.alpha_ is None
    every = np.ones(X.shape[1], dtype=bool)
    mask = last_layer(est.layers_) if kind == "last layer" else every
    np.testing.assert_array_equal(est.selected_features_, mask)
    assert est.refit_l2_ == est.refit_l2s_[0]  # ties: the first, strongest ridge
    layers = est.layers_[mask] if renormalize else None
    ref = _refit_by_hand(X, y, mask, est.refit_l2_, layers)
    X_ref = X[:, mask] if layers is None else normalize_layers(X[:, mask], layers)
    np.testing.assert_allclose(
        est.predict_proba(X), ref.predict_proba(X_ref), atol=1e-5
    )
    np.testing.assert_allclose(est.feature_importances_[mask] > 0, True)


def test_the_chosen_fraction_is_refitted_on_all_the_data(fitted, layered):
    X, y = layered
    if fitted.candidate_ != "top features":  # pin the recipe's own head
        fitted = GroupLassoClassifierCV(
            alphas=3, keep_fractions=(0.2,), last_layer=False, cv=3, random_state=0
        ).fit(X, y)
    single = GroupLassoClassifier(
        alpha=fitted.alpha_,
        keep_fraction=fitted.keep_fraction_,
        refit_l2=fitted.refit_l2_,
        random_state=0,
    ).fit(X, y)
    np.testing.assert_array_equal(fitted.selected_features_, single.selected_features_)
    np.testing.assert_allclose(
        fitted.predict_proba(X), single.predict_proba(X), atol=1e-3
    )


# -------------------------------------------------------------- selection
def test_select_one_standard_error_rule():
    scores = np.array(
        [[0.80, 0.91, 0.91, 0.70], [0.84, 0.93, 0.95, 0.72], [0.82, 0.92, 0.93, 0.71]]
    )

    def table(scores, n_features):
        splits = {f"split{k}_test_score": row for k, row in enumerate(scores)}
        return {**splits, "n_features": np.asarray(n_features)}

    n_features = [5, 50, 500, 1]
    assert select_candidate(table(scores, n_features), "best") == 2
    # se of the best = std(ddof=1) / sqrt(3) = 0.02 / sqrt(3) ~ 0.0115: 0.92 is in
    assert select_candidate(table(scores, n_features), "1se") == 1
    # ties on the mean: the fewest features; then the better mean
    flat = np.full((3, 3), 0.5)
    assert select_candidate(table(flat, [9, 3, 3]), "1se") == 1
    assert select_candidate(table(flat, [9, 3, 3]), "best") == 0
    with pytest.raises(ValueError, match="rule must be"):
        select_candidate(table(flat, [9, 3, 3]), "2se")


def test_1se_never_uses_more_features_than_best(layered):
    X, y = layered
    best = GroupLassoClassifierCV(alphas=3, cv=3, random_state=0).fit(X, y)
    ose = clone(best).set_params(selection="1se").fit(X, y)
    res = best.cv_results_
    assert ose.selected_features_.sum() <= best.selected_features_.sum()
    n_folds = 3
    se = res["std_test_score"][best.best_index_] * np.sqrt(n_folds / (n_folds - 1))
    se /= np.sqrt(n_folds)
    assert res["mean_test_score"][ose.best_index_] >= res["mean_test_score"].max() - se
    np.testing.assert_array_equal(
        ose.cv_results_["mean_test_score"], res["mean_test_score"]
    )


# ---------------------------------------------------------- renormalize
def test_renormalize_refits_and_predicts_on_renormalised_columns(layered):
    X, y = layered
    est = GroupLassoClassifierCV(
        alphas=2,
        keep_fractions=(0.1,),
        last_layer=False,
        renormalize=True,
        cv=3,
        tol=1e-9,
        random_state=0,
    ).fit(X, y)
    mask = est.selected_features_
    layers = est.layers_[mask]
    assert len(np.unique(layers)) >= 1
    ref = _refit_by_hand(X, y, mask, est.refit_l2_, layers)
    X_ref = normalize_layers(X[:, mask], layers)
    np.testing.assert_allclose(
        est.predict_proba(X), ref.predict_proba(X_ref), atol=1e-5
    )
    plain = clone(est).set_params(renormalize=False).fit(X, y)
    np.testing.assert_array_equal(plain.selected_features_, mask)  # same ranking
    assert not np.allclose(plain.predict_proba(X), est.predict_proba(X))


# ------------------------------------------------------- average_scores
def test_average_scores_ranks_by_the_folds_mean(layered):
    X, y = layered
    cv = StratifiedKFold(3)
    est = GroupLassoClassifierCV(
        alphas=3,
        keep_fractions=(0.1,),
        last_layer=False,
        average_scores=True,
        cv=cv,
        random_state=0,
    ).fit(X, y)
    assert est.candidate_ == "top features"
    squares = []
    for train, _ in cv.split(X, y):
        fold = GroupLassoClassifier(alpha=est.alpha_, random_state=0).fit(
            X[train], y[train]
        )
        squares.append(fold.feature_importances_**2)
    mean = np.mean(squares, axis=0)
    np.testing.assert_allclose(est.feature_importances_**2, mean, rtol=1e-2, atol=1e-8)
    k = est.selected_features_.sum()
    top = np.argsort(-mean)[:k]
    assert set(top[mean[top] > 0]) <= set(np.flatnonzero(est.selected_features_))


# ---------------------------------------------------------- in a pipeline
def test_plain_pipeline_gets_the_layers_from_the_featurizer():
    from skhead2toe import MultiLayerFeaturizer

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (36, 32, 32, 3), dtype=np.uint8)
    y = np.repeat([0, 1, 2], 12)
    images[y == 1, :16] //= 4  # a learnable difference
    feat = MultiLayerFeaturizer(image_size=32, target_size=64, progress=False)
    pipe = make_pipeline(
        feat, GroupLassoClassifierCV(alphas=2, cv=3, refit_l2s=(1e-3,))
    ).fit(images, y)
    head = pipe[-1]
    # columns that are zero on every image belong to either neighbour
    used = np.any(pipe[0].transform(images) != 0, axis=0)
    assert used.sum() > 1000
    np.testing.assert_array_equal(head.layers_[used], pipe[0].feature_groups_[used])
    assert "last layer" in set(head.cv_results_["candidate"])
    # the same through a DataFrame of the featurizer's names
    pipe_df = make_pipeline(
        clone(feat).set_output(transform="pandas"), clone(head)
    ).fit(images, y)
    np.testing.assert_array_equal(pipe_df[-1].layers_, pipe[0].feature_groups_)
    assert pipe_df.score(images, y) == pipe.score(images, y)


def test_plain_group_lasso_has_no_refit_candidates(layered):
    X, y = layered
    est = GroupLassoClassifierCV(alphas=3, keep_fractions=None, cv=3).fit(X, y)
    assert set(est.cv_results_["candidate"]) == {"group lasso"}
    assert est.candidate_ == "group lasso" and est.refit_l2_ is None
    assert est.scores_.shape == (3, 3, 1, 1)


def test_one_layer_features_have_no_last_layer_candidate(data):
    X, y = data
    est = GroupLassoClassifierCV(alphas=2, cv=3).fit(X, y)
    assert est.layers_.max() == 0
    assert "last layer" not in set(est.cv_results_["candidate"])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"keep_fractions": (0.1, 1.5)}, "keep_fractions must be values in"),
        ({"keep_fractions": ()}, "keep_fractions must be values in"),
        ({"layers": np.zeros(3)}, "one layer label per column"),
    ],
)
def test_bad_recipe_parameters_are_clear_errors(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        GroupLassoClassifierCV(alphas=2, cv=3, **params).fit(X, y)


def test_repeated_fractions_are_one_candidate(data):
    X, y = data
    est = GroupLassoClassifierCV(alphas=2, keep_fractions=(0.1, 0.1, 1.0), cv=3).fit(
        X, y
    )
    assert list(est.keep_fractions_) == [0.1, 1.0]
    assert est.scores_.shape[2] == 2


def test_average_scores_with_plain_group_lasso_changes_nothing(data):
    X, y = data
    plain = GroupLassoClassifierCV(alphas=3, keep_fractions=None, cv=3).fit(X, y)
    averaged = clone(plain).set_params(average_scores=True).fit(X, y)
    assert averaged.candidate_ == "group lasso"
    np.testing.assert_array_equal(averaged.coef_, plain.coef_)
