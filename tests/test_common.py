"""scikit-learn's common estimator checks, in full, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skhead2toe import GroupLassoClassifier, GroupLassoClassifierCV
from skhead2toe.linear_model import LinearProbe, LinearProbeCV

# A tight tolerance (relative gap 1e-10): some checks compare predictions of two fits
# to 1e-7 (sample weights versus repeated samples), which needs the optimum, not a
# point near it. float64 passes: a float32 pass over X cannot certify a 1e-10 gap.
# LinearProbeCV's grid stops at C = 10: at C = 1e4 (the ridge 2e-6 on these 45
# rows) a 1e-10 gap bounds the coefficients' error only by sqrt(2 gap / ridge),
# about 1e-2, and the two fits agree to 6e-6 (a gap closer to the rounding floor
# does not help: the objective is flat there).
ESTIMATORS = [
    GroupLassoClassifier(alpha=1e-3, tol=1e-10, max_iter=100_000, dtype="float64"),
    GroupLassoClassifierCV(
        alphas=3, cv=3, tol=1e-10, max_iter=100_000, dtype="float64"
    ),
    LinearProbe(tol=1e-10, max_iter=100_000),
    LinearProbeCV(Cs=(0.1, 1.0, 10.0), cv=3, tol=1e-10, max_iter=100_000),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
