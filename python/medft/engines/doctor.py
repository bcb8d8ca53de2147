"""Facts about the installed Caffe builds and the GPU, for ``medft doctor``."""

from __future__ import annotations

from medft.engines.build.install import TOOLS, install_dir
from medft.engines.device import gpu_facts
from medft.errors import MedftError


def build_report(gpu: bool) -> dict:
    """Version, source, mode, path, BLAS, key, tools (and CUDA facts) of one build, or ``error``."""
    from medft.engines.env import build_info, caffe_root, caffe_tool, caffe_version

    try:
        root = caffe_root(gpu)
        info = build_info(gpu)
        tools = {t: str(caffe_tool(t, gpu)) for t in TOOLS}
    except MedftError as e:
        return {"error": str(e), "expected_at": str(install_dir(gpu))}
    rep = {"caffe_version": caffe_version(gpu), "source": f"{info['sdist']} ({info['upstream']})",
           "mode": info["mode"], "path": str(root), "blas": info["blas"], "build_key": info["key"], "tools": tools}
    for k in ("cudnn", "cuda_archs", "cuda_ptx", "cuda_wheels"):
        if k in info:
            rep[k] = info[k]
    return rep


def report(gpu: int = 0) -> dict:
    """Both builds and GPU ``gpu`` (what cannot be read is named under ``error``)."""
    return {"builds": {"cpu": build_report(False), "gpu": build_report(True)}, "gpu": gpu_facts(gpu)}
