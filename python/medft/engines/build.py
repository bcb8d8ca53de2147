"""Build real BVLC Caffe from a pinned PyPI source distribution: a CPU build and a CUDA build.

Debian 12 ships no Caffe and PyPI has no pycaffe wheel for Python 3.11, so medft builds it:
``brocolli-caffe==9.0.2`` is BVLC Caffe 1.0.0-rc3 plus a few extra layers. Its ``setup.py``
wants conda, so we use Caffe's classic ``Makefile`` with our own ``Makefile.config`` and small
source patches, each with its reason beside it.

* **CPU** (``make caffe``): OpenBLAS, OpenCV, ``CPU_ONLY``.
* **GPU** (``make caffe-gpu``): the same sdist with CUDA 13 and cuDNN 9 for today's cards. The
  toolkit comes from NVIDIA's wheels on PyPI (:data:`CUDA_WHEELS`: nvcc, NVVM, runtime, cuBLAS,
  cuRAND, CCCL, cuDNN), installed with pip into the cache; Debian's gcc 12 is the host compiler.
  No download from NVIDIA's site. OpenCV is left out (none of medft's nets needs it), which keeps
  the runtime libraries small enough to carry to another machine.

Each build is installed into its own cache folder, keyed by the sdist, the patches and the config,
so both can be installed at once and a second run is instant::

    ~/.cache/medft/caffe/brocolli-caffe-9.0.2-<key>/         (CPU)
    ~/.cache/medft/caffe/brocolli-caffe-9.0.2-cuda-<key>/    (GPU)
        build/lib/libcaffe.so*   build/tools/caffe.bin ...
        python/caffe/            (import this: _caffe.so rpath is ../../build/lib)
        proto/caffe.proto        BUILD.json

This module uses only the standard library so it can run before anything is installed.
Run it as ``python3 -m medft.engines.build [--gpu]`` (``make caffe`` / ``make caffe-gpu`` do).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

from medft.errors import MedftError
from medft.util.atomic import replace_path

SDIST_NAME = "brocolli-caffe"
SDIST_VERSION = "9.0.2"
SDIST_SHA256 = "c6410cc60bdd6db685d441b66be7df05410f8850ac88d6b75d48ef9b2315c08a"
CAFFE_UPSTREAM = "BVLC Caffe 1.0.0-rc3"

#: Debian packages the build needs (measured on Debian 12).
DEBIAN_PACKAGES = (
    "build-essential libboost-system-dev libboost-thread-dev libboost-filesystem-dev "
    "libboost-python-dev libboost-regex-dev libprotobuf-dev protobuf-compiler "
    "libgoogle-glog-dev libgflags-dev libhdf5-dev liblmdb-dev libleveldb-dev libsnappy-dev "
    "libopencv-dev libopenblas-dev python3-dev python3-numpy python3-venv"
).split()

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

_COPY_LAYERS = r"""// medft: BVLC Caffe's fine-tuning step, which this sdist's tool lacks: copy the layers of each
// comma-separated --weights file, by name, into the training net and every test net.
void CopyLayers(caffe::Solver<float>* solver, const std::string& model_list) {
  std::vector<std::string> model_names;
  boost::split(model_names, model_list, boost::is_any_of(","));
  for (int i = 0; i < model_names.size(); ++i) {
    LOG(INFO) << "Finetuning from " << model_names[i];
    solver->net()->CopyTrainedLayersFrom(model_names[i]);
    for (int j = 0; j < solver->test_nets().size(); ++j) {
      solver->test_nets()[j]->CopyTrainedLayersFrom(model_names[i]);
    }
  }
}

// Train a model, or fine-tune one from --weights.
"""

#: ``caffe train --weights`` as in BVLC's tools/caffe.cpp: the pinned sdist's ``train()`` only
#: refuses --weights beside --snapshot and never copies them, so fine-tuning through the tool
#: (and the container images built from it) would start from the fillers.
FINETUNE_PATCHES: tuple[tuple[str, str, str], ...] = (
    ("tools/caffe.cpp", "// Train / Finetune a model.\n", _COPY_LAYERS),
    ("tools/caffe.cpp", "    solver->Restore(FLAGS_snapshot.c_str());\n  }\n",
     "    solver->Restore(FLAGS_snapshot.c_str());\n  } else if (FLAGS_weights.size()) {\n"
     "    CopyLayers(solver.get(), FLAGS_weights);\n  }\n"),
)

_RESUME_HELPERS = """namespace caffe {

// medft: exact resume. Caffe's random stream (dropout) is reseeded from (random_seed, iteration) at
// every snapshot and on restore, and each Data layer is moved to the record the uninterrupted run
// reads next, so training resumed from a snapshot draws and reads what it would have without the stop.
static void medft_reseed(const SolverParameter& param, int iter) {
  if (param.random_seed() >= 0) {
    Caffe::set_random_seed(static_cast<unsigned int>(param.random_seed())
        + 2654435761u * static_cast<unsigned int>(iter));
  }
}

template <typename Dtype>
static void medft_resume(const shared_ptr<Net<Dtype> >& net, const SolverParameter& param, int iter) {
  for (int i = 0; i < net->layers().size(); ++i) {
    DataLayer<Dtype>* data = dynamic_cast<DataLayer<Dtype>*>(net->layers()[i].get());
    if (data != NULL) {
      data->SkipTo(static_cast<long>(iter) * param.iter_size()
          * data->layer_param().data_param().batch_size());
    }
  }
  medft_reseed(param, iter);
}

template<typename Dtype>
void Solver<Dtype>::SetActionFunction("""

_SKIP_TO = """// medft: the number of records of a Data layer's source (an LMDB's entry count, else counted).
static long medft_source_size(const DataParameter& p) {
#ifdef USE_LMDB
  if (p.backend() == DataParameter_DB_LMDB) {
    MDB_env* env;
    MDB_stat stat;
    CHECK_EQ(mdb_env_create(&env), MDB_SUCCESS);
    CHECK_EQ(mdb_env_open(env, p.source().c_str(), MDB_RDONLY | MDB_NOLOCK, 0664), MDB_SUCCESS)
        << "cannot open " << p.source();
    CHECK_EQ(mdb_env_stat(env, &stat), MDB_SUCCESS);
    mdb_env_close(env);
    return static_cast<long>(stat.ms_entries);
  }
#endif
  shared_ptr<db::DB> db(db::GetDB(p.backend()));
  db->Open(p.source(), db::READ);
  shared_ptr<db::Cursor> cursor(db->NewCursor());
  long n = 0;
  for (cursor->SeekToFirst(); cursor->valid(); cursor->Next()) {
    ++n;
  }
  return n;
}

// medft: after a restore, go on from record (target mod N) of the source, where the run that was not
// stopped would read next: the batches prefetched since set-up count as read, the reader cycles.
template <typename Dtype>
void DataLayer<Dtype>::SkipTo(long target) {
  this->StopInternalThread();
  Batch<Dtype>* batch;
  while (this->prefetch_full_.try_pop(&batch)) {
    this->prefetch_free_.push(batch);
  }
  const long n = medft_source_size(this->layer_param_.data_param());
  CHECK_GT(n, 0) << this->layer_param_.data_param().source() << " holds no records";
  const long skip = ((target - consumed_) % n + n) % n;
  for (long i = 0; i < skip; ++i) {
    reader_.free().push(reader_.full().pop("Data layer: skipping to the resumed record"));
  }
  consumed_ += skip;
  LOG(INFO) << "Data layer " << this->layer_param_.name() << " resumes at record " << target % n
      << " of " << n;
  this->StartInternalThread();
}

INSTANTIATE_CLASS(DataLayer);"""

#: Exact resume (both builds): the random stream and the Data layers' cursor continue on restore
#: as if training had not stopped; without it a resumed run draws other dropout masks (and, when
#: an epoch is not a whole number of passes, reads other batches) than an uninterrupted one.
RESUME_PATCHES: tuple[tuple[str, str, str], ...] = (
    ("src/caffe/solver.cpp", '#include "caffe/solver.hpp"\n',
     '#include "caffe/layers/data_layer.hpp"\n#include "caffe/solver.hpp"\n'),
    ("src/caffe/solver.cpp", "namespace caffe {\n\ntemplate<typename Dtype>\nvoid Solver<Dtype>::SetActionFunction(",
     _RESUME_HELPERS),
    ("src/caffe/solver.cpp", "  SnapshotSolverState(model_filename);\n}\n",
     "  SnapshotSolverState(model_filename);\n  medft_reseed(param_, iter_);\n}\n"),
    ("src/caffe/solver.cpp", "    RestoreSolverStateFromBinaryProto(state_filename);\n  }\n}\n",
     "    RestoreSolverStateFromBinaryProto(state_filename);\n  }\n  medft_resume(net_, param_, iter_);\n}\n"),
    ("include/caffe/layers/data_layer.hpp", "  virtual inline int MaxTopBlobs() const { return 2; }\n\n protected:\n",
     "  virtual inline int MaxTopBlobs() const { return 2; }\n  // medft: go on from record (target mod N)"
     " of the source (exact resume)\n  void SkipTo(long target);\n\n protected:\n"),
    ("include/caffe/layers/data_layer.hpp", "  DataReader<Datum> reader_;\n};",
     "  DataReader<Datum> reader_;\n  long consumed_;  // medft: records read from reader_ so far\n};"),
    ("src/caffe/layers/data_layer.cpp", '#include "caffe/util/benchmark.hpp"\n',
     '#include "caffe/util/benchmark.hpp"\n#ifdef USE_LMDB\n#include "lmdb.h"\n#endif\n'),
    ("src/caffe/layers/data_layer.cpp", "    reader_(param) {\n}", "    reader_(param), consumed_(0) {\n}"),
    ("src/caffe/layers/data_layer.cpp", "    reader_.free().push(const_cast<Datum*>(&datum));\n",
     "    reader_.free().push(const_cast<Datum*>(&datum));\n    ++consumed_;\n"),
    ("src/caffe/layers/data_layer.cpp", "INSTANTIATE_CLASS(DataLayer);", _SKIP_TO),
)

#: every substitution of both builds
SOURCE_PATCHES: tuple[tuple[str, str, str], ...] = OPENCV_PATCHES + FINETUNE_PATCHES + RESUME_PATCHES

#: Headers prepended to a file (OpenCV 4 moved the C constants there).
HEADER_PATCHES: tuple[tuple[str, str], ...] = (
    (
        "src/caffe/util/im_transforms.cpp",
        "#include <opencv2/imgproc/types_c.h>\n#include <opencv2/imgcodecs/legacy/constants_c.h>\n",
    ),
)

#: the GPU build's packages: the same without OpenCV
GPU_DEBIAN_PACKAGES = tuple(p for p in DEBIAN_PACKAGES if p != "libopencv-dev")

TOOLS = ("caffe.bin", "convert_imageset.bin", "compute_image_mean.bin", "extract_features.bin",
         "upgrade_net_proto_binary.bin", "upgrade_net_proto_text.bin")

# --- the GPU build ------------------------------------------------------------------------------

#: NVIDIA's CUDA 13.0 wheels on PyPI (13.0 is what driver 580 supports without compatibility
#: packages; a newer toolkit's PTX would not load on it). ``nvidia-cuda-nvcc`` holds bin/nvcc,
#: cudafe++, nvlink, fatbinary and ptxas; ``nvidia-nvvm`` the cicc that nvcc calls.
CUDA_WHEELS: tuple[str, ...] = (
    "nvidia-cuda-nvcc==13.0.88", "nvidia-nvvm==13.0.88", "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96", "nvidia-cublas==13.0.2.14", "nvidia-curand==10.4.0.35",
    "nvidia-cuda-cccl==13.0.85", "nvidia-cudnn-cu13==9.13.0.50",
)

#: Real code for Ampere (sm_80) and Hopper (sm_90), PTX of sm_90 for newer cards (Ada's sm_89
#: runs the sm_80 code; Blackwell JIT-compiles the PTX). CUDA 13 supports Turing and newer only;
#: the paper's Maxwell/Pascal era is docker/gpu-2016's CUDA 8.
CUDA_ARCHS: tuple[str, ...] = ("80", "90")
CUDA_PTX = "90"

#: The C++ standard that CUDA 13's headers (CCCL) require of nvcc.
CUDA_CXX_STD = "c++17"

def _cudnn_query(kind: str, args: tuple[str, str, str, str], call_args: str, fallback: str, note: str) -> str:
    """One of the three algorithm pickers (forward, backward filter, backward data) as C++."""
    enum = {"Fwd": "FWD", "BwdFilter": "BWD_FILTER", "BwdData": "BWD_DATA"}[kind]
    query = {"Fwd": "Forward", "BwdFilter": "BackwardFilter", "BwdData": "BackwardData"}[kind]
    name = {"Fwd": "fwd", "BwdFilter": "bwd_filter", "BwdData": "bwd_data"}[kind]
    count = f"CUDNN_CONVOLUTION_{enum}_ALGO_COUNT"
    call = f"cudnnGetConvolution{query}Algorithm_v7(h, {call_args}, {count}, &n, perf)"
    if kind != "Fwd":
        call = f"cudnnGetConvolution{query}Algorithm_v7(h, {call_args},\n      {count}, &n, perf)"
    a, b, c, d = args
    return (f"static cudnnConvolution{kind}Algo_t medft_{name}_algo(cudnnHandle_t h, {a},\n"
            f"    {b}, {c}, {d}, size_t limit) {{\n"
            f"  cudnnConvolution{kind}AlgoPerf_t perf[{count}];\n"
            f"  int n = 0;\n"
            f"  CUDNN_CHECK({call});\n"
            f"  int k = medft_cudnn_pick(perf, n, limit);\n"
            f"  return k >= 0 ? perf[k].algo : CUDNN_CONVOLUTION_{enum}_ALGO_{fallback};  // {note}\n"
            f"}}\n")


_CUDNN_QUERIES = (
    _cudnn_query("Fwd", ("cudnnTensorDescriptor_t x", "cudnnFilterDescriptor_t w", "cudnnConvolutionDescriptor_t c",
                         "cudnnTensorDescriptor_t y"), "x, w, c, y", "IMPLICIT_GEMM", "no workspace, deterministic")
    + _cudnn_query("BwdFilter", ("cudnnTensorDescriptor_t x", "cudnnTensorDescriptor_t dy",
                                 "cudnnConvolutionDescriptor_t c", "cudnnFilterDescriptor_t dw"),
                   "x, dy, c, dw", "1", "deterministic")
    + _cudnn_query("BwdData", ("cudnnFilterDescriptor_t w", "cudnnTensorDescriptor_t dy",
                               "cudnnConvolutionDescriptor_t c", "cudnnTensorDescriptor_t dx"),
                   "w, dy, c, dx", "1", "deterministic")
)


_CUDNN_HELPERS = r"""
// medft: cuDNN 8 removed cudnnGetConvolution{Forward,BackwardFilter,BackwardData}Algorithm and the
// *_SPECIFY_WORKSPACE_LIMIT preferences. The _v7 queries rank every algorithm; take the first that
// succeeds within Caffe's workspace limit (and, with MEDFT_CUDNN_DETERMINISTIC=1, is deterministic).
static bool medft_flag(const char* name) {  // an environment switch: set to 1
  const char* e = getenv(name);
  return e != NULL && e[0] == '1';
}
// medft: Caffe's cuDNN workspace limit, 8 MB per convolution, unless MEDFT_CUDNN_WORKSPACE_MB names another
// (a larger one admits faster algorithms on today's cards).
static size_t medft_cudnn_workspace_limit() {
  const char* e = getenv("MEDFT_CUDNN_WORKSPACE_MB");
  long mb = e != NULL ? atol(e) : 0;
  return (mb > 0 ? static_cast<size_t>(mb) : 8) * 1024 * 1024;
}
// medft: since Ampere, cuDNN's default math lets float convolutions run in TF32 (10-bit mantissa);
// Caffe computed in full FP32, so FMA math unless MEDFT_CUDNN_TF32=1 asks for the faster TF32.
static cudnnMathType_t medft_cudnn_math() {
  return medft_flag("MEDFT_CUDNN_TF32") ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}
// MEDFT_CUDNN_GEMM_ONLY=1 leaves out the FFT and Winograd algorithms (the ones whose FP32 results
// differ most from Caffe's im2col + GEMM).
static bool medft_is_gemm(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
      a == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || a == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}
static bool medft_is_gemm(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
      a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}
static bool medft_is_gemm(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
template <typename Perf>
static int medft_cudnn_pick(const Perf* perf, int n, size_t limit) {
  for (int k = 0; k < n; ++k) {
    if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > limit) continue;
    if (medft_flag("MEDFT_CUDNN_DETERMINISTIC") && perf[k].determinism != CUDNN_DETERMINISTIC) continue;
    if (medft_flag("MEDFT_CUDNN_GEMM_ONLY") && !medft_is_gemm(perf[k].algo)) continue;
    return k;
  }
  return -1;
}
""" + _CUDNN_QUERIES + r"""
template <typename Dtype>
void CuDNNConvolutionLayer<Dtype>::LayerSetUp("""

def _cpu_fallback(layer: str) -> str:
    """GPU methods of ``layer`` that run its CPU code (for layers that ship no .cu file)."""
    return f"""#ifndef CPU_ONLY
template <typename Dtype>
void {layer}<Dtype>::Forward_gpu(const vector<Blob<Dtype>*>& bottom, const vector<Blob<Dtype>*>& top) {{
  Forward_cpu(bottom, top);
}}
template <typename Dtype>
void {layer}<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top, const vector<bool>& propagate_down,
    const vector<Blob<Dtype>*>& bottom) {{
  Backward_cpu(top, propagate_down, bottom);
}}
#endif
INSTANTIATE_CLASS({layer});"""


#: the sdist's extra layers that declare GPU methods but ship no .cu file: (source file, class)
CPU_ONLY_EXTRA_LAYERS: tuple[tuple[str, str], ...] = (
    ("hardsigmoid_layer.cpp", "HardSigmoidLayer"), ("hardswish_layer.cpp", "HardSwishLayer"),
    ("maxunpool_layer.cpp", "MaxUnPoolLayer"), ("pixelshuffle_layer.cpp", "PixelShuffleLayer"),
    ("relu6_layer.cpp", "ReLU6Layer"), ("upsample_layer.cpp", "UpsampleLayer"),
)

#: (file, old, new, reason): substitutions of the GPU build only; each must find its target.
GPU_SOURCE_PATCHES: tuple[tuple[str, str, str, str], ...] = tuple(
    (f"src/caffe/layers/{file}", f"INSTANTIATE_CLASS({cls});", _cpu_fallback(cls),
     f"the sdist's extra {cls} has no GPU code (no .cu): its GPU methods run the CPU ones")
    for file, cls in CPU_ONLY_EXTRA_LAYERS) + (
    ("src/caffe/layers/cudnn_conv_layer.cpp",
     "\ntemplate <typename Dtype>\nvoid CuDNNConvolutionLayer<Dtype>::LayerSetUp(", _CUDNN_HELPERS,
     "cuDNN 8 removed the algorithm queries: helpers over the _v7 queries"),
    ("src/caffe/layers/cudnn_conv_layer.cpp",
     """    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm(handle_[0],
      bottom_descs_[i],
      filter_desc_,
      conv_descs_[i],
      top_descs_[i],
      CUDNN_CONVOLUTION_FWD_SPECIFY_WORKSPACE_LIMIT,
      workspace_limit_bytes,
      &fwd_algo_[i]));""",
     """    fwd_algo_[i] = medft_fwd_algo(handle_[0], bottom_descs_[i], filter_desc_, conv_descs_[i],
        top_descs_[i], workspace_limit_bytes);""",
     "cuDNN 8 removed cudnnGetConvolutionForwardAlgorithm"),
    ("src/caffe/layers/cudnn_conv_layer.cpp",
     """    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm(handle_[0],
          bottom_descs_[i], top_descs_[i], conv_descs_[i], filter_desc_,
          CUDNN_CONVOLUTION_BWD_FILTER_SPECIFY_WORKSPACE_LIMIT,
          workspace_limit_bytes, &bwd_filter_algo_[i]) );""",
     """    bwd_filter_algo_[i] = medft_bwd_filter_algo(handle_[0], bottom_descs_[i], top_descs_[i],
        conv_descs_[i], filter_desc_, workspace_limit_bytes);""",
     "cuDNN 8 removed cudnnGetConvolutionBackwardFilterAlgorithm"),
    ("src/caffe/layers/cudnn_conv_layer.cpp",
     """    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm(handle_[0],
          filter_desc_, top_descs_[i], conv_descs_[i], bottom_descs_[i],
          CUDNN_CONVOLUTION_BWD_DATA_SPECIFY_WORKSPACE_LIMIT,
        workspace_limit_bytes, &bwd_data_algo_[i]));""",
     """    bwd_data_algo_[i] = medft_bwd_data_algo(handle_[0], filter_desc_, top_descs_[i],
        conv_descs_[i], bottom_descs_[i], workspace_limit_bytes);""",
     "cuDNN 8 removed cudnnGetConvolutionBackwardDataAlgorithm"),
    ("src/caffe/layers/cudnn_conv_layer.cpp",
     """    cudnn::setConvolutionDesc<Dtype>(&conv_descs_[i], bottom_descs_[i],
        filter_desc_, pad_h, pad_w,
        stride_h, stride_w);
""",
     """    cudnn::setConvolutionDesc<Dtype>(&conv_descs_[i], bottom_descs_[i],
        filter_desc_, pad_h, pad_w,
        stride_h, stride_w);
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv_descs_[i], medft_cudnn_math()));
""",
     "cuDNN's default math runs float convolutions in TF32 on Ampere and newer: FP32 (FMA) as in Caffe, "
     "TF32 only with MEDFT_CUDNN_TF32=1"),
    ("src/caffe/layers/cudnn_conv_layer.cpp", "  size_t workspace_limit_bytes = 8*1024*1024;",
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
    ("src/caffe/layers/proposal_layer.cu", "\nINSTANTIATE_LAYER_GPU_FUNCS(ProposalLayer);",
     """
template <typename Dtype>
void ProposalLayer<Dtype>::Backward_gpu(const vector<Blob<Dtype>*>& top,
    const vector<bool>& propagate_down, const vector<Blob<Dtype>*>& bottom) {}

INSTANTIATE_LAYER_GPU_FUNCS(ProposalLayer);""",
     "the fork's proposal layer instantiates Backward_gpu without defining it (its CPU one is empty)"),
)

#: Files removed from the GPU build's source tree, with the reason.
GPU_REMOVED_FILES: tuple[tuple[str, str], ...] = (
    ("include/caffe/proto/caffe.pb.h",
     "a stale header from another protoc, which protobuf 3.21's headers reject; make generates its own"),
)


_TAIL = "BUILD_DIR := build\nDISTRIBUTE_DIR := distribute\nTEST_GPUID := 0\nQ ?= @\n"


def _blas_python(numpy_include: str) -> str:
    """The config lines both builds share: OpenBLAS and the Python that pycaffe links."""
    py = f"python{sys.version_info.major}.{sys.version_info.minor}"
    boost_py = f"boost_python{sys.version_info.major}{sys.version_info.minor}"
    return f"""BLAS := open
BLAS_INCLUDE := /usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-pthread
PYTHON_INCLUDE := /usr/include/{py} {numpy_include}
PYTHON_LIB := /usr/lib/x86_64-linux-gnu
PYTHON_LIBRARIES := {boost_py} {py}
"""


def makefile_config(numpy_include: str) -> str:
    """The ``Makefile.config`` of the CPU build on Debian 12 with Python 3.11."""
    return f"""# Written by medft.caffe_build: CPU-only Caffe for Debian 12.
CPU_ONLY := 1
USE_OPENCV := 1
USE_LEVELDB := 1
USE_LMDB := 1
OPENCV_VERSION := 3
{_blas_python(numpy_include)}\
INCLUDE_DIRS := $(PYTHON_INCLUDE) /usr/local/include /usr/include/hdf5/serial /usr/include/opencv4
LIBRARY_DIRS := $(PYTHON_LIB) /usr/local/lib /usr/lib /usr/lib/x86_64-linux-gnu/hdf5/serial
{_TAIL}"""


def cuda_arch_flags(archs: tuple[str, ...] = CUDA_ARCHS, ptx: str = CUDA_PTX) -> str:
    """nvcc ``-gencode`` flags: real code for each of ``archs``, PTX of ``ptx``."""
    flags = [f"-gencode arch=compute_{a},code=sm_{a}" for a in archs]
    return " ".join([*flags, f"-gencode arch=compute_{ptx},code=compute_{ptx}"])


def gpu_makefile_config(numpy_include: str, cuda_dir: str, cudnn_dir: str,
                        archs: tuple[str, ...] = CUDA_ARCHS) -> str:
    """The ``Makefile.config`` of the GPU build: CUDA and cuDNN from the wheels, no OpenCV.

    The rpaths point at the wheels' libraries in the cache; elsewhere (a GPU machine with its own
    CUDA 13 libraries) ``LD_LIBRARY_PATH`` supplies them.
    """
    return f"""# Written by medft.engines.build: Caffe with CUDA 13 and cuDNN 9 (NVIDIA's PyPI wheels).
USE_CUDNN := 1
CUDA_DIR := {cuda_dir}
CUDA_ARCH := {cuda_arch_flags(archs)}
NVCCFLAGS += -std={CUDA_CXX_STD}
USE_OPENCV := 0
USE_LEVELDB := 1
USE_LMDB := 1
{_blas_python(numpy_include)}\
# CUDA 13 keeps thrust/cub under include/cccl (nvcc finds them; g++ compiling Caffe's .cpp needs the path)
INCLUDE_DIRS := $(PYTHON_INCLUDE) {cudnn_dir}/include {cuda_dir}/include/cccl /usr/local/include \
    /usr/include/hdf5/serial
LIBRARY_DIRS := $(PYTHON_LIB) {cudnn_dir}/lib /usr/local/lib /usr/lib /usr/lib/x86_64-linux-gnu/hdf5/serial
LINKFLAGS += -Wl,-rpath,{cuda_dir}/lib -Wl,-rpath,{cudnn_dir}/lib
{_TAIL}"""


def cache_root() -> Path:
    """``$MEDFT_CACHE`` or ``~/.cache/medft``."""
    env = os.environ.get("MEDFT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medft"


def build_key(gpu: bool = False) -> str:
    """Hash of everything that changes the build: sdist, patches, config template (and toolkit)."""
    h = hashlib.sha256()
    h.update(SDIST_SHA256.encode())
    h.update(repr((SOURCE_PATCHES, HEADER_PATCHES)).encode())
    h.update(makefile_config("NUMPY").encode())
    if gpu:
        h.update(repr((CUDA_WHEELS, GPU_SOURCE_PATCHES, GPU_REMOVED_FILES)).encode())
        if os.environ.get("MEDFT_CUDA_HOME"):  # an installed toolkit instead of the wheels
            h.update(f"toolkit:{os.environ['MEDFT_CUDA_HOME']}:{os.environ.get('MEDFT_CUDNN_HOME', '/usr')}".encode())
        h.update(gpu_makefile_config("NUMPY", "CUDA", "CUDNN").encode())
    return h.hexdigest()[:12]


def install_dir(gpu: bool = False) -> Path:
    """Where this build of Caffe lives (may not exist yet)."""
    flavour = "cuda-" if gpu else ""
    return cache_root() / "caffe" / f"{SDIST_NAME}-{SDIST_VERSION}-{flavour}{build_key(gpu)}"


def is_installed(path: Path | None = None) -> bool:
    """True if ``path`` (default: the CPU build) holds a finished install with pycaffe."""
    path = path or install_dir()
    return (path / "BUILD.json").is_file() and (path / "python" / "caffe" / "_caffe.so").is_file()


def missing_debian_packages(packages: tuple[str, ...] | list[str] = DEBIAN_PACKAGES) -> list[str]:
    """Packages of ``packages`` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return []  # not Debian: let the compiler say what is missing
    missing = []
    for pkg in packages:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            missing.append(pkg)
    return missing


def install_debian_packages(packages: list[str], purpose: str = "Caffe") -> None:
    """apt-get install ``packages`` (root only); raise with the exact command otherwise."""
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        raise MedftError(f"{purpose} needs these Debian packages, which are not installed:\n  "
                         + " ".join(packages) + "\nInstall them with:\n  sudo " + " ".join(cmd))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"medft: installing {len(packages)} Debian packages: {' '.join(packages)}", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_sdist(dest: Path, python: str = sys.executable) -> Path:
    """Download the pinned sdist with pip into ``dest`` and verify its sha256."""
    cached = cache_root() / "downloads" / f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
    if cached.is_file() and sha256_of(cached) == SDIST_SHA256:
        return cached
    cmd = [python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "-d", str(dest), f"{SDIST_NAME}=={SDIST_VERSION}"]
    print("medft: downloading", f"{SDIST_NAME}=={SDIST_VERSION}", "with pip", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"))
    if not found:
        raise MedftError(
            f"could not download {SDIST_NAME}=={SDIST_VERSION} from PyPI.\n{r.stderr[-2000:]}\n"
            f"Offline? Put the file at {cached} (sha256 {SDIST_SHA256}).")
    got = sha256_of(found[0])
    if got != SDIST_SHA256:
        raise MedftError(f"sha256 mismatch for {found[0]}: got {got}, expected {SDIST_SHA256}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    shutil.copyfile(found[0], tmp)
    os.replace(tmp, cached)
    return cached


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


def numpy_include(python: str = "/usr/bin/python3") -> str:
    r = subprocess.run([python, "-c", "import numpy; print(numpy.get_include())"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MedftError(f"{python} cannot import numpy (install python3-numpy): {r.stderr}")
    return r.stdout.strip()


# --- the CUDA toolkit from PyPI -----------------------------------------------------------------

def toolkit_dir() -> Path:
    """Where the CUDA wheels of :data:`CUDA_WHEELS` are installed (may not exist yet)."""
    key = hashlib.sha256(repr(CUDA_WHEELS).encode()).hexdigest()[:12]
    return cache_root() / "cuda" / f"cuda-13.0-{key}"


def toolkit_paths(root: Path | None = None) -> dict[str, Path]:
    """``cuda`` (bin/nvcc, include, lib) and ``cudnn`` (include, lib) folders of the toolkit."""
    root = root or toolkit_dir()
    return {"cuda": root / "nvidia" / "cu13", "cudnn": root / "nvidia" / "cudnn"}


def system_toolkit() -> dict[str, Path] | None:
    """An installed CUDA toolkit named by ``$MEDFT_CUDA_HOME`` (and cuDNN by ``$MEDFT_CUDNN_HOME``,
    default ``/usr``), as in NVIDIA's CUDA images; None: use the PyPI wheels."""
    home = os.environ.get("MEDFT_CUDA_HOME")
    if not home:
        return None
    paths = {"cuda": Path(home), "cudnn": Path(os.environ.get("MEDFT_CUDNN_HOME", "/usr"))}
    if not (paths["cuda"] / "bin" / "nvcc").is_file():
        raise MedftError(f"MEDFT_CUDA_HOME={home}: no bin/nvcc there")
    if not (paths["cudnn"] / "include" / "cudnn_version.h").exists():
        raise MedftError(f"MEDFT_CUDNN_HOME={paths['cudnn']}: no include/cudnn_version.h there")
    return paths


def install_toolkit(python: str = sys.executable) -> dict[str, Path]:
    """pip-install :data:`CUDA_WHEELS` into :func:`toolkit_dir` (once) and return its folders.

    The wheels ship only versioned libraries (``libcudart.so.13``); the linker's ``-lcudart`` needs
    the unversioned names, so links to them are added beside.
    """
    target = toolkit_dir()
    paths = toolkit_paths(target)
    if (target / "TOOLKIT.json").is_file():
        return paths
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".medft-cuda-", dir=target.parent))
    try:
        print(f"medft: installing the CUDA 13.0 toolkit from PyPI ({len(CUDA_WHEELS)} wheels, ~1 GB) "
              f"into {target}", flush=True)
        cmd = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
               "--target", str(stage), *CUDA_WHEELS]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise MedftError(f"could not install the CUDA wheels with pip ({' '.join(CUDA_WHEELS)}):\n"
                             f"{r.stderr[-2000:]}")
        staged = toolkit_paths(stage)
        for lib in [*(staged["cuda"] / "lib").glob("lib*.so.*"), *(staged["cudnn"] / "lib").glob("lib*.so.*")]:
            link = lib.with_name(lib.name.split(".so.")[0] + ".so")
            if not link.exists():
                link.symlink_to(lib.name)
        nvcc = staged["cuda"] / "bin" / "nvcc"
        if not nvcc.is_file():
            raise MedftError(f"the CUDA wheels hold no {nvcc.relative_to(stage)}: is nvidia-cuda-nvcc 13 installed?")
        version = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True).stdout.strip()
        (stage / "TOOLKIT.json").write_text(json.dumps(
            {"wheels": list(CUDA_WHEELS), "nvcc": version.splitlines()[-1] if version else None}, indent=2) + "\n")
        replace_path(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return toolkit_paths(target)


def cudnn_version(cudnn_dir: Path) -> str:
    """``major.minor.patch`` from ``cudnn_version.h``."""
    text = (Path(cudnn_dir) / "include" / "cudnn_version.h").read_text()
    parts = {}
    for key in ("CUDNN_MAJOR", "CUDNN_MINOR", "CUDNN_PATCHLEVEL"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"#define {key} "))
        parts[key] = line.split()[2]
    return f"{parts['CUDNN_MAJOR']}.{parts['CUDNN_MINOR']}.{parts['CUDNN_PATCHLEVEL']}"


# --- building -----------------------------------------------------------------------------------

def build(jobs: int | None = None, force: bool = False, install_deps: bool = False, gpu: bool = False) -> Path:
    """Build and install Caffe (the GPU build with ``gpu``) into :func:`install_dir`; return that path."""
    target = install_dir(gpu)
    if is_installed(target) and not force:
        return target
    if sysconfig.get_config_var("LDVERSION") != "3.11":
        print(f"medft: warning: building with Python {sys.version.split()[0]}; "
              "pycaffe links Debian's libpython3.11", file=sys.stderr)
    missing = missing_debian_packages(GPU_DEBIAN_PACKAGES if gpu else DEBIAN_PACKAGES)
    if missing:
        if install_deps:
            install_debian_packages(missing)
        else:
            raise MedftError("Caffe needs these Debian packages, which are not installed:\n  "
                             + " ".join(missing) + "\nRun `make setup` (as root) or: apt-get install "
                             + " ".join(missing))
    toolkit = (system_toolkit() or install_toolkit()) if gpu else None
    jobs = jobs or os.cpu_count() or 1
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build folder per mode, kept after success: a failed or interrupted build, or a build
    # with changed patches, recompiles only the sources whose patched text changed.
    work = target.parent / f".build-{'gpu' if gpu else 'cpu'}"
    work.mkdir(parents=True, exist_ok=True)
    sdist = fetch_sdist(work)
    fresh = work / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(fresh, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(fresh)
    staged = fresh / f"{SDIST_NAME}-{SDIST_VERSION}"
    apply_patches(staged, gpu=gpu)
    config = (gpu_makefile_config(numpy_include(), str(toolkit["cuda"]), str(toolkit["cudnn"]))
              if gpu else makefile_config(numpy_include()))
    (staged / "Makefile.config").write_text(config)
    # The sdist ships a stale caffe_pb2.py from another protoc; let make regenerate it.
    (staged / "python/caffe/proto/caffe_pb2.py").unlink(missing_ok=True)
    shutil.rmtree(staged / "python/caffe/__pycache__", ignore_errors=True)
    src = work / "src"
    changed = sync_tree(staged, src)
    shutil.rmtree(fresh, ignore_errors=True)
    if changed:
        print(f"medft: {changed} source file(s) new or changed since the last build attempt", flush=True)
    what = "with CUDA 13 / cuDNN 9 (about 35 min on 2 cores)" if gpu else "(about 7 min on 2 cores)"
    print(f"medft: building {CAFFE_UPSTREAM} {what} with make -j{jobs}", flush=True)
    t0 = time.time()
    log = work / "build.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", f"-j{jobs}", "all", "pycaffe"], cwd=src,
                                stdout=out, stderr=subprocess.STDOUT)
        n = 0
        while proc.poll() is None:
            time.sleep(5)
            n += 1
            if n % 6 == 0:
                objs = len(list((src / ".temp_release").rglob("*.o")))
                print(f"medft: caffe build {time.time() - t0:4.0f}s, {objs} objects compiled", flush=True)
    if proc.returncode != 0:
        kept = target.parent / f"build-failed-{target.name}.log"
        shutil.copyfile(log, kept)
        tail = log.read_text()[-4000:]
        raise MedftError(f"Caffe build failed (log {kept}):\n{tail}")
    extra = {}
    if gpu:
        extra = {"mode": "GPU", "cuda_wheels": None if system_toolkit() else list(CUDA_WHEELS),
                 "cuda_toolkit": str(toolkit["cuda"]),
                 "cudnn": cudnn_version(toolkit["cudnn"]), "cuda_archs": [f"sm_{a}" for a in CUDA_ARCHS],
                 "cuda_ptx": f"compute_{CUDA_PTX}", "nvcc_std": CUDA_CXX_STD, "opencv": False,
                 "patches": [reason for *_, reason in GPU_SOURCE_PATCHES]
                 + [f"removed {rel}: {why}" for rel, why in GPU_REMOVED_FILES]}
    install_from(src, target, build_seconds=time.time() - t0, extra=extra, gpu=gpu)
    print(f"medft: Caffe installed in {target} ({time.time() - t0:.0f}s)", flush=True)
    return target


def sync_tree(staged: Path, src: Path) -> int:
    """Make ``src`` hold exactly ``staged``'s files, touching only the ones whose bytes differ
    (so make's timestamps keep every object that is still valid); return how many changed."""
    changed = 0
    src.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for f in staged.rglob("*"):
        rel = f.relative_to(staged)
        wanted.add(rel)
        dst = src / rel
        if f.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        elif not dst.is_file() or dst.read_bytes() != f.read_bytes():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
            os.utime(dst)  # newer than any object built from the old text
            changed += 1
    for f in sorted(src.rglob("*"), reverse=True):  # sources the patches removed; build outputs stay
        rel = f.relative_to(src)
        if rel.parts[0] in (".temp_release", ".build_release", "build", "distribute") or rel in wanted:
            continue
        if f.is_file() and rel.suffix in (".h", ".hpp", ".cpp", ".cu", ".py"):
            f.unlink()
    return changed


def install_from(src: Path, target: Path, build_seconds: float = 0.0, extra: dict | None = None,
                 gpu: bool = False) -> None:
    """Copy the kept parts of a finished build in ``src`` into ``target``, atomically."""
    stage = Path(tempfile.mkdtemp(prefix="medft-caffe-stage-", dir=target.parent))
    try:
        (stage / "build").mkdir()
        shutil.copytree(src / ".temp_release/lib", stage / "build/lib", symlinks=True,
                        ignore=shutil.ignore_patterns("*.a"))
        (stage / "build/tools").mkdir()
        for tool in TOOLS:
            shutil.copy2(src / ".temp_release/tools" / tool, stage / "build/tools" / tool)
        shutil.copytree(src / "python/caffe", stage / "python/caffe", symlinks=False,
                        ignore=shutil.ignore_patterns("test", "__pycache__", "*.cpp"))
        (stage / "proto").mkdir()
        shutil.copy2(src / "src/caffe/proto/caffe.proto", stage / "proto/caffe.proto")
        (stage / "BUILD.json").write_text(json.dumps({
            "sdist": f"{SDIST_NAME}=={SDIST_VERSION}", "sha256": SDIST_SHA256,
            "upstream": CAFFE_UPSTREAM, "key": build_key(gpu), "mode": "CPU_ONLY",
            "blas": "OpenBLAS (openblas-pthread)", "python": sys.version.split()[0],
            "build_seconds": round(build_seconds, 1),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }, indent=2) + "\n")
        replace_path(stage, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m medft.engines.build", description=__doc__.split("\n")[0])
    ap.add_argument("--gpu", action="store_true",
                    help="the CUDA 13 / cuDNN 9 build (toolkit from NVIDIA's PyPI wheels) instead of the CPU one")
    ap.add_argument("--jobs", "-j", type=int, default=None, help="make -j (default: all cores)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache has this build")
    ap.add_argument("--install-deps", action="store_true",
                    help="apt-get install missing Debian packages (root only)")
    ap.add_argument("--deps-only", action="store_true",
                    help="only check/install the Debian packages (with --install-deps), then exit")
    ap.add_argument("--print-path", action="store_true",
                    help="print the install folder and exit 0 if built, 1 if not")
    args = ap.parse_args(argv)
    if args.print_path:
        print(install_dir(args.gpu))
        return 0 if is_installed(install_dir(args.gpu)) else 1
    try:
        if args.deps_only:
            missing = missing_debian_packages(GPU_DEBIAN_PACKAGES if args.gpu else DEBIAN_PACKAGES)
            if missing and args.install_deps:
                install_debian_packages(missing)
            elif missing:
                print("medft: missing Debian packages: " + " ".join(missing), file=sys.stderr)
                return 1
            return 0
        path = build(jobs=args.jobs, force=args.force, install_deps=args.install_deps, gpu=args.gpu)
    except MedftError as e:
        print(f"medft: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
