#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Discovery, then client-side `kubectl apply` of a multi-document manifest (Namespace,
# Deployment, Service, Job), re-apply, apply of a changed manifest, every `get` output
# format, `get all`, multi-kind gets, `-A`, `--show-labels`, `describe`, `delete -f`, and
# `kubectl version`.
source "$(dirname "$0")/lib.sh" "$@"
start_apiserver

step "kubectl version talks to the server (the dispatcher picks kubectl 1.32)"
ok version
out_has "Client Version: v1.32"
out_matches "^Server Version: v1\.32\."

# What kubectl itself writes into the last-applied-configuration annotation of each version
# of the Deployment (computed while nothing exists, so the dry run prints the whole object).
LAST_APPLIED='jsonpath={.items[1].metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}'
want_v1=$(k apply -f "$M/app.yaml" --dry-run=client -o "$LAST_APPLIED")
want_v2=$(k apply -f "$M/app-v2.yaml" --dry-run=client -o "$LAST_APPLIED")

step "discovery: short names, the all category, legacy documents for older clients"
ok api-resources
out_matches '^pods +po +v1 +true +Pod$'
out_matches '^services +svc +v1 +true +Service$'
out_matches '^nodes +no +v1 +false +Node$'
out_matches '^namespaces +ns +v1 +false +Namespace$'
out_matches '^events +ev +v1 +true +Event$'
out_matches '^deployments +deploy +apps/v1 +true +Deployment$'
ok api-resources --categories=all -o name
out_eq "pods
services
deployments.apps
replicasets.apps
jobs.batch"
ok get --raw /api
out_has '"kind":"APIVersions"'
ok get --raw /api/v1
out_has '"kind":"APIResourceList"'
out_has '"name":"pods/log"'
ok get --raw /apis/apps/v1
out_has '"name":"deployments/scale"'
ok api-versions
out_has "apps/v1"

step "apply creates all four objects"
ok apply -f "$M/app.yaml"
out_has "namespace/shop created"
out_has "deployment.apps/web created"
out_has "service/web created"
out_has "job.batch/train created"
uid=$(J deploy web '{.metadata.uid}' -n shop)
rv=$(J deploy web '{.metadata.resourceVersion}' -n shop)

step "re-applying the same manifest changes nothing"
ok apply -f "$M/app.yaml"
out_count ' unchanged$' 4
same "resourceVersion after a no-op apply" "$rv" "$(J deploy web '{.metadata.resourceVersion}' -n shop)"

step "the last-applied-configuration annotation is kept byte for byte"
stored_last_applied() {
    J deploy web '{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}' -n shop
}
differs "kubectl's own last-applied-configuration" "" "$want_v1"
same "stored last-applied-configuration after create" "$want_v1" "$(stored_last_applied)"
ok apply -f "$M/app-v2.yaml"
out_has "namespace/shop unchanged"
out_has "deployment.apps/web configured"
out_has "service/web configured"
out_has "job.batch/train unchanged"
same "stored last-applied-configuration after update" "$want_v2" "$(stored_last_applied)"

step "the changed manifest updated the objects in place"
same "uid" "$uid" "$(J deploy web '{.metadata.uid}' -n shop)"
same "replicas" 3 "$(J deploy web '{.spec.replicas}' -n shop)"
same "image" vllm/vllm-openai:v0.6.4 "$(J deploy web '{.spec.template.spec.containers[0].image}' -n shop)"
same "generation" 2 "$(J deploy web '{.metadata.generation}' -n shop)"
same "dropped label" "" "$(J deploy web '{.metadata.labels.tier}' -n shop)"
same "kept label" web "$(J deploy web '{.metadata.labels.app}' -n shop)"
same "env after dropping LOG_LEVEL" MODEL_CACHE \
    "$(J deploy web '{.spec.template.spec.containers[0].env[*].name}' -n shop)"
same "service ports" "80 9090" "$(J svc web '{.spec.ports[*].port}' -n shop)"

step "get: default columns"
ok get deploy -n shop
out_matches '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE$'
out_matches '^web +[0-3]/3 +[0-3] +[0-3] +[0-9]+s$'
ok get svc web -n shop
out_matches '^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE$'
out_matches '^web +ClusterIP +10\.[0-9.]+ +<none> +80/TCP,9090/TCP +[0-9]+s$'
ok get jobs -n shop
out_matches '^NAME +STATUS +COMPLETIONS +DURATION +AGE$'
out_matches '^train +[A-Za-z]+ +0/1 '
ok get ns shop
out_matches '^shop +Active +[0-9]+s$'
run get pods -n default
same "exit code of an empty list" 0 "$RC"
err_has "No resources found in default namespace."
step "the built-in controllers made pods for the Deployment and the Job"
eventually "web-" get pods -n shop -l app=web -o name
eventually "train-" get pods -n shop -l job-name=train -o name
eventually "replicaset.apps/web-" get rs -n shop -o name

step "get: wide, yaml, json, name, jsonpath, custom-columns"
ok get deploy web -n shop -o wide
out_matches '^NAME +READY +UP-TO-DATE +AVAILABLE +AGE +CONTAINERS +IMAGES +SELECTOR$'
out_matches '^web +[0-3]/3 +[0-3] +[0-3] +[0-9]+s +server +vllm/vllm-openai:v0\.6\.4 +app=web$'
ok get svc -n shop -o wide
out_matches ' app=web$'
ok get deploy web -n shop -o yaml
out_has "kind: Deployment"
out_has "apiVersion: apps/v1"
out_has "  replicas: 3"
out_has "  namespace: shop"
out_lacks "managedFields"
ok get deploy web -n shop -o json
out_has '"kind": "Deployment"'
out_has '"image": "vllm/vllm-openai:v0.6.4"'
ok get deploy,svc,job -n shop -o name
out_eq "deployment.apps/web
service/web
job.batch/train"
ok get deploy web -n shop -o 'jsonpath={.spec.template.spec.containers[0].resources.limits.nvidia\.com/gpu}'
out_eq 1
ok get svc -n shop -o 'custom-columns=NAME:.metadata.name,PORTS:.spec.ports[*].port'
out_matches '^web +80,9090$'
ok get svc web -n shop -o 'go-template={{.spec.type}}'
out_eq ClusterIP

step "get all, several kinds at once, all namespaces, labels"
ok get all -n shop
out_matches '^service/web +ClusterIP'
out_matches '^deployment\.apps/web +[0-3]/3'
out_matches '^job\.batch/train +'
ok get deploy,svc -n shop
out_matches '^deployment\.apps/web '
out_matches '^service/web '
ok get deploy -A
out_matches '^NAMESPACE +NAME +READY'
out_matches '^shop +web +[0-3]/3'
ok get ns --show-labels
out_matches '^shop +Active +[0-9]+s +kubernetes\.io/metadata\.name=shop,team=ml$|^shop +Active +[0-9]+s +team=ml$'
ok get deploy -n shop --show-labels
out_matches '^web .* app=web$'
ok get deploy -n shop -l app=web -o name
out_eq deployment.apps/web
ok get deploy -n shop -l app=nope
ok get deploy -n shop --field-selector metadata.name=web -o name
out_eq deployment.apps/web

step "short names and resource.group names"
ok get deploy.apps web -n shop -o name
out_eq deployment.apps/web
ok get deployments.v1.apps -n shop -o name
out_eq deployment.apps/web
ok get svc,ns shop -o name --ignore-not-found
ok get no
ok get ev -n shop

step "describe"
ok describe deploy web -n shop
out_matches '^Name: +web$'
out_matches '^Namespace: +shop$'
out_matches '^Replicas: +3 desired'
out_matches '^ +Image: +vllm/vllm-openai:v0\.6\.4$'
out_matches 'nvidia\.com/gpu: +1'
ok describe svc web -n shop
out_matches '^Selector: +app=web$'
out_matches '^Port: +http +80/TCP$'
ok describe job train -n shop
out_matches '^Completions: +1$'
ok describe ns shop
out_matches '^Status: +Active$'

step "delete -f removes everything, namespace last"
ok delete -f "$M/app-v2.yaml"
out_has 'namespace "shop" deleted'
out_has 'deployment.apps "web" deleted'
out_has 'service "web" deleted'
out_has 'job.batch "train" deleted'
fails get ns shop
err_has 'namespaces "shop" not found'
fails get deploy web -n shop
err_has 'namespaces "shop" not found'

step "delete -f again: every object is reported missing"
fails delete -f "$M/app-v2.yaml"
err_has 'Error from server (NotFound): error when deleting'
err_has 'namespaces "shop" not found'
ok delete -f "$M/app-v2.yaml" --ignore-not-found

finish
