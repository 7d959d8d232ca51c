"""Parallel tasks return their memory and do not import torch in the workers."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from skhead2toe import _memory
from skhead2toe._memory import release_memory, releases_memory

GLIBC = _memory._malloc_trim() is not None


def _rss_anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_release_memory_returns_freed_heap_to_the_system():
    # Blocks below glibc's mmap threshold live in the heap; one kept block in
    # ten stops the heap from shrinking on its own when the others are freed.
    blocks = [np.ones(12_000) for _ in range(4_000)]  # 96 KB each, 384 MB
    kept = blocks[::10]
    del blocks
    before = _rss_anon_kb()
    release_memory()
    after = _rss_anon_kb()
    assert before - after > 200_000  # of the 345 MB freed, in KB
    assert len(kept) == 400


def test_release_memory_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(_memory, "_malloc_trim", lambda: None)
    assert release_memory() is False


def test_releases_memory_wraps_and_releases_also_on_error(monkeypatch):
    calls = []
    monkeypatch.setattr(_memory, "release_memory", lambda: calls.append(1))

    @releases_memory
    def task(x, *, y):
        """A task."""
        if x < 0:
            raise ValueError("negative")
        return x + y

    assert task(1, y=2) == 3 and calls == [1]
    with pytest.raises(ValueError, match="negative"):
        task(-1, y=0)
    assert calls == [1, 1]
    assert task.__name__ == "task" and task.__doc__ == "A task."


def test_domain_affinity_workers_do_not_import_torch():
    # scikit-learn's Parallel sends the warning filters to its workers, and
    # torch's (there once the featurizer is imported) make each worker import
    # torch: seconds per worker. A fresh interpreter has fresh workers.
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        import torch  # noqa: F401  (as the featurizer does)
        from sklearn.base import BaseEstimator, ClassifierMixin
        from skhead2toe.inspection import domain_affinity

        class Probe(ClassifierMixin, BaseEstimator):
            def fit(self, X, y):
                self.classes_ = np.unique(y)
                return self

            def score(self, X, y, sample_weight=None):
                return float("torch" not in sys.modules)

        X = np.random.default_rng(0).standard_normal((40, 3))
        y = np.arange(40) % 2
        res = domain_affinity(X, y, X_scratch=X, estimator=Probe(), cv=2, n_jobs=2)
        print(res.linear_scores.tolist(), res.scratch_scores.tolist())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[1.0,", "1.0]", "[1.0,", "1.0]"]
