"""Named fault points at the moments a stage writes what a later stage trusts.

``MEDFT_FAULT=<name>`` kills the process with SIGKILL when it reaches point ``<name>``: the
fault-injection tests use it to prove that a rerun after a kill at any write point ends with the
outputs of an uninterrupted run (:func:`medft.paths.fault_point` reads it; a name that is no point is
refused). Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

from medft.paths import fault_point

#: every point, where it sits
POINTS = {
    "prep:before-record": "prep: LMDBs and manifests written; prep.json absent, folder not renamed",
    "train:after-best-model": "train: a new best epoch's model copied under its pending name, its record absent",
    "train:after-best-record": "train: pending model and record written, the log.csv row absent",
    "train:after-log": "train: log.csv row written, the pending best not renamed, snapshots not pruned",
    "predict:before-predictions": "predict: test_probs.npy written, predictions.csv absent",
}


def point(name: str) -> None:
    """Die here, as a SIGKILL would, if ``$MEDFT_FAULT`` names this point."""
    if fault_point(POINTS) == name:
        os.kill(os.getpid(), signal.SIGKILL)
