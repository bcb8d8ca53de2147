#!/bin/sh
# Build every reduced set of one application (the Make targets call this).
#   data_prep/prep_app.sh APP INPUT OUT [extra `medft prep` flags, e.g. --max-patches 2000 --force]
# APP: polyp | pe | frames | cimt.  The fractions come from medft.apps (App.fractions, one place).
set -eu
app=$1; input=$2; out=$3; shift 3
py=${PYTHON:-.venv/bin/python}
fractions=$("$py" -c "from medft.apps import get_app; print(' '.join(get_app('$app').fractions))")
for f in $fractions; do
    "$py" -m medft prep "$app" --input "$input" --out "$out" --fraction "$f" "$@"
done
