#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Speed work must not move a single pod: `corral sim` replays a few trace/seed/profile cases
# and each placement_hash (every binding, failure and eviction in order, see scheduler/sim.c)
# must equal the one recorded before the scheduler's speed work (docs/scheduler.md, "Speed";
# the random and bestfit cases were recorded later, after checking that the earlier
# scheduler's --verbose output for them is the same).
# A change that is meant to change placements updates these hashes in the same commit and
# regenerates docs/scheduler-results.md.
# Usage: test_sched_placements.sh CORRAL SHARED_DIR BENCH_SCHED_PY
set -eu
CORRAL=$1
SHARED=$2
BENCH=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
TRACE="$SHARED/alibaba-gpu-2023/csv"
if [ ! -r "$TRACE/openb_pod_list_default.csv" ]; then
    echo "SKIP: no Alibaba trace under $TRACE"
    exit 77
fi
failed=0

# case name, expected hash, then the sim arguments
check() {
    name=$1; want=$2; shift 2
    rc=0
    "$CORRAL" sim "$@" --quiet > "$T/out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        cat "$T/out" >&2
        echo "FAIL: $name: corral sim exited $rc"
        exit 1
    fi
    got=$(sed -n 's/^placement_hash=//p' "$T/out")
    if [ "$got" = "$want" ]; then
        echo "ok: $name $got"
    else
        echo "FAIL: $name: placement_hash $got, expected $want (placements changed)"
        failed=1
    fi
}

NODES="$TRACE/openb_node_list_gpu_node.csv"
P="$TRACE/openb_pod_list"
check default-seed42 8d0c160018bd72ce --nodes "$NODES" --pods "${P}_default.csv" --seed 42
check gpuspec33-seed44 6ea7674dd411b8c6 --nodes "$NODES" --pods "${P}_gpuspec33.csv" --seed 44
check multigpu50-seed45 d85cb0e660adbf95 --nodes "$NODES" --pods "${P}_multigpu50.csv" --seed 45
check gpushare100-seed46 309a8732b96d4ccb --nodes "$NODES" --pods "${P}_gpushare100.csv" --seed 46
check cpu250-seed47 220daeb03a1ceb19 --nodes "$NODES" --pods "${P}_cpu250.csv" --seed 47
check fgd-default-seed42 a2952dae785a3959 --nodes "$NODES" --pods "${P}_default.csv" --seed 42 \
    --policy fgd
# random ties (a scan, not the heap) and a NormalizeScore plugin (scores every cycle)
check random-default-seed48 7f61df577730eab4 --nodes "$NODES" --pods "${P}_default.csv" \
    --seed 48 --policy random
check bestfit-default-seed48 8cb826a8856ffb91 --nodes "$NODES" --pods "${P}_default.csv" \
    --seed 48 --policy bestfit

# The benchmark's heterogeneous cluster (trace machines plus H100 NVLink, A100, L40, RTX 4090
# nodes), so GpuTopology, GpuClass and the per-model paths place pods too.
python3 - "$BENCH" "$SHARED" "$T/nodes.json" <<'PY'
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
import bench_sched
bench_sched.write_nodes(sys.argv[3], 600, bench_sched.trace_nodes(sys.argv[2]))
PY
check hetero600-default-seed42 4dee042e4bc65e98 --nodes "$T/nodes.json" --pods "${P}_default.csv" \
    --seed 42
check hetero600-gpuspec25-seed43 a9d68644797f2670 --nodes "$T/nodes.json" \
    --pods "${P}_gpuspec25.csv" --seed 43

[ "$failed" = 0 ] || exit 1
echo "ok"
