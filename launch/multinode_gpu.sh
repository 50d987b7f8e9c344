#!/usr/bin/env bash
# Train tiger-jax on several GPU machines without a scheduler: run this on every node.
#
#   # on node 0 (the coordinator) and node 1, with the same arguments but --process_id:
#   launch/multinode_gpu.sh --coordinator=10.0.0.1:1234 --num_processes=2 --process_id=0 \
#       --model_dir=/shared/tiger_beauty --gin_file=gin_configs/tiger_beauty.gin [--dry_run]
#
# Each process drives all GPUs of its node; jax.distributed.initialize() gets the coordinator
# address, process count and id from the flags below. Run it again to resume.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${here}/common.sh"

COORDINATOR="" NUM="" ID="" MODEL_DIR=""
GIN_FILES=()
usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  cat <<USAGE
Options:
  --coordinator=HOST:PORT  address of process 0 (required)
  --num_processes=N        number of nodes (required)
  --process_id=I           this node's index, 0..N-1 (required)
  --model_dir=DIR          checkpoints, on a shared file system (required)
  --gin_file=FILE          gin file(s), repeatable (required)
  --dry_run                print the command, run nothing
  --help                   this text
USAGE
}
for arg in "$@"; do
  case "${arg}" in
    --coordinator=*) COORDINATOR="${arg#*=}" ;;
    --num_processes=*) NUM="${arg#*=}" ;;
    --process_id=*) ID="${arg#*=}" ;;
    --model_dir=*) MODEL_DIR="${arg#*=}" ;;
    --gin_file=*) GIN_FILES+=("${arg#*=}") ;;
    --dry_run) DRY_RUN=1 ;;
    --help|-h) usage; exit 0 ;;
    *) die "unknown argument ${arg} (see --help)" ;;
  esac
done
[[ "${COORDINATOR}" == *:* ]] || die "--coordinator=HOST:PORT is required"
[[ "${NUM}" =~ ^[0-9]+$ ]] || die "--num_processes must be a number"
[[ "${ID}" =~ ^[0-9]+$ && "${ID}" -lt "${NUM}" ]] || die "--process_id must be in 0..$((NUM - 1))"
[[ -n "${MODEL_DIR}" ]] || die "--model_dir is required"
[[ ${#GIN_FILES[@]} -gt 0 ]] || die "at least one --gin_file is required"

cmd=(python -m tiger_jax.train --multi_host --coordinator_address="${COORDINATOR}"
     --num_processes="${NUM}" --process_id="${ID}")
for f in "${GIN_FILES[@]}"; do cmd+=(--gin_file="${f}"); done
cmd+=(--gin.MODEL_DIR="'${MODEL_DIR}'")
run cd "$(dirname "${here}")"
cd "$(dirname "${here}")"
run "${cmd[@]}"
