#!/bin/bash
# Run the cross-compiled binary under qemu-user and compare it with the native one.
#
#   cross/qemu-check.sh [aarch64|armv7]        (default aarch64)
#
# 1. `styleframe --help` / `--version` under qemu;
# 2. `styleframe still` under qemu and natively, for the fp16 transfer network
#    (`styleframe psnr` of the two >= MIN_DB: only float rounding may differ) and
#    for the int8 one with the style predicted by the int8 prediction network
#    (identical pixels: every int8 path is exact);
# 3. `styleframe doctor --config C` under qemu must exit 10 (no camera here:
#    config and models are fine, the camera check is the first to fail).
#
# Env: CROSS_BIN (default dist/styleframe-ARCH), HOST_BIN (default
#      $CARGO_TARGET_DIR/release/styleframe), MODEL_MIRROR (default /work/shared/models),
#      MODELS_META_DIR (styles.json + manifest.toml, default <repo>/models),
#      CONTENT (default /work/shared/images/content/tubingen.jpg), STYLE (starry_night),
#      PAINTING (a painting for the int8 prediction network: ../style/the_scream.jpg
#      beside CONTENT),
#      SIZE (HxW, default 192x256: qemu's TCG is slow), MIN_DB (70),
#      QEMU (the runner; QEMU="" runs CROSS_BIN natively, to dry-run this script).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
arch=${1:-aarch64}
case "$arch" in
    aarch64) qemu="qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7) qemu="qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
    *) echo "usage: $0 [aarch64|armv7]" >&2; exit 2 ;;
esac
# QEMU="" runs CROSS_BIN directly: a dry run of this script with a native binary.
qemu=${QEMU-$qemu}
cross_bin=${CROSS_BIN:-$repo/dist/styleframe-$arch}
host_bin=${HOST_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/styleframe}
mirror=${MODEL_MIRROR:-/work/shared/models}
meta=${MODELS_META_DIR:-$repo/models}
content=${CONTENT:-/work/shared/images/content/tubingen.jpg}
style=${STYLE:-starry_night}
painting=${PAINTING:-$(dirname "$content")/../style/the_scream.jpg}
size=${SIZE:-192x256}
min_db=${MIN_DB:-70}

bad=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; bad=$((bad + 1)); }
[ -x "$cross_bin" ] || { echo "no $cross_bin (run cross/build.sh $arch)" >&2; exit 1; }
[ -z "$qemu" ] || command -v "${qemu%% *}" >/dev/null || { echo "${qemu%% *} missing (apt-get install qemu-user-static)" >&2; exit 1; }

work=$(mktemp -d /tmp/styleframe-qemu.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A models dir as installed by the .deb: the network files + styles.json + manifest.
models=$work/models
mkdir -p "$models"
for f in "$mirror"/*.tflite; do ln -s "$f" "$models/"; done
for f in styles.json manifest.toml; do
    [ -f "$meta/$f" ] && cp "$meta/$f" "$models/" || echo "note: $meta/$f missing"
done

# shellcheck disable=SC2086
run_cross() { $qemu "$cross_bin" "$@"; }

echo "== 1. --help / --version under qemu"
if run_cross --help >"$work/help.txt" 2>&1; then
    ok "--help under qemu ($(head -1 "$work/help.txt"))"
else
    fail "--help under qemu:"; sed 's/^/    /' "$work/help.txt" | head -20
fi
run_cross --version >"$work/version.txt" 2>&1 && ok "--version: $(cat "$work/version.txt")" ||
    fail "--version: $(head -3 "$work/version.txt")"

echo "== 2. still: qemu vs native, each transfer network"
# fp16 file: float rounding may differ (>= MIN_DB); int8 file, with the style
# predicted from a painting by the int8 prediction network: identical pixels.
still_pair() { # NAME MODEL STYLE
    local name=$1 model=$2 st=$3 start=$SECONDS
    if run_cross still "$content" "$work/$name-cross.png" --style "$st" --size "$size" --models "$models" \
        --model "$model" --threads 1 >"$work/$name-cross.log" 2>&1; then
        ok "$name: still under qemu ($((SECONDS - start)) s)"
    else
        fail "$name: still under qemu:"; tail -5 "$work/$name-cross.log" | sed 's/^/    /'
    fi
    if ! "$host_bin" still "$content" "$work/$name-host.png" --style "$st" --size "$size" --models "$models" \
        --model "$model" --threads 1 >"$work/$name-host.log" 2>&1; then
        fail "$name: still natively:"; tail -5 "$work/$name-host.log" | sed 's/^/    /'
    fi
}
if [ ! -x "$host_bin" ]; then
    fail "no native binary $host_bin to compare with"
else
    still_pair f16 style_transfer_f16_384 "$style"
    still_pair int8 style_transfer_quantized_384 "$painting"
    if [ -f "$work/f16-cross.png" ] && [ -f "$work/f16-host.png" ]; then
        if "$host_bin" psnr "$work/f16-cross.png" "$work/f16-host.png" --min "$min_db" >"$work/psnr.log" 2>&1; then
            ok "f16: psnr >= $min_db dB: $(tail -1 "$work/psnr.log")"
        else
            fail "f16: psnr below $min_db dB (or error): $(tail -2 "$work/psnr.log")"
        fi
    fi
    if [ -f "$work/int8-cross.png" ] && [ -f "$work/int8-host.png" ]; then
        db=$("$host_bin" psnr "$work/int8-cross.png" "$work/int8-host.png" 2>&1 | tail -1)
        [ "$db" = inf ] && ok "int8: identical to x86 (psnr inf)" || fail "int8: not identical to x86: psnr $db"
    fi
fi

echo "== 3. doctor under qemu: exit 10 (no camera)"
cat >"$work/styleframe.toml" <<EOF
[models]
dir = "$models"
[styles]
file = "$models/styles.json"
[camera]
source = "camera"
[display]
backend = "headless"
[button]
enabled = false
EOF
run_cross doctor --config "$work/styleframe.toml" >"$work/doctor.log" 2>&1
rc=$?
if [ "$rc" -eq 10 ]; then
    ok "doctor exit 10 (no camera)"
else
    fail "doctor exit $rc, want 10:"; tail -8 "$work/doctor.log" | sed 's/^/    /'
fi
if [ -e /dev/video0 ]; then echo "note: /dev/video0 exists here: exit 10 is not expected on this machine"; fi

echo
[ $bad -eq 0 ] && echo "qemu-check $arch: all passed" || echo "qemu-check $arch: $bad failed"
[ $bad -eq 0 ]
