#!/usr/bin/env bash
# Thermal throttling / slow CPU, simulated (not in CI): `styleframe bench
# --pipeline` on an idle CPU, then again with N busy loops (`yes > /dev/null`)
# competing for the cores. With `degrade_after_ms` set, the second run should
# show a smaller network size and a bounded latency instead of a growing one.
#
#   bench/cpu_hog.sh [SECONDS=20] [HOGS=2]
#   STYLEFRAME=path/to/styleframe MODELS=dir bench/cpu_hog.sh 30 2
set -euo pipefail

seconds=${1:-20}
hogs=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${STYLEFRAME:-$here/target/release/styleframe}
models=${MODELS:-$here/../shared/models}
degrade_ms=${DEGRADE_MS:-400}

[ -x "$bin" ] || { echo "cpu_hog: no binary at $bin (cargo build --release, or set STYLEFRAME)" >&2; exit 2; }

work=$(mktemp -d)
hog_pids=()
cleanup() {
    for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/bench.toml" <<TOML
[models]
dir = "$models"
[inference]
max_pixels = 57344      # 256x224-ish at 16:9 -> 176x320
min_pixels = 8192
degrade_after_ms = $degrade_ms
threads = 2
[display]
backend = "headless"
width = 640
height = 360
TOML

run() { # label
    echo "== $1"
    "$bin" bench --pipeline --seconds "$seconds" --config "$work/bench.toml" --models "$models" 2>"$work/$1.log" \
        | sed 's/^/   /'
    grep -h "network size" "$work/$1.log" | sed 's/^/   log: /' || true
}

run idle
for _ in $(seq 1 "$hogs"); do
    yes >/dev/null &
    hog_pids+=("$!")
done
run "with-$hogs-busy-loops"
