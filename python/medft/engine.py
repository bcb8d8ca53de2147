"""The Caffe engine boundary: train with per-epoch snapshots, predict probabilities for an LMDB.

The driver (:mod:`medft.train`) talks to Caffe only through an :class:`Engine`, so the same
model-selection loop runs with in-process pycaffe (:class:`PycaffeEngine`, the default),
and later with Caffe's command-line tools or inside a container.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lmdb
import numpy as np

from medft.errors import MedftError


@dataclass
class StepStats:
    """What one training call did: last iteration reached, mean loss, images per second."""

    iteration: int
    losses: list[float]
    images_per_s: float


class Engine(Protocol):
    name: str
    weights_report: dict | None  # set by start(): which layers were copied / initialised

    def start(self, solver_path: Path, *, weights: Path | None = None,
              resume: Path | None = None, gpu: int | None = None) -> int:
        """Create the solver; load ``weights`` or restore ``resume`` (.solverstate). Return its iteration."""

    def train_until(self, iteration: int, on_iter: Callable[[int, float], None] | None = None) -> StepStats:
        """Run SGD until ``iteration`` updates are done."""

    def snapshot(self) -> tuple[Path, Path]:
        """Write (caffemodel, solverstate) of the current iteration; return their paths."""

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x C, labels N) for every record of an LMDB, in key order."""

    def set_device(self, gpu: int | None) -> None:
        """Use this GPU (None: the CPU) for what follows."""

    def close(self) -> None: ...


def lmdb_size(path: Path) -> int:
    """Number of records of an LMDB (clear error if it is not one)."""
    path = Path(path)
    if not (path / "data.mdb").is_file():
        raise MedftError(f"{path}: not an LMDB (no data.mdb); run `medft prep` first")
    env = lmdb.open(str(path), readonly=True, lock=False)
    try:
        return int(env.stat()["entries"])
    finally:
        env.close()


def iter_lmdb_batches(path: Path, batch: int, mean_bgr: tuple[float, ...]
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches (float32 N x C x H x W minus the per-channel mean, int labels) in key order.

    This is Caffe's TEST-phase transform for our nets: no crop, no mirror, scale 1.
    """
    from medft.prep.lmdb_writer import read_lmdb

    mean = np.asarray(mean_bgr, dtype=np.float32).reshape(-1, 1, 1)
    images, labels = [], []
    for _, img, label in read_lmdb(path):
        images.append(img.astype(np.float32) - mean)
        labels.append(label)
        if len(images) == batch:
            yield np.stack(images), np.asarray(labels)
            images, labels = [], []
    if images:
        yield np.stack(images), np.asarray(labels)


def forward_probs(net, images: np.ndarray, output: str = "prob") -> np.ndarray:
    """Run a deploy net (Input ``data``) on a batch; return a copy of its ``output`` blob."""
    net.blobs["data"].reshape(*images.shape)
    net.blobs["data"].data[...] = images
    return net.forward()[output].copy()


class PycaffeEngine:
    """In-process pycaffe: one live SGDSolver; prediction through a deploy net sharing its weights."""

    name = "pycaffe"

    def __init__(self) -> None:
        from medft.caffe_env import import_caffe

        self.caffe = import_caffe()
        self.solver = None
        self.weights_report: dict | None = None
        self._prefix = ""
        self._deploy = None
        self._deploy_path: Path | None = None

    def start(self, solver_path: Path, *, weights: Path | None = None,
              resume: Path | None = None, gpu: int | None = None) -> int:
        caffe = self.caffe
        if gpu is None:
            caffe.set_mode_cpu()
        else:
            caffe.set_device(gpu)
            caffe.set_mode_gpu()
        from medft.schema import pb, read_prototxt

        self._prefix = read_prototxt(solver_path, pb.SolverParameter()).snapshot_prefix
        self.solver = caffe.SGDSolver(str(solver_path))
        if resume is not None:
            self.solver.restore(str(resume))
        elif weights is not None:
            from medft.weights import copy_pretrained

            rep = copy_pretrained(self.solver.net, weights)
            self.weights_report = {**rep.to_dict(), "summary": rep.summary()}
        return int(self.solver.iter)

    def set_device(self, gpu: int | None) -> None:
        if gpu is None:
            self.caffe.set_mode_cpu()
        else:
            self.caffe.set_device(gpu)
            self.caffe.set_mode_gpu()

    def train_until(self, iteration: int, on_iter: Callable[[int, float], None] | None = None) -> StepStats:
        s = self.solver
        batch = s.net.blobs["data"].data.shape[0]
        losses: list[float] = []
        t0 = time.perf_counter()
        n0 = s.iter
        while s.iter < iteration:
            s.step(1)
            loss = float(s.net.blobs["loss"].data)
            losses.append(loss)
            if on_iter:
                on_iter(int(s.iter), loss)
        dt = time.perf_counter() - t0
        return StepStats(int(s.iter), losses, (s.iter - n0) * batch / dt if dt > 0 else 0.0)

    def snapshot(self) -> tuple[Path, Path]:
        self.solver.snapshot()
        prefix = Path(self._prefix)
        it = int(self.solver.iter)
        return (Path(f"{prefix}_iter_{it}.caffemodel"), Path(f"{prefix}_iter_{it}.solverstate"))

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        caffe = self.caffe
        if caffemodel is not None:
            net = caffe.Net(str(deploy), str(caffemodel), caffe.TEST)
        else:  # the live solver's weights, shared (no copy)
            if self._deploy is None or self._deploy_path != deploy:
                self._deploy = caffe.Net(str(deploy), caffe.TEST)
                self._deploy.share_with(self.solver.net)
                self._deploy_path = deploy
            net = self._deploy
        probs, labels = [], []
        for images, lab in iter_lmdb_batches(lmdb_path, batch, mean_bgr):
            probs.append(forward_probs(net, images))
            labels.append(lab)
        if not probs:
            raise MedftError(f"{lmdb_path}: the LMDB is empty")
        return np.concatenate(probs), np.concatenate(labels)

    def close(self) -> None:
        self._deploy = None
        self.solver = None




class LocalRunner:
    """Runs Caffe's command-line tools on this machine (from the `make caffe` build)."""

    def tool(self, name: str) -> str:
        from medft.caffe_env import caffe_tool

        return str(caffe_tool(name))

    def argv(self, argv: list[str], mounts: list[Path], gpu: int | None) -> list[str]:
        return argv


@dataclass
class DockerRunner:
    """Runs the same tools inside a container image: paths are mounted at the same absolute
    location, so the command line is unchanged apart from the ``docker run`` prefix."""

    image: str
    docker: str = "docker"

    def tool(self, name: str) -> str:
        return name.removesuffix(".bin")  # the images put caffe, extract_features, ... on PATH

    def argv(self, argv: list[str], mounts: list[Path], gpu: int | None) -> list[str]:
        import os

        cmd = [self.docker, "run", "--rm", "-u", f"{os.getuid()}:{os.getgid()}",
               "-e", "GLOG_logtostderr=1"]
        if gpu is not None:
            cmd += ["--gpus", f"device={gpu}"]
        for m in sorted({str(Path(p).resolve()) for p in mounts}):
            cmd += ["-v", f"{m}:{m}"]
        return cmd + ["-w", str(Path.cwd().resolve()), self.image, *argv]


_ITER_LOSS = re.compile(r"Iteration (\d+) \(.*?\), loss = ([-+0-9.eE]+|nan|inf)")
_SNAPSHOT_DONE = re.compile(r"Snapshotting solver state to binary proto file (\S+)_iter_(\d+)\.solverstate")


class CliEngine:
    """Caffe's own tools: one ``caffe train`` process snapshots every epoch while the driver
    scores each snapshot on validation (``extract_features``) and stops it on patience.

    One process for the whole run keeps Caffe's random stream (dropout) and the Data layer's
    cursor exactly as in-process pycaffe has them, so both engines train the same weights.
    """

    name = "cli"

    def __init__(self, runner: LocalRunner | DockerRunner | None = None) -> None:
        self.runner = runner or LocalRunner()
        self.weights_report: dict | None = None
        self.proc: subprocess.Popen | None = None
        self.iteration = 0
        self._log_path: Path | None = None
        self._log_pos = 0
        self._done: dict[int, Path] = {}
        self._losses: dict[int, float] = {}
        self._prefix = ""
        self._gpu: int | None = None
        self._batch = 0
        self._mounts: list[Path] = []

    # -- training ------------------------------------------------------------------------
    def train_command(self, solver_path: Path, *, weights: Path | None = None, resume: Path | None = None,
                      gpu: int | None = None) -> list[str]:
        # resolved paths: a container sees the mounted real paths, not symbolic links to them
        argv = [self.runner.tool("caffe.bin"), "train", f"--solver={Path(solver_path).resolve()}"]
        if resume is not None:
            argv.append(f"--snapshot={Path(resume).resolve()}")
        elif weights is not None:
            argv.append(f"--weights={Path(weights).resolve()}")
        if gpu is not None:  # `--gpus device=N` shows that GPU as device 0 inside a container
            argv.append(f"--gpu={0 if isinstance(self.runner, DockerRunner) else gpu}")
        return self.runner.argv(argv, self._mounts, gpu)

    def start(self, solver_path: Path, *, weights: Path | None = None,
              resume: Path | None = None, gpu: int | None = None) -> int:
        from google.protobuf import text_format

        from medft.schema import pb, read_prototxt, write_text_atomic

        sp = read_prototxt(solver_path, pb.SolverParameter())
        sp.snapshot = sp.stepsize  # one snapshot per epoch
        sp.snapshot_after_train = True
        sp.display = 1
        cli_solver = Path(solver_path).with_name("solver_cli.prototxt")
        write_text_atomic(cli_solver, text_format.MessageToString(sp, float_format=".7g"))
        net = read_prototxt(sp.net, pb.NetParameter())
        self._batch = next(layer.data_param.batch_size for layer in net.layer
                           if layer.type == "Data" and layer.include and layer.include[0].phase == pb.TRAIN)
        self._mounts = [cli_solver.parent, Path(sp.snapshot_prefix).parent,
                        *[Path(layer.data_param.source) for layer in net.layer if layer.type == "Data"]]
        if weights is not None:
            self._mounts.append(Path(weights).parent)
            from medft.weights import layer_shapes

            self.weights_report = _copy_report_by_name(layer_shapes(weights), net)
        if resume is not None:
            self._mounts.append(Path(resume).parent)
        self._prefix = sp.snapshot_prefix
        self._gpu = gpu
        self.iteration = int(re.search(r"_iter_(\d+)\.solverstate$", str(resume)).group(1)) if resume else 0
        self._log_path = cli_solver.with_name("caffe_train.log")
        log = open(self._log_path, "a")
        self._log_pos = log.tell()
        env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
        self.proc = subprocess.Popen(self.train_command(cli_solver, weights=weights, resume=resume, gpu=gpu),
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self.iteration

    def _read_log(self) -> None:
        with open(self._log_path) as f:
            f.seek(self._log_pos)
            text = f.read()
        # only consume complete lines
        cut = text.rfind("\n") + 1
        self._log_pos += len(text[:cut].encode())
        pending: int | None = None
        for line in text[:cut].splitlines():
            if m := _ITER_LOSS.search(line):
                self._losses[int(m.group(1))] = float(m.group(2))
            if pending is not None:
                self._done[pending[0]] = pending[1]
                pending = None
            if m := _SNAPSHOT_DONE.search(line):
                pending = (int(m.group(2)), Path(f"{m.group(1)}_iter_{m.group(2)}"))
        if pending is not None and self.proc.poll() is not None:
            self._done[pending[0]] = pending[1]
        elif pending is not None:
            self._log_pos -= len(text[:cut].splitlines(keepends=True)[-1].encode())

    def train_until(self, iteration: int, on_iter: Callable[[int, float], None] | None = None) -> StepStats:
        t0 = time.perf_counter()
        n0 = self.iteration
        while iteration not in self._done:
            self._read_log()
            if iteration in self._done:
                break
            if self.proc.poll() is not None:
                self._read_log()
                if iteration in self._done:
                    break
                tail = self._log_path.read_text()[-3000:]
                raise MedftError(f"caffe train exited ({self.proc.returncode}) before iteration {iteration}:\n{tail}")
            time.sleep(0.2)
        self.iteration = iteration
        losses = [loss for it, loss in sorted(self._losses.items()) if n0 <= it < iteration]
        dt = time.perf_counter() - t0
        return StepStats(iteration, losses, (iteration - n0) * self._batch / dt if dt > 0 else 0.0)

    def snapshot(self) -> tuple[Path, Path]:
        base = self._done[self.iteration]
        return Path(f"{base}.caffemodel"), Path(f"{base}.solverstate")

    # -- prediction ----------------------------------------------------------------------
    def feature_net(self, deploy: Path, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int):
        """The deploy net with its Input replaced by a TEST-phase Data layer reading ``lmdb_path``."""
        from medft.schema import pb, read_prototxt

        net = read_prototxt(deploy, pb.NetParameter())
        layers = [layer for layer in net.layer if layer.type != "Input"]
        del net.layer[:]
        data = net.layer.add(name="data", type="Data")
        data.top.extend(["data", "label"])
        data.transform_param.mean_value.extend(mean_bgr)
        data.data_param.source = str(Path(lmdb_path).resolve())
        data.data_param.batch_size = batch
        data.data_param.backend = pb.DataParameter.LMDB
        net.layer.extend(layers)
        return net

    def extract_command(self, caffemodel: Path, net_path: Path, out_db: Path, batches: int,
                        gpu: int | None = None, mounts: list[Path] = ()) -> list[str]:
        argv = [self.runner.tool("extract_features.bin"), str(Path(caffemodel).resolve()),
                str(Path(net_path).resolve()), "prob", str(Path(out_db).resolve()), str(batches), "lmdb",
                "GPU" if gpu is not None else "CPU"]
        if gpu is not None:
            argv.append(str(0 if isinstance(self.runner, DockerRunner) else gpu))
        return self.runner.argv(argv, [Path(caffemodel).parent, Path(net_path).parent, *mounts], gpu)

    def set_device(self, gpu: int | None) -> None:
        """Predict on this GPU (None: CPU) without a training process."""
        self._gpu = gpu

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        import math
        import shutil
        import tempfile

        from google.protobuf import text_format

        caffemodel = Path(caffemodel) if caffemodel is not None else self.snapshot()[0]
        n = lmdb_size(lmdb_path)
        batch = min(batch, n)
        from medft.prep.lmdb_writer import read_lmdb

        labels = np.asarray([label for _, _, label in read_lmdb(lmdb_path)])
        work = Path(tempfile.mkdtemp(prefix="medft-extract-", dir=Path(caffemodel).parent))
        try:
            net_path = work / "features.prototxt"
            net_path.write_text(text_format.MessageToString(self.feature_net(deploy, lmdb_path, mean_bgr, batch),
                                                            float_format=".7g"))
            argv = self.extract_command(caffemodel, net_path, work / "prob_lmdb", math.ceil(n / batch), self._gpu,
                                        mounts=[Path(lmdb_path).resolve()])
            r = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, GLOG_minloglevel="1"))
            if r.returncode != 0:
                raise MedftError(f"extract_features failed ({r.returncode}):\n{r.stderr[-3000:]}")
            # extract_features writes each row as a Datum of float_data (C x 1 x 1), keys in input order
            probs = [arr.ravel() for _, arr, _ in read_lmdb(work / "prob_lmdb")]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return np.stack(probs[:n]), labels

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def _copy_report_by_name(shapes: dict[str, list[tuple[int, ...]]], net) -> dict:
    """What ``caffe train --weights`` will copy (learnable layers of ``net`` found by name), with
    shapes checked first: a mismatch would abort Caffe, so it is refused here with its reason."""
    from medft.alexnet import INPUT_SIZE
    from medft.shapes import net_shapes

    _, expected = net_shapes(net, (1, 3, INPUT_SIZE, INPUT_SIZE))
    copied, initialised = [], []
    for name, want in expected.items():
        if name not in shapes:
            initialised.append(name)
            continue
        have = shapes[name]  # legacy 4-D blobs come without their leading 1s (weights.layer_shapes)
        if len(have) != len(want) or any(tuple(h) != tuple(w) for h, w in zip(have, want)):
            raise MedftError(f"layer {name}: the net's parameter shapes {want} differ from the pretrained "
                             f"{shapes[name]}: not the same architecture")
        copied.append(name)
    ignored = [n for n in shapes if n not in expected]
    return {"copied": copied, "initialised": initialised, "ignored": ignored,
            "summary": f"copied {', '.join(copied) or 'nothing'}; initialised {', '.join(initialised) or 'nothing'}"
                       f"; ignored {', '.join(ignored) or 'nothing'}"}


ENGINE_NAMES = ("pycaffe", "cli", "docker:<image>")


def make_engine(name: str) -> Engine:
    """``pycaffe`` (in-process), ``cli`` (caffe.bin + extract_features.bin here) or
    ``docker:<image>`` (the same tools inside a container image)."""
    from medft.errors import unknown_name

    if name == "pycaffe":
        return PycaffeEngine()
    if name == "cli":
        return CliEngine()
    if name.startswith("docker:") and len(name) > len("docker:"):
        return CliEngine(DockerRunner(name.removeprefix("docker:")))
    raise unknown_name("engine", name, ENGINE_NAMES)
