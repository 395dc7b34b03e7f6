#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `corral up` end to end, as the README's run command uses it: init, HTTPS apiserver,
# scheduler, five node agents on real hwloc topologies, the example manifests, the placement
# table. Asserts that every example pod is placed where its GPU needs say:
#   - the training Job's pod gets all four GPUs of an NVLink H100/H200 machine;
#   - the inference pods (12 GiB, inference class) land on T4s, never on training GPUs;
#   - render frames land on GPUs with RT cores (T4, RTX 3070), never on H100/H200/GTX 1070;
#   - the notebooks share one GPU 300/1000 each.
# Usage: test_up.sh CORRAL_EXE
set -u
CORRAL=${1:?usage: $0 CORRAL_EXE}
T=$(mktemp -d /tmp/corral-up-test-XXXXXX)
cleanup() {
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

fail=0
check() { # description, then a command that must succeed
    local what=$1
    shift
    if "$@"; then
        echo "ok   $what"
    else
        echo "FAIL $what"
        fail=1
    fi
}

# a relative --dir, as `./dev.sh up` runs it (./corral-up): files the kubeconfigs name must
# still be found, since a kubeconfig's relative paths are read from its own directory
(cd "$T" && timeout 300 "$CORRAL" up --dir cluster --port 0 --wait 120 --exit) >"$T/out" 2>&1
rc=$?
cat "$T/out"
check "corral up exits 0" test "$rc" -eq 0
check "five nodes became Ready" grep -q "corral up: 5 nodes Ready" "$T/out"

placed() { # pod-name-prefix node-regex gpu-regex
    awk -v p="$1" '$2 ~ "^"p {print}' "$T/out" | grep -Eq "Running +$2 +$3"
}
check "training pod on all four NVLink GPUs of an H100/H200 node" \
    placed llm-finetune "h[12]00-a" "0:H[12]00[^ ]* 1:H[12]00[^ ]* 2:H[12]00[^ ]* 3:H[12]00"
check "both inference pods on T4s" \
    test "$(awk '$2 ~ /^llm-inference/ && $3 == "Running" && $4 == "t4-a"' "$T/out" | wc -l)" -eq 2
check "render frames only on RT-core GPUs" \
    test "$(awk '$2 ~ /^render-frames/ && $4 !~ /^(t4-a|rtx3070-anna)$/' "$T/out" | wc -l)" -eq 0
check "render frames placed" \
    test "$(awk '$2 ~ /^render-frames/ && $3 == "Running"' "$T/out" | wc -l)" -ge 2
check "three notebooks share GPUs at 300/1000" \
    test "$(grep -c 'notebooks.*(300/1000 shared)' "$T/out")" -eq 3
no_unplaced() { ! grep -q '<none>' "$T/out"; }
no_daemons() { # no process is left running in the test's directory
    local p
    for p in $(pgrep -f "$CORRAL"); do
        [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" != "$T" ] || return 1
    done
}
check "no pod left unplaced" no_unplaced
check "every daemon stopped" no_daemons
[ $fail -eq 0 ] || { echo "logs:"; tail -n 20 "$T"/cluster/logs/*.log; }
exit $fail
