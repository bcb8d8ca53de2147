"""Moved to ``medft bench --only froc,cimt`` (python/medft/bench.py); ``--roi H W`` is its ``--stand-in-roi``."""
import sys

from medft.cli import main

sys.exit(main(["bench", "--only", "froc,cimt", *["--stand-in-roi" if a == "--roi" else a for a in sys.argv[1:]]]))
