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
"$PY" gpu/measure.py --out "$OUT" "$@" 2>&1 | tee "$OUT/measure.log"
exit "${PIPESTATUS[0]}"
