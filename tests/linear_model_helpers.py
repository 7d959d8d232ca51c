"""Independent reference code shared by the linear-model tests."""

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
