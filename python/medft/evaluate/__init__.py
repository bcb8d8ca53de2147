"""Scoring and statistics of the study: a small library, one module per method.

``froc``           empirical FROC of candidate detectors (polyp, PE)
``froc_binormal``  Edwards et al. (2002) ML binormal FROC and its intervals
``roc``            ROC curve, AUC, DeLong interval and paired test (frames)
``bootstrap``      step curves and their vectorised, seeded case-level bootstrap
``compare``        pairwise tables (CI rule and paired tests), CSV and Markdown
``multiclass``     one-vs-rest ROC per class, macro AUC and their case bootstrap (classify, C > 2)
``cimt``           dense prediction, column-max boundaries, open snakes, CIMT errors
``io``             the input files of ``eval/README.md``, checked
``pipeline``       ``medft score``: run folders in, statistics out
``plots``          the paper's figures from computed statistics (CSV beside each)
``report``         ``medft report``: figures and ``report.md``

``*_curve`` functions return arrays, ``*_score`` functions scalars.
"""
