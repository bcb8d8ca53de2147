"""The GPU build on a GPU: every generated net runs, and the GPU computes what the CPU computes.

Runs only where a CUDA GPU and the GPU build (``make caffe-gpu``) are present; skipped with the
reason elsewhere. Caffe is driven through its own tools (``caffe``, ``extract_features``), so these
tests need no pycaffe and run under any Python with numpy, lmdb and protobuf. The CPU side of each
comparison is the same GPU-build binary in CPU mode (the code path of the CPU build: OpenBLAS).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from medft.alexnet import NetOptions, train_val_net
from medft.engines.cli import feature_net, run_tool
from medft.prep.lmdb_writer import LmdbWriter, read_lmdb
from medft.schema import pb, read_net, read_prototxt, write_text_atomic
from medft.solver import SolverOptions, solver
from medft.util.prototxt import to_text

ROOT = Path(__file__).resolve().parents[1]
GPU = int(os.environ.get("MEDFT_TEST_GPU", "0"))


def _gpu_missing() -> str | None:
    from medft.engines.device import gpu_facts
    from medft.engines.env import caffe_root
    from medft.errors import MedftError

    try:
        caffe_root(gpu=True)
    except MedftError as e:
        return str(e)
    facts = gpu_facts(GPU)
    return facts.get("error")


_MISSING = _gpu_missing()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_MISSING is not None, reason=f"no GPU here: {_MISSING}")]


def _tool(name: str, *args: str) -> str:
    return run_tool(name, list(args), gpu_build=True)


def _random_lmdb(path: Path, n: int, seed: int) -> Path:
    """``n`` random 3x227x227 patches whose class (0/1 in turn) shows as a brighter centre."""
    rng = np.random.default_rng(seed)
    with LmdbWriter(path, force=True) as w:
        for i in range(n):
            img = rng.integers(0, 200, size=(3, 227, 227)).astype(np.uint8)
            if i % 2:
                img[:, 80:150, 80:150] += 50
            w.put(f"{i:08d}", img, i % 2)
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gpu")
    _random_lmdb(d / "lmdb", 32, seed=0)
    return d


def _with_source(net: pb.NetParameter, source: Path, batch: int) -> pb.NetParameter:
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.source = str(source)
            layer.data_param.batch_size = batch
        if layer.type == "Input":
            layer.input_param.shape[0].dim[0] = batch
    return net


def test_every_generated_net_runs_forward_backward_on_the_gpu(work):
    """``caffe time --gpu`` instantiates each of the 88 committed nets (cuDNN layers included) and
    runs forward and backward once, at batch 2, reading a small LMDB."""
    nets = sorted(ROOT.glob("prototxt/*/*/*.prototxt"))
    assert len(nets) == 88

    def run(path: Path) -> str:
        net = _with_source(read_prototxt(path, pb.NetParameter()), work / "lmdb", 2)
        local = work / "nets" / path.relative_to(ROOT / "prototxt")
        local.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(local, to_text(net))
        phase = "TRAIN" if path.name == "train_val.prototxt" else "TEST"
        out = _tool("caffe", "time", f"--model={local}", "--iterations=1", f"--phase={phase}", f"--gpu={GPU}")
        assert "Average Forward pass" in out, path
        return str(path)

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(run, nets))
    assert len(done) == 88


def _train(work: Path, name: str, gpu: int | None, iters: int, weights: Path | None,
           config: str = "ft-conv3", dropout: float | None = 0.0) -> dict[str, list[np.ndarray]]:
    """``iters`` SGD iterations of ``config`` (batch 16) with the GPU build on ``gpu`` (None: CPU);
    the snapshot's blobs by layer."""
    d = work / name
    d.mkdir(exist_ok=True)
    net = train_val_net("polyp", config, options=NetOptions(train_source=str(work / "lmdb"),
                                                            val_source=str(work / "lmdb"),
                                                            train_batch=16, test_batch=16))
    for layer in net.layer:
        if layer.type == "Dropout" and dropout is not None:
            layer.dropout_param.dropout_ratio = dropout
    write_text_atomic(d / "train_val.prototxt", to_text(net))
    sp = solver(SolverOptions(n_train=32, n_val=32, train_batch=16, test_batch=16, net=str(d / "train_val.prototxt"),
                              snapshot_prefix=str(d / "snap"), mode="GPU" if gpu is not None else "CPU"))
    del sp.test_iter[:]
    sp.ClearField("test_interval")
    sp.max_iter, sp.snapshot, sp.snapshot_after_train, sp.display = iters, 0, True, 1
    write_text_atomic(d / "solver.prototxt", to_text(sp))
    args = [f"--solver={d / 'solver.prototxt'}"]
    if weights is not None:
        args.append(f"--weights={weights}")
    if gpu is not None:
        args.append(f"--gpu={gpu}")
    os.environ["MEDFT_CUDNN_DETERMINISTIC"] = "1"
    try:
        _tool("caffe", "train", *args)
    finally:
        del os.environ["MEDFT_CUDNN_DETERMINISTIC"]
    from medft.schema import net_weights

    return net_weights(read_net(d / f"snap_iter_{iters}.caffemodel"))


@pytest.fixture(scope="module")
def start_weights(work) -> Path:
    """The fillers' weights (0 iterations, CPU): the common start of both devices."""
    _train(work, "start", None, 0, None, config="scratch")
    return work / "start" / "snap_iter_0.caffemodel"


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def test_one_sgd_iteration_agrees_on_gpu_and_cpu(work, start_weights):
    """One SGD iteration of ft-conv3 from the same weights (dropout 0, deterministic cuDNN): the
    update of every tuned blob (learning rate x gradient, with weight decay) agrees within a
    relative 1e-4: the GPU computes the CPU's gradients, before any divergence of trajectories."""
    from medft.schema import net_weights

    start = net_weights(read_net(start_weights))
    cpu = _train(work, "cpu1", None, 1, start_weights)
    gpu = _train(work, "gpu1", GPU, 1, start_weights)
    table, off = ["blob | GPU vs CPU update (relative)"], []
    for layer, blobs in cpu.items():
        if layer in ("conv1", "conv2"):
            continue
        for k, (c, g) in enumerate(zip(blobs, gpu[layer], strict=True)):
            step = _rel(g - start[layer][k], c - start[layer][k])
            table.append(f"{layer}[{k}] | {step:.2e}")
            if step > 1e-4:
                off.append(f"{layer}[{k}]")
    print("\n".join(table))
    assert not off, "one iteration's updates differ by more than 1e-4 (relative) in " + ", ".join(off) + \
        ":\n" + "\n".join(table)


def test_twenty_sgd_iterations_agree_on_gpu_and_cpu(work, start_weights):
    """ft-conv3 (conv1-2 frozen) from the same weights, dropout 0, deterministic cuDNN algorithms:
    every tuned blob within a relative 1e-3 (L2 norm of the difference over the CPU blob's norm),
    every frozen blob bit-identical to the start on the GPU."""
    from medft.schema import net_weights

    start = net_weights(read_net(start_weights))
    cpu = _train(work, "cpu", None, 20, start_weights)
    gpu = _train(work, "gpu", GPU, 20, start_weights)
    frozen = {"conv1", "conv2"}
    table, off = ["blob | GPU vs CPU (relative) | GPU vs CPU update (relative)"], []
    for layer, blobs in cpu.items():
        for k, (c, g) in enumerate(zip(blobs, gpu[layer], strict=True)):
            if layer in frozen:
                assert np.array_equal(g, start[layer][k]), f"{layer}[{k}] changed on the GPU"
                assert np.array_equal(c, start[layer][k]), f"{layer}[{k}] changed on the CPU"
                continue
            assert not np.array_equal(c, start[layer][k]), f"{layer}[{k}] was not trained"
            step = _rel(g - start[layer][k], c - start[layer][k])
            table.append(f"{layer}[{k}] | {_rel(g, c):.2e} | {step:.2e}")
            if _rel(g, c) > 1e-3:
                off.append(f"{layer}[{k}]")
    print("\n".join(table))  # the whole table in the log (pytest -rA), passed or not
    assert not off, f"GPU and CPU differ by more than 1e-3 (relative) in {', '.join(off)}:\n" + "\n".join(table)


def test_forward_probabilities_agree_on_gpu_and_cpu(work, start_weights):
    """The trained weights' class probabilities for the same 32 patches: GPU within 1e-4 of CPU."""
    _train(work, "fwd", None, 20, start_weights, config="scratch")
    model = work / "fwd" / "snap_iter_20.caffemodel"
    deploy = work / "fwd" / "deploy.prototxt"
    from medft.alexnet import deploy_net

    write_text_atomic(deploy, to_text(deploy_net("polyp", "scratch", options=NetOptions(deploy_batch=16))))
    feats = work / "fwd" / "features.prototxt"
    write_text_atomic(feats, to_text(feature_net(deploy, work / "lmdb", (100.0, 100.0, 100.0), 16)))
    probs = {}
    for device in ("CPU", "GPU"):
        out = work / "fwd" / f"prob_{device}"
        _tool("extract_features", str(model), str(feats), "prob", str(out), "2", "lmdb", device,
              *([str(GPU)] if device == "GPU" else []))
        probs[device] = np.stack([a.ravel() for _, a, _ in read_lmdb(out)])
    assert probs["GPU"].shape == (32, 2)
    assert np.abs(probs["GPU"] - probs["CPU"]).max() <= 1e-4
    assert np.ptp(probs["CPU"][:, 1]) > 0  # the weights tell patches apart: not a constant 0.5
