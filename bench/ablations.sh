#!/usr/bin/env bash
# Ablations and baselines of ours on a cohort and split, at the demo's settings (tiny preset,
# teacher 300 steps, 2 stages x 150 steps, T = 4); the teacher is trained once and copied into
# every teacher-based run. Tabulate with: python bench/ablation_table.py OUT
# Usage: bench/ablations.sh DATA SPLIT OUT [SEED]   (ONLY="ours ours_control" runs a subset)
# The demo's cohort and split: `brats-ssl demo -o demo_out` leaves demo_out/data and demo_out/split.json.
set -euo pipefail
DATA=${1:?usage: bench/ablations.sh DATA SPLIT OUT [SEED]}
SPLIT=${2:?}
OUT=${3:?}
SEED=${4:-0}
BIN="$(dirname "$0")/../.venv/bin/brats-ssl"
SETS=(--set train.steps=300 --set train.val_every=100 --set "train.patch_size=[48,48,32]" --set train.lr=0.003
      --set "model.features=[8,16,32,64]" --set ssl.stages=2 --set ssl.stage_steps=150 --set inference.mc_samples=4
      --set ssl.tau_start=0.85 --set ssl.tau_end=0.7)
run() {  # name method [flags...]
  local name=$1 method=$2; shift 2
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  if [ "$method" = ours ] || [ "$method" = ours-control ] || [ "$method" = self-training ]; then
    if [ -d "$OUT/supervised/teacher" ] && [ ! -d "$OUT/$name/teacher" ]; then
      mkdir -p "$OUT/$name" && cp -r "$OUT/supervised/teacher" "$OUT/$name/teacher"
    fi
  fi
  local start
  start=$(date +%s)
  "$BIN" train "$DATA" -o "$OUT/$name" --split "$SPLIT" --method "$method" --preset tiny --seed "$SEED" \
      "${SETS[@]}" "$@" > "$OUT/$name.log" 2>&1
  echo "$name $(( $(date +%s) - start )) s"
}
mkdir -p "$OUT"
run supervised supervised
run ours ours
run ours_control ours-control
run ua_mt ua-mt
run self_training self-training
run ours_unlearn_none ours --unlearn none
run ours_no_curriculum ours --no-curriculum
run mean_teacher mean-teacher
run ours_no_refinement ours --no-refinement
run ours_no_weighting ours --no-uncertainty-weighting
run ours_unlearn_argmax ours --unlearn argmax
