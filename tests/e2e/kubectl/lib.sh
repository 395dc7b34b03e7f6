# SPDX-License-Identifier: Apache-2.0
#
# lib.sh: what every kubectl end-to-end test shares. A test is a bash script that sources
# this file with the corral executable and the kubectl to use as its arguments:
#
#     source "$(dirname "$0")/lib.sh" "$@"
#     start_apiserver
#     step "apply creates the objects"
#     ok apply -f "$M/app.yaml"
#     out_has "deployment.apps/web created"
#     finish
#
# start_apiserver runs the real `corral apiserver` on a loopback port it picks itself (port
# 0, read back from its "listening on URL" line) with a fresh data directory, and writes a
# kubeconfig for it; every kubectl call gets that kubeconfig, a fresh --cache-dir and a
# private $HOME, so nothing is shared with the user or with other tests. A failed check
# prints the command, its output and the server's log, and the test goes on so that one run
# shows every failure; finish exits 1 if any check failed. The apiserver, background watches
# and the temporary directory are cleaned up on every exit path (set CORRAL_KEEP_TMP=1 to
# keep the directory).
#
# Transport: E2E_TRANSPORT=tls (the default, what users run) serves HTTPS with the
# certificates, admin credentials and bootstrap tokens that `corral init` writes;
# E2E_TRANSPORT=http serves plain HTTP on loopback (--insecure-http), without authentication.

set -u

CORRAL=${1:?usage: $0 CORRAL_EXE [KUBECTL]}
KUBECTL=${2:-/usr/bin/kubectl}
E2E_TRANSPORT=${E2E_TRANSPORT:-tls}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
M=$HERE/manifests
SHARED=${CORRAL_SHARED_DIR:-$HERE/../../../../shared}

T=$(mktemp -d "${TMPDIR:-/tmp}/corral-e2e-XXXXXX") || exit 1
export HOME=$T/home
mkdir -p "$HOME"
export KUBECONFIG=$T/kubeconfig

FAILS=0
CHECKS=0
APISERVER_PID=
AGENT_PIDS=()
BG_PIDS=()
OUT=
ERR=
RC=0
LAST_CMD=

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    stop_agents
    stop_apiserver
    if [ "${CORRAL_KEEP_TMP:-}" ]; then
        echo "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- reporting ----

step() {
    echo "== $*"
}

fail() {
    FAILS=$((FAILS + 1))
    {
        echo "FAIL: $*"
        echo "  command: kubectl $LAST_CMD"
        echo "  exit code: $RC"
        echo "  stdout:"
        sed 's/^/    | /' <<<"$OUT"
        echo "  stderr:"
        sed 's/^/    | /' <<<"$ERR"
    } >&2
}

pass() {
    CHECKS=$((CHECKS + 1))
}

# Stops the apiserver, checks it exited cleanly (sanitizer reports make it exit non-zero),
# prints the summary (and the apiserver log when something failed) and exits.
finish() {
    bg_stop
    stop_agents
    if [ -n "$APISERVER_PID" ]; then
        kill -TERM "$APISERVER_PID" 2>/dev/null
        wait "$APISERVER_PID"
        local code=$?
        APISERVER_PID=
        LAST_CMD="(apiserver shutdown)" OUT= ERR= RC=$code
        if [ "$code" -eq 0 ]; then pass; else fail "the apiserver exited with $code"; fi
    fi
    if grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$T/apiserver.log"; then
        LAST_CMD="(apiserver log)" OUT=$(grep -E -A5 'runtime error:|Sanitizer' "$T/apiserver.log")
        fail "the apiserver log has sanitizer reports"
    fi
    if [ "$FAILS" -gt 0 ]; then
        echo "---- apiserver log (last 60 lines) ----" >&2
        tail -n 60 "$T/apiserver.log" >&2
        echo "$FAILS of $((CHECKS + FAILS)) checks failed" >&2
        exit 1
    fi
    echo "all $CHECKS checks passed"
    exit 0
}

# ---- the apiserver ----

write_http_kubeconfig() {
    cat >"$KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: $1
contexts:
- name: e2e
  context:
    cluster: e2e
    user: e2e
    namespace: default
current-context: e2e
users:
- name: e2e
  user: {}
EOF
}

# Writes the admin kubeconfig from `corral init`, pointed at the port the server picked.
write_tls_kubeconfig() {
    sed "s#server: https://127.0.0.1:[0-9]*#server: $1#" "$T/cluster/admin.kubeconfig" \
        >"$KUBECONFIG"
}

start_apiserver() {
    local args=(apiserver --listen 127.0.0.1:0 --data-dir "$T/data" "$@")
    if [ "$E2E_TRANSPORT" = tls ]; then
        "$CORRAL" init --dir "$T/cluster" >"$T/init.log" 2>&1 || {
            cat "$T/init.log" >&2
            echo "corral init failed" >&2
            exit 1
        }
        args+=(--cluster-dir "$T/cluster")
    else
        args+=(--insecure-http)
    fi
    : >"$T/apiserver.out"
    "$CORRAL" "${args[@]}" >>"$T/apiserver.out" 2>"$T/apiserver.log" &
    APISERVER_PID=$!
    local url= i
    for i in $(seq 200); do
        url=$(sed -n 's/^listening on //p' "$T/apiserver.out")
        [ -n "$url" ] && break
        if ! kill -0 "$APISERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    if [ -z "$url" ]; then
        echo "the apiserver did not start; its log:" >&2
        cat "$T/apiserver.log" >&2
        exit 1
    fi
    URL=$url
    if [ "$E2E_TRANSPORT" = tls ]; then
        write_tls_kubeconfig "$url"
    else
        write_http_kubeconfig "$url"
    fi
}

# The credentials a node agent joins with: over TLS the cluster CA and a bootstrap token
# from `corral init` (the agent then gets its own certificate), over HTTP none.
write_node_kubeconfig() {
    if [ "$E2E_TRANSPORT" != tls ]; then
        cp "$KUBECONFIG" "$1"
        return
    fi
    local ca token
    ca=$(sed -n 's/^ *certificate-authority-data: //p' "$T/cluster/admin.kubeconfig")
    token=$(grep -v '^#' "$T/cluster/bootstrap-tokens" | head -n 1 | cut -d' ' -f1)
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: corral
  cluster:
    server: $URL
    certificate-authority-data: $ca
users:
- name: bootstrap
  user:
    token: $token
contexts:
- name: bootstrap
  context: {cluster: corral, user: bootstrap}
current-context: bootstrap
EOF
}

# Starts a node agent: start_kubelet NAME ADDRESS TOPOLOGY.xml, and waits until its Node is
# Ready. The agent runs pods as plain processes (no cgroups) and serves their logs over
# HTTPS on ADDRESS (a loopback address) and a port it picks.
start_kubelet() {
    local name=$1 address=$2 topology=$3 i
    mkdir -p "$T/node-$name"
    write_node_kubeconfig "$T/node-$name/bootstrap.kubeconfig"
    : >"$T/node-$name/out"
    "$CORRAL" kubelet --apiserver "$URL" --kubeconfig "$T/node-$name/bootstrap.kubeconfig" \
        --name "$name" --state-dir "$T/node-$name/state" --address "$address" --port 0 \
        --topology "$topology" --no-cgroups --heartbeat-interval 1s \
        >>"$T/node-$name/out" 2>"$T/node-$name/log" &
    AGENT_PIDS+=($!)
    for i in $(seq 150); do
        if [ "$(J node "$name" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "node $name did not become Ready; its log:" >&2
    cat "$T/node-$name/log" >&2
    exit 1
}

# Starts `corral scheduler` with the admin credentials; it binds pods (node and GPUs).
start_scheduler() {
    "$CORRAL" scheduler --kubeconfig "$KUBECONFIG" --apiserver "$URL" \
        >"$T/scheduler.out" 2>"$T/scheduler.log" &
    AGENT_PIDS+=($!)
}

# Stops the node agents and the scheduler.
stop_agents() {
    local p
    for p in "${AGENT_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    AGENT_PIDS=()
}

stop_apiserver() {
    if [ -n "$APISERVER_PID" ]; then
        kill -TERM "$APISERVER_PID" 2>/dev/null
        wait "$APISERVER_PID" 2>/dev/null
        APISERVER_PID=
    fi
}

# ---- running kubectl ----

# kubectl with this test's kubeconfig and cache; never hangs longer than KTIMEOUT seconds.
k() {
    timeout "${KTIMEOUT:-60}" "$KUBECTL" --kubeconfig "$KUBECONFIG" --cache-dir "$T/cache" "$@"
}

# Runs kubectl ARGS..., keeping stdout in $OUT, stderr in $ERR and the exit code in $RC.
run() {
    LAST_CMD="$*"
    k "$@" >"$T/out" 2>"$T/err"
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
}

# Runs kubectl and expects success.
ok() {
    run "$@"
    if [ "$RC" -eq 0 ]; then pass; else fail "expected success"; fi
}

# Runs kubectl and expects failure (exit code 1, as kubectl reports server errors).
fails() {
    run "$@"
    if [ "$RC" -eq 1 ]; then pass; else fail "expected exit code 1"; fi
}

# ---- checks on the last command ----

out_has() {
    if grep -qF -- "$1" <<<"$OUT"; then pass; else fail "stdout lacks: $1"; fi
}

out_lacks() {
    if grep -qF -- "$1" <<<"$OUT"; then fail "stdout should not contain: $1"; else pass; fi
}

err_has() {
    if grep -qF -- "$1" <<<"$ERR"; then pass; else fail "stderr lacks: $1"; fi
}

# A line of stdout matches the extended regular expression.
out_matches() {
    if grep -qE -- "$1" <<<"$OUT"; then pass; else fail "no stdout line matches: $1"; fi
}

err_matches() {
    if grep -qE -- "$1" <<<"$ERR"; then pass; else fail "no stderr line matches: $1"; fi
}

out_eq() {
    if [ "$OUT" = "$1" ]; then pass; else fail "stdout is not exactly: $1"; fi
}

# stdout has exactly N lines matching the regular expression.
out_count() {
    local n
    n=$(grep -cE -- "$1" <<<"$OUT")
    if [ "$n" -eq "$2" ]; then pass; else fail "expected $2 stdout lines matching $1, saw $n"; fi
}

# Compares two values the test computed.
same() {
    if [ "$2" = "$3" ]; then pass; else
        fail "$1: '$2' != '$3'"
    fi
}

differs() {
    if [ "$2" != "$3" ]; then pass; else fail "$1: both are '$2'"; fi
}

# Retries kubectl ARGS... (up to 15 s) until stdout contains WANT: eventually WANT ARGS...
eventually() {
    local want=$1 i
    shift
    for i in $(seq 75); do
        run "$@"
        if grep -qF -- "$want" <<<"$OUT$ERR"; then
            pass
            return
        fi
        sleep 0.2
    done
    fail "never saw: $want"
}

# ---- background commands (watches, logs -f) ----

# Starts kubectl ARGS... in the background with its output in $T/NAME.out: bg NAME ARGS...
bg() {
    local name=$1
    shift
    # a simple command, so that $! is timeout itself, which passes SIGTERM on to kubectl
    timeout "${KTIMEOUT:-60}" "$KUBECTL" --kubeconfig "$KUBECONFIG" --cache-dir "$T/cache" \
        "$@" >"$T/$name.out" 2>&1 &
    BG_PIDS+=($!)
}

# Waits (up to 15 s) until the background output NAME has a line matching REGEX.
bg_wait() {
    local name=$1 re=$2 i
    for i in $(seq 150); do
        if grep -qE -- "$re" "$T/$name.out"; then
            pass
            return
        fi
        sleep 0.1
    done
    LAST_CMD="(background $name)"
    OUT=$(cat "$T/$name.out")
    ERR=
    RC=-
    fail "background output never matched: $re"
}

# Stops every background command.
bg_stop() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    BG_PIDS=()
}

# jsonpath shortcut: J RESOURCE NAME PATH [more kubectl args] prints the value.
J() {
    local res=$1 name=$2 path=$3
    shift 3
    k get "$res" "$name" -o "jsonpath=$path" "$@" 2>/dev/null
}
