"""The ``Makefile.config`` of each build (Caffe's classic Makefile reads it)."""

from __future__ import annotations

import sys

from medft.engines.build.toolkit import CUDA_ARCHS, CUDA_CXX_STD, CUDA_PTX

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
