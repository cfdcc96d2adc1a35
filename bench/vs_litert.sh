#!/usr/bin/env bash
# styleframe vs the official TFLite runtime (LiteRT with XNNPACK), same networks, sizes,
# threads and inputs shape; prints ms for both and the ratio styleframe/LiteRT.
#   bench/vs_litert.sh [SHARED_DIR]      (default ../shared)
# The two run one network at a time, back to back (LiteRT, then styleframe), so that both
# see the same state of the machine: on a shared VM the speed of either drifts by up to 1.5x
# over tens of seconds.
# Needs Python 3 and PyPI (ai-edge-litert, numpy, pillow go into a venv in /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${1:-../shared}
venv=/var/tmp/styleframe-litert-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q ai-edge-litert numpy pillow; }
bin=${STYLEFRAME_BIN:-${CARGO_TARGET_DIR:-target}/release/styleframe}
[ -x "$bin" ] || cargo build --release
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
: >"$tmp/litert.tsv"; : >"$tmp/sf.txt"
for net in style_predict_quantized_256 style_transfer_f16_384 style_transfer_quantized_384; do
    "$venv/bin/python" bench/vs_litert.py "$shared/models" "$shared/reference/resized" "$net" 2>/dev/null >>"$tmp/litert.tsv"
    if [ "$net" = style_predict_quantized_256 ]; then
        "$bin" bench --models "$shared/models" --skip-transfer 2>/dev/null >>"$tmp/sf.txt"
    else
        "$bin" bench --models "$shared/models" --skip-predict --transfer "$net" 2>/dev/null >>"$tmp/sf.txt"
    fi
done
printf '%-30s %-8s %-7s %10s %10s %8s\n' network size threads styleframe LiteRT ratio
awk 'NR==FNR { lrt[$1" "$2" "$3] = $4; next }
     $1 ~ /^style_/ { k = $1" "$2" "$3; if (k in lrt) printf "%-30s %-8s %-7s %8.2f ms %7.2f ms %7.2fx\n", $1, $2, $3, $4, lrt[k], $4 / lrt[k] }' \
    "$tmp/litert.tsv" "$tmp/sf.txt"
grep -i "peak RSS" "$tmp/sf.txt" | sort -k3 -n | tail -1 || true
