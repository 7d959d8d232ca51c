"""Run every gallery example so that the examples cannot rot.

Each ``examples/plot_*.py`` runs in a fresh Python process, in a temporary working
directory, with the non-interactive Agg backend; the test fails if the script
exits with an error. The examples are offline and each takes well under two
minutes on two CPU cores.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))


def test_examples_found():
    assert EXAMPLES, f"no plot_*.py scripts in {EXAMPLES_DIR}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    # One BLAS/OpenMP thread per process unless the caller chose otherwise: on a
    # small, shared machine, torch's and numpy's thread pools oversubscribe the
    # cores and the examples run many times slower.
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed (exit code {proc.returncode}):\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
