"""The public face of skhead2toe.transfer, and the skhead2toe.anb shim."""

import doctest
import importlib
import subprocess
import sys

import pytest

from skhead2toe import anb, plotting, transfer

# Every module of the subpackage with docstring examples.
MODULES = ["_models", "_training", "_features", "_tasks", "_runner", "_results"]


@pytest.mark.parametrize("module", ["skhead2toe.transfer", "skhead2toe.anb"])
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    pytest.importorskip("torch")
    module = importlib.import_module(f"skhead2toe.transfer.{name}")
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0
    assert result.failed == 0


def test_anb_names_are_the_new_objects():
    assert anb.__all__ == transfer.__all__
    for name in anb.__all__:
        assert getattr(anb, name) is getattr(transfer, name), name
    assert anb.TransferCurvesDisplay is plotting.TransferCurvesDisplay
