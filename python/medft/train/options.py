"""What defines one training run (saved in run.json), and the checks made before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medft import paths
from medft.engines import DEFAULT_ENGINE
from medft.errors import MedftError
from medft.schedule import PAPER_INIT, get_config, variant_name
from medft.solver import MAX_EPOCHS, RANDOM_SEED, TEST_BATCH, TRAIN_BATCH

PATIENCE = 5  # epochs without a better validation AUC before stopping (the paper gives none)


@dataclass
class TrainOptions:
    """Everything that defines one training run (saved in run.json)."""

    app: str
    config: str
    data: str  # prepared dataset folder (medft prep output for this app and fraction)
    runs: str = paths.RUNS_ROOT
    init: str = PAPER_INIT
    fraction: str = "1"
    weights: str | None = None  # pretrained caffemodel for ft-* configurations
    engine: str = DEFAULT_ENGINE
    gpu: int | None = None
    train_batch: int = TRAIN_BATCH
    test_batch: int = TEST_BATCH
    max_epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    seed: int = RANDOM_SEED
    force: bool = False

    @property
    def variant(self) -> str:
        return variant_name(self.config, self.init)

    def check(self) -> None:
        """Refuse values Caffe would abort on, or that would train nothing, before anything is written."""
        for name in ("train_batch", "test_batch", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MedftError(f"--{name.replace('_', '-').replace('train-', '')} must be a whole number "
                                 f">= 1, got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise MedftError(f"--seed must be a whole number >= 0, got {self.seed!r}")


def check_weights(opts: TrainOptions) -> Path | None:
    """The pretrained weights an ft-* configuration needs (None for scratch), or one line saying what is wrong."""
    cfg = get_config(opts.config)
    if not cfg.pretrained:
        if opts.weights:
            raise MedftError("scratch trains from random weights; do not pass --weights")
        return None
    if not opts.weights:
        raise MedftError(f"{opts.config} fine-tunes a pre-trained AlexNet: pass --weights "
                         "(`make weights` for BVLC AlexNet, or `medft pretrain` for the offline stand-in)")
    path = Path(opts.weights)
    if not path.is_file():
        raise MedftError(f"{path}: pretrained weights not found")
    return path
