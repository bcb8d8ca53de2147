"""PyTorch's AlexNet of the same shapes and batch: what a user would pick instead."""

from __future__ import annotations

import time

from medft.bench.common import Log, row
from medft.errors import MedftError


# -- 6. the same AlexNet in PyTorch ----------------------------------------------------------------
def torch_alexnet(num_classes: int = 2):
    """BVLC AlexNet as PyTorch layers: the shapes of Table I (96-256-384-384-256 with groups 2 and
    LRN, ceil-mode pooling, fc 4096-4096), what a user would write instead of Caffe."""
    from torch import nn

    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # Caffe's ACROSS_CHANNELS

    def pool():
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    relu = nn.ReLU
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), relu(), lrn(), pool(),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), lrn(), pool(),
        nn.Conv2d(256, 384, 3, padding=1), relu(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), pool(),
        nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), relu(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), relu(), nn.Dropout(0.5), nn.Linear(4096, num_classes))


def bench_torch(batch: int, iters: int, gpu: int | None = None, seed: int = 0, log: Log = print) -> dict:
    """PyTorch AlexNet (:func:`torch_alexnet`), fp32 (TF32 off, as Caffe's SGEMM), cuDNN autotuning on:
    training images/s (SGD momentum 0.9, weight decay 5e-4) and forward images/s, after 2 warm-up
    iterations, synchronised. The row compares it with nothing: read it beside the train/time rows."""
    try:
        import torch
    except ImportError as e:
        raise MedftError("the torch benchmark needs PyTorch (pip install torch)") from e
    torch.manual_seed(seed)
    dev = torch.device("cpu" if gpu is None else f"cuda:{gpu}")
    if gpu is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    model = torch_alexnet().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 227, 227, device=dev) * 50
    y = torch.randint(0, 2, (batch,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def sync() -> None:
        if gpu is not None:
            torch.cuda.synchronize(dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    log(f"  PyTorch {torch.__version__} AlexNet on {dev}, batch {batch}, {iters} iterations")
    model.train()
    for _ in range(2):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    train_s = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        for _ in range(2):
            model(x)
        sync()
        t = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
    fwd_s = time.perf_counter() - t
    res = {"torch": torch.__version__, "device": str(dev), "batch": batch, "iterations": iters,
           "tf32": False, "train_images_per_s": batch * iters / train_s,
           "forward_images_per_s": batch * iters / fwd_s,
           "gpu_name": torch.cuda.get_device_name(dev) if gpu is not None else None}
    res["rows"] = [
        row(f"PyTorch AlexNet training, batch {batch}, {dev}", res["train_images_per_s"], None, "images/s",
             "torch SGD step (fp32, no TF32)", "-", True),
        row(f"PyTorch AlexNet forward, batch {batch}, {dev}", res["forward_images_per_s"], None, "images/s",
             "torch eval forward (fp32)", "-", True),
    ]
    return res
