#!/usr/bin/env bash
# On a machine without a GPU: show that the GPU build (make caffe-gpu) compiled and links, that its
# CUDA and cuDNN symbols resolve, which GPU code it holds, and that its tools run (in CPU mode).
# Writes everything to stdout; gpu/build-check.txt is a committed run of it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
G="$(PYTHONPATH=python "$PY" -m medft.engines.build --gpu --print-path)" || { echo "no GPU build: make caffe-gpu"; exit 1; }
lib="$G/build/lib/libcaffe.so"
echo "# medft GPU build check, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(nproc) cores"
echo; echo "## BUILD.json"; cat "$G/BUILD.json"
echo; echo "## ldd caffe.bin (CUDA, cuBLAS, cuRAND, cuDNN resolve to the PyPI wheels)"
ldd "$G/build/tools/caffe.bin" | grep -E "caffe|cuda|cublas|curand|cudnn|not found"
echo; echo "## ldd -r libcaffe.so: undefined symbols (none expected)"
ldd -r "$lib" 2>&1 | grep -c "undefined symbol" | sed 's/^/undefined symbols: /'
echo; echo "## CUDA, cuBLAS, cuRAND and cuDNN symbols libcaffe.so imports (nm -D --undefined-only)"
nm -D --undefined-only "$lib" | grep -oE "(cudnn|cublas|curand|cuda)[A-Za-z0-9_]*" | sort -u | tr '\n' ' ' | fold -w 110
echo; echo; echo "## the cuDNN 8+ algorithm queries the patched layer calls"
nm -D --undefined-only "$lib" | grep -E "cudnnGetConvolution.*Algorithm" | awk '{print $2}'
echo; echo "## GPU code in libcaffe.so: PTX targets and kernels"
strings "$lib" | grep -oE "^\.target sm_[0-9]+" | sort | uniq -c
echo "(sm_80 and sm_90 machine code sit in the compressed fatbin beside this PTX; the wheels ship no cuobjdump)"
echo; echo "## medft doctor"
PYTHONPATH=python "$PY" -m medft doctor
echo; echo "## caffe time with the GPU build in CPU mode (AlexNet polyp scratch deploy net, batch 2, 1 iteration)"
echo "(with USE_CUDNN, Caffe's layer factory makes cuDNN layers even in CPU mode, and their setup needs a GPU;"
echo " so here every layer is asked for engine: CAFFE, which runs the CPU code of the same binary)"
tmp="$(mktemp -d)"
PYTHONPATH=python "$PY" - "$tmp/deploy.prototxt" <<'PY'
import sys
from medft.alexnet import NetOptions, deploy_net
from medft.util.prototxt import to_text
net = deploy_net("polyp", "scratch", options=NetOptions(deploy_batch=2))
for layer in net.layer:
    for field in ("convolution_param", "pooling_param", "lrn_param", "relu_param", "softmax_param"):
        if layer.type in ("Convolution", "Pooling", "LRN", "ReLU", "Softmax") and hasattr(layer, field):
            if field.split("_")[0] == {"Convolution": "convolution", "Pooling": "pooling", "LRN": "lrn",
                                       "ReLU": "relu", "Softmax": "softmax"}[layer.type]:
                getattr(layer, field).engine = 1  # CAFFE
open(sys.argv[1], "w").write(to_text(net))
PY
GLOG_logtostderr=1 "$G/build/tools/caffe.bin" time --model="$tmp/deploy.prototxt" --iterations=1 2>&1 \
  | grep -E "Use CPU|Cannot create|Average Forward pass|Average Forward-Backward|rror" | sed 's/^[IWEF][0-9]* [0-9:.]* *[0-9]* //'
rm -rf "$tmp"
echo; echo "## device_query without a GPU (Caffe's own check: expected to fail here)"
GLOG_logtostderr=1 "$G/build/tools/caffe.bin" device_query --gpu=0 2>&1 | grep -m1 "Check failed" | sed 's/^[IWEF][0-9]* [0-9:.]* *[0-9]* //'
