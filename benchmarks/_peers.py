"""Independent objective evaluation and peer solvers for the benchmark.

Everything here is written against the objective, exactly::

    F(W, b) = (1/n) sum_i s_i CE(softmax(x_i W + b), y_i)
              + alpha * sum_j ||W_j||_2 + (l2 / 2) ||W||_F^2

with ``W`` of shape (d, K) (one group per feature = one row of ``W``), ``b`` an
unpenalised intercept and sample weights ``s`` normalised to sum ``n``.  None
of it imports :mod:`skhead2toe`, so it can check that package.

Peers (each returns ``W`` (d, K), ``b`` (K,), seconds and extra information):

* :func:`run_glmnet` -- R's glmnet, ``family="multinomial",
  type.multinomial="grouped", standardize=FALSE``.  glmnet minimises
  ``-(1/n) loglik + lambda * [(1 - a)/2 ||W||_F^2 + a sum_j ||W_j||_2]``, so
  ``lambda = alpha + l2`` and ``a = alpha / (alpha + l2)`` (``lambda = alpha``,
  ``a = 1`` when ``l2 = 0``).
* :func:`run_group_lasso` -- the PyPI package ``group-lasso``
  (``LogisticGroupLasso``).  Its FISTA step is ``prox_{reg/L}(w - grad/(2L))``:
  the gradient step is halved but the prox threshold is not, so its fixed
  points minimise ``mean CE + 2 * group_reg * sum_j ||W_j||``.  Hence
  ``group_reg = alpha / 2`` (with ``scale_reg="none"``, ``l1_reg=0``); see
  the README for the measurement that confirms it.
* :func:`run_sklearn_lr` -- scikit-learn's ``LogisticRegression`` (L2 only):
  ``C sum_i CE + ||W||^2 / 2`` equals ``n C`` times our objective with
  ``alpha = 0`` and ``l2 = 1 / (n C)``.
"""

import os
import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np
from scipy.special import logsumexp

_CHUNK = 8192


# ---------------------------------------------------------------------------
# objective, alpha_max, duality gap (float64, independent implementation)
# ---------------------------------------------------------------------------


def _weights(y, sample_weight):
    n = y.shape[0]
    if sample_weight is None:
        return np.ones(n)
    s = np.asarray(sample_weight, dtype=np.float64)
    return s * (n / s.sum())


def _xt_dot(X, R):
    """``X.T @ R`` in float64, converting ``X`` chunk by chunk."""
    out = np.empty((X.shape[1], R.shape[1]))
    for start in range(0, X.shape[1], _CHUNK):
        stop = min(start + _CHUNK, X.shape[1])
        out[start:stop] = X[:, start:stop].astype(np.float64).T @ R
    return out


def _logits(X, W, b):
    W = np.asarray(W, dtype=np.float64)
    active = np.flatnonzero(np.any(W != 0, axis=1))
    Z = X[:, active].astype(np.float64) @ W[active]
    return Z + np.asarray(b, dtype=np.float64)[None, :]


def primal_objective(X, y, W, b, alpha, l2=0.0, sample_weight=None):
    """Objective ``F(W, b)`` in float64.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,), ints in ``0 .. K-1``
    W : ndarray of shape (d, K)
    b : ndarray of shape (K,)
    alpha, l2 : float
    sample_weight : ndarray of shape (n,) or None

    Returns
    -------
    float
    """
    W = np.asarray(W, dtype=np.float64)
    n = X.shape[0]
    s = _weights(y, sample_weight)
    Z = _logits(X, W, b)
    ce = logsumexp(Z, axis=1) - Z[np.arange(n), y]
    loss = float(s @ ce) / n
    row_norms = np.sqrt((W * W).sum(axis=1))
    return loss + alpha * float(row_norms.sum()) + 0.5 * l2 * float((W * W).sum())


def center_rows(W):
    """Subtract each row's mean across classes.

    Adding a constant to a row of ``W`` leaves the softmax unchanged, and the
    row norm (and ``||W||_F``) is smallest when the row has mean zero, so this
    never increases the objective.
    """
    W = np.asarray(W, dtype=np.float64)
    return W - W.mean(axis=1, keepdims=True)


def alpha_max(X, y, sample_weight=None):
    """Smallest ``alpha`` with ``W = 0`` optimal: ``max_j ||x_j^T (Y - P0)|| / n``."""
    n = X.shape[0]
    K = int(y.max()) + 1
    s = _weights(y, sample_weight)
    Y = np.zeros((n, K))
    Y[np.arange(n), y] = 1.0
    p0 = (s @ Y) / n
    R = s[:, None] * (Y - p0[None, :])
    G = _xt_dot(X, R)
    return float(np.sqrt((G * G).sum(axis=1)).max()) / n


def duality_gap(X, y, W, b, alpha, l2=0.0, sample_weight=None):
    """Fenchel duality gap at ``(W, b)`` (upper bound of ``F - F*``).

    The dual point is built from the residual ``Theta = s (Y - P) / n`` (scaled
    into the dual feasible set when ``l2 == 0``); its columns sum to zero only
    when the intercept is optimal, which the returned gap assumes.

    Returns
    -------
    gap : float
    primal : float
    """
    W = np.asarray(W, dtype=np.float64)
    n = X.shape[0]
    K = W.shape[1]
    s = _weights(y, sample_weight)
    Z = _logits(X, W, b)
    P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
    Y = np.zeros((n, K))
    Y[np.arange(n), y] = 1.0
    primal = primal_objective(X, y, W, b, alpha, l2, sample_weight)
    G = _xt_dot(X, s[:, None] * (Y - P)) / n
    norms = np.sqrt((G * G).sum(axis=1))
    if l2 > 0:
        scale = 1.0
        conj = float((np.maximum(norms - alpha, 0.0) ** 2).sum()) / (2 * l2)
    else:
        scale = min(1.0, alpha / norms.max()) if norms.max() > 0 else 1.0
        conj = 0.0
    Q = (1 - scale) * Y + scale * P
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(Q > 0, Q * np.log(Q), 0.0).sum(axis=1)
    dual = float(s @ ent) / n - conj
    return primal - dual, primal


def relative_suboptimality(F, F_star):
    """``(F - F*) / F*``."""
    return (F - F_star) / abs(F_star)


# ---------------------------------------------------------------------------
# R glmnet
# ---------------------------------------------------------------------------

_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
suppressMessages(library(glmnet))
p <- read.table(file.path(dir, "params.txt"), header = TRUE)
n <- p$n; d <- p$d; K <- p$K
con <- file(file.path(dir, "X.bin"), "rb")
x <- matrix(readBin(con, "double", n * d), n, d)
close(con)
con <- file(file.path(dir, "y.bin"), "rb")
yi <- readBin(con, "integer", n, size = 4)
close(con)
y <- factor(yi, levels = 0:(K - 1))
Y <- diag(K)[yi + 1, ]
lam <- readBin(file.path(dir, "lambda.bin"), "double", p$nlam)
thr <- readBin(file.path(dir, "thresh.bin"), "double", p$nthr)
total <- 0
for (t in seq_along(thr)) {
  if (total > p$cap) break
  # a short fit is repeated (best of p$reps, as timeit does) to beat timer noise
  elapsed <- Inf
  for (r in seq_len(p$reps)) {
    warn <- ""
    t0 <- proc.time()[["elapsed"]]
    fit <- tryCatch(withCallingHandlers(
      glmnet(x, y, family = "multinomial", type.multinomial = "grouped",
             alpha = p$parm, lambda = lam, standardize = FALSE,
             intercept = TRUE, thresh = thr[t], maxit = p$maxit),
      warning = function(w) {
        warn <<- paste(warn, conditionMessage(w))
        invokeRestart("muffleWarning")
      }), error = function(e) NULL)
    once <- proc.time()[["elapsed"]] - t0
    elapsed <- min(elapsed, once)
    if (is.null(fit) || once > p$short) break
  }
  total <- total + elapsed
  pre <- file.path(dir, sprintf("out%03d", t))
  if (is.null(fit)) {
    cat(sprintf("%.17g -1 0 0 failed:%s\n", elapsed,
                gsub("[[:space:]]+", "_", trimws(warn))),
        file = paste0(pre, "_meta.txt"))
    break
  }
  m <- length(fit$lambda)
  B <- sapply(fit$beta, function(bk) as.numeric(bk[, m]))
  B <- matrix(B, d, K)
  a0 <- as.numeric(fit$a0[, m])
  nz <- which(rowSums(B != 0) > 0)
  writeBin(as.integer(nz - 1), paste0(pre, "_idx.bin"), size = 4)
  writeBin(as.numeric(t(B[nz, , drop = FALSE])), paste0(pre, "_val.bin"))
  writeBin(a0, paste0(pre, "_a0.bin"))
  cat(sprintf("%.17g %d %d %d %s\n", elapsed, fit$npasses, m, length(nz),
              gsub("[[:space:]]+", "_", trimws(warn))),
      file = paste0(pre, "_meta.txt"))
  # early stop of the threshold ladder on the suboptimality target
  if (p$fstar > 0) {
    eta <- x[, nz, drop = FALSE] %*% B[nz, , drop = FALSE]
    eta <- sweep(eta, 2, a0, "+")
    mx <- apply(eta, 1, max)
    lse <- mx + log(rowSums(exp(eta - mx)))
    Bc <- B[nz, , drop = FALSE] - rowMeans(B[nz, , drop = FALSE])
    pen <- p$alpha * sum(sqrt(rowSums(Bc^2))) + p$l2 / 2 * sum(Bc^2)
    obj <- mean(lse - rowSums(eta * Y)) + pen
    if ((obj - p$fstar) / p$fstar <= p$target) break
  }
}
"""


def rscript_available(rscript="Rscript"):
    """Whether ``Rscript`` with glmnet can be run."""
    if shutil.which(rscript) is None:
        return False
    res = subprocess.run(
        [rscript, "-e", "suppressMessages(library(glmnet))"],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


class GlmnetData:
    """Data written once to a temporary directory for repeated glmnet runs.

    Use as a context manager; the directory is removed on exit.
    """

    def __init__(self, X, y, rscript="Rscript"):
        self.n, self.d = X.shape
        self.K = int(y.max()) + 1
        self.rscript = rscript
        self.dir = tempfile.mkdtemp(prefix="bench_glmnet_")
        with open(os.path.join(self.dir, "X.bin"), "wb") as f:
            # column-major float64, as R's matrix() expects
            for start in range(0, self.d, _CHUNK):
                stop = min(start + _CHUNK, self.d)
                X[:, start:stop].T.astype(np.float64).tofile(f)
        np.asarray(y, dtype=np.int32).tofile(os.path.join(self.dir, "y.bin"))
        with open(os.path.join(self.dir, "run.R"), "w") as f:
            f.write(_R_SCRIPT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(
        self,
        alpha,
        threshs,
        lambdas=None,
        l2=0.0,
        maxit=100_000,
        f_star=None,
        target=1e-6,
        time_cap=120.0,
        timeout=3600,
        repeat=1,
        short=1.0,
    ):
        """Fit glmnet once per threshold in ``threshs``.

        Parameters
        ----------
        alpha : float
            Our group-lasso strength.
        threshs : sequence of float
            glmnet ``thresh`` values, tried in order.  With ``f_star`` given,
            the ladder stops at the first fit whose relative suboptimality
            (computed in R) is at most ``target``; it also stops once the
            fits so far took more than ``time_cap`` seconds, or at a fit
            that fails (glmnet reaching ``maxit``).
        lambdas : sequence of float or None
            The lambda path (decreasing, last one equal to ``alpha + l2``);
            ``None`` for a single lambda.
        l2 : float
            Ridge strength in our scaling.
        repeat, short : int, float
            A fit under ``short`` seconds is repeated up to ``repeat`` times and
            timed by its fastest run (:func:`best_of`'s rule, applied in R).

        Returns
        -------
        list of dict
            One per fit: ``thresh``, ``W`` (d, K), ``b`` (K,), ``seconds`` (the
            glmnet call only, measured in R), ``npasses``, ``nlambda``,
            ``warning``.
        """
        lam_final = alpha + l2
        parm = alpha / lam_final
        if lambdas is None:
            lambdas = [lam_final]
        lambdas = np.asarray(lambdas, dtype=np.float64)
        if not np.isclose(lambdas[-1], lam_final, rtol=1e-12):
            raise ValueError("the last lambda must equal alpha + l2")
        for fname in os.listdir(self.dir):
            if fname.startswith("out"):
                os.remove(os.path.join(self.dir, fname))
        lambdas.tofile(os.path.join(self.dir, "lambda.bin"))
        np.asarray(threshs, dtype=np.float64).tofile(
            os.path.join(self.dir, "thresh.bin")
        )
        with open(os.path.join(self.dir, "params.txt"), "w") as f:
            f.write("n d K parm maxit nlam nthr fstar target alpha l2 cap reps short\n")
            f.write(
                f"{self.n} {self.d} {self.K} {parm!r} {int(maxit)} {len(lambdas)} "
                f"{len(threshs)} {f_star or 0.0!r} {target!r} {alpha!r} {l2!r} "
                f"{float(time_cap)!r} {int(repeat)} {float(short)!r}\n"
            )
        res = subprocess.run(
            [self.rscript, "--vanilla", os.path.join(self.dir, "run.R"), self.dir],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if res.returncode != 0:
            raise RuntimeError(f"Rscript failed:\n{res.stderr[-3000:]}")
        out = []
        for t, thresh in enumerate(threshs, start=1):
            pre = os.path.join(self.dir, f"out{t:03d}")
            if not os.path.exists(pre + "_meta.txt"):
                break
            with open(pre + "_meta.txt") as f:
                fields = f.read().split()
            if len(fields) > 4 and fields[4].startswith("failed"):
                out.append(
                    dict(
                        thresh=float(thresh),
                        W=None,
                        b=None,
                        seconds=float(fields[0]),
                        npasses=-1,
                        nlambda=0,
                        warning=fields[4],
                    )
                )
                break
            idx = np.fromfile(pre + "_idx.bin", dtype=np.int32)
            val = np.fromfile(pre + "_val.bin", dtype=np.float64)
            if int(fields[2]) != len(lambdas):
                # glmnet stopped before the last lambda (maxit): no solution
                out.append(
                    dict(
                        thresh=float(thresh),
                        W=None,
                        b=None,
                        seconds=float(fields[0]),
                        npasses=int(fields[1]),
                        nlambda=int(fields[2]),
                        warning="failed:" + (fields[4] if len(fields) > 4 else ""),
                    )
                )
                break
            W = np.zeros((self.d, self.K))
            W[idx] = val.reshape(len(idx), self.K)
            b = np.fromfile(pre + "_a0.bin", dtype=np.float64)
            out.append(
                dict(
                    thresh=float(thresh),
                    W=W,
                    b=b,
                    seconds=float(fields[0]),
                    npasses=int(fields[1]),
                    nlambda=int(fields[2]),
                    warning=fields[4] if len(fields) > 4 else "",
                )
            )
        return out


def glmnet_path_lambdas(alpha, alpha_max_, per_decade=50):
    """glmnet's default lambda spacing (100 over two decades), cut at ``alpha``."""
    m = max(2, int(np.ceil(per_decade * np.log10(alpha_max_ / alpha))) + 1)
    return np.geomspace(alpha_max_, alpha, m)


# ---------------------------------------------------------------------------
# group-lasso (PyPI)
# ---------------------------------------------------------------------------


def run_group_lasso(X, y, alpha, n_iter, tol=0.0):
    """Fit ``group_lasso.LogisticGroupLasso`` for ``n_iter`` FISTA iterations.

    ``group_reg = alpha / 2`` (see the module docstring), ``l1_reg = 0``,
    ``scale_reg="none"``, one group per feature.

    Returns
    -------
    W : ndarray (d, K)
    b : ndarray (K,)
    seconds : float
    """
    from group_lasso import LogisticGroupLasso

    model = LogisticGroupLasso(
        groups=np.arange(X.shape[1]),
        group_reg=alpha / 2.0,
        l1_reg=0.0,
        n_iter=int(n_iter),
        tol=tol,
        scale_reg="none",
        supress_warning=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
    W = np.asarray(model.coef_, dtype=np.float64)
    b = np.asarray(model.intercept_, dtype=np.float64).ravel()
    return W, b, seconds


def run_group_lasso_capped(X, y, alpha, time_cap, probe_iter=10):
    """Run group-lasso for about ``time_cap`` seconds.

    A short probe measures the time per iteration; the timed run then uses
    as many iterations as fit in ``time_cap`` (``tol=0``: no early stop).

    Returns
    -------
    W, b, seconds, n_iter
    """
    _, _, t_probe = run_group_lasso(X, y, alpha, probe_iter)
    per_iter = t_probe / probe_iter
    n_iter = max(probe_iter, int(time_cap / per_iter))
    W, b, seconds = run_group_lasso(X, y, alpha, n_iter)
    return W, b, seconds, n_iter


# ---------------------------------------------------------------------------
# scikit-learn LogisticRegression (L2 only)
# ---------------------------------------------------------------------------


def best_of(fit, repeat=1, short=1.0):
    """Time ``fit()`` by its fastest run when it is short.

    ``fit`` returns a tuple whose third item is its seconds. A run under ``short``
    seconds is repeated, up to ``repeat`` runs in all, and the fastest is kept:
    timeit's rule, so that sub-second timings are not at the mercy of one
    scheduler hiccup. Every solver in the benchmark is timed by this same rule
    (glmnet's inside R).
    """
    best = fit()
    for _ in range(repeat - 1):
        if best[2] > short:
            break
        out = fit()
        if out[2] < best[2]:
            best = out
    return best


#: The ridge of the scikit-learn ``LogisticRegression`` speed reference
#: (``C = 1 / (n LR_L2)``), shared by ``bench_solvers.py`` and
#: ``bench_certificate.py``.
LR_L2 = 1e-3


def run_sklearn_lr(X, y, l2, tol=1e-6, max_iter=10_000, solver="lbfgs"):
    """Multinomial L2 logistic regression with ``C = 1 / (n * l2)``.

    Returns
    -------
    W : ndarray (d, K)
    b : ndarray (K,)
    seconds : float
    n_iter : int
    """
    from sklearn.linear_model import LogisticRegression

    C = 1.0 / (X.shape[0] * l2)
    model = LogisticRegression(C=C, tol=tol, max_iter=max_iter, solver=solver)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
    W = np.asarray(model.coef_, dtype=np.float64).T
    b = np.asarray(model.intercept_, dtype=np.float64)
    return W, b, seconds, int(np.max(model.n_iter_))


#: adelie's coordinate-descent and IRLS tolerances, loosest first.
ADELIE_LADDER = [1e-7, 1e-9, 1e-11]
ADELIE_SCRIPT = os.path.join(os.path.dirname(__file__), "_adelie_fit.py")


def adelie_python(path=None):
    """The interpreter of adelie's environment, or None if there is none.

    adelie needs numpy < 2, so it lives in its own environment (by default
    ``benchmarks/.venv-adelie``: ``python -m venv benchmarks/.venv-adelie &&
    benchmarks/.venv-adelie/bin/pip install "numpy<2" adelie``).
    """
    if path is None:
        path = os.path.join(os.path.dirname(__file__), ".venv-adelie", "bin", "python")
    if not os.path.exists(path):
        return None
    probe = subprocess.run(
        [path, "-c", "import adelie"], capture_output=True, text=True, check=False
    )
    return path if probe.returncode == 0 else None


def run_adelie(X, y, alpha, alpha_max_, tol, python, n_lambdas=11):
    """adelie's grouped multinomial lasso on an 11-point path down to ``alpha``.

    Its objective is ``(1/K)`` times ours with unit penalty factors and
    ``lambda = alpha / K`` (its ``lambda_max`` is our ``alpha_max / K``), so the
    path runs over ``geomspace(alpha_max, alpha, n_lambdas) / K``. The time is
    that of the ``grpnet`` call inside its process.

    Returns
    -------
    W : ndarray (d, K)
    b : ndarray (K,)
    seconds : float
    """
    classes, codes = np.unique(y, return_inverse=True)
    K = len(classes)
    lmdas = np.geomspace(alpha_max_, alpha, n_lambdas) / K
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(src, X=X, Y=np.eye(K)[codes], lmdas=lmdas, tol=tol, irls_tol=tol)
        subprocess.run([python, ADELIE_SCRIPT, src, dst], check=True)
        out = np.load(dst)
        return out["W"], out["b"], float(out["seconds"])
