import os
from pathlib import Path

import numpy as np
import pytest
from joblib import Memory

from skhead2toe.feature_extraction import MultiLayerFeaturizer
from skhead2toe.feature_extraction._cache import FeatureCache, params_key


def _images(n=6, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _feat(**kw):
    kw = {
        "pretrained": False,
        "image_size": 32,
        "random_state": 0,
        "device": "cpu",
        "target_size": 64,
        "batch_size": 2,
        **kw,
    }
    return MultiLayerFeaturizer("test_resnet", **kw)


@pytest.fixture
def counted(monkeypatch):
    """Count images sent through the backbone."""
    seen = []
    forward = MultiLayerFeaturizer._forward

    def counting(self, source, idx, *args):
        seen.extend(int(i) for i in idx)
        return forward(self, source, idx, *args)

    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", counting)
    return seen


def _entries(root):
    return sorted(Path(root).rglob("*.f32"))


def test_cache_hit_runs_the_backbone_once_per_image(tmp_path, counted):
    X = _images(6)
    expected = _feat().fit(X).transform(X)
    counted.clear()
    feat = _feat(cache=tmp_path).fit(X)
    np.testing.assert_array_equal(feat.transform(X[:4]), expected[:4])
    assert sorted(counted) == [0, 1, 2, 3]
    counted.clear()
    np.testing.assert_array_equal(feat.transform(X), expected)
    assert counted == [4, 5]  # only the new images
    counted.clear()
    np.testing.assert_array_equal(feat.transform(X[::-1]), expected[::-1])
    assert counted == []
    # a clone (as in a grid search) shares the cache
    from sklearn.base import clone

    np.testing.assert_array_equal(clone(feat).fit(X).transform(X), expected)
    assert counted == []
    assert len(_entries(tmp_path)) == 6


def test_parameters_are_part_of_the_key(tmp_path, counted, monkeypatch):
    from skhead2toe.feature_extraction import featurizer as featurizer_module

    X = _images(3)
    _feat(cache=tmp_path).fit(X).transform(X)
    counted.clear()
    _feat(cache=tmp_path, target_size=32).fit(X).transform(X)
    assert len(counted) == 3
    counted.clear()
    _feat(cache=tmp_path, random_state=1).fit(X).transform(X)
    assert len(counted) == 3
    counted.clear()
    _feat(cache=tmp_path, batch_size=3, progress=False).fit(X).transform(X)
    assert counted == []  # running options are not
    # the rules that read images are: entries read by older rules are stale
    rules = featurizer_module.IMAGE_RULES
    monkeypatch.setattr(featurizer_module, "IMAGE_RULES", rules + 1)
    _feat(cache=tmp_path).fit(X).transform(X)
    assert len(counted) == 3
    assert params_key({"a": 1, "b": [1, 2]}) == params_key({"b": [1, 2], "a": 1})


def test_interrupted_extraction_resumes(tmp_path, monkeypatch, counted):
    X = _images(8)
    expected = _feat().fit(X).transform(X)
    feat = _feat(cache=tmp_path).fit(X)
    forward = MultiLayerFeaturizer._forward  # the counting wrapper

    def crash_on_third_batch(self, source, idx, *args):
        if int(idx[0]) == 4:
            raise KeyboardInterrupt
        return forward(self, source, idx, *args)

    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        feat.transform(X)
    assert len(_entries(tmp_path)) == 4
    assert not list(Path(tmp_path).rglob(".tmp-*"))  # no half-written entries
    monkeypatch.setattr(MultiLayerFeaturizer, "_forward", forward)
    counted.clear()
    np.testing.assert_array_equal(feat.transform(X), expected)
    assert counted == [4, 5, 6, 7]


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "garbage"])
def test_corrupt_or_foreign_entries_are_recomputed(tmp_path, counted, damage):
    X = _images(3)
    feat = _feat(cache=tmp_path).fit(X)
    expected = feat.transform(X)
    hashes = feat_hashes(X)
    files = {h: next(Path(tmp_path).rglob(f"{h}.f32")) for h in hashes}
    victim = files[hashes[1]]
    data = victim.read_bytes()
    if damage == "flip":
        victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0x40]))
    elif damage == "truncate":
        victim.write_bytes(data[:-4])
    elif damage == "foreign":  # a valid entry, but for another image
        victim.write_bytes(files[hashes[0]].read_bytes())
    else:
        victim.write_bytes(os.urandom(len(data)))
    counted.clear()
    with pytest.warns(RuntimeWarning, match="corrupt or foreign"):
        # recomputed alone (batch of 1): equal up to float rounding
        np.testing.assert_allclose(feat.transform(X), expected, rtol=1e-5, atol=1e-7)
    assert counted == [1]
    assert len(victim.read_bytes()) == len(data)  # rewritten as a valid entry
    counted.clear()
    np.testing.assert_allclose(feat.transform(X), expected, rtol=1e-5, atol=1e-7)
    assert counted == []


def feat_hashes(X):
    from skhead2toe.feature_extraction._images import as_source

    return as_source(X).hashes(range(len(X)))


def test_joblib_memory_is_accepted(tmp_path, counted):
    X = _images(2)
    feat = _feat(cache=Memory(tmp_path, verbose=0)).fit(X)
    feat.transform(X)
    assert len(_entries(tmp_path / "skhead2toe_features")) == 2
    counted.clear()
    feat.transform(X)
    assert counted == []
    counted.clear()
    _feat(cache=Memory(None)).fit(X).transform(X)
    assert len(counted) == 2


def test_standard_statistics_with_cache(tmp_path):
    X = _images(5)
    plain = _feat(normalize="standard").fit_transform(X)
    cached = _feat(normalize="standard", cache=tmp_path)
    np.testing.assert_allclose(cached.fit_transform(X), plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cached.transform(X), plain, rtol=1e-5, atol=1e-5)


def test_put_is_atomic(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, "k" * 32, 3)
    cache.put("ab" * 16, np.arange(3))
    np.testing.assert_array_equal(cache.get("ab" * 16), [0, 1, 2])
    assert cache.get("cd" * 16) is None

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        cache.put("cd" * 16, np.ones(3))
    assert cache.get("cd" * 16) is None
    assert not list(tmp_path.rglob(".tmp-*"))


def _unwritable(folder, monkeypatch, how):
    """Make cache writes under ``folder`` fail as a read-only or full disk does."""
    import errno

    from skhead2toe.feature_extraction import _cache

    if how == "read-only":
        folder.mkdir()
        folder.chmod(0o555)
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            return  # permissions are enforced: a real read-only folder
        probe.unlink()  # root: permissions are not enforced, simulate them
        folder.chmod(0o755)
        code, text = errno.EACCES, "Permission denied"
    else:
        code, text = errno.ENOSPC, "No space left on device"

    def failing(path, write, **kwargs):
        raise OSError(code, text, str(path))

    monkeypatch.setattr(_cache, "atomic_write", failing)


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_unwritable_cache_falls_back_with_one_warning(tmp_path, monkeypatch, how):
    import warnings

    X = _images(6)
    expected = _feat().fit(X).transform(X)
    folder = tmp_path / "cache"
    _unwritable(folder, monkeypatch, how)
    feat = _feat(cache=folder).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Z = feat.transform(X)
    np.testing.assert_array_equal(Z, expected)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert caught[0].category is UserWarning
    assert str(folder) in str(caught[0].message)
    assert "without the cache" in str(caught[0].message)
    if folder.exists():
        folder.chmod(0o755)
    assert not _entries(tmp_path) and not list(tmp_path.rglob(".tmp-*"))


def test_readable_entries_of_a_read_only_cache_are_used(tmp_path, monkeypatch, counted):
    X = _images(4)
    folder = tmp_path / "cache"
    _feat(cache=folder).fit(X).transform(X[:2])
    from skhead2toe.feature_extraction import _cache

    def failing(path, write, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_cache, "atomic_write", failing)
    counted.clear()
    with pytest.warns(UserWarning, match="without the cache"):
        _feat(cache=folder).fit(X).transform(X)
    assert sorted(counted) == [2, 3]  # hits are still read


def test_interrupted_put_leaves_no_partial_entry(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path, "k" * 32, 3)

    def interrupted(src, dst):
        raise KeyboardInterrupt  # Ctrl-C after the entry was written, before the move

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.put("ab" * 16, np.arange(3))
    assert not list(tmp_path.rglob(".tmp-*")) and not _entries(tmp_path)
    monkeypatch.undo()

    class Interrupting:
        def __init__(self, real):
            self.real = real

        def write(self, data):
            self.real.write(data[: len(data) // 2])
            raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    import skhead2toe._io as io_module

    fdopen = os.fdopen

    def half_written(fd, *args, **kwargs):
        import contextlib

        @contextlib.contextmanager
        def opened():
            with fdopen(fd, *args, **kwargs) as f:
                yield Interrupting(f)

        return opened()

    monkeypatch.setattr(io_module.os, "fdopen", half_written)
    with pytest.raises(KeyboardInterrupt):
        cache.put("ab" * 16, np.arange(3))
    monkeypatch.undo()
    assert not list(tmp_path.rglob(".tmp-*")) and not _entries(tmp_path)
    assert cache.get("ab" * 16) is None
