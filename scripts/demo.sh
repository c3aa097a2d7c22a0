#!/usr/bin/env bash
# The main job: build, then the walks into ${1:-results}/:
#   toy SAE → dictionary → triage → sweeps → cancellation → verified .q.orca.md,
#   CSV, summaries, plots (examples/import_from_sae.py), and the animals walk.
EXTRAS="plot,opt,sae"
. "$(dirname "$0")/_env.sh"
out="${1:-results}"
polygram run examples/import_from_sae.py --output-dir "$out/toy_sae"
polygram run examples/animals_interference.py --output-dir "$out/animals"
echo "== outputs in $out/"
ls -R "$out" | head -40
