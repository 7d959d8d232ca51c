"""Anderson extrapolation weights, shared by the dual points and the Newton model."""

import numpy as np

__all__ = ["anderson_weights"]


def anderson_weights(iterates):
    """Weights of the Anderson extrapolation of a linearly converging sequence.

    Near their limit, the iterates ``x_0, ..., x_k`` of a linearly converging
    fixed-point map follow a vector autoregression; the affine combination
    ``sum_j c_j x_{j+1}`` with ``c`` minimising ``||sum_j c_j (x_{j+1} - x_j)||``
    subject to ``sum_j c_j = 1`` estimates the limit (Anderson, 1965; used for
    coordinate descent and dual points by Massias et al., 2018, 2020, and
    Bertrand & Massias, 2021).

    Parameters
    ----------
    iterates : sequence of ndarray
        ``k + 1`` iterates of one shape, oldest first.

    Returns
    -------
    weights : ndarray of shape (k,) or None
        Weights of ``iterates[1:]``, summing to one; None when the system is
        singular or the result not finite (the caller then keeps the last iterate).
    """
    flat = np.stack([np.ravel(x) for x in iterates])
    U = np.diff(flat, axis=0)
    try:
        z = np.linalg.solve(U @ U.T, np.ones(len(U)))
    except np.linalg.LinAlgError:
        return None
    total = z.sum()
    if not np.all(np.isfinite(z)) or abs(total) < 1e-300:
        return None
    return z / total
