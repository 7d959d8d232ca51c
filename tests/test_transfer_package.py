"""The public face of skhead2toe.transfer, and the skhead2toe.anb shim."""

import subprocess
import sys

import pytest

from skhead2toe import anb, plotting, transfer


@pytest.mark.parametrize("module", ["skhead2toe.transfer", "skhead2toe.anb"])
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_anb_names_are_the_new_objects():
    assert anb.__all__ == transfer.__all__
    for name in anb.__all__:
        assert getattr(anb, name) is getattr(transfer, name), name
    assert anb.TransferCurvesDisplay is plotting.TransferCurvesDisplay
