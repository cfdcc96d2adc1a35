#!/bin/bash
# The engine's unit tests (every kernel against its portable reference, bit-exact
# for int8) cross-built and run under qemu-user on the Pi's cores:
#   aarch64 as a Pi 4 core (cortex-a72: NEON) and a Pi 5 core (cortex-a76: + dotprod,
#   fp16), so both the plain and the dot-product kernels run; armv7 as a Pi 2 core
#   (cortex-a7, NEON).
#
#   cross/test-engine.sh [aarch64|armv7|all] [-- TEST FILTER ARGS]   (default: all)
#
# Env: CROSS_TARGET_DIR (as cross/build.sh), STYLEFRAME_SHARED (the shared test data:
# some tests import the official model files).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target_dir=${CROSS_TARGET_DIR:-/var/tmp/styleframe-cross}
export STYLEFRAME_SHARED=${STYLEFRAME_SHARED:-$(cd "$root/.." && pwd)/shared}

which=${1:-all}
shift || true
[ "${1:-}" = "--" ] && shift
case "$which" in
    aarch64) runs=("aarch64-unknown-linux-gnu cortex-a72" "aarch64-unknown-linux-gnu cortex-a76") ;;
    armv7) runs=("armv7-unknown-linux-gnueabihf cortex-a7") ;;
    all) runs=("aarch64-unknown-linux-gnu cortex-a72" "aarch64-unknown-linux-gnu cortex-a76"
        "armv7-unknown-linux-gnueabihf cortex-a7") ;;
    *) echo "usage: $0 [aarch64|armv7|all] [-- FILTER]" >&2; exit 2 ;;
esac

status=0
for r in "${runs[@]}"; do
    read -r triple cpu <<<"$r"
    echo "== engine unit tests: $triple under qemu -cpu $cpu"
    # qemu-user reads the emulated core from QEMU_CPU.
    if ! (cd "$root" && QEMU_CPU=$cpu CARGO_TARGET_DIR="$target_dir" nice -n "${NICE:-0}" \
        cargo test --release --locked --config "$here/config.toml" --target "$triple" \
        -p styleframe-engine -- "$@"); then
        echo "FAIL: engine unit tests on $triple ($cpu)"
        status=1
    fi
done
exit $status
