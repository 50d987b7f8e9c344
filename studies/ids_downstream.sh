#!/bin/bash
# Issue #42's downstream check: a recipe trained for 3,000 steps on the pinned old Semantic IDs
# and on the default IDs, one core each (taskset), validation decoded at the last step; the
# pair is then compared user by user with studies.paired_compare. Resumable: rerun it.
#
#   bash studies/ids_downstream.sh paper   # recipes/beauty_paper.gin: paper_old, paper_new2
#   bash studies/ids_downstream.sh best    # recipes/beauty_best.gin:  best_old,  best_new2
#   python -m studies.paired_compare --model_dir=runs/ids_downstream/paper_new2 \
#     --against=runs/ids_downstream/paper_old --split=validation --checkpoint=latest \
#     --record=records/downstream/semantic_ids_beauty_paper.json
#
# The "old" runs pin the old RQ-VAE schedule (beauty_paper.gin binds it; the best recipe, on
# the default IDs since, gets it here, at its old 3,000 steps); the "new" run binds the
# default's fields back.
set -euo pipefail
cd "$(dirname "$0")/.."
old=(--gin.RQVAEConfig.beta=0.25 --gin.RQVAEConfig.batch_size=1024 --gin.RQVAEConfig.kmeans_init_items=1024
     --gin.RQVAEConfig.epochs=3000 --gin.RQVAEConfig.reset_dead_codes=True --gin.RQVAEConfig.grad_clip=0.0
     --gin.SemanticIdConfig.max_group=0)
which=${1:?"say which recipe: paper or best"}
case "$which" in
  paper) recipe=gin_configs/recipes/beauty_paper.gin
         extra=(--gin.TRAIN_STEPS=3000 --gin.RQVAEConfig.epochs=3000
                --gin.TrainerConfig.checkpoint_every=250 --gin.TrainerConfig.eval_every=3000) ;;
  best)  recipe=gin_configs/recipes/beauty_best.gin  # now on the default IDs, 1 trainer hour:
         extra=(--gin.TRAIN_STEPS=3000 --gin.TrainerConfig.max_train_hours=0 "${old[@]}") ;;
  *) echo "error: $which: say paper or best" >&2; exit 2 ;;
esac
common=(--gin_file=$recipe "${extra[@]}" --gin.pipeline.split="'validation'"
        --gin.pipeline.run_sasrec=False --gin.pipeline.checkpoint="'latest'")
new=(--gin.RQVAEConfig.beta=1.0 --gin.RQVAEConfig.batch_size=128 --gin.RQVAEConfig.kmeans_init_items=0
     --gin.RQVAEConfig.epochs=100 --gin.RQVAEConfig.reset_dead_codes=True --gin.RQVAEConfig.grad_clip=1.0
     --gin.SemanticIdConfig.max_group=10)
mkdir -p runs/ids_downstream
taskset -c 0 python -m tiger_jax.main "${common[@]}" --gin.MODEL_DIR="'runs/ids_downstream/${which}_old'" \
  > "runs/ids_downstream/${which}_old.log" 2>&1 &
taskset -c 1 python -m tiger_jax.main "${common[@]}" "${new[@]}" \
  --gin.MODEL_DIR="'runs/ids_downstream/${which}_new2'" > "runs/ids_downstream/${which}_new2.log" 2>&1 &
wait
