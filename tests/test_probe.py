"""LinearProbe and LinearProbeCV: the L2 probe against independent references."""

import pickle

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skhead2toe.linear_model import LinearProbe, LinearProbeCV

TIGHT = dict(tol=1e-10, max_iter=100_000)  # a certified optimum, to ~1e-10
REF = dict(tol=1e-12, max_iter=100_000)  # scikit-learn's lbfgs, run to the end


def _data(n_samples, n_features, n_classes=3, seed=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=8,
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    return X, y


# (80, 300): more features than samples, the row-space route;
# (150, 20): fewer, the primal route on the columns.
SHAPES = {"wide": (80, 300), "narrow": (150, 20)}


@pytest.fixture(scope="module", params=list(SHAPES))
def problem(request):
    return _data(*SHAPES[request.param])


def _objective(probe, X, y, C, sample_weight=None):
    """``C sum_i s_i CE_i + ||coef||^2 / 2`` from the public attributes (own code)."""
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
    Z = np.atleast_2d(X @ probe.coef_.T + probe.intercept_)
    if Z.shape[1] == 1:  # binary: the log-odds of classes_[1]
        Z = np.hstack([np.zeros_like(Z), Z])
    codes = np.searchsorted(probe.classes_, y)
    ce = -log_softmax(Z, axis=1)[np.arange(len(y)), codes]
    return C * (s @ ce) + (probe.coef_**2).sum() / 2


def _centred(b):
    return b - b.mean()


def _fold_scores(X, y, folds, Cs, scorer, sample_weight=None, **params):
    """Scores of independent cold-started LinearProbe fits on each fold and C."""
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
    return np.array(
        [
            [
                scorer(
                    LinearProbe(C=C, **params).fit(
                        X[train], y[train], sample_weight=s[train]
                    ),
                    X[test],
                    y[test],
                    s[test],
                )
                for C in Cs
            ]
            for train, test in folds
        ]
    )


def _accuracy(est, X, y, s):
    return accuracy_score(y, est.predict(X), sample_weight=s)


def _neg_log_loss(est, X, y, s):
    return -log_loss(y, est.predict_proba(X), sample_weight=s, labels=est.classes_)


# --------------------------------------------------- LinearProbe vs sklearn
@pytest.mark.parametrize("C", [0.05, 1.0])
def test_probe_matches_logistic_regression(problem, C):
    """Multiclass: the same optimum as LogisticRegression, on both routes."""
    X, y = problem
    probe = LinearProbe(C=C, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=C, **REF).fit(X, y)
    np.testing.assert_array_equal(probe.classes_, ref.classes_)
    assert probe.coef_.shape == ref.coef_.shape == (3, X.shape[1])
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(probe.coef_, ref.coef_, atol=1e-5)
    # the softmax intercept is defined up to a constant shift
    np.testing.assert_allclose(
        _centred(probe.intercept_), _centred(ref.intercept_), atol=1e-5
    )
    np.testing.assert_array_equal(probe.predict(X), ref.predict(X))


def test_probe_without_intercept_matches_logistic_regression(problem):
    """fit_intercept=False: a zero intercept and sklearn's model."""
    X, y = problem
    probe = LinearProbe(C=0.2, fit_intercept=False, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=0.2, fit_intercept=False, **REF).fit(X, y)
    np.testing.assert_array_equal(probe.intercept_, 0.0)
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(probe.coef_, ref.coef_, atol=1e-5)


def test_binary_probe_matches_logistic_regression(problem):
    """Two classes: one coef_ row, and the probabilities of the same C."""
    X, y = problem
    y = np.where(y == 0, "no", "yes")
    probe = LinearProbe(C=0.3, **TIGHT).fit(X, y)
    ref = LogisticRegression(C=0.3, **REF).fit(X, y)
    assert probe.coef_.shape == (1, X.shape[1])
    assert probe.intercept_.shape == (1,)
    assert probe.decision_function(X).shape == (len(y),)
    np.testing.assert_allclose(probe.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(probe.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_allclose(probe.intercept_, ref.intercept_, atol=1e-5)


def test_row_space_route_equals_primal_route():
    """Wide X and its n rotated columns X V (primal route): one model."""
    X, y = _data(*SHAPES["wide"])
    _, _, Vt = np.linalg.svd(X, full_matrices=False)  # X = X Vt^T Vt: rows in Vt
    X_rot = X @ Vt.T  # n columns for n rows: not wide, solved on the columns
    assert X_rot.shape[1] == X_rot.shape[0]
    wide = LinearProbe(C=0.3, **TIGHT).fit(X, y)
    narrow = LinearProbe(C=0.3, **TIGHT).fit(X_rot, y)
    np.testing.assert_allclose(
        wide.predict_proba(X), narrow.predict_proba(X_rot), atol=1e-7
    )
    # the wide solution lies in the row space: W = V W_rot
    np.testing.assert_allclose(wide.coef_, narrow.coef_ @ Vt, atol=1e-7)
    np.testing.assert_allclose(
        _centred(wide.intercept_), _centred(narrow.intercept_), atol=1e-7
    )


# ------------------------------------------------------------- certificate
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tol", [1e-4, 1e-2])
def test_certificate_bounds_the_suboptimality(problem, dtype, tol):
    """dual_gap_ <= tol * objective_, and it really bounds the distance to optimum."""
    X, y = problem
    Xd = X.astype(dtype)
    X = Xd.astype(np.float64)  # the values the probe was fitted on
    C = 0.5
    probe = LinearProbe(C=C, tol=tol).fit(Xd, y)
    assert probe.converged_
    assert 0 <= probe.dual_gap_ <= tol * probe.objective_
    assert probe.n_iter_ >= 1
    # objective_ is the objective per unit of sample weight
    own = _objective(probe, X, y, C)
    scale = C * len(y)
    assert probe.objective_ * scale == pytest.approx(own, rel=1e-6)
    # the optimum is at most sklearn's value: the gap covers the excess
    best = _objective(LogisticRegression(C=C, **REF).fit(X, y), X, y, C)
    assert own - best <= probe.dual_gap_ * scale * (1 + 1e-6) + 1e-10 * own


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cv_refit_is_certified(problem, dtype):
    """The refit of LinearProbeCV carries the same certificate."""
    X, y = problem
    X = X.astype(dtype)
    tol = 1e-4
    cv = LinearProbeCV(Cs=[0.01, 0.1, 1.0], cv=3, tol=tol).fit(X, y)
    assert bool(cv.converged_)
    assert 0 <= cv.dual_gap_ <= tol * cv.objective_
    own = _objective(cv, X.astype(np.float64), y, cv.C_)
    assert cv.objective_ * cv.C_ * len(y) == pytest.approx(own, rel=1e-6)


# ----------------------------------------------------------- sample weight
def test_integer_weights_equal_repeated_rows(problem):
    """Weight k is the row repeated k times (weight 0: the row dropped)."""
    X, y = problem
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, size=len(y))
    assert (weights == 0).any() and (weights > 1).any()
    rows = np.repeat(np.arange(len(y)), weights)
    params = dict(tol=1e-13, max_iter=100_000)
    weighted = LinearProbe(C=0.3, **params).fit(X, y, sample_weight=weights)
    repeated = LinearProbe(C=0.3, **params).fit(X[rows], y[rows])
    np.testing.assert_allclose(
        weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-6
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)


def test_zero_weight_equals_dropping_the_row(problem):
    """A zero weight has the row's loss vanish, wherever the row is."""
    X, y = problem
    rng = np.random.default_rng(1)
    weights = np.ones(len(y))
    dropped = rng.choice(len(y), size=len(y) // 5, replace=False)
    weights[dropped] = 0.0
    kept = weights > 0
    params = dict(tol=1e-13, max_iter=100_000)
    zero = LinearProbe(C=0.3, **params).fit(X, y, sample_weight=weights)
    drop = LinearProbe(C=0.3, **params).fit(X[kept], y[kept])
    np.testing.assert_allclose(zero.predict_proba(X), drop.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(zero.coef_, drop.coef_, atol=1e-6)


def test_cv_zero_weight_equals_dropping_the_row():
    """LinearProbeCV: zero-weight rows count neither in the fits nor the scores."""
    X, y = _data(120, 200, seed=3)
    rng = np.random.default_rng(2)
    weights = np.ones(len(y))
    weights[rng.choice(len(y), size=20, replace=False)] = 0.0
    kept = np.flatnonzero(weights > 0)
    new_index = np.full(len(y), -1)
    new_index[kept] = np.arange(len(kept))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    folds_kept = [
        (new_index[np.intersect1d(tr, kept)], new_index[np.intersect1d(te, kept)])
        for tr, te in folds
    ]
    Cs = [0.001, 0.01, 0.1, 1.0]
    zero = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y, sample_weight=weights)
    drop = LinearProbeCV(Cs=Cs, cv=folds_kept, **TIGHT).fit(X[kept], y[kept])
    np.testing.assert_allclose(zero.scores_, drop.scores_, atol=1e-12)
    assert zero.C_ == drop.C_
    np.testing.assert_allclose(zero.predict_proba(X), drop.predict_proba(X), atol=1e-6)


# -------------------------------------------------------------- LinearProbeCV
# wide everywhere; folds wide (d > 60 training rows) but the refit not (d < 90);
# narrow everywhere
CV_SHAPES = [(90, 200), (90, 75), (150, 20)]


@pytest.mark.parametrize("shape", CV_SHAPES)
def test_cv_scores_are_those_of_fold_fits(shape):
    """scores_[k, j]: accuracy of LinearProbe(C=Cs_[j]) fitted on fold k."""
    X, y = _data(*shape, seed=1)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [10.0, 0.001, 0.1, 1.0, 0.01]  # unsorted on purpose
    cv = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y)
    np.testing.assert_array_equal(cv.Cs_, np.sort(Cs))
    assert cv.scores_.shape == (len(folds), len(Cs))
    ref = _fold_scores(X, y, folds, cv.Cs_, _accuracy, **TIGHT)
    # the same optimum at every C: at most one test sample can flip
    np.testing.assert_allclose(cv.scores_, ref, atol=1.01 / min(map(len, folds[0])))
    np.testing.assert_allclose(cv.mean_scores_, cv.scores_.mean(axis=0))
    best = int(np.argmax(cv.mean_scores_))
    assert cv.C_ == cv.Cs_[best]
    assert cv.mean_scores_[best] == cv.mean_scores_.max()
    # the refit is LinearProbe(C_) on every row
    full = LinearProbe(C=cv.C_, **TIGHT).fit(X, y)
    np.testing.assert_allclose(cv.predict_proba(X), full.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(cv.coef_, full.coef_, atol=1e-5)


def test_cv_scores_equal_fold_fits_exactly_with_tight_tol():
    """With a tight tol no test sample flips: scores_ equal the fold fits'."""
    X, y = _data(90, 200, seed=1)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    cv = LinearProbeCV(Cs=np.logspace(-3, 1, 5), cv=folds, **TIGHT).fit(X, y)
    ref = _fold_scores(X, y, folds, cv.Cs_, _accuracy, **TIGHT)
    np.testing.assert_allclose(cv.scores_, ref, atol=1e-12)
    assert cv.C_ == cv.Cs_[np.argmax(ref.mean(axis=0))]


def test_cv_accepts_index_pairs_and_splitters_alike():
    """An explicit list of folds, a splitter and an int give one table."""
    X, y = _data(90, 200, seed=1)
    splitter = StratifiedKFold(3)  # what cv=3 means for a classifier
    folds = list(splitter.split(X, y))
    Cs = [0.01, 0.1, 1.0]
    as_list = LinearProbeCV(Cs=Cs, cv=folds).fit(X, y)
    as_splitter = LinearProbeCV(Cs=Cs, cv=splitter).fit(X, y)
    as_int = LinearProbeCV(Cs=Cs, cv=3).fit(X, y)
    np.testing.assert_array_equal(as_list.scores_, as_splitter.scores_)
    np.testing.assert_array_equal(as_list.scores_, as_int.scores_)


def test_cv_low_rank_wide_equals_narrow():
    """Rank-deficient wide X and its rank-many columns: same table, same model."""
    rng = np.random.default_rng(0)
    n, rank, d = 90, 12, 250
    A = rng.standard_normal((n, rank))
    X = A @ rng.standard_normal((rank, d)) / np.sqrt(d)  # wide, rank 12
    y = (A @ rng.standard_normal((rank, 3)) + rng.gumbel(size=(n, 3))).argmax(1)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    assert s[rank] < 1e-12 * s[0]
    V = Vt[:rank].T
    X_small = X @ V  # 12 columns < every fold's rows: the primal route throughout
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = np.logspace(-2, 2, 5)
    wide = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y)
    narrow = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X_small, y)
    np.testing.assert_allclose(wide.scores_, narrow.scores_, atol=1e-12)
    assert wide.C_ == narrow.C_
    np.testing.assert_allclose(
        wide.predict_proba(X), narrow.predict_proba(X_small), atol=1e-7
    )
    np.testing.assert_allclose(wide.coef_, narrow.coef_ @ V.T, atol=1e-7)
    assert wide.objective_ == pytest.approx(narrow.objective_, rel=1e-8)


# -------------------------------------------------------------------- ties
def _separable(seed=0):
    """Three far-apart clusters: every C classifies every test row right."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.eye(3, 5)
    y = np.repeat([0, 1, 2], 10)
    return centres[y] + 0.1 * rng.standard_normal((len(y), 5)), y


def test_ties_choose_the_smallest_C():
    """All C score 1.0: C_ is the smallest of the (unsorted) grid."""
    X, y = _separable()
    Cs = [10.0, 1.0, 0.1, 0.01]
    cv = LinearProbeCV(Cs=Cs, cv=3).fit(X, y)
    np.testing.assert_array_equal(cv.scores_, 1.0)
    np.testing.assert_array_equal(cv.mean_scores_, 1.0)  # really a tie
    assert cv.C_ == min(Cs)
    np.testing.assert_allclose(
        cv.predict_proba(X),
        LinearProbe(C=min(Cs), tol=cv.tol).fit(X, y).predict_proba(X),
        atol=1e-3,
    )


def _flat(estimator, X, y, sample_weight=None):
    """A scorer under which every C ties."""
    return 0.5


def test_ties_of_a_custom_scorer_choose_the_smallest_C(problem):
    """A flat callable score: every mean ties and C_ is min(Cs)."""
    X, y = problem
    cv = LinearProbeCV(Cs=[3.0, 0.3, 30.0], cv=3, scoring=_flat).fit(X, y)
    np.testing.assert_array_equal(cv.mean_scores_, 0.5)
    assert cv.C_ == 0.3


# -------------------------------------------------------------------- Cs
def test_int_Cs_is_a_log_grid():
    """Cs=k: np.logspace(-4, 4, k), as LogisticRegressionCV."""
    X, y = _separable()
    for k in (1, 4):
        cv = LinearProbeCV(Cs=k, cv=3).fit(X, y)
        np.testing.assert_allclose(cv.Cs_, np.logspace(-4, 4, k))
        assert cv.scores_.shape == (3, k)
    cv = LinearProbeCV(cv=3).fit(X, y)  # the default
    np.testing.assert_allclose(cv.Cs_, np.logspace(-4, 4, 10))


def test_array_Cs_is_sorted():
    """An array of C becomes Cs_ ascending, as floats."""
    X, y = _separable()
    cv = LinearProbeCV(Cs=np.array([5, 1, 0.5]), cv=3).fit(X, y)
    np.testing.assert_array_equal(cv.Cs_, [0.5, 1.0, 5.0])
    assert cv.Cs_.dtype == np.float64
    assert cv.C_ in cv.Cs_
    assert isinstance(cv.C_, float)


@pytest.mark.parametrize(
    "Cs",
    [[], [0.1, 0.0], [-1.0], [1.0, np.inf], [np.nan], np.array([])],
    ids=["empty", "zero", "negative", "inf", "nan", "empty-array"],
)
def test_bad_Cs_raise(Cs):
    """Non-positive, non-finite or empty Cs are refused."""
    X, y = _separable()
    with pytest.raises(ValueError, match="Cs must be positive finite values"):
        LinearProbeCV(Cs=Cs, cv=3).fit(X, y)


@pytest.mark.parametrize("Cs", [0, -3, 1.5])
def test_bad_scalar_Cs_raise(Cs):
    """A scalar Cs must be a positive int."""
    X, y = _separable()
    with pytest.raises(ValueError, match="'Cs' parameter"):
        LinearProbeCV(Cs=Cs, cv=3).fit(X, y)


@pytest.mark.parametrize("C", [0.0, -1.0])
def test_bad_C_raise(C):
    """LinearProbe refuses a non-positive C."""
    X, y = _separable()
    with pytest.raises(ValueError, match="'C' parameter"):
        LinearProbe(C=C).fit(X, y)


# ---------------------------------------------------------------- n_jobs
def test_n_jobs_gives_the_same_fit():
    """Folds solved by two workers: the same table, C_ and refit."""
    X, y = _data(90, 200, seed=1)
    Cs = [0.001, 0.01, 0.1, 1.0]
    one = LinearProbeCV(Cs=Cs, cv=3, n_jobs=1).fit(X, y)
    two = LinearProbeCV(Cs=Cs, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.scores_, two.scores_)
    assert one.C_ == two.C_
    np.testing.assert_allclose(one.coef_, two.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.intercept_, two.intercept_, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------- scoring
def test_scoring_neg_log_loss_is_used(problem):
    """scoring='neg_log_loss': negative scores, those of the fold fits."""
    X, y = problem
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.001, 0.01, 0.1, 1.0]
    cv = LinearProbeCV(Cs=Cs, cv=folds, scoring="neg_log_loss", **TIGHT).fit(X, y)
    assert (cv.scores_ < 0).all()
    ref = _fold_scores(X, y, folds, cv.Cs_, _neg_log_loss, **TIGHT)
    np.testing.assert_allclose(cv.scores_, ref, rtol=1e-5)  # warm vs cold starts
    assert cv.C_ == cv.Cs_[np.argmax(ref.mean(axis=0))]
    accuracy = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y)
    assert (accuracy.scores_ > 0).all()  # the default is something else


def test_sample_weight_is_used_in_fold_scores():
    """Weighted fits and weighted accuracies of the folds make scores_."""
    X, y = _data(90, 200, seed=1)
    rng = np.random.default_rng(4)
    weights = rng.uniform(0.2, 3.0, size=len(y))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.01, 0.1, 1.0]
    cv = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y, sample_weight=weights)
    ref = _fold_scores(X, y, folds, cv.Cs_, _accuracy, weights, **TIGHT)
    np.testing.assert_allclose(cv.scores_, ref, atol=1e-12)
    full = LinearProbe(C=cv.C_, **TIGHT).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(cv.predict_proba(X), full.predict_proba(X), atol=1e-5)


# ------------------------------------------------------ sklearn machinery
def test_probe_in_a_pipeline_with_cross_val_score():
    """cross_val_score of a scaled probe: the scores of fits by hand."""
    X, y = _data(120, 200, seed=2)
    pipe = make_pipeline(StandardScaler(), LinearProbe(C=0.1, **TIGHT))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    scores = cross_val_score(pipe, X, y, cv=folds)
    by_hand = []
    for train, test in folds:
        scaler = StandardScaler().fit(X[train])
        probe = LinearProbe(C=0.1, **TIGHT).fit(scaler.transform(X[train]), y[train])
        by_hand.append(probe.score(scaler.transform(X[test]), y[test]))
    np.testing.assert_allclose(scores, by_hand, atol=1e-12)


def test_grid_search_over_C_agrees_with_linear_probe_cv():
    """GridSearchCV over C builds LinearProbeCV's table and picks its C_."""
    X, y = _data(90, 200, seed=1)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    Cs = [0.001, 0.01, 0.1, 1.0]
    search = GridSearchCV(LinearProbe(**TIGHT), {"C": Cs}, cv=folds).fit(X, y)
    grid = np.stack([search.cv_results_[f"split{k}_test_score"] for k in range(3)])
    cv = LinearProbeCV(Cs=Cs, cv=folds, **TIGHT).fit(X, y)
    np.testing.assert_allclose(grid, cv.scores_, atol=1e-12)
    assert search.best_params_["C"] == cv.C_
    np.testing.assert_allclose(search.predict_proba(X), cv.predict_proba(X), atol=1e-5)


def test_grid_search_over_a_pipeline():
    """GridSearchCV over a scaled probe's C: the refit is that pipeline's."""
    X, y = _data(120, 200, seed=2)
    pipe = make_pipeline(StandardScaler(), LinearProbe(**TIGHT))
    Cs = [0.001, 0.01, 0.1]
    search = GridSearchCV(pipe, {"linearprobe__C": Cs}, cv=3).fit(X, y)
    best = search.best_params_["linearprobe__C"]
    assert best in Cs
    means = search.cv_results_["mean_test_score"]
    assert best == Cs[int(np.argmax(means))]
    by_hand = make_pipeline(StandardScaler(), LinearProbe(C=best, **TIGHT)).fit(X, y)
    np.testing.assert_allclose(
        search.predict_proba(X), by_hand.predict_proba(X), atol=1e-12
    )


@pytest.mark.parametrize(
    "estimator",
    [LinearProbe(C=0.1), LinearProbeCV(Cs=[0.01, 0.1, 1.0], cv=3)],
    ids=["LinearProbe", "LinearProbeCV"],
)
def test_pickle_round_trip(problem, estimator):
    """A pickled fitted probe predicts the same."""
    X, y = problem
    fitted = estimator.fit(X, y)
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.coef_, fitted.coef_)
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    if isinstance(fitted, LinearProbeCV):
        np.testing.assert_array_equal(loaded.scores_, fitted.scores_)
        assert loaded.C_ == fitted.C_


def test_string_labels_and_predict():
    """String classes: classes_ sorted, predictions among them, scores agree."""
    X, y = _data(90, 200, seed=1)
    labels = np.array(["cat", "bird", "ant"])[y]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    named = LinearProbeCV(Cs=[0.01, 0.1, 1.0], cv=folds, **TIGHT).fit(X, labels)
    coded = LinearProbeCV(Cs=[0.01, 0.1, 1.0], cv=folds, **TIGHT).fit(X, y)
    np.testing.assert_array_equal(named.classes_, ["ant", "bird", "cat"])
    np.testing.assert_array_equal(named.scores_, coded.scores_)
    assert set(named.predict(X)) <= set(named.classes_)
    # label order maps cat->0, bird->1, ant->2 onto sorted ant, bird, cat
    np.testing.assert_allclose(
        named.predict_proba(X)[:, ::-1], coded.predict_proba(X), atol=1e-6
    )


def test_a_fold_without_a_class_is_refused_before_any_work():
    """A training fold lacking a class has no optimum: a clear error, not max_iter."""
    X, y = _data(60, 30)
    rest = np.flatnonzero(y != 0)
    folds = [(rest, np.flatnonzero(y == 0)), (np.arange(40), np.arange(40, 60))]
    with pytest.raises(ValueError, match="every training fold needs every class"):
        LinearProbeCV(Cs=[1.0], cv=folds).fit(X, y)
