"""The exact solver and nets of a run, written into its folder."""

from __future__ import annotations

from pathlib import Path

from medft import __version__, paths
from medft.alexnet import NetOptions, deploy_net, train_val_net
from medft.apps import classes_of, get_app
from medft.prep.dataset import Dataset
from medft.solver import SolverOptions, solver
from medft.train.options import TrainOptions
from medft.util.atomic import write_text_atomic
from medft.util.prototxt import to_text


def write_run_files(opts: TrainOptions, ds: Dataset, out: Path) -> tuple[Path, int]:
    """Write the exact solver and nets of this run into ``out``; return (solver path, stepsize)."""
    net_opts = NetOptions(train_source=str(ds.train_lmdb.resolve()), val_source=str(ds.val_lmdb.resolve()),
                          train_batch=min(opts.train_batch, ds.n_train),
                          test_batch=min(opts.test_batch, ds.n_val), mean_bgr=ds.mean_bgr,
                          deploy_batch=opts.test_batch,
                          num_classes=len(classes_of(get_app(opts.app), ds.record)))
    tv = out / paths.TRAIN_VAL_NET
    header = f"# medft {__version__} run {opts.app}/{opts.variant}: written by medft train\n"
    write_text_atomic(tv, header + to_text(train_val_net(opts.app, opts.config, opts.init, net_opts)))
    write_text_atomic(out / paths.DEPLOY_NET, header + to_text(deploy_net(opts.app, opts.config, opts.init, net_opts)))
    sp = solver(SolverOptions(n_train=ds.n_train, n_val=ds.n_val, train_batch=net_opts.train_batch,
                              test_batch=net_opts.test_batch, net=str(tv.resolve()),
                              snapshot_prefix=str(paths.snapshot_prefix(out, opts.variant).resolve()),
                              mode="GPU" if opts.gpu is not None else "CPU",
                              max_epochs=opts.max_epochs, random_seed=opts.seed))
    sp.test_interval = 0  # medft scores validation itself (AUC), Caffe's test loop is not needed
    sp.ClearField("test_iter")
    sp.snapshot = 0  # medft snapshots at each epoch end
    sp.snapshot_after_train = False
    (out / paths.SNAPSHOTS).mkdir(parents=True, exist_ok=True)
    path = out / paths.SOLVER
    write_text_atomic(path, header + f"# stepsize = ceil({ds.n_train} / {net_opts.train_batch}) = one epoch\n"
                      + to_text(sp))
    return path, sp.stepsize
