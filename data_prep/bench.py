"""Moved to ``medft bench --only lmdb`` (python/medft/bench.py); ``--n N`` still works here."""
import sys

from medft.cli import main

sys.exit(main(["bench", "--only", "lmdb", *["--lmdb-patches" if a == "--n" else a for a in sys.argv[1:]]]))
