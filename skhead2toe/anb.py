"""AnB / BnB transfer experiments: this module moved to :mod:`skhead2toe.transfer`.

Kept so that ``from skhead2toe.anb import ...`` keeps working: every public name
of :mod:`skhead2toe.transfer` is here, the same object (and
:class:`~skhead2toe.plotting.TransferCurvesDisplay` is the one of
:mod:`skhead2toe.plotting`, the home of every display). New code imports from
there.
"""

from .transfer import *  # noqa: F403 (the shim re-exports every public name)
from .transfer import __all__  # noqa: F401
