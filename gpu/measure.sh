#!/usr/bin/env bash
# One command on a GPU machine: unpack the GPU build (if a bundle is given), then the GPU tests and
# every GPU measurement of gpu/measure.py, written under $OUT (default gpu/out).
#
#   gpu/measure.sh [BUNDLE.tar.xz] [measure.py options]
#
# Without a bundle it uses the GPU build of this machine (make caffe-gpu). Python: $PYTHON or python3
# (numpy must be importable; the bundle brings lmdb, protobuf, tqdm and pytest).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu/out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [[ $# -gt 0 && "$1" == *.tar.* ]]; then
  bundle="$1"; shift
  dest="${MEDFT_BUNDLE_DIR:-.gpu}"
  mkdir -p "$dest" && tar -xf "$bundle" -C "$dest" || { echo "cannot unpack $bundle" >&2; exit 2; }
  # shellcheck disable=SC1091
  source "$dest/medft-gpu-bundle/env.sh"
fi
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import numpy" || { echo "gpu/measure.sh: $PY cannot import numpy" >&2; exit 2; }
# CUDA 13's libraries: Python's nvidia/*/lib (PyTorch's wheels), else wherever this machine keeps them
if ! "$PY" -c "import sys; from medft.engines.env import find_cuda_library as f
sys.exit(not all(f(n) for n in ('libcudart.so.13', 'libcublas.so.13', 'libcudnn.so.9', 'libcurand.so.10')))"; then
  MEDFT_CUDA_LIBS="$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o \( -name 'libcudart.so.13' \
    -o -name 'libcublas.so.13' -o -name 'libcudnn.so.9' -o -name 'libcurand.so.10' \) -print 2>/dev/null |
    xargs -r -n1 dirname | sort -u | paste -sd:)"
  export MEDFT_CUDA_LIBS
fi
"$PY" -c "from medft.engines.env import cuda_library_dirs as d; print('CUDA libraries:', *d())"
# every result in $OUT/all, then packed: results.tar.gz beside summary.md/json, facts.json and this log
"$PY" gpu/measure.py --out "$OUT/all" "$@" 2>&1 | tee "$OUT/measure.log"
rc="${PIPESTATUS[0]}"
tar -czf "$OUT/results.tar.gz" -C "$OUT" all
for f in summary.md summary.json facts.json; do [[ -f "$OUT/all/$f" ]] && cp "$OUT/all/$f" "$OUT/"; done
[[ "$OUT" == gpu/out ]] || rm -rf "$OUT/all"
exit "$rc"
