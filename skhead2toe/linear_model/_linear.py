"""Prediction for fitted multinomial linear classifiers (one home for all heads)."""

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data


def _nonzero_rows(W):
    """Indices of the non-zero rows of ``W`` if they are under half, else None."""
    used = np.flatnonzero(np.any(W != 0, axis=1))
    return used if 2 * used.size < W.shape[0] else None


class LinearClassifierMixin(ClassifierMixin, BaseEstimator):
    """Prediction from a fitted ``(W, b)``: ``W`` of shape (n_features, n_classes).

    Subclasses set ``classes_``, ``_W`` and ``_b`` when they fit, and may
    override :meth:`_predict_design` to transform the columns first.
    """

    @property
    def coef_(self):
        """Coefficients, shape (n_classes, n_features), or (1, n_features) if binary."""
        check_is_fitted(self, "_W")
        if len(self.classes_) == 2:
            return (self._W[:, 1] - self._W[:, 0])[None, :]
        return self._W.T.copy()

    @property
    def intercept_(self):
        """Intercept, shape (n_classes,), or (1,) if binary."""
        check_is_fitted(self, "_W")
        if len(self.classes_) == 2:
            return np.array([self._b[1] - self._b[0]])
        return self._b.copy()

    def _logits(self, X):
        check_is_fitted(self, "_W")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X, W = self._predict_design(X)
        rows = _nonzero_rows(W)
        if rows is not None:  # a sparse head: only its features' columns
            X, W = X[:, rows], W[rows]
        return X @ W.astype(X.dtype) + self._b

    def _predict_design(self, X):
        """The columns and coefficients of the logits (all of them here)."""
        return X, self._W

    def decision_function(self, X):
        """Class scores ``X W + b``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to score.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            Logits; for two classes the log-odds of ``classes_[1]``.
        """
        Z = self._logits(X)
        if Z.shape[1] == 2:
            return Z[:, 1] - Z[:, 0]
        return Z

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples whose class probabilities are wanted.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``.
        """
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples whose log-probabilities are wanted.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns ordered as ``classes_``.
        """
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to classify.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        Z = self._logits(X)  # first: raises NotFittedError on an unfitted estimator
        return self.classes_[np.argmax(Z, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
