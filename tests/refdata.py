"""Reference data of independent implementations, shared by the statistics tests.

R pROC's aSAH data (113 patients, Turck et al. 2010) and the values pROC's own test suite
reports for them (github.com/xrobin/pROC, tests/testthat).
"""

from pathlib import Path

import numpy as np

# The aSAH data of R's pROC package (data/aSAH.RData; Turck et al., Intensive Care Med 2010:
# 113 patients with aneurysmal subarachnoid haemorrhage): outcome "Poor" = 1 (41 patients),
# and three predictors; wfns is the 5-level WFNS grade, as pROC uses it (numeric 1-5). Stored as
# tests/data/asah.csv (poor, s100b, wfns, ndka), one patient a row in pROC's order.

_TABLE = np.genfromtxt(Path(__file__).with_name("data") / "asah.csv", delimiter=",", names=True)
ASAH_POOR = _TABLE["poor"].astype(int)
ASAH_S100B = _TABLE["s100b"]
ASAH_WFNS = _TABLE["wfns"].astype(int)
ASAH_NDKA = _TABLE["ndka"]


# pROC's own expected values for roc(aSAH$outcome, <predictor>) (direction "<"), from its
# test suite (github.com/xrobin/pROC, tests/testthat: test-auc.R, test-var.R, test-ci.auc.R,
# test-roc.test.R; pROC 1.19).  roc.test(s100b, wfns) is also the worked example of pROC's
# documentation and of Robin et al., BMC Bioinformatics 2011: Z = -2.209, p = 0.02718.
PROC_AUC = {"s100b": 0.73136856368563685, "wfns": 0.823678861788618, "ndka": 0.611957994579946}
PROC_VAR = {"s100b": 0.00266868245717244, "wfns": 0.00146991470882363, "ndka": 0.0031908105493913}
PROC_CI_NDKA = (0.501244999271703, 0.722670989888189)
#: roc.test(first, second): Z, p, 95% interval of AUC(first) - AUC(second)
PROC_TESTS = [
    ("wfns", "s100b", 2.20898359144091, 0.0271757822291882, (0.0104061769564846, 0.174214419249478)),
    ("wfns", "ndka", 2.79777591868904, 0.00514557970691098, (0.0634011709339876, 0.3600405634833566)),
    ("ndka", "s100b", -1.39077002573558, 0.164295175223054, (-0.2876917446341914, 0.0488706064228094)),
]
ASAH = {"s100b": ASAH_S100B, "wfns": ASAH_WFNS.astype(float), "ndka": ASAH_NDKA}
