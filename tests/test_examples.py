"""Run every gallery example so that the examples cannot rot.

Each ``examples/plot_*.py`` runs in a fresh Python process, in a temporary working
directory, with the non-interactive Agg backend; the test fails if the script
exits with an error. The examples are offline and each takes well under two
minutes on two CPU cores.

Each example runs on one thread, so the selected examples are all started when
the first of their tests runs, as many at a time as there are cores; each test
then waits for its own script. On two cores this halves the time the examples
take, which is most of the suite's.
"""

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))


def _run(script, workdir):
    """Run one example script in ``workdir``; the finished process."""
    workdir.mkdir()
    env = dict(os.environ, MPLBACKEND="Agg")
    # One BLAS/OpenMP thread per process unless the caller chose otherwise: on a
    # small, shared machine, torch's and numpy's thread pools oversubscribe the
    # cores and the examples run many times slower.
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def example_runs(request):
    """Futures of the example runs, keyed by script, for the selected tests only."""
    selected = [
        item.callspec.params["script"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_example_runs"
    ]
    workers = max(1, min(len(selected), os.cpu_count() or 1))
    # the pool exits (waiting for every run) before the directory is removed
    with (
        tempfile.TemporaryDirectory() as tmp,
        ThreadPoolExecutor(workers) as pool,
    ):
        yield {
            script: pool.submit(_run, script, Path(tmp) / script.stem)
            for script in selected
        }


def test_examples_found():
    assert EXAMPLES, f"no plot_*.py scripts in {EXAMPLES_DIR}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, example_runs):
    proc = example_runs[script].result()
    assert proc.returncode == 0, (
        f"{script.name} failed (exit code {proc.returncode}):\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
