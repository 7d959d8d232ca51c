import numpy as np
import pytest
from test_transfer_results import _fake_rows

from skhead2toe.plotting import TransferCurvesDisplay
from skhead2toe.transfer import TRANSFER_VARIANTS


def test_transfer_curves_display():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    disp = TransferCurvesDisplay.from_results(_fake_rows())
    assert set(disp.lines_) == set(TRANSFER_VARIANTS)
    np.testing.assert_allclose(disp.lines_["AnB"].get_ydata(), [0.81] * 3)
    assert disp.lines_["AnB"].get_xdata().tolist() == [1, 2, 3]
    assert disp.base_line_.get_ydata()[0] == pytest.approx(0.9)
    assert len(disp.points_["BnB"].get_offsets()) == 6
    disp = TransferCurvesDisplay.from_results(_fake_rows(), baseline="baseB")
    np.testing.assert_allclose(disp.lines_["AnB"].get_ydata(), [-0.09] * 3)
    assert disp.base_line_.get_ydata()[0] == 0
    assert "minus baseB" in disp.ax_.get_ylabel()
    disp = TransferCurvesDisplay.from_results(_fake_rows(), variants=["AnB"])
    assert set(disp.lines_) == {"AnB"}
    with pytest.raises(ValueError, match="variants must be"):
        TransferCurvesDisplay.from_results(_fake_rows(), variants=["probe"])
    plt.close("all")
