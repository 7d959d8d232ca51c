"""``python -m skhead2toe``: the command line."""

import sys

from skhead2toe._cli import main

sys.exit(main())
