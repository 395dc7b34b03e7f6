#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# GPU nodes and pods through kubectl, with real node agents: two `corral kubelet`s (an
# H100 NVLink machine and a T4 machine, from hwloc exports) join the cluster; `get nodes`
# shows GPU count and model; pods bound with the binding subresource show NODE, IP and their
# GPUs in `get pods -o wide`; `logs` (plain, -f, --tail, --timestamps, --since, --limit-bytes,
# --previous) comes from the agent, with a clear error while the pod is not running;
# `describe` shows the binding and the pod's events; finally the real scheduler places GPU
# pods by itself and explains, in the pod's events, the one it cannot place.
source "$(dirname "$0")/lib.sh" "$@"
TOPO=$SHARED/hwloc-topologies
start_apiserver
start_kubelet gpu-h100 127.0.0.21 "$TOPO/dell-xe8640_2xXeon8480_4xH100-SXM5_nvlink_cuda-nvml-opencl.xml"
start_kubelet gpu-t4 127.0.0.22 "$TOPO/aws-g4dn-metal_2xXeon8259CL_8xT4_cuda-nvml-opencl.xml"

step "get nodes shows GPU count and model"
ok get nodes
out_matches '^NAME +STATUS +ROLES +GPUS +GPU-MODEL +AGE +VERSION$'
out_matches '^gpu-h100 +Ready +<none> +4 +H100-SXM5-80GB +[0-9]+s +v1\.32\.'
out_matches '^gpu-t4 +Ready +<none> +8 +T4 +[0-9]+s +v1\.32\.'
ok get nodes -o wide
out_matches '^gpu-h100 +Ready .* 127\.0\.0\.21 +<none> +'
ok get nodes -l nvidia.com/gpu.family=hopper -o name
out_eq node/gpu-h100
ok get nodes -L nvidia.com/gpu.product,corral.io/gpu.nvlink
out_matches '^NAME .* GPU\.PRODUCT +GPU\.NVLINK$'
out_matches '^gpu-h100 .* NVIDIA-H100-80GB-HBM3 +true$'
out_matches '^gpu-t4 .* Tesla-T4 +unknown$' # the T4 export records no NVLink
ok get nodes --show-labels
out_matches '^gpu-h100 .*nvidia\.com/gpu\.count=4'
ok describe node gpu-t4
out_matches '^ +nvidia\.com/gpu: +8$'
out_matches '^ +corral\.io/gpu-milli: +8k$'

cat >"$T/pods.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: infer
  labels: {app: infer}
spec:
  restartPolicy: Never
  containers:
  - name: server
    image: vllm/vllm-openai:v0.6.4
    command: [sh, -c, 'echo start; echo "gpus=$CUDA_VISIBLE_DEVICES"; sleep 2; echo done']
    resources:
      limits: {nvidia.com/gpu: 2}
---
apiVersion: v1
kind: Pod
metadata:
  name: preview
  annotations:
    corral.io/workload: render
spec:
  restartPolicy: Never
  containers:
  - name: render
    image: blender:4.2
    command: [sh, -c, 'echo "share=$CUDA_VISIBLE_DEVICES"; exec sleep 60']
    resources:
      limits: {corral.io/gpu-milli: 500}
EOF
binding() { # POD NODE GPUS [MILLI]: the binding a scheduler would post
    local milli=
    [ $# -gt 3 ] && milli=",\"corral.io/assigned-gpu-milli\":\"$4\""
    printf '{"apiVersion":"v1","kind":"Binding","metadata":{"name":"%s","annotations":{"corral.io/assigned-gpus":"%s"%s}},"target":{"kind":"Node","name":"%s"}}' \
        "$1" "$3" "$milli" "$2" >"$T/binding-$1.json"
    k create --raw "/api/v1/namespaces/default/pods/$1/binding" -f "$T/binding-$1.json"
}

step "an unscheduled pod: no node, no GPUs, logs say why"
ok apply -f "$T/pods.yaml"
ok get pods -o wide
out_matches '^NAME +READY +STATUS +RESTARTS +AGE +IP +NODE +NOMINATED NODE +READINESS GATES +GPUS$'
out_matches '^infer +0/1 +Pending +0 +[0-9]+s +<none> +<none> +<none> +<none> +<none>$'
fails logs infer
err_has 'container "server" in pod "infer" is waiting to start: the pod is not scheduled yet'
fails logs nope
err_has 'pods "nope" not found'

step "bound pods run on their node with the GPUs the binding names"
binding infer gpu-h100 0,2 >/dev/null
binding preview gpu-t4 3 500 >/dev/null
eventually "Running" get pod preview
ok get pods -o wide
out_matches '^infer +[01]/1 +(Running|Completed|Succeeded) +0 +[0-9]+s +[0-9.]+ +gpu-h100 +<none> +<none> +0,2$'
out_matches '^preview +1/1 +Running +0 +[0-9]+s +[0-9.]+ +gpu-t4 +<none> +<none> +3 \(500m\)$'
ok get pods -A -o wide
out_matches '^default +preview +1/1 +Running .* gpu-t4 '
run create --raw /api/v1/namespaces/default/pods/infer/binding -f "$T/binding-infer.json"
same "binding twice fails" 1 "$RC"
err_has "Conflict"

step "logs come from the node agent"
ok logs infer -f
out_eq "start
gpus=0,2
done"
ok logs infer --tail=1
out_eq "done"
ok logs infer --timestamps
out_matches '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z start$'
# the T4 node knows its GPUs' UUIDs: the pod sees GPU 3 by UUID (docs/gpus.md)
uuid3=$(J node gpu-t4 '{.metadata.annotations.corral\.io/gpus}' |
    grep -o '"index":3,"uuid":"GPU-[^"]*"' | sed 's/.*"uuid":"//; s/"$//')
differs "GPU 3's UUID" "" "$uuid3"
ok logs preview -c render
out_eq "share=$uuid3"
ok logs pod/preview --limit-bytes=5
out_eq "share"
ok logs preview --since=1h
out_eq "share=$uuid3"
fails logs preview --previous
err_has 'previous terminated container "render" in pod "preview" not found'
fails logs preview -c nope
err_has 'container nope is not valid for pod preview'
bg follow logs -f preview
bg_wait follow "^share=$uuid3\$"
bg_stop

step "describe shows the binding and the pod's events"
cat >"$T/event.yaml" <<EOF
apiVersion: v1
kind: Event
metadata:
  name: preview.scheduled
type: Normal
reason: Scheduled
message: Successfully assigned default/preview to gpu-t4 (GPU 3, 500 milli-GPU)
involvedObject:
  apiVersion: v1
  kind: Pod
  name: preview
  namespace: default
  uid: $(J pod preview '{.metadata.uid}')
source: {component: corral-scheduler}
count: 1
EOF
cat >"$T/other-event.yaml" <<EOF
apiVersion: v1
kind: Event
metadata:
  name: infer.other
type: Warning
reason: Unrelated
message: this event is about another pod
involvedObject: {apiVersion: v1, kind: Pod, name: infer, namespace: default}
EOF
ok create -f "$T/event.yaml" -f "$T/other-event.yaml"
ok describe pod preview
out_matches '^Node: +gpu-t4/127\.0\.0\.22$'
out_matches '^Status: +Running$'
out_matches 'corral\.io/assigned-gpu-milli: 500'
out_matches 'corral\.io/assigned-gpus: 3'
out_matches '^ +corral\.io/gpu-milli: +500$'
out_matches '^ +Normal +Scheduled +.* +corral-scheduler +Successfully assigned default/preview to gpu-t4'
out_lacks "another pod"
ok get events
out_matches '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE$'
out_matches ' +Normal +Scheduled +pod/preview +Successfully assigned'

step "deleting a running pod stops it on its node"
ok delete pod preview
out_eq 'pod "preview" deleted'
fails get pod preview

step "the scheduler places GPU pods and explains the ones it cannot"
start_scheduler
cat >"$T/scheduled.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: train
  annotations: {corral.io/gpu-features: nvlink}
spec:
  containers:
  - name: trainer
    image: pytorch/pytorch:2.4.0
    command: [sh, -c, 'echo "gpus=$CUDA_VISIBLE_DEVICES"; exec sleep 60']
    resources:
      limits: {nvidia.com/gpu: 2}
---
apiVersion: v1
kind: Pod
metadata:
  name: render
  annotations: {corral.io/workload: render}
spec:
  containers:
  - name: blender
    image: blender:4.2
    command: [sh, -c, 'exec sleep 60']
    resources:
      limits: {corral.io/gpu-milli: 250}
---
apiVersion: v1
kind: Pod
metadata:
  name: huge
spec:
  containers:
  - name: trainer
    image: pytorch/pytorch:2.4.0
    resources:
      limits: {nvidia.com/gpu: 16}
EOF
ok apply -f "$T/scheduled.yaml"
eventually Running get pod train
eventually Running get pod render
ok get pods train render huge -o wide
out_matches '^train +1/1 +Running +0 +[0-9]+s +[0-9.]+ +gpu-h100 +<none> +<none> +[0-3],[0-3]$'
out_matches '^render +1/1 +Running +0 +[0-9]+s +[0-9.]+ +gpu-t4 +<none> +<none> +[0-7] \(250m\)$'
out_matches '^huge +0/1 +Pending +0 +[0-9]+s +<none> +<none> +<none> +<none> +<none>$'
eventually "FailedScheduling" describe pod huge
out_matches 'Warning +FailedScheduling +.*0/2 nodes are available: 2 Insufficient nvidia\.com/gpu'
ok describe pod train
out_matches 'Normal +Scheduled +.*Successfully assigned default/train to gpu-h100'

finish
