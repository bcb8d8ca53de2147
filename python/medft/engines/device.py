"""Where Caffe computes: the CPU (the CPU build) or GPU ``N`` (the GPU build), and what that GPU is.

Every stage takes ``--gpu N``; :func:`device` validates it once and :func:`select` puts pycaffe in
that mode. :func:`gpu_facts` asks the CUDA runtime and cuDNN directly (ctypes), so ``medft doctor``
and run records can name the card without importing Caffe.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from medft.errors import MedftError


@dataclass(frozen=True)
class Device:
    """``gpu`` is the CUDA device index, or None for the CPU."""

    gpu: int | None = None

    @property
    def is_gpu(self) -> bool:
        return self.gpu is not None

    @property
    def label(self) -> str:
        return "CPU" if self.gpu is None else f"GPU {self.gpu}"

    @property
    def build(self) -> str:
        """Which Caffe build computes on this device: ``cpu`` or ``gpu``."""
        return "gpu" if self.is_gpu else "cpu"


def device(gpu: int | None) -> Device:
    """The device for a ``--gpu`` value (None: CPU); negative indices are refused."""
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise MedftError(f"--gpu must be a device index 0, 1, ..., got {gpu!r}")
    return Device(gpu)


def select(caffe, dev: Device) -> None:
    """Put pycaffe in ``dev``'s mode (and device)."""
    if dev.gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(dev.gpu)
        caffe.set_mode_gpu()


class _Props(ctypes.Structure):
    # cudaDeviceProp begins with char name[256]; the rest is read through cudaDeviceGetAttribute
    _fields_ = [("name", ctypes.c_char * 256), ("rest", ctypes.c_byte * 4096)]


_CC_MAJOR, _CC_MINOR, _MULTIPROCESSORS = 75, 76, 16  # cudaDeviceAttr values


def _version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def gpu_facts(gpu: int = 0) -> dict:
    """Name, compute capability, memory, driver/runtime CUDA and cuDNN versions of GPU ``gpu``.

    Never raises: what cannot be read is reported under ``error`` (no GPU, no driver, no libraries).
    """
    from medft.engines.env import find_cuda_library

    facts: dict = {"gpu": gpu}
    path = find_cuda_library("libcudart.so.13")
    if path is None:
        return {**facts, "error": "CUDA 13 runtime (libcudart.so.13) not found: make caffe-gpu, or set MEDFT_CUDA_LIBS"}
    try:
        rt = ctypes.CDLL(str(path))
    except OSError as e:
        return {**facts, "error": f"cannot load {path}: {e}"}
    rt.cudaGetErrorString.restype = ctypes.c_char_p
    v = ctypes.c_int(0)
    if rt.cudaRuntimeGetVersion(ctypes.byref(v)) == 0:
        facts["cuda_runtime"] = _version(v.value)
    if rt.cudaDriverGetVersion(ctypes.byref(v)) == 0 and v.value:
        facts["cuda_driver"] = _version(v.value)
    cudnn = find_cuda_library("libcudnn.so.9")
    if cudnn is not None:
        try:
            n = ctypes.CDLL(str(cudnn)).cudnnGetVersion()
            facts["cudnn"] = f"{n // 10000}.{(n % 10000) // 100}.{n % 100}"
        except OSError as e:
            facts["cudnn"] = f"cannot load {cudnn}: {e}"
    count = ctypes.c_int(0)
    status = rt.cudaGetDeviceCount(ctypes.byref(count))
    if status != 0:
        return {**facts, "error": f"no usable GPU: {rt.cudaGetErrorString(status).decode()} (cudaError {status})"}
    facts["gpu_count"] = count.value
    if gpu >= count.value:
        return {**facts, "error": f"GPU {gpu} does not exist ({count.value} found)"}
    props = _Props()
    if rt.cudaGetDeviceProperties(ctypes.byref(props), gpu) == 0:
        facts["name"] = props.name.decode(errors="replace")
    major, minor, sms = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    rt.cudaDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, gpu)
    rt.cudaDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, gpu)
    rt.cudaDeviceGetAttribute(ctypes.byref(sms), _MULTIPROCESSORS, gpu)
    facts["compute_capability"] = f"{major.value}.{minor.value}"
    facts["multiprocessors"] = sms.value
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    if rt.cudaSetDevice(gpu) == 0 and rt.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0:
        facts["memory_gib"] = round(total.value / 2**30, 1)
    return facts


def require_gpu(dev: Device) -> None:
    """Refuse a GPU device when the GPU build or a usable GPU of that index is missing, before
    Caffe can abort on it."""
    if dev.is_gpu:
        from medft.engines.env import caffe_root

        caffe_root(gpu=True)
        facts = gpu_facts(dev.gpu)
        if "error" in facts:
            raise MedftError(f"--gpu {dev.gpu}: {facts['error']}")
