"""The ``--engine`` and ``--gpu`` arguments every Caffe stage takes (train, predict, pretrain, bench)."""

from __future__ import annotations

import argparse

from medft.engines import DEFAULT_ENGINE


def gpu_index(text: str) -> int:
    """argparse type of ``--gpu``: a device index 0, 1, ..."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a GPU index 0, 1, ..., got {text!r}")
    return value


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=DEFAULT_ENGINE,
                   help="Caffe engine: pycaffe (in-process), cli (caffe train + extract_features), "
                        "docker:<image> (those tools in a container, e.g. docker:medft/gpu)")
    p.add_argument("--gpu", type=gpu_index, default=None, metavar="N",
                   help="compute on GPU N with the GPU build (make caffe-gpu); default: the CPU")
