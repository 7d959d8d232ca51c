"""Fit adelie's grouped multinomial lasso path; run in adelie's own environment.

adelie (Yang & Hastie, 2024) needs numpy < 2, so ``_peers.run_adelie`` runs this
script with the interpreter of a separate environment (``--adelie-python``), as
the benchmark runs R for glmnet. It imports nothing from skhead2toe.

Usage::

    python _adelie_fit.py IN.npz OUT.npz

``IN.npz`` holds ``X`` (n, d), ``Y`` (n, K) one-hot, ``lmdas`` (the path,
decreasing, in adelie's scale), ``tol`` and ``irls_tol``; ``OUT.npz`` gets the
last point's ``W`` (d, K) and ``b`` (K,), and ``seconds``, the time of the
``grpnet`` call alone.
"""

import sys
import time

import numpy as np


def main(src, dst):
    import adelie as ad

    data = np.load(src)
    X = np.asfortranarray(data["X"], dtype=np.float64)
    Y = np.asarray(data["Y"], dtype=np.float64)
    n, d = X.shape
    K = Y.shape[1]
    glm = ad.glm.multinomial(y=Y, weights=np.full(n, 1.0 / n))
    start = time.perf_counter()
    state = ad.grpnet(
        X,
        glm,
        penalty=np.ones(d),  # unit factors: lambda = alpha / K is our problem
        lmda_path=np.asarray(data["lmdas"], dtype=np.float64),
        tol=float(data["tol"]),
        irls_tol=float(data["irls_tol"]),
        early_exit=False,
        adev_tol=1.0,
        ddev_tol=0.0,
        progress_bar=False,
        n_threads=1,
    )
    seconds = time.perf_counter() - start
    beta = state.betas[-1].toarray().ravel()  # vec over features, classes inner
    W = beta.reshape(d, K)
    b = np.asarray(state.intercepts[-1], dtype=np.float64).ravel()
    np.savez(dst, W=W, b=b, seconds=seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
