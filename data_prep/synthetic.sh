#!/bin/sh
# Write the synthetic input of every application and build its full-size dataset, offline.
#   data_prep/synthetic.sh OUT [extra `medft prep` flags]
# Inputs go to OUT/synthetic/<app>, datasets to OUT/<app> (see data_prep/README.md).
set -eu
out=$1; shift
py=${PYTHON:-.venv/bin/python}
for app in polyp pe frames cimt; do
    [ -d "$out/synthetic/$app" ] || "$py" -m medft synth "$app" --out "$out/synthetic"
    "$py" -m medft.cli prep "$app" --input "$out/synthetic/$app" --out "$out" "$@"
done
