#!/bin/bash
# Runs flat recipes one per core (taskset), each through studies.reproduce, which resumes a
# run where it stopped: rerun the same command in the next session. CORES (default "0 1")
# names the cores; core k of n runs recipes k, k+n, k+2n, ... one after another, so
# CORES=1 runs a queue on core 1 while core 0 does other work.
#
#   bash studies/run_recipes.sh gin_configs/recipes/ladder/beauty_*.gin
#   CORES=1 bash studies/run_recipes.sh gin_configs/recipes/toys_cold_start.gin gin_configs/recipes/beauty_cold_start_unseen.gin
#
# RECORD_DIR=records/cold_start writes each recipe's record as <dir>/<recipe name>.json (no
# record without it); each log is appended to runs/logs/<recipe name>.log. The ladder's table:
# python -m studies.ladder --dataset=beauty --record=records/ladder/beauty.json
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then echo "error: give one or more recipe files" >&2; exit 2; fi
for recipe in "$@"; do
  [ -f "$recipe" ] || { echo "error: $recipe: no such recipe file" >&2; exit 2; }
done
mkdir -p runs/logs
run() {  # run CORE RECIPE
  local name; name=$(basename "$2" .gin)
  local record=()
  [ -n "${RECORD_DIR:-}" ] && record=(--record="$RECORD_DIR/$name.json")
  echo "$(date -u +%H:%M:%S) core $1: $2"
  taskset -c "$1" python -m studies.reproduce --gin_file="$2" "${record[@]}" >> "runs/logs/$name.log" 2>&1 \
    || echo "$(date -u +%H:%M:%S) $2 failed (rc $?): see runs/logs/$name.log"
}
read -ra cores <<< "${CORES:-0 1}"
recipes=("$@")
for ((k = 0; k < ${#cores[@]}; k++)); do
  (for ((i = k; i < ${#recipes[@]}; i += ${#cores[@]})); do run "${cores[k]}" "${recipes[i]}"; done) &
done
wait
