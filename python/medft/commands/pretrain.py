"""Pretrained AlexNet weights. Without flags: train the offline stand-in (NOT ImageNet; about 3-6 minutes
on 2 CPU cores; reused when present). --download-bvlc: fetch BVLC's ImageNet bvlc_alexnet.caffemodel and
check its SHA-1 (what `make weights` runs). --which: say which weights fine-tuning would use; it prefers
the BVLC AlexNet when present with the right SHA-1 and otherwise uses the stand-in, saying so.
"""

from __future__ import annotations

import argparse

from medft.caffemodel import BVLC_ALEXNET_SHA1, describe
from medft.commands._engine import add_engine_arguments
from medft.commands._types import nonneg_int, positive_int
from medft.paths import bvlc_path, standin_path
from medft.pretrain import CONV1_STARTS, SCHEDULES, PretrainOptions, pretrain
from medft.schedule import INIT_NAMES
from medft.weights import BVLC_ALEXNET_URL, download_bvlc_alexnet, find_pretrained

HELP = "make the offline stand-in for the ImageNet AlexNet (or --download-bvlc the real one)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = PretrainOptions()
    p.add_argument("--iterations", type=positive_int, default=d.iterations, help="SGD iterations of the stand-in")
    p.add_argument("--batch", type=positive_int, default=d.batch, help="images per iteration (BVLC uses 256)")
    p.add_argument("--images", type=positive_int, default=d.images,
                   help="synthetic source-task training images (the Data layer cycles through them)")
    p.add_argument("--heldout", type=nonneg_int, default=d.heldout,
                   help="fresh images for the held-out accuracy recorded in the sidecar (0: skip)")
    p.add_argument("--seed", type=nonneg_int, default=d.seed, help="seed of the images and of Caffe")
    p.add_argument("--conv1", choices=CONV1_STARTS, default=d.conv1,
                   help="conv1's start: 'bank' (formula-driven Gabor and colour-opponent filters) or "
                        "'filler' (BVLC's Gaussian, std 0.01)")
    p.add_argument("--init", choices=INIT_NAMES, default=d.init,
                   help="weight fillers of the layers the conv1 bank does not start")
    p.add_argument("--out", default=str(standin_path()),
                   help="caffemodel to write (a .json sidecar goes beside it); $MEDFT_CACHE moves "
                        "the default")
    p.add_argument("--refresh", action="store_true",
                   help="retrain a medft stand-in at --out made with another budget or recipe (make standin)")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="learning rate: bvlc (BVLC's step policy, constant at this budget) or poly (twice BVLC's "
                        "scaled rate, linear to 0)")
    p.add_argument("--force", action="store_true",
                   help="retrain (or re-download) even if a finished file exists; without it that file "
                        "is reused")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--download-bvlc", action="store_true",
                   help=f"instead of training, download the BVLC ImageNet AlexNet to {bvlc_path()} "
                        f"($MEDFT_BVLC_ALEXNET overrides) and check SHA-1 {BVLC_ALEXNET_SHA1} "
                        f"(--out and the training flags do not apply)")
    g.add_argument("--which", action="store_true",
                   help="print the weights fine-tuning would use (kind, path, description); exit 1 if none")
    p.add_argument("--url", default=BVLC_ALEXNET_URL, help="where --download-bvlc fetches from")
    add_engine_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.which:
        found = find_pretrained()
        if found is None:
            print(f"no pretrained weights: neither {bvlc_path()} nor {standin_path()}; run "
                  f"`medft pretrain --download-bvlc` (online) or `medft pretrain` (offline stand-in)")
            return 1
        print(f"{found[1]}\t{found[0]}\t{describe(found[0])}")
        return 0
    if args.download_bvlc:
        path = download_bvlc_alexnet(force=args.force, url=args.url)
        print(f"medft pretrain: {path}: {describe(path)}")
        return 0
    opts = PretrainOptions(iterations=args.iterations, batch=args.batch, images=args.images,
                           heldout=args.heldout, seed=args.seed, conv1=args.conv1,
                           init=args.init, schedule=args.schedule)
    print(f"medft pretrain: {opts} -> {args.out}", flush=True)
    pretrain(opts, out=args.out, force=args.force, log=lambda line: print(line, flush=True),
             engine=args.engine, gpu=args.gpu, refresh=args.refresh)
    return 0
