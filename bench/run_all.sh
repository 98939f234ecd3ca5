#!/usr/bin/env bash
# Every benchmark in one go, on a quiet machine, each figure to bench/out/<name>.txt.
# Usage: bench/run_all.sh RUN   (RUN: a finished cpu-preset run on ../shared/data/brats-dev)
set -euo pipefail
RUN=${1:?usage: bench/run_all.sh RUN}
cd "$(dirname "$0")"
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
PY=../.venv/bin/python
mkdir -p out
bench() {  # name args...
  local name=$1; shift
  echo "== $name: $* ($(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))" | tee "out/$name.txt"
  /usr/bin/time -v "$PY" "$@" 2> >(grep -E "Elapsed|Maximum resident" >> "out/$name.txt") | tee -a "out/$name.txt"
}
bench network bench_network.py --bf16-repeats 1
bench train_step bench_train_step.py --bf16-steps 0
bench pseudolabel bench_pseudolabel.py
bench predict bench_predict.py "$RUN"
bench scaling bench_scaling.py
