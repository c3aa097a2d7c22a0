#!/usr/bin/env bash
# The main job: build, then the walk (dictionary → sweeps → verified .q.orca.md,
# CSV, summaries, plots) into ${1:-results}/.
EXTRAS="plot,opt,sae"
. "$(dirname "$0")/_env.sh"
out="${1:-results}"
for walk in examples/animals_interference.py; do
  polygram run "$walk" --output-dir "$out"
done
echo "== outputs in $out/"
ls "$out"
