import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skhead2toe.datasets import load_digits_images  # noqa: E402
from skhead2toe.transfer import (  # noqa: E402
    RESULT_COLUMNS,
    TRANSFER_VARIANTS,
    run_transfer_experiment,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    rng = np.random.default_rng(0)
    keep = rng.choice(len(X), 400, replace=False)
    return X[keep], y[keep]


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
