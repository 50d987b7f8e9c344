#!/usr/bin/env bash
# Train tiger-jax on a Cloud TPU VM or pod slice: create, install, train on every worker,
# collect logs, delete.
#
#   launch/tpu_vm.sh --name=tiger-v4 --zone=us-central2-b --accelerator=v4-32 \
#       --bucket=gs://my-bucket/tiger --gin_file=gin_configs/tiger_beauty.gin \
#       --gin_file=gin_configs/mesh/pod_model_parallel.gin [--dry_run]
#
# Data: prepare it once (python -m tiger_jax.data / tiger_jax.semantic_ids) and copy the run
# folders to BUCKET/data/<name>/; every worker copies them to local disk and each host reads
# only its shard (seqio ShardInfo). Checkpoints go to BUCKET/models/<name>. With --preemptible
# (a spot TPU), a training command that fails on a VM the cloud preempted recreates the VM and
# reruns the same training, which resumes from the bucket's latest checkpoint (the trainer
# saves its step on the SIGTERM that comes before the preemption), up to --max_retries times.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${here}/common.sh"

NAME="" ZONE="" ACCELERATOR="v4-8" VERSION="tpu-ubuntu2204-base" BUCKET="" PROJECT=""
TASK="beauty" STEPS="" KEEP=0 PREEMPTIBLE=0 MAX_RETRIES=5
GIN_FILES=()
usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  cat <<USAGE
Options:
  --name=NAME           TPU VM name (required)
  --zone=ZONE           GCP zone (required)
  --accelerator=TYPE    v4-8, v4-32, v5litepod-16, ... (default ${ACCELERATOR})
  --version=RUNTIME     TPU VM runtime (default ${VERSION})
  --project=PROJECT     GCP project (default: gcloud's)
  --bucket=gs://...     where data, checkpoints and logs live (required)
  --task=NAME           beauty, toys, sports or synthetic (default ${TASK})
  --gin_file=FILE       gin file(s), repeatable (default gin_configs/tiger_<task>.gin)
  --train_steps=N       override TRAIN_STEPS
  --preemptible         create a preemptible (spot) TPU; recreate it and resume when preempted
  --max_retries=N       with --preemptible, how many times (default ${MAX_RETRIES})
  --keep                do not delete the TPU VM at the end
  --dry_run             print every command, run none
  --help                this text
USAGE
}

for arg in "$@"; do
  case "${arg}" in
    --name=*) NAME="${arg#*=}" ;;
    --zone=*) ZONE="${arg#*=}" ;;
    --accelerator=*) ACCELERATOR="${arg#*=}" ;;
    --version=*) VERSION="${arg#*=}" ;;
    --project=*) PROJECT="${arg#*=}" ;;
    --bucket=*) BUCKET="${arg#*=}" ;;
    --task=*) TASK="${arg#*=}" ;;
    --gin_file=*) GIN_FILES+=("${arg#*=}") ;;
    --train_steps=*) STEPS="${arg#*=}" ;;
    --preemptible) PREEMPTIBLE=1 ;;
    --max_retries=*) MAX_RETRIES="${arg#*=}" ;;
    --keep) KEEP=1 ;;
    --dry_run) DRY_RUN=1 ;;
    --help|-h) usage; exit 0 ;;
    *) die "unknown argument ${arg} (see --help)" ;;
  esac
done
[[ -n "${NAME}" ]] || die "--name is required"
[[ -n "${ZONE}" ]] || die "--zone is required"
[[ "${BUCKET}" == gs://* ]] || die "--bucket must be a gs:// path"
[[ ${#GIN_FILES[@]} -gt 0 ]] || GIN_FILES=("gin_configs/tiger_${TASK}.gin")
[[ "${MAX_RETRIES}" =~ ^[0-9]+$ ]] || die "--max_retries=${MAX_RETRIES}: a whole number"

gcloud_tpu=(gcloud compute tpus tpu-vm)
common=(--zone="${ZONE}")
[[ -z "${PROJECT}" ]] || common+=(--project="${PROJECT}")
create=("${gcloud_tpu[@]}" create "${NAME}" "${common[@]}" --accelerator-type="${ACCELERATOR}"
        --version="${VERSION}")
[[ "${PREEMPTIBLE}" -eq 0 ]] || create+=(--preemptible)

model_dir="${BUCKET}/models/${NAME}"
gin_flags=""
for f in "${GIN_FILES[@]}"; do gin_flags+=" --gin_file=${f}"; done
[[ -z "${STEPS}" ]] || gin_flags+=" --gin.TRAIN_STEPS=${STEPS}"
# The same command on every worker; jax.distributed.initialize() finds its peers on TPU VMs.
local_data="\$HOME/tiger_data/${TASK}"  # data/ and semantic_ids/ of the prepared run
worker_cmd="set -eo pipefail; cd ~/tiger-jax && mkdir -p ${local_data} && \
gsutil -m rsync -r ${BUCKET}/data/${TASK} ${local_data} && \
python3 -m tiger_jax.train --multi_host${gin_flags} --gin.MODEL_DIR=\"'${model_dir}'\" \
--gin.DATA_DIR=\"'${local_data}/data'\" --gin.SEMANTIC_ID_DIR=\"'${local_data}/semantic_ids'\" \
2>&1 | tee ~/train.log"
install_cmd="set -e; rm -rf ~/tiger-jax && mkdir -p ~/tiger-jax && tar -xzf ~/tiger-jax.tgz -C ~/tiger-jax && \
cd ~/tiger-jax && pip install -q -e . 'jax[tpu]==0.10.2'"

# shellcheck disable=SC2016
archive=(tar -czf /tmp/tiger-jax.tgz --exclude=.git --exclude=runs -C "$(dirname "${here}")" .)
# The VM's state, as the cloud reports it (PREEMPTED after a spot preemption).
tpu_state() {
  if [[ "${DRY_RUN}" -eq 1 ]]; then
    run "${gcloud_tpu[@]}" describe "${NAME}" "${common[@]}" --format="value(state)" >&2
    echo "PREEMPTED"  # a dry run shows the recovery path once
  else
    "${gcloud_tpu[@]}" describe "${NAME}" "${common[@]}" --format="value(state)" 2>/dev/null || echo "GONE"
  fi
}

setup_and_train() {  # each step must succeed (set -e does not hold inside a condition)
  run "${create[@]}" || return 1
  run "${archive[@]}" || return 1
  run "${gcloud_tpu[@]}" scp /tmp/tiger-jax.tgz "${NAME}:~/tiger-jax.tgz" "${common[@]}" \
      --worker=all || return 1
  run "${gcloud_tpu[@]}" ssh "${NAME}" "${common[@]}" --worker=all --command="${install_cmd}" ||
    return 1
  run "${gcloud_tpu[@]}" ssh "${NAME}" "${common[@]}" --worker=all --command="${worker_cmd}"
}

attempt=0
while true; do
  if setup_and_train && [[ "${DRY_RUN}" -eq 0 ]]; then
    break
  fi
  if [[ "${DRY_RUN}" -eq 1 ]]; then  # show the recovery path once, then stop
    [[ "${PREEMPTIBLE}" -eq 1 && "${attempt}" -eq 0 ]] || break
    echo "# if the training command fails on a preempted VM (up to ${MAX_RETRIES} times):"
  fi
  [[ "${PREEMPTIBLE}" -eq 1 ]] || die "training failed on ${NAME} (not preemptible: no retry)"
  state="$(tpu_state)"
  [[ "${state}" == "PREEMPTED" || "${state}" == "TERMINATED" || "${state}" == "GONE" ]] ||
    die "training failed on ${NAME}, which is ${state}, not preempted: see its train.log"
  attempt=$((attempt + 1))
  [[ "${attempt}" -le "${MAX_RETRIES}" ]] ||
    die "${NAME} was preempted ${attempt} times; giving up (--max_retries=${MAX_RETRIES})"
  echo "# ${NAME} is ${state}: recreating it (retry ${attempt} of ${MAX_RETRIES}); training" \
       "resumes from ${model_dir}"
  run "${gcloud_tpu[@]}" delete "${NAME}" "${common[@]}" --quiet || true
done
run mkdir -p "logs/${NAME}"
run "${gcloud_tpu[@]}" scp "${NAME}:~/train.log" "logs/${NAME}/" "${common[@]}" --worker=0
if [[ "${KEEP}" -eq 0 ]]; then
  run "${gcloud_tpu[@]}" delete "${NAME}" "${common[@]}" --quiet
fi
