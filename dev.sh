#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# corral's developer entry point. Each command installs what is missing (Debian packages),
# builds, and then does its job:
#   ./dev.sh up      build and start an all-in-one cluster (see README)
#   ./dev.sh test    build with -Werror under ASan+UBSan and run the whole test suite
#   ./dev.sh bench   build optimised and run the benchmarks, printing name=value unit lines
#   ./dev.sh deps    only install the packages
set -eu

cd "$(dirname "$0")"

PACKAGES="gcc clang pkg-config meson ninja-build libjansson-dev libyaml-dev libsqlite3-dev
libmicrohttpd-dev libhwloc-dev hwloc libssl-dev openssl libcurl4-openssl-dev curl libzstd-dev
etcd-server libclang-rt-14-dev procps iproute2"

deps() {
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing:$missing"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
}

build_release() {
    [ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
    ninja -C build-release
}

build_test() {
    [ -d build-test ] || meson setup build-test -Dwerror=true -Db_sanitize=address,undefined \
        -Db_lundef=false >/dev/null
    ninja -C build-test
}

# Builds the libFuzzer targets with clang and runs each for FUZZ_SECONDS (default 20) on a
# scratch copy of its seed corpus.
fuzz_briefly() {
    [ -d build-fuzz ] || CC=clang meson setup build-fuzz -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
    for target in fuzz_yaml fuzz_query fuzz_protobuf fuzz_patch fuzz_structural; do
        ninja -C build-fuzz "tests/fuzz/$target" >/dev/null
        scratch=$(mktemp -d)
        cp tests/fuzz/corpus/"${target#fuzz_}"/* "$scratch"/
        echo "fuzzing $target for ${FUZZ_SECONDS:-20}s"
        status=0
        ./build-fuzz/tests/fuzz/"$target" -max_total_time="${FUZZ_SECONDS:-20}" \
            "$scratch" >"$scratch.log" 2>&1 || status=$?
        tail -3 "$scratch.log"
        rm -rf "$scratch" "$scratch.log"
        [ $status -eq 0 ] || { echo "$target found a crash"; return $status; }
    done
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
deps)
    deps
    ;;
up)
    deps
    build_release
    exec ./build-release/cmd/corral up "$@"
    ;;
test)
    deps
    build_test
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    meson test -C build-test --no-suite bench --print-errorlogs --num-processes 2 "$@"
    fuzz_briefly
    ;;
bench)
    deps
    build_release
    meson test -C build-release --suite bench --verbose "$@"
    ;;
*)
    sed -n '3,9p' "$0"
    exit 2
    ;;
esac
