"""The learning rate Caffe's solver uses at an iteration (Table II's schedule)."""

from __future__ import annotations

from medft.schedule import BASE_LR, GAMMA


def step_lr(iteration: int, stepsize: int) -> float:
    """Caffe's "step" policy: base_lr * gamma^floor(iter / stepsize) (equation 2 per epoch)."""
    return BASE_LR * GAMMA ** (iteration // stepsize)
