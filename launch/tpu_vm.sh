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
# only its shard (seqio ShardInfo). Checkpoints go to BUCKET/models/<name>; a preempted job
# resumes from the latest one when run again with the same --name (--keep to skip deletion).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${here}/common.sh"

NAME="" ZONE="" ACCELERATOR="v4-8" VERSION="tpu-ubuntu2204-base" BUCKET="" PROJECT=""
TASK="beauty" STEPS="" KEEP=0 PREEMPTIBLE=0
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
  --preemptible         create a preemptible (spot) TPU
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
worker_cmd="set -e; cd ~/tiger-jax && mkdir -p ${local_data} && \
gsutil -m rsync -r ${BUCKET}/data/${TASK} ${local_data} && \
python3 -m tiger_jax.train --multi_host${gin_flags} --gin.MODEL_DIR=\"'${model_dir}'\" \
--gin.DATA_DIR=\"'${local_data}/data'\" --gin.SEMANTIC_ID_DIR=\"'${local_data}/semantic_ids'\" \
2>&1 | tee ~/train.log"
install_cmd="set -e; rm -rf ~/tiger-jax && mkdir -p ~/tiger-jax && tar -xzf ~/tiger-jax.tgz -C ~/tiger-jax && \
cd ~/tiger-jax && pip install -q -e . 'jax[tpu]==0.10.2'"

# shellcheck disable=SC2016
archive=(tar -czf /tmp/tiger-jax.tgz --exclude=.git --exclude=runs -C "$(dirname "${here}")" .)
run "${create[@]}"
run "${archive[@]}"
run "${gcloud_tpu[@]}" scp /tmp/tiger-jax.tgz "${NAME}:~/tiger-jax.tgz" "${common[@]}" --worker=all
run "${gcloud_tpu[@]}" ssh "${NAME}" "${common[@]}" --worker=all --command="${install_cmd}"
run "${gcloud_tpu[@]}" ssh "${NAME}" "${common[@]}" --worker=all --command="${worker_cmd}"
run mkdir -p "logs/${NAME}"
run "${gcloud_tpu[@]}" scp "${NAME}:~/train.log" "logs/${NAME}/" "${common[@]}" --worker=0
if [[ "${KEEP}" -eq 0 ]]; then
  run "${gcloud_tpu[@]}" delete "${NAME}" "${common[@]}" --quiet
fi
