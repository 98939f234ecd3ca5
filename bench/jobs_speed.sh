#!/usr/bin/env bash
# experiment --jobs: the same two runs (supervised, 2 folds, --preset cpu, fp32) one after the other on
# all the CPU threads, then side by side on one thread each; wall-clock from the start to the last run's
# row in results.csv (the report the command writes afterwards is the same work either way). Quiet machine.
#   bench/jobs_speed.sh DATA OUT [extra experiment options, e.g. --steps 200]
set -euo pipefail
DATA=$1 OUT=$2
shift 2
BRATS_SSL=${BRATS_SSL:-.venv/bin/brats-ssl}
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
THREADS=$(nproc)
common=(--folds 2 --fractions 0.25 --methods supervised --seeds 0 --preset cpu --set train.precision=fp32 "$@")
rm -rf "$OUT/one_after_the_other" "$OUT/side_by_side"
start=$(date +%s.%N)
OMP_NUM_THREADS=$THREADS $BRATS_SSL experiment "$DATA" -o "$OUT/one_after_the_other" "${common[@]}" > "$OUT.one_after_the_other.log" 2>&1
middle=$(date +%s.%N)
$BRATS_SSL experiment "$DATA" -o "$OUT/side_by_side" "${common[@]}" --jobs 2 --threads 1 > "$OUT.side_by_side.log" 2>&1
end=$(date +%s.%N)
python3 - "$start" "$middle" "$end" "$THREADS" "$OUT" <<'PY'
import sys
from pathlib import Path
start, middle, end, threads = map(float, sys.argv[1:5])
out = Path(sys.argv[5])
one = (out / "one_after_the_other" / "results.csv").stat().st_mtime - start
two = (out / "side_by_side" / "results.csv").stat().st_mtime - middle
print(f"one after the other ({threads:g} threads): {one / 60:.1f} min; side by side (--jobs 2 --threads 1): "
      f"{two / 60:.1f} min; throughput x{one / two:.2f}")
PY
