"""The SGD solver of Table II and equation (2), as a Caffe ``SolverParameter``.

Equation (2) lowers the learning rate by gamma once per epoch: gamma^floor(tN/|X|).
Caffe's "step" policy gives base_lr * gamma^floor(iter/stepsize), so stepsize is the
number of iterations in one epoch of the actual training set, ceil(|X| / N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medft.apps import set_size, split_sizes
from medft.schedule import BASE_LR, GAMMA, MOMENTUM
from medft.schema import pb

#: BVLC's AlexNet value; the paper does not state a weight decay.
WEIGHT_DECAY = 0.0005
#: A fixed seed so runs repeat (the paper does not state one); run folders of other seeds name theirs.
RANDOM_SEED = 2016
#: Upper bound on training length; the driver stops earlier on validation-AUC patience.
MAX_EPOCHS = 50
#: BVLC AlexNet's training and validation batch sizes (the paper states none)
TRAIN_BATCH = 256
TEST_BATCH = 50
DISPLAY = 20  # BVLC AlexNet


def training_seeds(spec: str) -> tuple[int, ...]:
    """The training seeds of ``--seeds``: a count N (the N seeds from :data:`RANDOM_SEED` on, so the
    first is the default and keeps today's run folders) or a comma-separated list (``1,2,3``)."""
    text = str(spec).strip()
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return tuple(range(RANDOM_SEED, RANDOM_SEED + n))
        seeds = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--seeds takes a count >= 1 or a comma-separated list of seeds >= 0, got {spec!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: a list of distinct whole numbers >= 0, got {spec!r}")
    return seeds


def iters_per_epoch(n_train: int, batch: int) -> int:
    """Iterations that see every training patch once: ceil(n_train / batch)."""
    if n_train <= 0 or batch <= 0:
        raise ValueError(f"n_train and batch must be positive, got {n_train}, {batch}")
    return math.ceil(n_train / batch)


@dataclass
class SolverOptions:
    n_train: int  # patches in the training LMDB
    n_val: int  # patches in the validation LMDB
    train_batch: int
    test_batch: int
    net: str  # path of the train_val prototxt
    snapshot_prefix: str
    mode: str = "CPU"  # or "GPU"
    max_epochs: int = MAX_EPOCHS
    random_seed: int = RANDOM_SEED


def paper_sizes(app: str, fraction: str = "1") -> tuple[int, int]:
    """(train, val) patch counts of the paper's stratified set at ``fraction``, divided 80/20 as prep does."""
    return split_sizes(set_size(app, fraction))


def solver(o: SolverOptions) -> pb.SolverParameter:
    """The solver: SGD, base_lr 0.001, momentum 0.9, step policy with gamma 0.95 per epoch."""
    if o.mode not in ("CPU", "GPU"):
        raise ValueError(f"solver mode must be CPU or GPU, got {o.mode!r}")
    epoch = iters_per_epoch(o.n_train, o.train_batch)
    s = pb.SolverParameter(net=o.net, type="SGD")
    s.test_iter.append(iters_per_epoch(o.n_val, o.test_batch))
    s.test_interval = epoch
    s.test_initialization = False
    s.base_lr = BASE_LR
    s.lr_policy = "step"
    s.gamma = GAMMA
    s.stepsize = epoch
    s.momentum = MOMENTUM
    s.weight_decay = WEIGHT_DECAY
    s.display = DISPLAY
    s.max_iter = epoch * o.max_epochs
    s.snapshot = epoch
    s.snapshot_prefix = o.snapshot_prefix
    s.solver_mode = pb.SolverParameter.GPU if o.mode == "GPU" else pb.SolverParameter.CPU
    s.random_seed = o.random_seed
    return s
