"""Train one cell of the study the way the paper did: SGD epoch by epoch, keep the best val AUC.

Section VI: "we divided the training set into a smaller training set with 80% of the training
data and a validation set with the remaining 20% ... and then computed area under the curve on
the validation set. The training process was terminated when the highest accuracy on the
validation set was observed." medft trains epoch by epoch, scores the validation LMDB after
each, keeps the snapshot with the highest AUC and stops after ``patience`` epochs without
improvement or at ``max_epochs``.

A run folder ``runs/<app>/<variant>[-<fraction>][-seed<seed>]/`` (:func:`medft.paths.run_dir`) holds::

    solver.prototxt train_val.prototxt deploy.prototxt   the exact files Caffe ran
    log.csv            epoch, iteration, loss, lr, val_auc, images_per_s, seconds
    snapshots/         Caffe's per-epoch .caffemodel/.solverstate (resume point)
    best.caffemodel    the snapshot with the highest validation AUC
    weights.json       which layers were copied from the pretrained model (verified), which initialised
    run.json           arguments, seeds, versions, timings, data fingerprint, status

One module per job: :mod:`.options` (what defines a run), :mod:`.driver` (start or resume, one epoch,
record), :mod:`.lr` (the learning rate of an iteration), :mod:`.validation` (the AUC that selects),
:mod:`.nets` (the solver and nets written into the run folder), :mod:`.run` (run.json),
:mod:`.resume` (resume point, its checks, pruning), :mod:`.logcsv` (log.csv), :mod:`.best` (the
best-model commit, which ``medft predict`` checks too). The prepared data set is read by
:mod:`medft.prep.dataset`.
"""
