"""Feature extraction on a Dask cluster (skhead2toe.feature_extraction._dask).

One module-scoped ``LocalCluster`` of two worker processes with one thread each.
The featurizer's ``batch_size`` equals the chunk size, so that a chunk runs the
same forward passes as the in-memory ``transform``: oneDNN picks its algorithm
by batch size, and batches of other sizes differ in the last float32 bits.
"""

import os
import signal
import subprocess
import sys
import time

import dask.array as da
import joblib
import numpy as np
import pytest
from distributed import Client, LocalCluster
from PIL import Image
from sklearn.exceptions import NotFittedError

from skhead2toe import GroupLassoClassifierCV, MultiLayerFeaturizer
from skhead2toe.datasets import load_digits_images
from skhead2toe.feature_extraction import dask_transform
from skhead2toe.feature_extraction._dask import featurizer_token, worker_counts

CHUNK = 6


@pytest.fixture(scope="module")
def digits():
    """24 digit images of the classes 0, 1 and 2 (8 of each) and their labels."""
    X, y = load_digits_images()
    keep = np.concatenate([np.flatnonzero(y == c)[:8] for c in range(3)])
    return X[keep], y[keep]


@pytest.fixture(scope="module")
def featurizer(digits):
    feat = MultiLayerFeaturizer(
        image_size=32, target_size=64, batch_size=CHUNK, device="cpu"
    )
    return feat.fit(digits[0][:CHUNK])


@pytest.fixture(scope="module")
def expected(featurizer, digits):
    return featurizer.transform(digits[0])


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _counts(client, featurizer):
    """``{worker: {"builds": ..., "chunks": ...}}`` of this featurizer."""
    token = featurizer_token(featurizer)
    per_worker = client.run(worker_counts)
    return {
        w: counts.get(token, {"builds": 0, "chunks": 0})
        for w, counts in per_worker.items()
    }


def test_array_features_equal_transform(client, featurizer, digits, expected):
    X = da.from_array(digits[0], chunks=(CHUNK, -1, -1))
    before = _counts(client, featurizer)
    Z = featurizer.transform(X)
    assert isinstance(Z, da.Array)
    assert Z.dtype == np.float32
    assert Z.shape == (len(X), featurizer.n_features_out_)
    assert Z.chunks == (X.chunks[0], (featurizer.n_features_out_,))
    got = Z.compute()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # four chunks on two workers: some worker ran two and built its backbone once
    after = _counts(client, featurizer)
    done = {w: after[w]["chunks"] - before[w]["chunks"] for w in after}
    assert sum(done.values()) == len(X.chunks[0])
    assert max(done.values()) >= 2
    for w in after:
        assert after[w]["builds"] == (1 if after[w]["chunks"] else 0), after


def test_backbone_reused_by_later_computations(client, featurizer, digits, expected):
    X = da.from_array(digits[0], chunks=(CHUNK, -1, -1))
    featurizer.transform(X).compute()  # every worker that ran a chunk built it
    before = _counts(client, featurizer)
    np.testing.assert_allclose(
        dask_transform(featurizer, X, chunk_size=3).compute(), expected, atol=1e-6
    )
    after = _counts(client, featurizer)
    assert sum(after[w]["chunks"] - before[w]["chunks"] for w in after) == 8
    assert {w: after[w]["builds"] for w in after} == {
        w: before[w]["builds"] for w in before
    }


def test_numpy_images_are_chunked(featurizer, digits, expected):
    Z = dask_transform(featurizer, digits[0], chunk_size=CHUNK)
    assert Z.chunks[0] == (CHUNK,) * 4
    np.testing.assert_allclose(Z.compute(), expected, rtol=0, atol=1e-6)


def test_standard_statistics_travel_to_the_workers(client, digits):
    feat = MultiLayerFeaturizer(
        image_size=32, target_size=32, normalize="standard", batch_size=CHUNK
    ).fit(digits[0][:12])
    want = feat.transform(digits[0])
    Z = feat.transform(da.from_array(digits[0], chunks=(CHUNK, -1, -1)))
    # the statistics are in effect: the fitted rows are centred
    assert np.abs(want[:12].mean(axis=0)).max() < 1e-4
    np.testing.assert_allclose(Z.compute(), want, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def paths(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    out = []
    for i, img in enumerate(digits[0]):
        path = folder / f"digit_{i:02d}.png"
        Image.fromarray(img).save(path)
        out.append(path)
    return out


def test_paths_route_equals_transform_of_paths(client, featurizer, paths):
    want = featurizer.transform(paths)
    Z = dask_transform(featurizer, paths, chunk_size=CHUNK)
    assert Z.chunks == ((CHUNK,) * 4, (featurizer.n_features_out_,))
    np.testing.assert_allclose(Z.compute(), want, rtol=0, atol=1e-6)
    # a dask array of path strings through transform itself
    P = da.from_array(np.array([str(p) for p in paths], dtype=object), chunks=CHUNK)
    np.testing.assert_allclose(featurizer.transform(P).compute(), want, atol=1e-6)


def test_missing_file_named_by_the_worker(client, featurizer, paths, tmp_path):
    missing = tmp_path / "missing_digit.png"
    Z = dask_transform(featurizer, [*paths[:2], missing], chunk_size=2)
    with pytest.raises(FileNotFoundError, match="missing_digit.png"):
        Z.compute()


def test_features_written_to_npy_stack(client, featurizer, digits, expected, tmp_path):
    Z = featurizer.transform(da.from_array(digits[0], chunks=(CHUNK, -1, -1)))
    # written under a temporary name, moved into place once complete
    final, partial = tmp_path / "features", tmp_path / "features.partial"
    da.to_npy_stack(partial, Z, axis=0)
    partial.rename(final)
    names = sorted(p.name for p in final.iterdir())
    assert names == [f"{i}.npy" for i in range(4)] + ["info"]
    back = da.from_npy_stack(final)
    assert back.chunks == Z.chunks
    np.testing.assert_allclose(back.compute(), expected, rtol=0, atol=1e-6)


def _slowly(block):
    time.sleep(0.4)  # images arrive slowly: the kill lands mid-computation
    return block


def test_computation_survives_a_killed_worker(client, featurizer, digits, expected):
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    X = da.from_array(digits[0], chunks=(2, -1, -1)).map_blocks(_slowly)
    future = client.compute(dask_transform(featurizer, X))
    start = _counts(client, featurizer)[victim]["chunks"]
    deadline = time.monotonic() + 60
    while _counts(client, featurizer)[victim]["chunks"] == start:
        assert time.monotonic() < deadline, "the victim never ran a chunk"
        time.sleep(0.05)
    assert not future.done()  # twelve slow chunks: most are still to come
    os.kill(pids[victim], signal.SIGKILL)
    got = future.result(timeout=120)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    client.wait_for_workers(2, timeout=60)
    assert pids[victim] not in client.run(os.getpid).values()  # it really died


def _cv_fit(Z, y):
    cv = GroupLassoClassifierCV(
        alphas=3, eps=3e-2, keep_fractions=[0.05, 0.2], refit_l2s=[1e-3], cv=3
    )
    return cv.set_params(n_jobs=2).fit(Z, y)


def test_cv_on_dask_backend_chooses_as_loky(client, featurizer, digits):
    Z = featurizer.transform(da.from_array(digits[0], chunks=(CHUNK, -1, -1)))
    Z = Z.compute()
    with joblib.parallel_config(backend="loky"):
        ref = _cv_fit(Z, digits[1])
    with joblib.parallel_config(backend="dask"):
        got = _cv_fit(Z, digits[1])
    for name in ("alpha_", "keep_fraction_", "refit_l2_", "candidate_"):
        assert getattr(got, name) == getattr(ref, name), name
    np.testing.assert_allclose(got.scores_, ref.scores_, rtol=1e-10)
    np.testing.assert_allclose(got.n_nonzero_, ref.n_nonzero_)
    for key in ("mean_test_score", "std_test_score"):
        np.testing.assert_allclose(got.cv_results_[key], ref.cv_results_[key])
    assert got.best_index_ == ref.best_index_


def test_chunked_along_image_axes_is_refused(featurizer, digits):
    X = da.from_array(digits[0], chunks=(CHUNK, 4, -1))
    with pytest.raises(ValueError, match=r"chunked along axis 1.*rechunk"):
        featurizer.transform(X)
    with pytest.raises(ValueError, match="chunked along axis 1"):
        dask_transform(featurizer, X)
    Z = featurizer.transform(X.rechunk({1: -1, 2: -1}))  # the fix it gives
    assert Z.chunks[0] == X.chunks[0]


def test_bad_dask_inputs(featurizer, digits):
    X = da.from_array(digits[0], chunks=(CHUNK, -1, -1))
    with pytest.raises(TypeError, match="out must be None"):
        featurizer.transform(X, out=np.empty((24, featurizer.n_features_out_)))
    unknown = X[X.sum(axis=(1, 2)) > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        featurizer.transform(unknown)
    with pytest.raises(ValueError, match="chunk_size must be"):
        dask_transform(featurizer, X, chunk_size=0)
    with pytest.raises(ValueError, match="expected images"):
        featurizer.transform(X[..., None, None])
    with pytest.raises(TypeError, match="1-D X is read as image paths"):
        featurizer.transform(da.zeros(4, chunks=2))
    with pytest.raises(TypeError, match=r"X\[1\] is a int, not a path"):
        dask_transform(featurizer, ["a.png", 3])


def test_unfitted_featurizer_raises_not_fitted(digits):
    X = da.from_array(digits[0], chunks=(CHUNK, -1, -1))
    with pytest.raises(NotFittedError):
        MultiLayerFeaturizer().transform(X)
    with pytest.raises(NotFittedError):
        dask_transform(MultiLayerFeaturizer(), ["a.png"])


def test_dask_not_imported_without_a_dask_array():
    code = (
        "import sys; import numpy as np; "
        "from skhead2toe import MultiLayerFeaturizer; "
        "f = MultiLayerFeaturizer(backbone='test_resnet', pretrained=False, "
        "image_size=32, target_size=16, device='cpu', random_state=0); "
        "f.fit_transform(np.zeros((2, 32, 32), np.uint8)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
