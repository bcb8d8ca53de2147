"""Caffe's own command-line tools as an engine, on this machine or inside a container image.

:func:`run_tool` is the one place medft spawns a Caffe tool to completion (``caffe time``,
``convert_imageset``, ...); :class:`CliEngine` keeps one ``caffe train`` running for a whole run.
Every child lives in its own process group and is terminated when the engine closes or this
process exits, so no ``caffe train`` outlives the driver.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medft import paths
from medft.engines.base import OnIter, StepStats, lmdb_size
from medft.engines.caffe_log import TrainLog, chunk_rate, tail
from medft.engines.device import device, require_gpu
from medft.engines.predictor import Predictor
from medft.errors import MedftError

_CHILDREN: set[subprocess.Popen] = set()


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Terminate ``proc``'s process group (then kill it if it does not exit)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    _CHILDREN.discard(proc)


@atexit.register
def _stop_children() -> None:
    for proc in list(_CHILDREN):
        _stop(proc, timeout=5)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the driver dies, even by SIGKILL (Linux prctl)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(argv: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    """Start a Caffe tool in its own process group, remembered until it is stopped or exits; it is
    terminated if this process dies first."""
    try:
        proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent, **kwargs)
    except FileNotFoundError:
        raise MedftError(f"cannot run {argv[0]}: not installed (or not on PATH)") from None
    _CHILDREN.add(proc)
    return proc


class LocalRunner:
    """Runs Caffe's command-line tools on this machine, from the CPU or the GPU build."""

    def __init__(self, gpu_build: bool = False) -> None:
        self.gpu_build = gpu_build

    def tool(self, name: str) -> str:
        from medft.engines.env import caffe_tool

        return str(caffe_tool(name, gpu=self.gpu_build))

    def env(self, log_everything: bool = False) -> dict[str, str]:
        from medft.engines.env import tool_env

        return tool_env(gpu=self.gpu_build, log_everything=log_everything)

    def argv(self, argv: list[str], mounts: list[Path], gpu: int | None) -> list[str]:
        return argv

    def device_index(self, gpu: int) -> int:
        return gpu


@dataclass
class DockerRunner:
    """Runs the same tools inside a container image: paths are mounted at the same absolute
    location, so the command line is unchanged apart from the ``docker run`` prefix."""

    image: str
    docker: str = "docker"
    gpu_build: bool = False

    def tool(self, name: str) -> str:
        return name.removesuffix(".bin")  # the images put caffe, extract_features, ... on PATH

    def env(self, log_everything: bool = False) -> dict[str, str]:
        return dict(os.environ, GLOG_logtostderr="1", **({"GLOG_minloglevel": "0"} if log_everything else {}))

    def argv(self, argv: list[str], mounts: list[Path], gpu: int | None) -> list[str]:
        cmd = [self.docker, "run", "--rm", "-u", f"{os.getuid()}:{os.getgid()}", "-e", "GLOG_logtostderr=1"]
        if gpu is not None:
            cmd += ["--gpus", f"device={gpu}"]
        for m in sorted({str(Path(p).resolve()) for p in mounts}):
            cmd += ["-v", f"{m}:{m}"]
        return cmd + ["-w", str(Path.cwd().resolve()), self.image, *argv]

    def device_index(self, gpu: int) -> int:
        return 0  # `--gpus device=N` shows that GPU as device 0 inside the container


def run_tool(name: str, args: list[str], *, gpu_build: bool = False, what: str | None = None,
             runner: LocalRunner | DockerRunner | None = None, mounts: list[Path] = ()) -> str:
    """Run Caffe tool ``name`` with ``args`` to completion (in a container, ``mounts`` mounted);
    its combined output (every glog line with its timestamp), or an error naming the command
    with the output's tail."""
    runner = runner or LocalRunner(gpu_build)
    argv = runner.argv([runner.tool(name), *args], list(mounts), None)
    rc, out = run_to_end(argv, runner.env(log_everything=True))
    if rc != 0:
        raise MedftError(f"{what or name} failed ({rc}): {' '.join(argv)}\n{out[-3000:]}")
    return out


def run_to_end(argv: list[str], env: dict[str, str], merge_stderr: bool = True) -> tuple[int, str]:
    """Run a tool (see :func:`spawn`) until it exits; (exit status, its stderr or all its output)."""
    proc = spawn(argv, env, stdout=subprocess.PIPE, text=True,
                 stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)
    try:
        out, err = proc.communicate()
    finally:
        _stop(proc)
    return proc.returncode, out if merge_stderr else err


def write_patch_lmdb(path: Path, patches: np.ndarray) -> None:
    """Patches (N x C x H x W, integer values 0..255) as uint8 Datums keyed in order (label 0)."""
    from medft.datum_lmdb import LmdbWriter

    arr = np.asarray(patches)
    if arr.dtype != np.uint8:
        if not np.all((arr >= 0) & (arr <= 255) & (arr == np.round(arr))):
            raise MedftError("the cli engine feeds Caffe uint8 Datums: patches must hold integers 0..255")
        arr = arr.astype(np.uint8)
    with LmdbWriter(path, force=True) as w:
        for i, x in enumerate(arr):
            w.put(f"{i:08d}", x, 0)


def feature_net(deploy: Path, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int):
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


class CliEngine:
    """Caffe's own tools: one ``caffe train`` process snapshots every epoch while the driver
    scores each snapshot on validation (``extract_features``) and stops it on patience.

    One process for the whole run keeps Caffe's random stream (dropout) and the Data layer's
    cursor exactly as in-process pycaffe has them, so both engines train the same weights.
    """

    name = "cli"

    def __init__(self, runner: LocalRunner | DockerRunner | None = None, gpu: int | None = None) -> None:
        self._gpu = device(gpu).gpu
        self.runner = runner or LocalRunner(gpu_build=self._gpu is not None)
        if isinstance(self.runner, LocalRunner):
            require_gpu(device(self._gpu))
        self.weights_report: dict | None = None
        self.proc: subprocess.Popen | None = None
        self.iteration = 0
        self._log_path: Path | None = None
        self._log_pos = 0
        self._log = TrainLog()
        self._finetune_from: Path | None = None
        self._start_pos = 0
        self._batch = 0
        self._mounts: list[Path] = []
        self._files: dict[str, str] = {}  # the files of each role, for a one-line account of an abort

    # -- training ------------------------------------------------------------------------
    def train_command(self, solver_path: Path, *, weights: Path | None = None, resume: Path | None = None,
                      gpu: int | None = None) -> list[str]:
        # resolved paths: a container sees the mounted real paths, not symbolic links to them
        argv = [self.runner.tool("caffe.bin"), "train", f"--solver={Path(solver_path).resolve()}"]
        if resume is not None:
            argv.append(f"--snapshot={Path(resume).resolve()}")
        elif weights is not None:
            argv.append(f"--weights={Path(weights).resolve()}")
        if gpu is not None:
            argv.append(f"--gpu={self.runner.device_index(gpu)}")
        return self.runner.argv(argv, self._mounts, gpu)

    def start(self, solver_path: Path, *, weights: Path | None = None, resume: Path | None = None,
              gpu: int | None = None, snapshot_every: int | None = None) -> int:
        from medft.schema import pb, read_prototxt
        from medft.util.atomic import write_text_atomic
        from medft.util.prototxt import to_text

        if gpu is not None:
            self.set_device(gpu)
        sp = read_prototxt(solver_path, pb.SolverParameter())
        sp.snapshot = snapshot_every or sp.stepsize  # one snapshot per epoch
        sp.snapshot_after_train = True
        sp.display = 1
        cli_solver = Path(solver_path).with_name(paths.SOLVER_CLI)
        write_text_atomic(cli_solver, to_text(sp))
        net = read_prototxt(sp.net, pb.NetParameter())
        self._batch = next(layer.data_param.batch_size for layer in net.layer
                           if layer.type == "Data" and (not layer.include or layer.include[0].phase == pb.TRAIN))
        self._mounts = [cli_solver.parent, Path(sp.snapshot_prefix).parent,
                        *[Path(layer.data_param.source) for layer in net.layer if layer.type == "Data"]]
        if weights is not None:
            self._mounts.append(Path(weights).parent)
            from medft.engines.transfer import plan_copy_into

            rep = plan_copy_into(weights, sp.net)
            self.weights_report = {**rep.to_dict(), "summary": rep.summary()}
            if resume is None:
                from medft.engines.transfer import START_FIELD

                self.weights_report[START_FIELD] = self.start_hashes(sp, cli_solver, weights, rep.copied)
        if resume is not None:
            self._mounts.append(Path(resume).parent)
        self.iteration = paths.parse_snapshot(resume)[0] if resume else 0
        self._log_path = cli_solver.with_name(paths.CAFFE_LOG)
        self._files = {"data": str(self._mounts[2]) if len(self._mounts) > 2 else sp.net,
                       "snapshots": str(Path(sp.snapshot_prefix).parent), "weights": str(resume or weights or sp.net)}
        self._log = TrainLog()
        self._finetune_from = Path(weights).resolve() if weights is not None and resume is None else None
        with open(self._log_path, "a") as log:
            self._log_pos = self._start_pos = log.tell()
            self.proc = spawn(self.train_command(cli_solver, weights=weights, resume=resume, gpu=self._gpu),
                              self.runner.env(log_everything=True), stdout=log, stderr=subprocess.STDOUT)
        return self.iteration

    def start_hashes(self, sp, solver_path: Path, weights: Path, copied: list[str]) -> dict[str, list[str]]:
        """SHA-1s of the ``copied`` layers' blobs as ``caffe train --weights`` starts: the same command
        (solver, net, seed, device) run for zero iterations writes its iteration-0 snapshot, read back
        here and removed. A build whose tool ignores ``--weights`` is refused by name."""
        from medft.caffemodel import caffemodel_hashes
        from medft.schema import pb
        from medft.util.atomic import write_text_atomic
        from medft.util.prototxt import to_text

        work = Path(tempfile.mkdtemp(prefix=".medft-start-", dir=Path(solver_path).parent))
        try:
            probe = pb.SolverParameter()
            probe.CopyFrom(sp)
            probe.max_iter, probe.snapshot, probe.snapshot_after_train, probe.display = 0, 0, True, 0
            probe.snapshot_prefix = str((work / "start").resolve())
            write_text_atomic(work / paths.SOLVER, to_text(probe))
            rc, out = run_to_end(self.train_command(work / paths.SOLVER, weights=weights, gpu=self._gpu),
                                 self.runner.env(log_everything=True))
            if rc != 0:
                raise MedftError(f"caffe train --weights for zero iterations (the starting weights) failed ({rc}):\n"
                                 f"{out[-3000:]}")
            if f"Finetuning from {Path(weights).resolve()}" not in out:
                raise MedftError(f"{self.runner.tool('caffe.bin')} ignored --weights={weights}: this Caffe build "
                                 "does not copy pretrained layers; rebuild it (`make caffe`, `make caffe-gpu`, "
                                 "or the image)")
            return caffemodel_hashes(paths.snapshot_files(probe.snapshot_prefix, 0)[0], copied)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check_finetuning_logged(self) -> None:
        """The training process itself must have said that it copied ``--weights``."""
        with open(self._log_path, "rb") as f:
            f.seek(self._start_pos)
            text = f.read(self._log_pos - self._start_pos).decode(errors="replace")
        if f"Finetuning from {self._finetune_from}" not in text:
            raise MedftError(f"{self._log_path}: caffe train never logged 'Finetuning from {self._finetune_from}': "
                             "it did not load the pretrained weights")
        self._finetune_from = None

    def _read_log(self) -> None:
        with open(self._log_path, "rb") as f:
            f.seek(self._log_pos)
            data = f.read()
        cut = data.rfind(b"\n") + 1  # only complete lines
        self._log_pos += cut
        self._log.feed(data[:cut].decode(errors="replace"))

    def train_until(self, iteration: int, on_iter: OnIter | None = None) -> StepStats:
        t0 = time.perf_counter()
        n0 = self.iteration
        reported = n0
        while iteration not in self._log.snapshots:
            self._read_log()
            if on_iter:
                for it in sorted(i for i in self._log.losses if reported <= i < iteration):
                    on_iter(it + 1, self._log.losses[it], self._log.outputs.get(it, {}))
                    reported = it + 1
            if iteration in self._log.snapshots:
                break
            if self.proc.poll() is not None:
                self._read_log()
                self._log.finish()
                if iteration in self._log.snapshots:
                    break
                from medft.guard import explain_abort

                why = explain_abort(self.proc.returncode, tail(self._log_path), self._files, "caffe train")
                raise MedftError(f"{why} (log {self._log_path})" if why else
                                 f"caffe train exited ({self.proc.returncode}) before iteration {iteration}; "
                                 f"log {self._log_path}:\n{tail(self._log_path)}")
            time.sleep(0.2)
        self.iteration = iteration
        if self._finetune_from is not None:
            self._check_finetuning_logged()
        its = [it for it in sorted(self._log.losses) if n0 <= it < iteration]
        losses = [self._log.losses[it] for it in its]
        names = {k for it in its for k in self._log.outputs.get(it, {})}
        outputs = {k: float(np.mean([self._log.outputs[it][k] for it in its if k in self._log.outputs.get(it, {})]))
                   for k in names}
        rate = chunk_rate(self._log, self._batch, n0, iteration)
        if rate is None:  # no timed loss lines: the wall clock since the call
            dt = time.perf_counter() - t0
            rate = (iteration - n0) * self._batch / dt if dt > 0 else 0.0
        return StepStats(iteration, losses, rate, outputs)

    @property
    def log_path(self) -> Path | None:
        """``caffe_train.log`` beside the solver: everything ``caffe train`` printed."""
        return self._log_path

    def snapshot(self) -> tuple[Path, Path]:
        base = self._log.snapshots[self.iteration]
        return Path(base + paths.CAFFEMODEL), Path(base + paths.SOLVERSTATE)

    # -- prediction ----------------------------------------------------------------------
    def feature_net(self, deploy: Path, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int):
        return feature_net(deploy, lmdb_path, mean_bgr, batch)

    def extract_command(self, caffemodel: Path, net_path: Path, out_db: Path, batches: int,
                        gpu: int | None = None, mounts: list[Path] = ()) -> list[str]:
        argv = [self.runner.tool("extract_features.bin"), str(Path(caffemodel).resolve()),
                str(Path(net_path).resolve()), "prob", str(Path(out_db).resolve()), str(batches), "lmdb",
                "GPU" if gpu is not None else "CPU"]
        if gpu is not None:
            argv.append(str(self.runner.device_index(gpu)))
        return self.runner.argv(argv, [Path(caffemodel).parent, Path(net_path).parent, *mounts], gpu)

    def set_device(self, gpu: int | None) -> None:
        """Compute on this GPU (None: CPU) from now on."""
        dev = device(gpu)
        if isinstance(self.runner, LocalRunner) and dev.is_gpu != self.runner.gpu_build:
            require_gpu(dev)
            self.runner = LocalRunner(gpu_build=dev.is_gpu)
        self._gpu = dev.gpu

    def extract_probs(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int, caffemodel: Path,
                      deploy: Path) -> np.ndarray:
        """``extract_features`` of the ``prob`` blob for every record of ``lmdb_path``, in key order."""
        from medft.datum_lmdb import read_lmdb
        from medft.util.prototxt import to_text

        n = lmdb_size(lmdb_path)
        if n == 0:
            raise MedftError(f"{lmdb_path}: the LMDB is empty")
        batch = min(batch, n)
        work = Path(tempfile.mkdtemp(prefix="medft-extract-", dir=Path(caffemodel).parent))
        try:
            net_path = work / "features.prototxt"
            net_path.write_text(to_text(self.feature_net(deploy, lmdb_path, mean_bgr, batch)))
            argv = self.extract_command(caffemodel, net_path, work / "prob_lmdb", math.ceil(n / batch), self._gpu,
                                        mounts=[Path(lmdb_path).resolve()])
            rc, err = run_to_end(argv, dict(self.runner.env(), GLOG_minloglevel="1"), merge_stderr=False)
            if rc != 0:
                from medft.guard import explain_abort

                why = explain_abort(rc, err, {"data": str(lmdb_path), "weights": str(caffemodel)}, "extract_features")
                raise MedftError(why or f"extract_features failed ({rc}):\n{err[-3000:]}")
            # extract_features writes each row as a Datum of float_data (C x 1 x 1), keys in input order
            probs = [arr.ravel() for _, arr, _ in read_lmdb(work / "prob_lmdb")]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return np.stack(probs[:n])

    def predictor(self, deploy: Path, caffemodel: Path | None, mean_bgr: tuple[float, ...],
                  batch: int) -> Predictor:
        """Each call writes its patches to a temporary LMDB and runs ``extract_features`` on them
        (a process per call: give it large batches)."""
        caffemodel = Path(caffemodel) if caffemodel is not None else self.snapshot()[0]

        def forward(patches: np.ndarray) -> np.ndarray:
            work = Path(tempfile.mkdtemp(prefix="medft-patches-", dir=caffemodel.parent))
            try:
                write_patch_lmdb(work / "lmdb", patches)
                return self.extract_probs(work / "lmdb", mean_bgr, batch, caffemodel, deploy)
            finally:
                shutil.rmtree(work, ignore_errors=True)

        return Predictor(forward, mean_bgr, batch, subtract_mean=False)

    def predict_lmdb(self, lmdb_path: Path, mean_bgr: tuple[float, ...], batch: int,
                     caffemodel: Path | None = None, deploy: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        from medft.datum_lmdb import read_lmdb

        caffemodel = Path(caffemodel) if caffemodel is not None else self.snapshot()[0]
        labels = np.asarray([label for _, _, label in read_lmdb(lmdb_path)])
        return self.extract_probs(lmdb_path, mean_bgr, batch, caffemodel, deploy), labels

    def close(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
        self.proc = None
