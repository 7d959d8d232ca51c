"""Helpers shared by the tests: independent reference code, file-system tricks."""

import errno
import os

import numpy as np
from scipy.special import softmax


def kkt_violation(X, y, W, b, alpha, l2, weights=None):
    """Independent KKT check for per-feature groups (own gradient code)."""
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(float)
    P = softmax(X @ W + b, axis=1)
    G = X.T @ (P - Y) / len(y) + l2 * W
    gb = (P - Y).mean(0)
    norms = np.linalg.norm(W, axis=1)
    viol = np.where(
        norms > 0,
        np.linalg.norm(G + alpha * W / np.maximum(norms, 1e-300)[:, None], axis=1),
        np.maximum(np.linalg.norm(G, axis=1) - alpha, 0),
    )
    return max(viol.max(), np.abs(gb).max())


def full_W(clf):
    """The fitted multinomial ``(W, b)`` of a group-lasso estimator."""
    return clf._W, clf._b


def deny_writes_in(folder, monkeypatch):
    """Make ``folder`` read-only, also for root (who ignores the mode bits).

    Its mode becomes 0o555 (an empty folder is still removed at teardown); as
    root, ``os.open`` also refuses to create files in it (EACCES).
    """
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):
        parent = os.path.dirname(os.path.abspath(os.fspath(path)))
        if parent == str(folder) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
