#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `corral sim` end to end: CSV and YAML inputs, the interface lines, gangs, and clear errors
# for bad input, and the example plugin as plugins/examples/README.md shows it.
# Usage: test_sched_sim.sh CORRAL SHARED_DIR EXAMPLE_PLUGIN
set -eu
CORRAL=$1
SHARED=$2
EXAMPLE=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_line() { grep -qx "$2" "$1" || { cat "$1" >&2; fail "missing line '$2' in $1"; }; }
expect_grep() { grep -q -- "$2" "$1" || { cat "$1" >&2; fail "no '$2' in $1"; }; }

# --- a small CSV trace: 2 nodes, 5 pods ---
cat > "$T/nodes.csv" <<'CSV'
sn,cpu_milli,memory_mib,gpu,model
n1,16000,65536,2,T4
n2,16000,65536,1,V100M16
CSV
cat > "$T/pods.csv" <<'CSV'
name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec
p1,1000,1024,1,1000,
p2,1000,1024,1,500,V100M16
p3,1000,1024,1,500,
p4,1000,1024,2,1000,
p5,40000,1024,0,0,
CSV
"$CORRAL" sim --nodes "$T/nodes.csv" --pods "$T/pods.csv" --no-shuffle --tune 0 --verbose \
    > "$T/out" 2>&1 || fail "sim exited $?"
expect_line "$T/out" "placed=3"
expect_line "$T/out" "failed=2"
expect_grep "$T/out" "^placements_per_s=[0-9]*$"
expect_line "$T/out" "unallocated_gpu_pct_at_100=NA"
expect_grep "$T/out" "bound default/p2 node=n2 gpus=0 milli=500"
expect_grep "$T/out" "failed default/p5 at .*: 0/2 nodes are available: 2 Insufficient cpu."
tail -4 "$T/out" | head -1 | grep -q "^unallocated_gpu_pct_at_100=" || fail "interface order"

# --- YAML nodes and pods with a gang of two ---
cat > "$T/nodes.yaml" <<'YAML'
apiVersion: v1
kind: NodeList
items:
- metadata:
    name: h100
    labels: {corral.io/gpu.model: H100-SXM5-80GB, corral.io/gpu.class: datacenter-training}
    annotations:
      corral.io/gpus: '[{"index":0,"island":0,"numaNode":0},{"index":1,"island":0,"numaNode":0}]'
  status: {allocatable: {cpu: "32", memory: 256Gi, nvidia.com/gpu: "2"}}
YAML
cat > "$T/pods.yaml" <<'YAML'
apiVersion: scheduling.x-k8s.io/v1alpha1
kind: PodGroup
metadata: {name: job}
spec: {minMember: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: w0, labels: {scheduling.x-k8s.io/pod-group: job}}
spec:
  containers: [{name: c, resources: {limits: {nvidia.com/gpu: 1}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: w1, labels: {scheduling.x-k8s.io/pod-group: job}}
spec:
  containers: [{name: c, resources: {limits: {nvidia.com/gpu: 1}}}]
YAML
"$CORRAL" sim --nodes "$T/nodes.yaml" --pods "$T/pods.yaml" --verbose > "$T/out" 2>&1 ||
    fail "yaml sim exited $?"
expect_line "$T/out" "placed=2"
expect_line "$T/out" "failed=0"
expect_grep "$T/out" "bound default/w0 node=h100"

# --- errors say what is wrong ---
check_error() { # expected-exit message args...
    want=$1; msg=$2; shift 2
    set +e
    "$CORRAL" sim "$@" > "$T/err" 2>&1
    rc=$?
    set -e
    [ "$rc" = "$want" ] || { cat "$T/err" >&2; fail "exit $rc, wanted $want for $*"; }
    expect_grep "$T/err" "$msg"
}
check_error 2 "--nodes and --pods are required" --nodes "$T/nodes.csv"
check_error 2 "is not a number" --nodes "$T/nodes.csv" --pods "$T/pods.csv" --seed x
check_error 1 "No such file or directory" --nodes "$T/none.csv" --pods "$T/pods.csv"
check_error 1 'unknown policy "tetris"; known: ' --nodes "$T/nodes.csv" --pods "$T/pods.csv" \
    --policy tetris
printf 'sn,cpu_milli,memory_mib,gpu,model\nbad,lots,1,1,T4\n' > "$T/bad.csv"
check_error 1 'bad.csv:2: cpu_milli: "lots" is not a non-negative integer' \
    --nodes "$T/bad.csv" --pods "$T/pods.csv"
printf 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\nq,1,1,2,500\n' > "$T/badpod.csv"
check_error 1 "badpod.csv:2: num_gpu=2 with gpu_milli=500" \
    --nodes "$T/nodes.csv" --pods "$T/badpod.csv"
printf 'profiles:\n- plugins:\n    filter:\n      enabled: [{name: NoSuchPlugin}]\n' > "$T/p.yaml"
check_error 1 "plugin NoSuchPlugin not found in" --nodes "$T/nodes.csv" --pods "$T/pods.csv" \
    --profile "$T/p.yaml"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n' > "$T/svc.yaml"
check_error 1 "object 1 is a Service, expected Node" --nodes "$T/svc.yaml" --pods "$T/pods.csv"

# --- the example plugin (plugins/examples/README.md) acts as documented ---
cat > "$T/px.yaml" <<YAML
apiVersion: v1
kind: NodeList
items:
- metadata:
    name: acme-1
    labels: {corral.io/provider: acme, example.com/gpu-hour-price: "900"}
  status: {allocatable: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "2"}}
- metadata:
    name: bob-1
    labels: {corral.io/provider: bob, example.com/gpu-hour-price: "2500"}
  status: {allocatable: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "2"}}
- metadata:
    name: shady-1
    labels: {corral.io/provider: shady, example.com/gpu-hour-price: "100"}
  status: {allocatable: {cpu: "16", memory: 64Gi, nvidia.com/gpu: "2"}}
YAML
cat > "$T/pp.yaml" <<'YAML'
apiVersion: v1
kind: PodList
items:
- metadata: {name: render-1}
  spec: {containers: [{name: c, resources: {limits: {nvidia.com/gpu: 1}}}]}
- metadata: {name: render-2}
  spec: {containers: [{name: c, resources: {limits: {nvidia.com/gpu: 1}}}]}
- metadata: {name: render-3}
  spec: {containers: [{name: c, resources: {limits: {nvidia.com/gpu: 1}}}]}
YAML
for max in "      maxPrice: 2000" ""; do
    cat > "$T/prof.yaml" <<YAML
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      enabled:
      - {name: ProviderPrice, path: $EXAMPLE}
      - {name: ResourceFit}
  pluginConfig:
  - name: ProviderPrice
    args:
      blockedProviders: [shady]
$max
YAML
    "$CORRAL" sim --nodes "$T/px.yaml" --pods "$T/pp.yaml" --profile "$T/prof.yaml" --verbose \
        > "$T/out" 2>&1 || fail "example sim exited $?"
    expect_grep "$T/out" "bound default/render-1 node=acme-1"
    expect_grep "$T/out" "bound default/render-2 node=acme-1"
    if [ -n "$max" ]; then
        expect_grep "$T/out" "failed default/render-3 at .*: 0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) belong to a blocked provider, 1 node(s) cost more than 2000 per GPU-hour."
    else
        expect_grep "$T/out" "bound default/render-3 node=bob-1"
    fi
done

# --- the published experiment on the real trace, default profile ---
TRACE="$SHARED/alibaba-gpu-2023/csv"
if [ -r "$TRACE/openb_pod_list_default.csv" ]; then
    "$CORRAL" sim --nodes "$TRACE/openb_node_list_gpu_node.csv" \
        --pods "$TRACE/openb_pod_list_default.csv" --seed 42 --quiet > "$T/out" 2>&1 ||
        fail "trace sim exited $?"
    u=$(sed -n 's/^unallocated_gpu_pct_at_100=//p' "$T/out")
    awk -v u="$u" 'BEGIN { exit !(u > 0 && u < 4.77) }' ||
        fail "default profile left $u % unallocated at 100 % arrived (FGD published: 4.77)"
fi
echo "ok"
