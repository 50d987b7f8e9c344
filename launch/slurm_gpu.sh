#!/usr/bin/env bash
# Train tiger-jax on a multi-node GPU cluster with SLURM: writes an sbatch script and submits it.
#
#   launch/slurm_gpu.sh --nodes=2 --gpus_per_node=8 --model_dir=/shared/tiger_beauty \
#       --gin_file=gin_configs/tiger_beauty.gin --gin_file=gin_configs/mesh/host8.gin [--dry_run]
#
# One process per node drives all its GPUs; jax.distributed.initialize() reads the coordinator,
# process count and process id from SLURM's environment. MODEL_DIR must be on a shared file
# system. The job asks SLURM for a SIGTERM --grace seconds before its time limit (and SLURM
# sends one on preemption); the trainer saves its step and exits with code 75, and the job
# requeues itself (up to --max_requeues times), resuming from that checkpoint.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${here}/common.sh"

NODES=2 GPUS=8 PARTITION="" TIME="24:00:00" MODEL_DIR="" JOB="tiger-jax" VENV="" GRACE=120
MAX_REQUEUES=10
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
  --grace=SECONDS       SIGTERM this long before the time limit (default ${GRACE})
  --max_requeues=N      requeue after a preemption at most N times (default ${MAX_REQUEUES})
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
    --grace=*) GRACE="${arg#*=}" ;;
    --max_requeues=*) MAX_REQUEUES="${arg#*=}" ;;
    --dry_run) DRY_RUN=1 ;;
    --help|-h) usage; exit 0 ;;
    *) die "unknown argument ${arg} (see --help)" ;;
  esac
done
[[ -n "${MODEL_DIR}" ]] || die "--model_dir is required"
[[ ${#GIN_FILES[@]} -gt 0 ]] || die "at least one --gin_file is required"
[[ "${GRACE}" =~ ^[0-9]+$ ]] || die "--grace=${GRACE}: a whole number of seconds"
[[ "${MAX_REQUEUES}" =~ ^[0-9]+$ ]] || die "--max_requeues=${MAX_REQUEUES}: a whole number"

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
  echo "#SBATCH --open-mode=append"
  echo "#SBATCH --signal=B:TERM@${GRACE}"
  echo "#SBATCH --requeue"
  [[ -z "${PARTITION}" ]] || echo "#SBATCH --partition=${PARTITION}"
  echo "set -euo pipefail"
  [[ -z "${VENV}" ]] || echo "source ${VENV}/bin/activate"
  echo "cd $(dirname "${here}")"
  # The batch shell gets the TERM (B:): it passes it on to the training processes and waits;
  # exit code 75 is the trainer's "preempted, checkpoint saved": requeue, which resumes.
  echo "pid=\"\""
  echo "trap '[[ -z \$pid ]] || kill -TERM \$pid' TERM"
  echo "srun python -m tiger_jax.train --multi_host${gin_flags} --gin.MODEL_DIR=\"'${MODEL_DIR}'\" &"
  echo "pid=\$!"
  echo "set +e"
  echo "wait \$pid; rc=\$?"
  echo "while [[ \$rc -gt 128 ]]; do wait \$pid; rc=\$?; done  # a TERM ended the wait: the job's own code"
  echo "set -e"
  echo "if [[ \$rc -eq 75 && \${SLURM_RESTART_COUNT:-0} -lt ${MAX_REQUEUES} ]]; then"
  echo "  echo \"preempted: requeueing job \$SLURM_JOB_ID (restart \${SLURM_RESTART_COUNT:-0})\""
  echo "  scontrol requeue \"\$SLURM_JOB_ID\""
  echo "fi"
  echo "exit \$rc"
} > "${script}"
if [[ "${DRY_RUN}" -eq 1 ]]; then
  echo "# ${script}:"
  cat "${script}"
fi
run mkdir -p "${MODEL_DIR}"
run sbatch "${script}"
