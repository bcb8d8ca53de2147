"""The layer-wise fine-tuning schedule of Table II, defined once.

Table II of Tajbakhsh et al. (2016) gives, for each of nine CNNs, the momentum mu, the
learning rate alpha of each layer's weights and the per-epoch scheduling rate gamma.
The learning rate of a bias is always twice that of its weights (Table II caption).
Caffe expresses alpha_l as ``base_lr * lr_mult``; with base_lr = 0.001 a tuned layer has
lr_mult 1, a frozen layer 0, and the new fc8 lr_mult 10 when fine-tuning (alpha 0.01).

Everything else (generator, Makefile targets, README, tests) reads this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from medft.errors import unknown_name

#: The learnable layers of AlexNet (Table I), in order.
LAYERS: tuple[str, ...] = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")

MOMENTUM = 0.9  # mu, every row of Table II
GAMMA = 0.95  # gamma, every row of Table II; applied once per epoch (equation 2)
BASE_LR = 0.001  # "A learning rate of 0.001 however ensured proper convergence" (section VI)
BIAS_LR_FACTOR = 2  # "The Learning Rate for the Bias Term is Always Set Twice as Large"

#: Table II, row by row: (paper's name, alpha for conv1..fc8). Values typed from the paper.
TABLE_II: dict[str, tuple[str, tuple[float, ...]]] = {
    "ft-conv1": ("Fine-tuned AlexNet:conv1-fc8", (0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.01)),
    "ft-conv2": ("Fine-tuned AlexNet:conv2-fc8", (0, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.01)),
    "ft-conv3": ("Fine-tuned AlexNet:conv3-fc8", (0, 0, 0.001, 0.001, 0.001, 0.001, 0.001, 0.01)),
    "ft-conv4": ("Fine-tuned AlexNet:conv4-fc8", (0, 0, 0, 0.001, 0.001, 0.001, 0.001, 0.01)),
    "ft-conv5": ("Fine-tuned AlexNet:conv5-fc8", (0, 0, 0, 0, 0.001, 0.001, 0.001, 0.01)),
    "ft-fc6": ("Fine-tuned AlexNet:fc6-fc8", (0, 0, 0, 0, 0, 0.001, 0.001, 0.01)),
    "ft-fc7": ("Fine-tuned AlexNet:fc7-fc8", (0, 0, 0, 0, 0, 0, 0.001, 0.01)),
    "ft-fc8": ("Fine-tuned AlexNet:only fc8", (0, 0, 0, 0, 0, 0, 0, 0.01)),
    "scratch": ("AlexNet scratch", (0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001)),
}

CONFIG_NAMES: tuple[str, ...] = tuple(TABLE_II)

#: Weight initialisations for training from scratch (Fig. 10's convergence study).
#: the scratch initialisation of the paper (BVLC AlexNet's gaussian fillers); xavier [40] and msra [41]
#: are the others (Fig. 10's convergence study)
PAPER_INIT = "gaussian"
INIT_NAMES: tuple[str, ...] = (PAPER_INIT, "xavier", "msra")


@dataclass(frozen=True)
class Config:
    """One row of Table II."""

    name: str  # token: ft-conv1 .. ft-fc8, scratch
    paper_name: str
    alphas: tuple[float, ...]  # alpha per layer of LAYERS

    @property
    def pretrained(self) -> bool:
        """Fine-tuning configurations start from the pre-trained AlexNet."""
        return self.name != "scratch"

    @property
    def tuned_layers(self) -> tuple[str, ...]:
        return tuple(layer for layer, a in zip(LAYERS, self.alphas) if a > 0)

    @property
    def frozen_layers(self) -> tuple[str, ...]:
        return tuple(layer for layer, a in zip(LAYERS, self.alphas) if a == 0)

    def lr_mult(self, layer: str) -> float:
        """Caffe weight lr_mult of ``layer`` = alpha_layer / base_lr (bias: twice this)."""
        return round(self.alphas[LAYERS.index(layer)] / BASE_LR, 6)

    def short_label(self) -> str:
        """The label the paper's figures use, e.g. 'FT:conv3-fc8', 'FT:only fc8', 'scratch'."""
        if not self.pretrained:
            return "scratch"
        first = self.tuned_layers[0]
        return "FT:only fc8" if first == "fc8" else f"FT:{first}-fc8"


def get_config(name: str) -> Config:
    """The :class:`Config` for a token; a one-line error lists valid tokens otherwise."""
    try:
        paper_name, alphas = TABLE_II[name]
    except KeyError:
        raise unknown_name("configuration", name, CONFIG_NAMES) from None
    return Config(name, paper_name, alphas)


def check_init(init: str) -> str:
    if init not in INIT_NAMES:
        raise unknown_name("init", init, INIT_NAMES)
    return init


def variant_name(config: str, init: str = PAPER_INIT) -> str:
    """Folder token of a configuration and init: 'scratch', 'scratch-xavier', 'ft-conv1'."""
    get_config(config)
    check_init(init)
    if init != PAPER_INIT and config != "scratch":
        raise unknown_name("init for a fine-tuning configuration (only scratch has variants)",
                           init, (PAPER_INIT,))
    return config if init == PAPER_INIT else f"{config}-{init}"


def all_variants() -> list[tuple[str, str]]:
    """Every (config, init) pair that gets generated files."""
    out = [(c, PAPER_INIT) for c in CONFIG_NAMES]
    out += [("scratch", i) for i in INIT_NAMES if i != PAPER_INIT]
    return out
