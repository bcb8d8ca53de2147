"""In-process pycaffe: one live ``SGDSolver``; prediction through a deploy net sharing its weights."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medft import paths
from medft.engines.base import OnIter, StepStats
from medft.engines.device import Device, device, require_gpu, select
from medft.engines.predictor import Predictor
from medft.errors import MedftError


def load_caffe(dev: Device):
    """pycaffe of the build that computes on ``dev``, in ``dev``'s mode."""
    from medft.engines.env import import_caffe

    require_gpu(dev)
    caffe = import_caffe(gpu=dev.is_gpu)
    select(caffe, dev)
    return caffe


def net_forward(net, output: str = "prob") -> Callable[[np.ndarray], np.ndarray]:
    """``forward(batch)`` of a deploy net (Input ``data``): reshape, forward, copy ``output``."""

    def forward(x: np.ndarray) -> np.ndarray:
        net.blobs["data"].reshape(*x.shape)
        net.blobs["data"].data[...] = x
        return net.forward()[output].copy()

    return forward


def _input_shape(net) -> tuple[int, int, int]:
    return tuple(net.blobs["data"].data.shape[1:])


class PycaffeEngine:
    """Training and prediction in this process through pycaffe (the default engine)."""

    name = "pycaffe"

    def __init__(self, gpu: int | None = None) -> None:
        self.device = device(gpu)
        self.caffe = load_caffe(self.device)
        self.solver = None
        self.weights_report: dict | None = None
        self._prefix = ""
        self._deploy = None
        self._deploy_path: Path | None = None

    def start(self, solver_path: Path, *, weights: Path | None = None, resume: Path | None = None,
              gpu: int | None = None, snapshot_every: int | None = None) -> int:
        if gpu is not None or self.device.is_gpu:
            self.set_device(gpu if gpu is not None else self.device.gpu)
        from medft.schema import pb, read_prototxt

        self._prefix = read_prototxt(solver_path, pb.SolverParameter()).snapshot_prefix
        self.solver = self.caffe.SGDSolver(str(solver_path))
        if resume is not None:
            self.solver.restore(str(resume))
        elif weights is not None:
            from medft.caffemodel import layer_hashes
            from medft.engines.transfer import START_FIELD, copy_pretrained

            rep = copy_pretrained(self.solver.net, weights)
            live = {name: [b.data for b in blobs] for name, blobs in self.solver.net.params.items()}
            self.weights_report = {**rep.to_dict(), "summary": rep.summary(),
                                   START_FIELD: layer_hashes(live, rep.copied)}  # iteration 0, as loaded
        return int(self.solver.iter)

    def set_device(self, gpu: int | None) -> None:
        dev = device(gpu)
        if dev.build != self.device.build:
            raise MedftError(f"this engine loaded the {self.device.build.upper()} build of Caffe; "
                             f"{dev.label} needs a new process")
        self.device = dev
        select(self.caffe, dev)

    def train_until(self, iteration: int, on_iter: OnIter | None = None) -> StepStats:
        s = self.solver
        batch = s.net.blobs["data"].data.shape[0]
        outputs = [name for name in s.net.outputs if s.net.blobs[name].data.size == 1]
        losses: list[float] = []
        means: dict[str, float] = dict.fromkeys(outputs, 0.0)
        t0 = time.perf_counter()
        n0 = s.iter
        while s.iter < iteration:
            s.step(1)
            loss = float(s.net.blobs["loss"].data)
            losses.append(loss)
            values = {name: float(s.net.blobs[name].data) for name in outputs}
            for name, v in values.items():
                means[name] += v
            if on_iter:
                on_iter(int(s.iter), loss, values)
        dt = time.perf_counter() - t0
        n = max(1, s.iter - n0)
        return StepStats(int(s.iter), losses, (s.iter - n0) * batch / dt if dt > 0 else 0.0,
                         {k: v / n for k, v in means.items()})

    def snapshot(self) -> tuple[Path, Path]:
        self.solver.snapshot()
        return paths.snapshot_files(self._prefix, int(self.solver.iter))

    def predictor(self, deploy: Path, caffemodel: Path | None, mean_bgr: tuple[float, ...],
                  batch: int) -> Predictor:
        """A :class:`Predictor` of ``deploy`` with ``caffemodel``'s weights (None: the live solver's, shared)."""
        caffe = self.caffe
        if caffemodel is not None:
            net = caffe.Net(str(deploy), str(caffemodel), caffe.TEST)
        else:
            if self.solver is None:
                raise MedftError("no weights to predict with: give a caffemodel or start training first")
            if self._deploy is None or self._deploy_path != deploy:
                self._deploy = self._net_without_fillers(deploy)
                self._deploy.share_with(self.solver.net)
                self._deploy_path = deploy
            net = self._deploy
        return Predictor(net_forward(net), mean_bgr, batch, _input_shape(net))

    def _net_without_fillers(self, deploy: Path):
        """A TEST net of ``deploy`` whose fillers draw nothing from Caffe's random stream.

        Gaussian fillers would advance the stream that Dropout uses, so training would diverge from
        ``caffe train`` with the same solver after the first validation; the weights are shared from
        the solver's net anyway.
        """
        import tempfile

        from medft.schema import pb, read_prototxt
        from medft.util.atomic import write_text_atomic
        from medft.util.prototxt import to_text

        net = read_prototxt(deploy, pb.NetParameter())
        for layer in net.layer:
            for field in ("convolution_param", "inner_product_param"):
                if layer.HasField(field):
                    getattr(layer, field).ClearField("weight_filler")
                    getattr(layer, field).ClearField("bias_filler")
        with tempfile.TemporaryDirectory(prefix=".medft-deploy-", dir=Path(deploy).parent) as d:
            path = Path(d) / "deploy_shared.prototxt"
            write_text_atomic(path, to_text(net))
            return self.caffe.Net(str(path), self.caffe.TEST)

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.predictor(deploy, caffemodel, mean_bgr, batch).predict_lmdb(lmdb_path)

    def close(self) -> None:
        self._deploy = None
        self.solver = None


# --- measurements and utilities that need a live net ---------------------------------------------

def time_net(net_path: Path, iterations: int, gpu: int | None = None) -> dict[str, float]:
    """ms per batch of ``net.forward()`` and ``net.backward()`` of a TRAIN-phase net, after one
    warm-up pass, as ``caffe time`` measures them (the GPU synchronises at each ``forward()``'s
    Python return because the loss is read back)."""
    caffe = load_caffe(device(gpu))
    net = caffe.Net(str(net_path), caffe.TRAIN)
    last = list(net.params.values())[-1][0]  # the last layer's gradient is always computed
    try:
        net.forward()
        net.backward()
        fwd = bwd = 0.0
        for _ in range(iterations):
            t = time.perf_counter()
            net.forward()
            fwd += time.perf_counter() - t
            t = time.perf_counter()
            net.backward()
            float(last.diff.flat[0])  # reading it back waits for the device
            bwd += time.perf_counter() - t
    finally:
        del net
    return {"forward_ms": 1000 * fwd / iterations, "backward_ms": 1000 * bwd / iterations,
            "forward_backward_ms": 1000 * (fwd + bwd) / iterations}


def save_initial_weights(deploy: Path, out: Path, gpu: int | None = None) -> Path:
    """Write the weights a net starts from (its fillers) to ``out``: timing runs need a caffemodel."""
    caffe = load_caffe(device(gpu))
    net = caffe.Net(str(deploy), caffe.TEST)
    net.save(str(out))
    del net
    return out
