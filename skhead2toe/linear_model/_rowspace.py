r"""Ridge problems in the row space of the samples: the refits and the probes.

A ridge (``alpha = 0``) multinomial fit sees ``W`` only through ``X W`` and
``||W||_F``, so its solution lies in the row space of ``X`` (``n`` samples, ``d``
columns). With the eigendecomposition of the Gram matrix
``G = X X^T = U diag(lam) U^T``, the SVD of ``X`` is ``U diag(sqrt(lam)) Q^T``
with ``Q = X^T U diag(lam^-1/2)``, and ``W = Q Z`` gives ``X W = B Z`` with the
``r``-column design ``B = U diag(sqrt(lam))`` and ``||W|| = ||Z||``: the same
objective, the same duality gap and, mapped back, the same solution, at ``r / d``
of the cost per gradient (``r <= n``). Directions of eigenvalue below
``_EIG_RTOL`` of the largest carry nothing and are dropped.

``Q`` is never formed: ``Q Z = X^T (M Z)`` and ``Q^T W = M^T (X W)`` with
``M = U diag(lam^-1/2)`` cost ``O(n d K)`` each. The Gram costs ``n^2 d / 2``
(``dsyrk``), half a QR of ``X^T`` without its ``Q``, and it adds up: the Gram of
a union of disjoint column sets is the sum of theirs, and that of a block of rows
is a block of the full one. So one Gram of all the rows serves every fold of a
cross-validation, and the refits of overlapping selections update a Gram rather
than factorise anew (:class:`GramCache`).
"""

import numpy as np
from scipy.linalg.blas import dsyrk

__all__ = ["GramCache", "RowBasis", "gram", "row_space_basis"]

_EIG_RTOL = 1e-12  # eigenvalues of a Gram below this fraction of the largest are 0
_BLOCK = 1 << 20  # float64 entries per block of columns: 8 MB, reused by malloc


def gram(X):
    """``X X^T`` in float64, by ``dsyrk`` over blocks of columns (no full copy).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Any float dtype; each block is cast to float64, so a float32 ``X`` gives
        exact products accumulated in float64.

    Returns
    -------
    G : ndarray of shape (n, n)
        Symmetric, float64.
    """
    n, d = X.shape
    G = np.zeros((n, n), order="F")
    step = max(1, _BLOCK // max(n, 1))
    for start in range(0, d, step):
        # a C-ordered (n, k) block is a Fortran-ordered (k, n) one: trans=1
        block = np.asarray(X[:, start : start + step], dtype=np.float64, order="C")
        G = dsyrk(1.0, block.T, beta=1.0, c=G, trans=1, overwrite_c=True)
    upper = np.triu(G)
    return upper + np.triu(upper, 1).T


class RowBasis:
    """A design for the ridge fit of some columns, and the maps back to them.

    Parameters
    ----------
    design : ndarray of shape (n, r)
        What the solver fits.
    X : ndarray of shape (n, d) or None
        The columns; None when ``design`` is the columns themselves.
    M : ndarray of shape (n, r) or None
        ``U diag(lam^-1/2)`` (module docstring), with ``X``.
    """

    def __init__(self, design, X=None, M=None):
        self.design, self._X, self._M = design, X, M

    @property
    def in_row_space(self):
        """Whether ``design`` is the row-space basis (else the columns)."""
        return self._M is not None

    def to_columns(self, Z):
        """``Q Z``: coefficients on the design mapped to the columns.

        Parameters
        ----------
        Z : ndarray of shape (r, K)
            Coefficients of ``design``.

        Returns
        -------
        W : ndarray of shape (d, K)
            The same model on the columns (``Z`` itself without a basis).
        """
        if self._M is None:
            return Z
        return self._X.T @ (self._M @ Z).astype(self._X.dtype, copy=False)

    def from_columns(self, W):
        """``Q^T W``: column coefficients projected on the design (warm starts).

        Parameters
        ----------
        W : ndarray of shape (d, K)
            Coefficients of the columns.

        Returns
        -------
        Z : ndarray of shape (r, K)
            Their projection on ``design`` (``W`` itself without a basis).
        """
        if self._M is None:
            return W
        return self._M.T @ (self._X @ W.astype(self._X.dtype, copy=False))


def _eigen_design(G):
    """``B = U diag(sqrt(lam))`` and ``M = U diag(lam^-1/2)`` from a Gram."""
    lam, U = np.linalg.eigh(G)
    keep = lam > _EIG_RTOL * max(lam[-1], 0.0)
    if not keep.any():  # every row is zero: any one direction will do
        keep[-1], lam[-1] = True, 1.0
    U, root = U[:, keep], np.sqrt(lam[keep])
    return np.ascontiguousarray(U * root), U / root


def row_space_basis(X, G=None, *, min_ratio=2.0):
    """The row-space basis of ``X`` when it has ``min_ratio`` times more columns.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The columns of the ridge fit.
    G : ndarray of shape (n, n), default=None
        Their Gram matrix, if known (else computed).
    min_ratio : float, default=2.0
        Use the row space when ``d >= min_ratio * n``; otherwise the design is
        ``X`` itself, cast to float64 once (the solver's products with float64
        coefficients would cast a float32 ``X`` at every step). At ``d < 2 n`` the
        Gram and its eigendecomposition cost about what they save for one fit.

    Returns
    -------
    basis : RowBasis
    """
    n, d = X.shape
    if d < min_ratio * n:
        return RowBasis(np.ascontiguousarray(X, dtype=np.float64))
    design, M = _eigen_design(gram(X) if G is None else G)
    return RowBasis(design, X, M)


class GramCache:
    """The Gram of the last selection of columns, updated for the next one.

    The refits of a cross-validation fold keep overlapping sets of columns (the
    top fractions of one ranking are nested, and consecutive alphas rank alike):
    the Gram of a new selection is the last one's plus that of the columns it
    adds, minus that of the columns it drops, when those are fewer than the new
    selection.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The fold's training rows, all columns.
    """

    #: Updates in a row before a Gram is computed afresh (rounding does not pile up).
    max_updates = 16

    def __init__(self, X):
        self.X, self._mask, self._G, self._updates = X, None, None, 0

    def __call__(self, mask):
        """The Gram of the columns ``mask`` of ``X``.

        Parameters
        ----------
        mask : ndarray of bool of shape (d,)

        Returns
        -------
        G : ndarray of shape (n, n)
        """
        if self._mask is not None and self._updates < self.max_updates:
            add, drop = mask & ~self._mask, self._mask & ~mask
            if add.sum() + drop.sum() < mask.sum():
                G = self._G + gram(self.X[:, add]) - gram(self.X[:, drop])
                self._mask, self._G = mask.copy(), G
                self._updates += 1
                return G
        self._mask, self._G = mask.copy(), gram(self.X[:, mask])
        self._updates = 0
        return self._G
