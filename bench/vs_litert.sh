#!/usr/bin/env bash
# styleframe vs the official TFLite runtime (LiteRT with XNNPACK), same networks, sizes,
# threads and inputs shape, in one run; prints ms for both and the ratio styleframe/LiteRT.
#   bench/vs_litert.sh [SHARED_DIR]      (default ../shared)
# Needs Python 3 and PyPI (ai-edge-litert, numpy, pillow go into a venv in /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
venv=/var/tmp/styleframe-litert-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q ai-edge-litert numpy pillow; }
bin=${STYLEFRAME_BIN:-${CARGO_TARGET_DIR:-target}/release/styleframe}
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" bench/vs_litert.py "$shared/models" "$shared/reference/resized" 2>/dev/null | tee "$tmp/litert.tsv" >/dev/null
"$bin" bench --models "$shared/models" 2>/dev/null | tee "$tmp/sf.txt" >/dev/null
printf '%-30s %-8s %-7s %10s %10s %8s\n' network size threads styleframe LiteRT ratio
awk 'NR==FNR { lrt[$1" "$2" "$3] = $4; next }
     $1 ~ /^style_/ { k = $1" "$2" "$3; if (k in lrt) printf "%-30s %-8s %-7s %8.2f ms %7.2f ms %7.2fx\n", $1, $2, $3, $4, lrt[k], $4 / lrt[k] }' \
    "$tmp/litert.tsv" "$tmp/sf.txt"
grep -i "peak RSS" "$tmp/sf.txt" || true
