#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# CustomResourceDefinitions: applying one registers the kind (discovery, short names, the
# `all` category, OpenAPI for validation and `explain`); objects of it can be applied
# (client- and server-side), listed with the CRD's printer columns, watched, patched (status
# subresource included), described and deleted; the CRD's schema is enforced with
# Kubernetes' messages, defaults are filled in and unknown fields pruned.
source "$(dirname "$0")/lib.sh" "$@"
start_apiserver

step "objects of an unknown kind are refused before the CRD exists"
fails apply -f "$M/renderjobs.yaml"
err_matches 'RenderJob|renderjobs|studio\.example\.com'

step "apply the CRD: the kind appears in discovery"
ok apply -f "$M/crd.yaml"
out_eq "customresourcedefinition.apiextensions.k8s.io/renderjobs.studio.example.com created"
ok get crd
out_matches '^NAME +CREATED AT$'
out_matches '^renderjobs\.studio\.example\.com +[0-9]{4}-[0-9]{2}-[0-9]{2}T'
same "Established" True \
    "$(J crd renderjobs.studio.example.com '{.status.conditions[?(@.type=="Established")].status}')"
ok api-resources --api-group=studio.example.com
out_matches '^renderjobs +rj +studio\.example\.com/v1 +true +RenderJob$'

step "apply objects of the new kind"
ok apply -f "$M/renderjobs.yaml"
out_has "renderjob.studio.example.com/shot-042 created"
out_has "renderjob.studio.example.com/shot-043 created"
ok apply -f "$M/renderjobs.yaml"
out_count ' unchanged$' 2

step "get shows the CRD's printer columns; defaults are filled in"
ok get renderjobs
out_matches '^NAME +FRAMES +GPU +PHASE +AGE$'
out_matches '^shot-042 +240 +L40 +[0-9]+s$'
out_matches '^shot-043 +96 +RTX-4090 +[0-9]+s$'
ok get rj -o wide
out_matches '^NAME +FRAMES +GPU +PHASE +AGE +SCENE$'
out_matches '^shot-042 +240 +L40 +[0-9]+s +s3://scenes/shot042\.blend$'
ok get renderjob.studio.example.com shot-042 -o name
out_eq renderjob.studio.example.com/shot-042
same "defaulted samples" 128 "$(J rj shot-043 '{.spec.samples}')"
ok get rj shot-042 -o yaml
out_has "apiVersion: studio.example.com/v1"
out_has "kind: RenderJob"
out_has "  frames: 240"
ok get all
out_matches '^renderjob\.studio\.example\.com/shot-042 +240 +L40'
ok get rj -A
out_matches '^default +shot-042 +240'
ok get rj -l show=nebula -o name
out_eq renderjob.studio.example.com/shot-042

step "apply a changed manifest: merge patch updates in place"
uid=$(J rj shot-042 '{.metadata.uid}')
ok apply -f "$M/renderjobs-v2.yaml"
out_has "renderjob.studio.example.com/shot-042 configured"
out_has "renderjob.studio.example.com/shot-043 unchanged"
same "uid" "$uid" "$(J rj shot-042 '{.metadata.uid}')"
same "frames" 480 "$(J rj shot-042 '{.spec.frames}')"
same "gpuModel" RTX-3090 "$(J rj shot-042 '{.spec.gpuModel}')"
same "dropped label" "" "$(J rj shot-042 '{.metadata.labels}')"

step "the status subresource: only it changes status"
ok patch rj shot-042 --subresource=status --type=merge -p '{"status":{"phase":"Rendering"}}'
ok patch rj shot-042 --type=merge -p '{"status":{"phase":"Done"},"spec":{"frames":500}}'
same "phase" Rendering "$(J rj shot-042 '{.status.phase}')"
same "frames" 500 "$(J rj shot-042 '{.spec.frames}')"
ok get rj shot-042
out_matches '^shot-042 +500 +RTX-3090 +Rendering +[0-9]+s$'

step "patch types on custom objects"
ok patch rj shot-043 --type=json -p '[{"op":"replace","path":"/spec/frames","value":97}]'
same "frames" 97 "$(J rj shot-043 '{.spec.frames}')"
fails patch rj shot-043 --type=strategic -p '{"spec":{"frames":98}}'
err_matches 'strategic|UnsupportedMediaType|not supported'
ok patch rj shot-043 -p '{"spec":{"frames":99}}' --type=merge
same "frames" 99 "$(J rj shot-043 '{.spec.frames}')"

step "server-side apply of custom objects"
ok apply --server-side -f "$M/renderjobs-v2.yaml" --force-conflicts
out_has "renderjob.studio.example.com/shot-042 serverside-applied"
same "frames" 480 "$(J rj shot-042 '{.spec.frames}')"

step "get -w sees changes to custom objects"
bg watch get rj -w --output-watch-events
bg_wait watch '^ADDED +shot-042 +480 +RTX-3090 +Rendering'
ok patch rj shot-042 --type=merge -p '{"spec":{"frames":720}}'
bg_wait watch '^MODIFIED +shot-042 +720 +RTX-3090 +Rendering'
bg_stop

step "describe and explain"
ok describe rj shot-042
out_matches '^Name: +shot-042$'
out_matches '^Kind: +RenderJob$'
out_matches '^API Version: +studio\.example\.com/v1$'
out_matches '^ +Frames: +720$'
ok explain renderjob.spec
out_matches '^  frames\s+<integer> -required-$'
out_matches '^  gpuModel\s+<string>'

step "the schema is enforced with Kubernetes' messages"
bad() { # NAME SPEC-YAML: a RenderJob manifest in $T/NAME.yaml
    printf 'apiVersion: studio.example.com/v1\nkind: RenderJob\nmetadata:\n  name: %s\nspec:\n%s\n' \
        "$1" "$2" >"$T/$1.yaml"
}
bad unknown-field '  frames: 10
  scene: s3://x
  resolution: 4k'
fails apply -f "$T/unknown-field.yaml"
err_has 'RenderJob in version "v1" cannot be handled as a RenderJob: strict decoding error: unknown field "spec.resolution"'
bad zero-frames '  frames: 0
  scene: s3://x'
fails apply -f "$T/zero-frames.yaml"
err_has 'The RenderJob "zero-frames" is invalid: spec.frames: Invalid value: 0: spec.frames in body should be greater than or equal to 1'
bad wrong-type '  frames: many
  scene: s3://x'
fails apply -f "$T/wrong-type.yaml"
err_has 'spec.frames: Invalid value: "string": spec.frames in body must be of type integer: "string"'
bad wrong-gpu '  frames: 1
  scene: s3://x
  gpuModel: H100'
fails apply -f "$T/wrong-gpu.yaml"
err_has 'spec.gpuModel: Unsupported value: "H100": supported values: "RTX-4090", "RTX-3090", "L40", "T4"'
bad no-scene '  frames: 1'
fails apply -f "$T/no-scene.yaml"
err_has 'The RenderJob "no-scene" is invalid: spec.scene: Required value'
bad bad-scene '  frames: 1
  scene: gs://x'
fails apply -f "$T/bad-scene.yaml"
err_has "spec.scene in body should match '^s3://'"
fails get rj zero-frames
ok apply -f "$T/unknown-field.yaml" --validate=ignore
out_has "renderjob.studio.example.com/unknown-field created"
same "unknown field pruned" '{"frames":10,"gpuModel":"RTX-4090","samples":128,"scene":"s3://x"}' \
    "$(J rj unknown-field '{.spec}')"

step "delete objects, then the CRD: the kind goes away"
ok delete -f "$M/renderjobs-v2.yaml"
out_has 'renderjob.studio.example.com "shot-042" deleted'
out_has 'renderjob.studio.example.com "shot-043" deleted'
ok delete rj unknown-field
ok get rj
err_has "No resources found in default namespace."
ok apply -f "$T/unknown-field.yaml" --validate=ignore
ok delete -f "$M/crd.yaml"
out_eq 'customresourcedefinition.apiextensions.k8s.io "renderjobs.studio.example.com" deleted'
run get rj unknown-field
err_has 'the server could not find the requested resource' # kubectl's cached discovery
rm -rf "$T/cache"                                         # a fresh kubectl session
fails get rj
err_has 'the server doesn'"'"'t have a resource type "rj"'
fails get --raw /apis/studio.example.com/v1
ok apply -f "$M/crd.yaml"
ok get rj
err_has "No resources found in default namespace." # deleting the CRD deleted its objects

step "a schema pattern the regex engine must not compile is refused with the CRD"
sed "s/pattern: '^s3:\/\/'/pattern: '^s3:\/\/.+++\$'/; s/renderjob/costlyjob/g; s/RenderJob/CostlyJob/g; s/\[rj\]/[cj]/" \
    "$M/crd.yaml" >"$T/costly-crd.yaml"
grep -q "pattern: '^s3://.+++\$'" "$T/costly-crd.yaml" || fail "the test did not rewrite the pattern"
fails apply -f "$T/costly-crd.yaml"
err_has 'spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.scene.pattern: Invalid value: invalid nested repetition operator'

finish
