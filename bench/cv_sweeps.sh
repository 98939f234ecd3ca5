#!/usr/bin/env bash
# The cross-validated real-data sweeps behind BENCHMARKS.md sections 8 and 9, in the order they
# run. Every step is resumable: re-running this script skips finished runs and resumes the one
# that was interrupted. Several hours per step on 2 CPU cores; start it with nohup.
#
#   bench/cv_sweeps.sh DATA OUT [section]     section: 8 | 8-before | 9 | 9-controls | 9-ablations (default: all)
#
# Section 8 (issue 14): supervised, ours, ours-control, ua-mt; 5 folds, seed 0.
# Section 8-before: the old schedule on fold 0 (a 1500-step teacher; UA-MT with 3500 steps, full
#   EMA passes and 1 + 1 batches), to measure what the shorter cpu preset costs in Dice.
# Section 9 (issue 15): section 8's runs of supervised, ours-control and ua-mt are reused (hard
#   links; they train identically in both), ours (the student of issue 15) and bcp are trained; seeds 0 1.
# Section 9-controls: ours-student-control (ours' student fed with the labeled cases instead of the
#   unlabeled scans), the supervised teachers of section 9 reused; seeds 0 1.
# Section 9-ablations: ours with one change of its student switched off (and the teacher's stored
#   probabilities as offline targets), seed 0, 5 folds, the supervised teachers reused.
# Runs pin train.precision=fp32 so that they resume identically on CPUs with and without bf16.
set -eu
DATA=$1 OUT=$2 ONLY=${3:-all}
export OMP_NUM_THREADS=2 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
B=${BRATS_SSL:-brats-ssl}
COMMON=(--folds 5 --fractions 0.25 --preset cpu --set train.precision=fp32)

if [[ $ONLY == all || $ONLY == 8 ]]; then
  $B experiment "$DATA" -o "$OUT/cv" --methods supervised ours ours-control ua-mt --seeds 0 "${COMMON[@]}"
fi

if [[ $ONLY == all || $ONLY == 8-before ]]; then
  S=$OUT/cv/splits/fold0_f0.25_s0.json
  $B train "$DATA" -o "$OUT/before/teacher1500" --split "$S" --method supervised --preset cpu --seed 0 \
      --set train.precision=fp32 --set train.steps=1500 --set train.val_every=250
  $B train "$DATA" -o "$OUT/before/ua-mt-old" --split "$S" --method ua-mt --preset cpu --seed 0 \
      --set train.precision=fp32 --set train.steps=1500 --set ssl.stage_steps=500 --set train.val_every=250 \
      --set ssl.pseudo_fraction=0.5 --set ssl.uamt_shared_encoder=false
fi

reuse() {  # reuse SOURCE_EXPERIMENT TARGET_EXPERIMENT METHOD...: hard-link finished runs and splits
  local source=$1 target=$2; shift 2
  mkdir -p "$target/runs" "$target/splits"
  cp -n "$source"/splits/*.json "$target/splits/"
  for method in "$@"; do
    for run in "$source"/runs/"$method"_fold*; do
      [[ -e $run/summary.json && ! -e $target/runs/$(basename "$run") ]] && cp -al "$run" "$target/runs/"
    done
  done
  return 0
}

if [[ $ONLY == all || $ONLY == 9 ]]; then
  reuse "$OUT/cv" "$OUT/cv-student" supervised ours-control ua-mt
  $B experiment "$DATA" -o "$OUT/cv-student" --methods supervised ours ours-control ua-mt bcp --seeds 0 1 "${COMMON[@]}"
fi

if [[ $ONLY == all || $ONLY == 9-controls ]]; then
  reuse "$OUT/cv-student" "$OUT/cv-student-control" supervised
  $B experiment "$DATA" -o "$OUT/cv-student-control" --methods supervised ours-student-control --seeds 0 1 \
      "${COMMON[@]}"
fi

if [[ $ONLY == all || $ONLY == 9-ablations ]]; then
  for off in online_weight=0 strong_views=false copy_paste=false hierarchical=false offline_targets=probabilities; do
    reuse "$OUT/cv" "$OUT/ablation-${off%%=*}" supervised
    $B experiment "$DATA" -o "$OUT/ablation-${off%%=*}" --methods supervised ours --seeds 0 "${COMMON[@]}" \
        --set "ssl.$off"
  done
  python bench/cv_ablation_table.py "$OUT/cv-student" --method ours --reference ours-control \
      --variant "online targets off=$OUT/ablation-online_weight" --variant "strong views off=$OUT/ablation-strong_views" \
      --variant "copy-paste off=$OUT/ablation-copy_paste" --variant "hierarchical off=$OUT/ablation-hierarchical" \
      --variant "stored probabilities as targets=$OUT/ablation-offline_targets"
fi
