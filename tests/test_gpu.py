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
from medft.datum_lmdb import LmdbWriter, read_lmdb
from medft.engines.cli import feature_net, run_tool
from medft.schema import pb, read_net, read_prototxt
from medft.solver import SolverOptions, solver
from medft.util.atomic import write_text_atomic
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


#: float32's unit roundoff (half a unit in the last place of 1.0)
U32 = 2.0 ** -24
#: the probabilistic rounding bound's constant: a sum of n float32 products is off by at most
#: LAMBDA * sqrt(n) * U32 of the sum of its magnitudes with probability 1 - 2 exp(-LAMBDA^2 / 2)
#: (Higham & Mary 2019; 1 - 1e-6 for 5.4), times 4 for the cancellation of mixed-sign gradient terms
LAMBDA = 5.4 * 4


def reduction_tolerances(net: pb.NetParameter, batch: int) -> dict[str, float]:
    """Relative tolerance of each learnable layer's one-iteration update (its gradient) between two
    correct float32 implementations: LAMBDA * U32 * the sum of sqrt(n) over every reduction of
    length n that the gradient passes through: each learnable layer's forward dot products, the
    data gradients of the layers above it, and its own sum over batch and output positions."""
    from medft.alexnet import INPUT_SIZE
    from medft.shapes import net_shapes

    blobs, params = net_shapes(net, (batch, 3, INPUT_SIZE, INPUT_SIZE))
    layers = [la for la in net.layer if la.name in params and params[la.name]]
    forward = sum(np.sqrt(np.prod(params[la.name][0][1:])) for la in layers)
    tol = {}
    for i, la in enumerate(layers):
        above = 0.0
        for up in layers[i + 1:]:
            w = params[up.name][0]
            group = up.convolution_param.group if up.type == "Convolution" else 1
            above += np.sqrt(w[0] / group * np.prod(w[2:]))
        own = np.sqrt(batch * np.prod(blobs[la.top[0]][2:]))
        tol[la.name] = float(LAMBDA * U32 * (forward + above + own))
    return tol


def _first_update(work: Path, name: str, gpu: int | None, weights: Path) -> list[np.ndarray]:
    """The update of one SGD iteration from ``weights``, per learnable blob: the solverstate's history
    (learning rate x (gradient + weight decay); momentum starts at 0), read before it is subtracted
    from a blob ~1e3-1e5 times larger, whose float32 rounding would hide it."""
    _train(work, name, gpu, 1, weights)
    state = pb.SolverState.FromString((work / name / "snap_iter_1.solverstate").read_bytes())
    return [np.asarray(h.data, dtype=np.float64) for h in state.history]


def test_one_sgd_iteration_computes_the_cpu_update_on_the_gpu(work, start_weights):
    """One SGD iteration of ft-conv3 from the same weights (dropout 0, deterministic GEMM-only cuDNN
    algorithms): the GPU's update of every tuned blob equals the CPU's within float32 rounding of
    the reductions behind it (:func:`reduction_tolerances`), relative to the update itself; frozen
    blobs get exactly no update on either device.

    ``MEDFT_TEST_GPU_UPDATE_SCALE=1.01`` multiplies the GPU's update by 1.01 before the comparison, a
    deliberately wrong update 1e-2 off, at least 10x every tolerance: the test must then fail."""
    from medft.schema import net_weights

    scale = float(os.environ.get("MEDFT_TEST_GPU_UPDATE_SCALE", "1"))
    names = [(layer, k) for layer, blobs in net_weights(read_net(start_weights)).items() for k in range(len(blobs))]
    cpu = _first_update(work, "cpu1", None, start_weights)
    os.environ["MEDFT_CUDNN_GEMM_ONLY"] = "1"
    try:
        gpu = [h * scale for h in _first_update(work, "gpu1", GPU, start_weights)]
    finally:
        del os.environ["MEDFT_CUDNN_GEMM_ONLY"]
    assert len(cpu) == len(gpu) == len(names) == 16
    net = read_prototxt(work / "cpu1" / "train_val.prototxt", pb.NetParameter())
    tol = reduction_tolerances(net, 16)
    assert max(tol[layer] for layer, _ in names if layer not in ("conv1", "conv2")) < 1e-3  # 1% is caught
    table, off = ["blob | GPU vs CPU update (relative to the update) | tolerance"], []
    for (layer, k), c, g in zip(names, cpu, gpu):
        if layer in ("conv1", "conv2"):
            assert not c.any() and not g.any(), f"frozen {layer}[{k}] got an update"
            continue
        assert np.linalg.norm(c) > 0, f"{layer}[{k}]: no update on the CPU"
        rel = float(np.linalg.norm(g - c) / np.linalg.norm(c))
        table.append(f"{layer}[{k}] | {rel:.2e} | {tol[layer]:.2e}")
        if rel > tol[layer]:
            off.append(f"{layer}[{k}]")
    print("\n".join(table))  # the whole table in the log (pytest -rA), passed or not
    assert not off, "the GPU's update is not the CPU's within float32 rounding in " + ", ".join(off) + \
        ":\n" + "\n".join(table)


def test_twenty_sgd_iterations_keep_the_frozen_layers_on_gpu_and_cpu(work, start_weights):
    """ft-conv3 (conv1-2 frozen) for twenty iterations from the same copied weights: the frozen blobs
    are the source's bit for bit on both devices and every tuned blob moved. (Trajectories of two
    float32 implementations drift apart; their agreement is tested on one iteration's update.)"""
    from medft.schema import net_weights

    start = net_weights(read_net(start_weights))
    cpu = _train(work, "cpu", None, 20, start_weights)
    gpu = _train(work, "gpu", GPU, 20, start_weights)
    for layer, blobs in cpu.items():
        for k, (c, g) in enumerate(zip(blobs, gpu[layer], strict=True)):
            if layer in ("conv1", "conv2"):
                assert np.array_equal(g, start[layer][k]), f"{layer}[{k}] changed on the GPU"
                assert np.array_equal(c, start[layer][k]), f"{layer}[{k}] changed on the CPU"
            else:
                assert not np.array_equal(c, start[layer][k]), f"{layer}[{k}] was not trained on the CPU"
                assert not np.array_equal(g, start[layer][k]), f"{layer}[{k}] was not trained on the GPU"


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
