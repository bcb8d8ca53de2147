"""The source patches of both builds, each with its reason, and applying them to the sdist's tree.

A patch is a literal substitution ``(file, old, new)`` that must find its target. One-line renames
stand in the tables here; every text that spans lines is a file under ``patches/`` holding exactly
the text replaced (``<name>.old<ext>``) and the text put in its place (``<name>.new<ext>``), read as
package data. The tables (with these texts) are hashed into the build's cache key
(:func:`medft.engines.build.install.build_key`), so a changed byte is a new build.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from medft.errors import MedftError

_PATCHES = resources.files("medft.engines.build") / "patches"


def patch_text(name: str) -> str:
    """The exact text of ``patches/<name>`` (package data)."""
    return (_PATCHES / name).read_bytes().decode("utf-8")


def _sub(rel: str, name: str) -> tuple[str, str, str]:
    """``(rel, old, new)`` of the pair ``patches/<name>.old<ext>`` / ``.new<ext>`` (ext of ``rel``)."""
    ext = Path(rel).suffix
    return rel, patch_text(f"{name}.old{ext}"), patch_text(f"{name}.new{ext}")


#: OpenCV 4 removed the old C constants; (file, old, new) literal substitutions.
OPENCV_PATCHES: tuple[tuple[str, str, str], ...] = (
    ("src/caffe/util/io.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/util/io.cpp", "CV_LOAD_IMAGE_GRAYSCALE", "cv::IMREAD_GRAYSCALE"),
    ("src/caffe/layers/window_data_layer.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/test/test_io.cpp", "CV_LOAD_IMAGE_COLOR", "cv::IMREAD_COLOR"),
    ("src/caffe/test/test_io.cpp", "CV_LOAD_IMAGE_GRAYSCALE", "cv::IMREAD_GRAYSCALE"),
    ("src/caffe/util/bbox_util.cpp", "CV_FILLED", "cv::FILLED"),
    ("src/caffe/util/bbox_util.cpp", "CV_FOURCC(", "cv::VideoWriter::fourcc("),
    ("src/caffe/layers/video_data_layer.cpp", "CV_CAP_PROP_", "cv::CAP_PROP_"),
)

#: ``caffe train --weights`` as in BVLC's tools/caffe.cpp: the pinned sdist's ``train()`` only
#: refuses --weights beside --snapshot and never copies them, so fine-tuning through the tool
#: (and the container images built from it) would start from the fillers.
FINETUNE_PATCHES: tuple[tuple[str, str, str], ...] = (
    _sub("tools/caffe.cpp", "finetune/copy-layers"),
    _sub("tools/caffe.cpp", "finetune/copy-weights-on-start"),
)

#: Exact resume (both builds): the random stream and the Data layers' cursor continue on restore
#: as if training had not stopped; without it a resumed run draws other dropout masks (and, when
#: an epoch is not a whole number of passes, reads other batches) than an uninterrupted one.
RESUME_PATCHES: tuple[tuple[str, str, str], ...] = (
    _sub("src/caffe/solver.cpp", "resume/solver-include"),
    _sub("src/caffe/solver.cpp", "resume/solver-helpers"),
    _sub("src/caffe/solver.cpp", "resume/solver-reseed-on-snapshot"),
    _sub("src/caffe/solver.cpp", "resume/solver-resume-on-restore"),
    _sub("include/caffe/layers/data_layer.hpp", "resume/data-layer-skip-to-declaration"),
    _sub("include/caffe/layers/data_layer.hpp", "resume/data-layer-consumed-member"),
    _sub("src/caffe/layers/data_layer.cpp", "resume/data-layer-lmdb-include"),
    _sub("src/caffe/layers/data_layer.cpp", "resume/data-layer-consumed-init"),
    _sub("src/caffe/layers/data_layer.cpp", "resume/data-layer-count-consumed"),
    _sub("src/caffe/layers/data_layer.cpp", "resume/data-layer-skip-to"),
)

#: every substitution of both builds
SOURCE_PATCHES: tuple[tuple[str, str, str], ...] = OPENCV_PATCHES + FINETUNE_PATCHES + RESUME_PATCHES

#: Headers prepended to a file (OpenCV 4 moved the C constants there).
HEADER_PATCHES: tuple[tuple[str, str], ...] = (
    ("src/caffe/util/im_transforms.cpp", patch_text("opencv/im_transforms-headers.cpp")),
)


def _cpu_fallback(layer: str) -> str:
    """GPU methods of ``layer`` that run its CPU code (for layers that ship no .cu file)."""
    return Template(patch_text("gpu/cpu-fallback.new.cpp")).substitute(layer=layer)


#: the sdist's extra layers that declare GPU methods but ship no .cu file: (source file, class)
CPU_ONLY_EXTRA_LAYERS: tuple[tuple[str, str], ...] = (
    ("hardsigmoid_layer.cpp", "HardSigmoidLayer"), ("hardswish_layer.cpp", "HardSwishLayer"),
    ("maxunpool_layer.cpp", "MaxUnPoolLayer"), ("pixelshuffle_layer.cpp", "PixelShuffleLayer"),
    ("relu6_layer.cpp", "ReLU6Layer"), ("upsample_layer.cpp", "UpsampleLayer"),
)

_CONV = "src/caffe/layers/cudnn_conv_layer.cpp"

#: (file, old, new, reason): substitutions of the GPU build only; each must find its target.
GPU_SOURCE_PATCHES: tuple[tuple[str, str, str, str], ...] = tuple(
    (f"src/caffe/layers/{file}", f"INSTANTIATE_CLASS({cls});", _cpu_fallback(cls),
     f"the sdist's extra {cls} has no GPU code (no .cu): its GPU methods run the CPU ones")
    for file, cls in CPU_ONLY_EXTRA_LAYERS) + (
    (*_sub(_CONV, "gpu/cudnn-algo-helpers"), "cuDNN 8 removed the algorithm queries: helpers over the _v7 queries"),
    (*_sub(_CONV, "gpu/cudnn-fwd-algo"), "cuDNN 8 removed cudnnGetConvolutionForwardAlgorithm"),
    (*_sub(_CONV, "gpu/cudnn-bwd-filter-algo"), "cuDNN 8 removed cudnnGetConvolutionBackwardFilterAlgorithm"),
    (*_sub(_CONV, "gpu/cudnn-bwd-data-algo"), "cuDNN 8 removed cudnnGetConvolutionBackwardDataAlgorithm"),
    (*_sub(_CONV, "gpu/cudnn-math-type"),
     "cuDNN's default math runs float convolutions in TF32 on Ampere and newer: FP32 (FMA) as in Caffe, "
     "TF32 only with MEDFT_CUDNN_TF32=1"),
    (_CONV, "  size_t workspace_limit_bytes = 8*1024*1024;",
     "  size_t workspace_limit_bytes = medft_cudnn_workspace_limit();",
     "Caffe's 8 MB cuDNN workspace stays the default; MEDFT_CUDNN_WORKSPACE_MB sets another to measure"),
    ("src/caffe/common.cpp", "prop.clockRate;",
     "[device] { int v = 0; cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, device); return v; }();",
     "CUDA 13 removed cudaDeviceProp::clockRate (the attribute query remains)"),
    ("src/caffe/common.cpp", "(prop.deviceOverlap ? ", "(prop.asyncEngineCount > 0 ? ",
     "CUDA 13 removed cudaDeviceProp::deviceOverlap (asyncEngineCount replaces it)"),
    ("src/caffe/common.cpp", "(prop.kernelExecTimeoutEnabled ? ",
     "([device] { int v = 0; cudaDeviceGetAttribute(&v, cudaDevAttrKernelExecTimeout, device); return v; }() ? ",
     "CUDA 13 removed cudaDeviceProp::kernelExecTimeoutEnabled (the attribute query remains)"),
    (*_sub("src/caffe/layers/proposal_layer.cu", "gpu/proposal-backward-gpu"),
     "the fork's proposal layer instantiates Backward_gpu without defining it (its CPU one is empty)"),
)

#: Files removed from the GPU build's source tree, with the reason.
GPU_REMOVED_FILES: tuple[tuple[str, str], ...] = (
    ("include/caffe/proto/caffe.pb.h",
     "a stale header from another protoc, which protobuf 3.21's headers reject; make generates its own"),
)


def apply_patches(src: Path, gpu: bool = False) -> None:
    """Apply the OpenCV-4 patches (and the GPU build's); each substitution must find its target."""
    subs = [(rel, old, new) for rel, old, new in SOURCE_PATCHES]
    if gpu:
        subs += [(rel, old, new) for rel, old, new, _ in GPU_SOURCE_PATCHES]
    for rel, old, new in subs:
        p = src / rel
        text = p.read_text()
        if old not in text:
            raise MedftError(f"Caffe patch target {old.strip().splitlines()[0]!r} not found in {rel}")
        p.write_text(text.replace(old, new))
    for rel, header in HEADER_PATCHES:
        p = src / rel
        if gpu:  # built without OpenCV: its headers only where Caffe's own code guards them
            header = f"#ifdef USE_OPENCV\n{header}#endif\n"
        p.write_text(header + p.read_text())
    if gpu:
        for rel, _ in GPU_REMOVED_FILES:
            (src / rel).unlink(missing_ok=True)
