#!/usr/bin/env bash
# Train tiger-jax on a multi-node GPU cluster with SLURM: writes an sbatch script and submits it.
#
#   launch/slurm_gpu.sh --nodes=2 --gpus_per_node=8 --model_dir=/shared/tiger_beauty \
#       --gin_file=gin_configs/tiger_beauty.gin --gin_file=gin_configs/mesh/host8.gin [--dry_run]
#
# One process per node drives all its GPUs; jax.distributed.initialize() reads the coordinator,
# process count and process id from SLURM's environment. MODEL_DIR must be on a shared file
# system; re-submitting the same command resumes from the latest checkpoint.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${here}/common.sh"

NODES=2 GPUS=8 PARTITION="" TIME="24:00:00" MODEL_DIR="" JOB="tiger-jax" VENV=""
GIN_FILES=()
usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  cat <<USAGE
Options:
  --nodes=N             nodes (default ${NODES})
  --gpus_per_node=N     GPUs per node (default ${GPUS})
  --partition=NAME      SLURM partition
  --time=HH:MM:SS       time limit (default ${TIME})
  --model_dir=DIR       checkpoints and logs, on a shared file system (required)
  --gin_file=FILE       gin file(s), repeatable (required)
  --venv=DIR            a virtualenv with tiger-jax[gpu] installed, activated on every node
  --job_name=NAME       (default ${JOB})
  --dry_run             print the sbatch script and the submit command, submit nothing
  --help                this text
USAGE
}
for arg in "$@"; do
  case "${arg}" in
    --nodes=*) NODES="${arg#*=}" ;;
    --gpus_per_node=*) GPUS="${arg#*=}" ;;
    --partition=*) PARTITION="${arg#*=}" ;;
    --time=*) TIME="${arg#*=}" ;;
    --model_dir=*) MODEL_DIR="${arg#*=}" ;;
    --gin_file=*) GIN_FILES+=("${arg#*=}") ;;
    --venv=*) VENV="${arg#*=}" ;;
    --job_name=*) JOB="${arg#*=}" ;;
    --dry_run) DRY_RUN=1 ;;
    --help|-h) usage; exit 0 ;;
    *) die "unknown argument ${arg} (see --help)" ;;
  esac
done
[[ -n "${MODEL_DIR}" ]] || die "--model_dir is required"
[[ ${#GIN_FILES[@]} -gt 0 ]] || die "at least one --gin_file is required"

gin_flags=""
for f in "${GIN_FILES[@]}"; do gin_flags+=" --gin_file=${f}"; done
script="$(mktemp "${TMPDIR:-/tmp}/tiger_jax.XXXXXX.sbatch")"
{
  echo "#!/usr/bin/env bash"
  echo "#SBATCH --job-name=${JOB}"
  echo "#SBATCH --nodes=${NODES}"
  echo "#SBATCH --ntasks-per-node=1"
  echo "#SBATCH --gpus-per-node=${GPUS}"
  echo "#SBATCH --time=${TIME}"
  echo "#SBATCH --output=${MODEL_DIR}/slurm-%j.log"
  [[ -z "${PARTITION}" ]] || echo "#SBATCH --partition=${PARTITION}"
  echo "set -euo pipefail"
  [[ -z "${VENV}" ]] || echo "source ${VENV}/bin/activate"
  echo "cd $(dirname "${here}")"
  echo "srun python -m tiger_jax.train --multi_host${gin_flags} --gin.MODEL_DIR=\"'${MODEL_DIR}'\""
} > "${script}"
if [[ "${DRY_RUN}" -eq 1 ]]; then
  echo "# ${script}:"
  cat "${script}"
fi
run mkdir -p "${MODEL_DIR}"
run sbatch "${script}"
