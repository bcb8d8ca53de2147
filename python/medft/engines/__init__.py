"""The only place medft touches Caffe: builds, devices, engines, the predictor and the log parser.

* :mod:`~medft.engines.build` (``make caffe`` / ``make caffe-gpu``; one module per job) and :mod:`~medft.engines.env`:
  the CPU and GPU builds, their tools and pycaffe.
* :mod:`~medft.engines.device`: ``--gpu N`` and what that GPU is.
* :mod:`~medft.engines.pycaffe` (in-process) and :mod:`~medft.engines.cli` (Caffe's tools, here or
  in a container): the two engines behind :class:`~medft.engines.base.Engine`.
* :mod:`~medft.engines.predictor`: the one batched forward; :mod:`~medft.engines.caffe_log`: the one
  glog parser.

This file imports nothing heavy: ``python3 -m medft.engines.build`` runs before anything is installed.
"""

from __future__ import annotations

ENGINE_NAMES = ("pycaffe", "cli", "docker:<image>")
#: the engine of every Caffe stage unless ``--engine`` names another
DEFAULT_ENGINE = "pycaffe"

#: a container image reference: [registry[:port]/]path[:tag][@sha256:digest], never a `docker run` flag
_IMAGE = (r"(?:[A-Za-z0-9][A-Za-z0-9.-]*(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
          r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")


def make_engine(name: str, gpu: int | None = None):
    """``pycaffe`` (in-process), ``cli`` (caffe.bin + extract_features.bin here) or ``docker:<image>``
    (the same tools inside a container image), computing on ``gpu`` (None: the CPU)."""
    from medft.errors import unknown_name

    if name == "pycaffe":
        from medft.engines.pycaffe import PycaffeEngine

        return PycaffeEngine(gpu)
    if name == "cli":
        from medft.engines.cli import CliEngine

        return CliEngine(gpu=gpu)
    if name.startswith("docker:") and len(name) > len("docker:"):
        import re

        from medft.engines.cli import CliEngine, DockerRunner
        from medft.errors import MedftError

        if not re.fullmatch(_IMAGE, name.removeprefix("docker:")):
            raise MedftError(f"--engine {name}: {name.removeprefix('docker:')!r} is not a container image "
                             "name ([registry/]name[:tag][@sha256:digest], e.g. docker:medft/cpu)")
        return CliEngine(DockerRunner(name.removeprefix("docker:"), gpu_build=gpu is not None), gpu=gpu)
    raise unknown_name("engine", name, ENGINE_NAMES)
