"""``python -m medft``: the same command line as ``medft``."""

import sys

from medft.cli import main

sys.exit(main())
