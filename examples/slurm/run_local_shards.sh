#!/bin/bash
# The same sharded run without a scheduler: N background processes on one machine, then merge.
#   examples/slurm/run_local_shards.sh 4 out/demo/1-ingest out/demo/2-filter-sharded
set -euo pipefail
N=${1:?shards}; IN=${2:?input stage dir}; OUT=${3:?output dir}
MEDFORGE=${MEDFORGE:-build/bin/medforge}
for ((i = 0; i < N; i++)); do
  "$MEDFORGE" filter --in "$IN" --out "$OUT" --shard "$i/$N" -j 1 -q &
done
wait
"$MEDFORGE" merge "$OUT"
