#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Errors users meet, each with exit code 1 and a readable Kubernetes-style message: unknown
# fields (every write path), invalid quantities and GPU requests, invalid names and missing
# required fields, immutable fields, stale updates, missing and duplicate objects, missing
# and terminating namespaces, malformed bodies, and refused or missing credentials.
source "$(dirname "$0")/lib.sh" "$@"
start_apiserver

manifest() { # FILE: the manifest on stdin
    cat >"$T/$1"
}

step "unknown fields are named, on every write path"
manifest typo.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: 1
  selector: {matchLabels: {app: typo}}
  template:
    metadata: {labels: {app: typo}}
    spec:
      containers:
      - name: app
        image: registry.example.com/app:1
        imagePullPolice: Always
      restartPolicyy: Always
EOF
unknown='strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolice", unknown field "spec.template.spec.restartPolicyy"'
fails apply -f "$T/typo.yaml"
err_has "Error from server (BadRequest): error when creating \"$T/typo.yaml\": Deployment in version \"v1\" cannot be handled as a Deployment: $unknown"
fails create -f "$T/typo.yaml"
err_has "$unknown"
fails apply --server-side -f "$T/typo.yaml"
err_has "$unknown"
sed 's/imagePullPolice/imagePullPolicy/; s/restartPolicyy/restartPolicy/' "$T/typo.yaml" >"$T/fixed.yaml"
ok apply -f "$T/fixed.yaml"
fails replace -f "$T/typo.yaml"
err_has "$unknown"
# kubectl patch asks for no field validation: the server's default, Warn, drops the field
ok patch deploy typo --type=merge -p '{"spec":{"replica":2}}'
err_has 'Warning: unknown field "spec.replica"'
same "dropped, not stored" "" "$(J deploy typo '{.spec.replica}')"
ok apply -f "$T/typo.yaml" --validate=warn
err_has 'Warning: unknown field "spec.template.spec.restartPolicyy"'
ok apply -f "$T/typo.yaml" --validate=ignore
same "no warning with --validate=ignore" "" "$ERR"
same "dropped, not stored" "" "$(J deploy typo '{.spec.template.spec.restartPolicyy}')"

step "Job policies: a bad podFailurePolicy is named, one corral does not enforce is flagged"
manifest policy.yaml <<'EOF2'
apiVersion: batch/v1
kind: Job
metadata: {name: policy}
spec:
  suspend: true
  completionMode: Indexed
  completions: 2
  backoffLimitPerIndex: 1
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [42]}
  template:
    spec:
      restartPolicy: OnFailure
      containers:
      - {name: main, image: busybox, command: ["true"]}
EOF2
fails apply -f "$T/policy.yaml"
err_has 'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified'
sed -i 's/restartPolicy: OnFailure/restartPolicy: Never/' "$T/policy.yaml"
ok apply -f "$T/policy.yaml"
err_has 'Warning: spec.backoffLimitPerIndex is stored but not acted on by corral: failures count against spec.backoffLimit'
same "the policy is kept" "FailJob" "$(J job policy '{.spec.podFailurePolicy.rules[0].action}')"
ok delete -f "$T/policy.yaml"

step "invalid quantities and GPU requests"
manifest quantity.yaml <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: badq}
spec:
  containers:
  - name: app
    image: busybox
    resources:
      limits: {cpu: two, memory: 1Gx}
EOF
fails apply -f "$T/quantity.yaml"
err_has 'The Pod "badq" is invalid:'
err_has 'spec.containers[0].resources.limits.cpu: invalid quantity "two"'
err_has 'spec.containers[0].resources.limits.memory: invalid quantity "1Gx"'
run get pod badq
same "nothing stored" 1 "$RC"
manifest gpu.yaml <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: badgpu}
spec:
  containers:
  - name: app
    image: cuda:12
    resources:
      limits: {nvidia.com/gpu: 1.5}
  - name: share
    image: cuda:12
    resources:
      limits: {corral.io/gpu-milli: 1500}
EOF
fails apply -f "$T/gpu.yaml"
err_has 'spec.containers[0].resources.limits.nvidia.com/gpu: Invalid value: must be an integer'
err_has 'spec.containers[1].resources.limits.corral.io/gpu-milli: Invalid value: a GPU share must be below 1000 (ask for whole GPUs with nvidia.com/gpu)'

step "invalid names, missing required fields, immutable fields"
fails create configmap Bad_Name
err_has 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
manifest noimage.yaml <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  containers: [{name: app}]
EOF
fails apply -f "$T/noimage.yaml"
err_has 'The Pod "noimage" is invalid: spec.containers[0].image: Required value'
fails patch deploy typo -p '{"spec":{"selector":{"matchLabels":{"app":"other"}}}}'
err_has 'The Deployment "typo" is invalid'
err_has 'spec.selector: Invalid value: field is immutable'
ok create service clusterip fixed-ip --tcp=80
fails patch svc fixed-ip -p '{"spec":{"clusterIP":"10.96.99.99"}}'
err_matches 'spec\.clusterIP: Invalid value: "10\.96\.99\.99": field is immutable'

step "a stale resourceVersion is a conflict, for apply too"
ok create configmap shared --from-literal=v=1
stale=$(J cm shared '{.metadata.resourceVersion}')
ok patch cm shared -p '{"data":{"v":"2"}}'
manifest stale.yaml <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: shared, resourceVersion: "$stale"}
data: {v: "3"}
EOF
fails apply -f "$T/stale.yaml"
err_has 'Error from server (Conflict)'
err_has 'Operation cannot be fulfilled on configmaps "shared": the object has been modified; please apply your changes to the latest version and try again'
fails replace -f "$T/stale.yaml"
err_has 'Operation cannot be fulfilled on configmaps "shared"'
same "value kept" 2 "$(J cm shared '{.data.v}')"

step "missing objects, for every verb"
for args in "get deploy ghost" "describe deploy ghost" "delete deploy ghost" \
    "patch deploy ghost -p {}" "label deploy ghost a=b" "annotate deploy ghost a=b" \
    "scale deploy ghost --replicas=1" "rollout restart deploy ghost" "edit deploy ghost"; do
    # shellcheck disable=SC2086
    fails $args
    err_has 'deployments.apps "ghost" not found'
done
fails logs ghost
err_has 'pods "ghost" not found'
fails get rs ghost -n nowhere
err_has 'namespaces "nowhere" not found'

step "objects that already exist"
fails create -f "$T/fixed.yaml"
err_has "Error from server (AlreadyExists): error when creating \"$T/fixed.yaml\": deployments.apps \"typo\" already exists"
fails create configmap shared
err_has 'configmaps "shared" already exists'

step "missing and terminating namespaces"
manifest lost.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata: {name: lost, namespace: nowhere}
data: {a: "1"}
EOF
fails apply -f "$T/lost.yaml"
err_has "Error from server (NotFound): error when creating \"$T/lost.yaml\": namespaces \"nowhere\" not found"
ok create namespace closing
ok create configmap keep -n closing --from-literal=a=1
ok delete namespace closing --wait=false
ok get ns closing
out_matches '^closing +Terminating +'
fails create configmap late -n closing --from-literal=a=1
err_has 'unable to create new content in namespace closing because it is being terminated'
eventually 'namespaces "closing" not found' get ns closing
fails delete namespace default
err_has 'namespaces "default" is forbidden: this namespace may not be deleted'

step "bodies the server cannot read"
printf '{"apiVersion":"v1","kind":"ConfigMap",\n "metadata": {"name": "x"},\n "data": {"a": 1,}\n}\n' >"$T/broken.json"
fails create --raw /api/v1/namespaces/default/configmaps -f "$T/broken.json"
err_matches 'BadRequest.*line 3'
fails patch cm shared --type=json -p '{"op":"add"}'
err_has "The request is invalid"

step "kinds the server does not serve"
manifest widget.yaml <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
EOF
fails apply -f "$T/widget.yaml"
err_matches 'Widget|example\.com|could not find the requested resource'
fails get widgets
err_has 'the server doesn'"'"'t have a resource type "widgets"'

if [ "$E2E_TRANSPORT" = tls ]; then
    step "credentials: refused, missing, wrong"
    fails get pods --as=system:serviceaccount:default:nobody
    err_has 'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:nobody" cannot list resource "pods" in API group "" in the namespace "default"'
    run auth can-i create pods --as=alice
    out_eq no
    ok create role pod-reader --verb=get,list,watch --resource=pods
    ok create rolebinding alice-reads --role=pod-reader --user=alice
    ok get role pod-reader
    out_matches '^NAME +CREATED AT$'
    ok get rolebinding alice-reads -o wide
    out_matches '^NAME +ROLE +AGE +USERS +GROUPS +SERVICEACCOUNTS$'
    out_matches '^alice-reads +Role/pod-reader +[0-9]+s +alice *$'
    run auth can-i list pods --as=alice
    out_eq yes
    ok get pods --as=alice
    fails delete cm shared --as=alice
    err_has 'Error from server (Forbidden): configmaps "shared" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "default"'
    sed 's/^\( *token:\).*/\1 not-a-valid-token/' "$KUBECONFIG" >"$T/wrong.kubeconfig"
    run --kubeconfig "$T/wrong.kubeconfig" --context admin-token@corral get pods
    err_has 'error: You must be logged in to the server'
    same "exit code" 1 "$RC"
fi

finish
