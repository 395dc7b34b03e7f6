#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Everything that changes objects besides apply: `create namespace|configmap|secret|
# deployment|job|service|serviceaccount` and `expose` (kubectl sends most of these as
# protobuf), `patch` in its three types, `edit`, `set image`, `scale`, `label`,
# `annotate`, `replace` (fresh and stale), `delete --cascade=...` and `get -w` watching the
# changes happen.
source "$(dirname "$0")/lib.sh" "$@"
start_apiserver

step "create namespace, configmap and secret (kubectl sends protobuf)"
ok create namespace team-a
out_eq "namespace/team-a created"
fails create namespace team-a
err_has 'Error from server (AlreadyExists): namespaces "team-a" already exists'
ok create configmap tuning -n team-a --from-literal=batch=32 --from-literal=precision=bf16
out_eq "configmap/tuning created"
same "configmap data" '{"batch":"32","precision":"bf16"}' "$(J cm tuning '{.data}' -n team-a)"
ok create secret generic hf-token -n team-a --from-literal=token=hf_abc123
out_eq "secret/hf-token created"
same "secret data (base64)" aGZfYWJjMTIz "$(J secret hf-token '{.data.token}' -n team-a)"
same "secret type" Opaque "$(J secret hf-token '{.type}' -n team-a)"
ok create namespace team-b --dry-run=server
out_has "namespace/team-b created (server dry run)"
fails get ns team-b

step "create deployment, job, service, serviceaccount and expose (protobuf bodies too)"
ok create deployment web -n team-a --image=vllm/vllm-openai:v0.6.4 --replicas=2 --port=8000 \
    -- vllm serve --model llama
out_eq "deployment.apps/web created"
same "replicas" 2 "$(J deploy web '{.spec.replicas}' -n team-a)"
same "command" '["vllm","serve","--model","llama"]' \
    "$(J deploy web '{.spec.template.spec.containers[0].command}' -n team-a)"
same "port" 8000 "$(J deploy web '{.spec.template.spec.containers[0].ports[0].containerPort}' -n team-a)"
same "selector" '{"app":"web"}' "$(J deploy web '{.spec.selector.matchLabels}' -n team-a)"
ok create job finetune -n team-a --image=pytorch/pytorch:2.4.0 -- torchrun train.py
out_eq "job.batch/finetune created"
same "job restartPolicy" Never "$(J job finetune '{.spec.template.spec.restartPolicy}' -n team-a)"
ok create service nodeport web-np -n team-a --tcp=80:8000 --node-port=30080
out_eq "service/web-np created"
same "node port" "NodePort 30080 8000" \
    "$(J svc web-np '{.spec.type} {.spec.ports[0].nodePort} {.spec.ports[0].targetPort}' -n team-a)"
ok create service clusterip web-named -n team-a --tcp=80:http
same "named target port" http "$(J svc web-named '{.spec.ports[0].targetPort}' -n team-a)"
ok expose deploy web -n team-a --port=80 --target-port=8000 --name=web-svc
out_eq "service/web-svc exposed"
same "exposed selector" '{"app":"web"}' "$(J svc web-svc '{.spec.selector}' -n team-a)"
ok create serviceaccount trainer -n team-a
out_eq "serviceaccount/trainer created"
ok get sa trainer -n team-a
out_matches '^NAME +SECRETS +AGE$'
out_matches '^trainer +0 +[0-9]+s$'
ok delete deploy,job,svc,sa -n team-a --all
out_has 'deployment.apps "web" deleted'

step "get -w sees objects added, changed and deleted"
bg table get cm -n team-a -w
bg events get cm -n team-a -w --output-watch-events
bg one get cm tuning -n team-a -w -o name
bg_wait table '^tuning +2 +'
bg_wait events '^ADDED +tuning +2 '
ok create configmap late -n team-a --from-literal=a=1
ok label cm late -n team-a stage=canary
ok patch cm tuning -n team-a -p '{"data":{"batch":"64"}}'
ok delete cm late -n team-a
bg_wait events '^ADDED +late +1 '
bg_wait events '^MODIFIED +late +1 '
bg_wait events '^DELETED +late +1 '
bg_wait events '^MODIFIED +tuning +2 '
bg_wait table '^late +1 +'
bg_wait one '^configmap/tuning$'
same "lines seen watching one object" 2 "$(grep -c 'configmap/tuning' "$T/one.out")"
bg_stop

ok apply -f "$M/api.yaml"
dep_image() { J deploy api "{.spec.template.spec.containers[?(@.name==\"$1\")].image}"; }

step "patch: strategic merge (the default) merges containers by name"
ok patch deploy api -p '{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"registry.example.com/api:1.1"}]}}}}'
out_eq "deployment.apps/api patched"
same "patched container" registry.example.com/api:1.1 "$(dep_image api)"
same "other container kept" registry.example.com/proxy:2.1 "$(dep_image sidecar)"
ok patch deploy api -p '{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"api"},{"name":"sidecar"}],"containers":[{"name":"api","$setElementOrder/env":[{"name":"WORKERS"},{"name":"MODE"}],"env":[{"name":"WORKERS","value":"8"}]}]}}}}'
same "env order from \$setElementOrder" "WORKERS=8 MODE=prod" \
    "$(J deploy api '{range .spec.template.spec.containers[0].env[*]}{.name}={.value} {end}' | sed 's/ $//')"
ok patch deploy api -p '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}'
same "containers after \$patch: delete" api "$(J deploy api '{.spec.template.spec.containers[*].name}')"
ok patch deploy api --type=strategic -p '{"metadata":{"labels":{"app":null,"team":"inference"}}}'
same "labels after null" '{"team":"inference"}' "$(J deploy api '{.metadata.labels}')"
ok patch deploy api -p '{"spec":{"replicas":1}}'
out_eq "deployment.apps/api patched (no change)"

step "patch: JSON merge patch replaces lists whole"
ok patch cm features --type=merge -p '{"data":{"max-batch":"64","gpu-sharing":null}}'
same "configmap data" '{"max-batch":"64"}' "$(J cm features '{.data}')"
ok patch deploy api --type=merge -p '{"spec":{"template":{"spec":{"containers":[{"name":"solo","image":"registry.example.com/solo:1"}]}}}}'
same "containers" solo "$(J deploy api '{.spec.template.spec.containers[*].name}')"

step "patch: JSON patch"
ok patch deploy api --type=json -p '[{"op":"replace","path":"/spec/replicas","value":2},{"op":"add","path":"/metadata/labels/tier","value":"gold"}]'
same "replicas" 2 "$(J deploy api '{.spec.replicas}')"
same "label" gold "$(J deploy api '{.metadata.labels.tier}')"
fails patch deploy api --type=json -p '[{"op":"test","path":"/spec/replicas","value":5}]'
err_has "The request is invalid"
err_has "/spec/replicas"
fails patch deploy api --type=json -p '[{"op":"remove","path":"/spec/nope"}]'
err_has "/spec/nope"
fails patch deploy api --type=json -p '[{"op":"replace","path":"/spec/replicas","value":-1}]'
err_has 'The Deployment "api" is invalid'
err_has "spec.replicas"
fails patch deploy nope -p '{"spec":{"replicas":1}}'
err_has 'Error from server (NotFound): deployments.apps "nope" not found'

step "edit and set image"
KUBE_EDITOR="sed -i 's/max-batch:.*/max-batch: \"128\"/'" ok edit cm features
out_eq "configmap/features edited"
same "edited value" 128 "$(J cm features '{.data.max-batch}')"
ok set image deploy/api solo=registry.example.com/solo:2
out_eq "deployment.apps/api image updated"
same "image" registry.example.com/solo:2 "$(dep_image solo)"

step "scale"
ok scale deploy api --replicas=3
out_eq "deployment.apps/api scaled"
same "replicas" 3 "$(J deploy api '{.spec.replicas}')"
fails scale deploy api --replicas=1 --current-replicas=2
err_has "Expected replicas to be 2, was 3"
same "replicas after a failed precondition" 3 "$(J deploy api '{.spec.replicas}')"
ok scale deploy api --replicas=0
same "replicas" 0 "$(J deploy api '{.spec.replicas}')"

step "label and annotate"
ok label deploy api stage=prod
out_eq "deployment.apps/api labeled"
fails label deploy api stage=dev
err_has "'stage' already has a value (prod), and --overwrite is false"
ok label deploy api stage=dev --overwrite
same "label" dev "$(J deploy api '{.metadata.labels.stage}')"
ok label deploy api stage-
out_eq "deployment.apps/api unlabeled"
same "label removed" "" "$(J deploy api '{.metadata.labels.stage}')"
ok annotate deploy api owner=ml-platform
out_eq "deployment.apps/api annotated"
same "annotation" ml-platform "$(J deploy api '{.metadata.annotations.owner}')"
ok annotate deploy api owner-
same "annotation removed" "" "$(J deploy api '{.metadata.annotations.owner}')"
ok label cm,secret -n team-a --all app=trainer
out_has "configmap/tuning labeled"
out_has "secret/hf-token labeled"

step "replace: a stale resourceVersion is refused, a fresh one accepted"
k get cm features -o yaml >"$T/stale.yaml"
ok patch cm features -p '{"data":{"extra":"1"}}'
fails replace -f "$T/stale.yaml"
err_has "Error from server (Conflict): error when replacing \"$T/stale.yaml\": Operation cannot be fulfilled on configmaps \"features\": the object has been modified; please apply your changes to the latest version and try again"
same "data untouched" '{"extra":"1","max-batch":"128"}' "$(J cm features '{.data}')"
k get cm features -o yaml | sed 's/"128"/"256"/' >"$T/fresh.yaml"
ok replace -f "$T/fresh.yaml"
out_eq "configmap/features replaced"
same "replaced value" 256 "$(J cm features '{.data.max-batch}')"
sed '/resourceVersion/d' "$T/fresh.yaml" | sed 's/"256"/"512"/' >"$T/norv.yaml"
ok replace -f "$T/norv.yaml"
same "replace without resourceVersion" 512 "$(J cm features '{.data.max-batch}')"

step "delete --cascade=orphan and --cascade=foreground send their propagation policy"
# Owners with a dependent each. The garbage collector finishes these deletions; until it
# runs, the owner waits with the finalizer the propagation policy asked for.
owner_with_dependent() {
    k create configmap "$1" >/dev/null
    local uid
    uid=$(J cm "$1" '{.metadata.uid}')
    cat <<EOF | k create -f - >/dev/null
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1-dep
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: $1, uid: $uid, blockOwnerDeletion: true}
EOF
}
owner_with_dependent orphaner
ok delete cm orphaner --cascade=orphan --wait=false
out_eq 'configmap "orphaner" deleted'
run get cm orphaner -o 'jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}'
case "$RC:$OUT" in
0:'["orphan"] '?*) pass ;;                  # held for the garbage collector
1:*) same "dependent left without owner" "" "$(J cm orphaner-dep '{.metadata.ownerReferences}')" ;;
*) fail "orphan delete: owner neither held by the orphan finalizer nor gone" ;;
esac
ok get cm orphaner-dep -o name
owner_with_dependent fg
ok delete cm fg --cascade=foreground --wait=false
out_eq 'configmap "fg" deleted'
run get cm fg -o 'jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}'
case "$RC:$OUT" in
0:'["foregroundDeletion"] '?*) pass ;;
1:*) fails get cm fg-dep ;; # the collector deleted the dependent first, then the owner
*) fail "foreground delete: owner neither held by foregroundDeletion nor gone" ;;
esac
ok create configmap plain
ok delete cm plain --cascade=background
out_eq 'configmap "plain" deleted'
fails get cm plain
ok delete cm plain --ignore-not-found
out_eq ""

finish
