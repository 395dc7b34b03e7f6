#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Server-side apply: create on PATCH, managedFields, conflicts between field managers and
# --force-conflicts, co-owned fields, removal of fields a manager stops applying, and the
# migration kubectl performs from client-side apply (kubectl-client-side-apply and the
# last-applied annotation, via the kubectl-last-applied manager).
source "$(dirname "$0")/lib.sh" "$@"
start_apiserver

managers() { # RESOURCE NAME [args]: "manager/operation" of every managedFields entry
    J "$1" "$2" '{range .metadata.managedFields[*]}{.manager}/{.operation} {end}' "${@:3}"
}
fields_of() { # RESOURCE NAME MANAGER [args]: the manager's fieldsV1
    J "$1" "$2" "{.metadata.managedFields[?(@.manager==\"$3\")].fieldsV1}" "${@:4}"
}

step "apply --server-side creates every object (a PATCH that creates)"
ok apply --server-side -f "$M/app.yaml"
out_has "namespace/shop serverside-applied"
out_has "deployment.apps/web serverside-applied"
out_has "service/web serverside-applied"
out_has "job.batch/train serverside-applied"
same "replicas" 2 "$(J deploy web '{.spec.replicas}' -n shop)"
same "managers" "kubectl/Apply " "$(managers deploy web -n shop)"
rv=$(J deploy web '{.metadata.resourceVersion}' -n shop)

step "re-applying the same configuration writes nothing"
sleep 1.1 # managedFields times have 1 s resolution: a later second must not count as a change
ok apply --server-side -f "$M/app.yaml"
out_count ' serverside-applied$' 4
same "resourceVersion" "$rv" "$(J deploy web '{.metadata.resourceVersion}' -n shop)"

step "managedFields are hidden unless asked for"
ok get deploy web -n shop -o yaml
out_lacks "managedFields"
ok get deploy web -n shop -o yaml --show-managed-fields
out_has "managedFields:"
out_has "manager: kubectl"
out_has "operation: Apply"
out_has "fieldsType: FieldsV1"
out_has 'k:{"name":"server"}:'

step "a second manager changing kubectl's fields gets a 409 naming each field"
fails apply --server-side --field-manager=ci -f "$M/app-v2.yaml"
err_has "Apply failed with"
err_has 'conflict with "kubectl": .spec.replicas'
err_has '.spec.template.spec.containers[name="server"].image'
err_has "--force-conflicts"
same "replicas untouched" 2 "$(J deploy web '{.spec.replicas}' -n shop)"

step "--force-conflicts takes the contested fields over"
ok apply --server-side --field-manager=ci --force-conflicts -f "$M/app-v2.yaml"
out_has "deployment.apps/web serverside-applied"
same "replicas" 3 "$(J deploy web '{.spec.replicas}' -n shop)"
same "image" vllm/vllm-openai:v0.6.4 \
    "$(J deploy web '{.spec.template.spec.containers[0].image}' -n shop)"
same "managers" "kubectl/Apply ci/Apply " "$(managers deploy web -n shop)"
kfields=$(fields_of deploy web kubectl -n shop)
cfields=$(fields_of deploy web ci -n shop)
case "$kfields" in *'"f:replicas"'*) fail "kubectl still owns .spec.replicas: $kfields" ;; *) pass ;; esac
case "$cfields" in *'"f:replicas"'*) pass ;; *) fail "ci does not own .spec.replicas: $cfields" ;; esac
case "$kfields" in *'"f:selector"'*) pass ;; *) fail "kubectl lost .spec.selector: $kfields" ;; esac

step "kubectl applying the new manifest: agreeing values are shared, dropped fields go"
ok apply --server-side -f "$M/app-v2.yaml"
same "label kubectl stopped applying" "" "$(J deploy web '{.metadata.labels.tier}' -n shop)"
same "env kubectl stopped applying" MODEL_CACHE \
    "$(J deploy web '{.spec.template.spec.containers[*].env[*].name}' -n shop)"
same "service ports" "80 9090" "$(J svc web '{.spec.ports[*].port}' -n shop)"
kfields=$(fields_of deploy web kubectl -n shop)
case "$kfields" in *'"f:replicas"'*) pass ;; *) fail "kubectl does not co-own .spec.replicas" ;; esac

step "a field another client updated through a subresource conflicts too"
ok scale deploy web -n shop --replicas=5
fails apply --server-side -f "$M/app-v2.yaml"
err_matches 'conflict with "kubectl" with subresource "scale" using apps/v1 at [0-9T:-]+Z: \.spec\.replicas'
ok apply --server-side --force-conflicts -f "$M/app-v2.yaml"
same "replicas taken back" 3 "$(J deploy web '{.spec.replicas}' -n shop)"

step "a field stays while any manager still applies it"
cat >"$T/cm-ab.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {a: "1", b: "2"}
EOF
cat >"$T/cm-b.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {b: "2"}
EOF
cat >"$T/cm-a.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {a: "1"}
EOF
cat >"$T/cm-c.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {c: "3"}
EOF
ok apply --server-side -f "$T/cm-ab.yaml"
ok apply --server-side --field-manager=ci -f "$T/cm-b.yaml"
ok apply --server-side -f "$T/cm-a.yaml"
same "data after kubectl drops b (ci still applies it)" '{"a":"1","b":"2"}' \
    "$(J cm settings '{.data}' -n shop)"
ok apply --server-side --field-manager=ci -f "$T/cm-c.yaml"
same "data after ci drops b too" '{"a":"1","c":"3"}' "$(J cm settings '{.data}' -n shop)"

step "--dry-run=server changes nothing"
rv=$(J cm settings '{.metadata.resourceVersion}' -n shop)
ok apply --server-side --dry-run=server -f "$T/cm-ab.yaml"
out_has "configmap/settings serverside-applied (server dry run)"
same "resourceVersion" "$rv" "$(J cm settings '{.metadata.resourceVersion}' -n shop)"
same "data" '{"a":"1","c":"3"}' "$(J cm settings '{.data}' -n shop)"

step "moving from client-side to server-side apply migrates field ownership"
cat >"$T/limits.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: limits
  namespace: shop
  labels: {owner: platform}
data: {gpus: "8", cpus: "64"}
EOF
ok apply -f "$T/limits.yaml"
out_has "configmap/limits created"
same "managers after client-side apply" "kubectl-client-side-apply/Update " \
    "$(managers cm limits -n shop)"
ok apply --server-side -f "$T/limits.yaml"
out_has "configmap/limits serverside-applied"
m=$(managers cm limits -n shop)
case "$m" in *kubectl-client-side-apply*) fail "client-side manager left: $m" ;; *) pass ;; esac
case "$m" in *"kubectl/Apply"*) pass ;; *) fail "no kubectl Apply entry: $m" ;; esac
case "$m" in *"kubectl-last-applied/Apply"*) pass ;; *) fail "no kubectl-last-applied: $m" ;; esac
sed -i 's/, cpus: "64"//' "$T/limits.yaml"
ok apply --server-side -f "$T/limits.yaml"
same "data after dropping cpus" '{"gpus":"8"}' "$(J cm limits '{.data}' -n shop)"

step "server-side apply into a namespace that does not exist"
sed 's/namespace: shop/namespace: nowhere/' "$T/cm-a.yaml" >"$T/cm-nowhere.yaml"
fails apply --server-side -f "$T/cm-nowhere.yaml"
err_has 'namespaces "nowhere" not found'

step "delete -f of server-side applied objects"
ok delete -f "$M/app-v2.yaml"
out_has 'namespace "shop" deleted'
fails get cm settings -n shop

finish
