#!/usr/bin/env bash
# The art frame in a real X window (minifb under Xvfb): the screen shows the stylized
# camera picture, and a key held on the window moves to the next style.
#   tests/xvfb_daemon.sh        (needs: xvfb x11-apps imagemagick xdotool; ../shared)
# Env: STYLEFRAME_BIN (default $CARGO_TARGET_DIR/release/styleframe), STYLEFRAME_SHARED.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${STYLEFRAME_BIN:-${CARGO_TARGET_DIR:-target}/release/styleframe}
shared=${STYLEFRAME_SHARED:-../shared}
photo="$shared/images/content/tubingen.jpg"
tmp=$(mktemp -d)
disp=:97
cleanup() { kill "$daemon" "$xvfb" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- daemon log"; cat "$tmp/log"; exit 1; }

Xvfb $disp -screen 0 800x480x24 -nolisten tcp >/dev/null 2>&1 & xvfb=$!
for _ in $(seq 50); do xdpyinfo -display $disp >/dev/null 2>&1 && break; sleep 0.1; done
cat > "$tmp/frame.toml" <<TOML
[models]
dir = "$shared/models"
[styles]
start = "starry_night"
morph_seconds = 0.5
[camera]
source = "image"
path = "$photo"
fps = 10
[display]
backend = "window"
fullscreen = true
crossfade = false
TOML
DISPLAY=$disp "$bin" run --config "$tmp/frame.toml" 2>"$tmp/log" & daemon=$!
for _ in $(seq 300); do grep -q "first stylized frame" "$tmp/log" && break; sleep 0.1; done
grep -q "first stylized frame" "$tmp/log" || fail "no stylized frame shown"
size=$(grep -o "network ready at [0-9]*x[0-9]*" "$tmp/log" | head -1 | awk '{print $4}')
w=${size%x*}; h=${size#*x}
sleep 1
shot() { xwd -root -silent -display $disp | convert xwd:- -alpha off "$1"; }
expect() { # the engine's output for a style, scaled to the screen
    "$bin" still "$photo" "$tmp/$1.png" --style "$1" --size "${h}x${w}" --models "$shared/models" 2>/dev/null
    convert "$tmp/$1.png" -resize 800x480^ -gravity center -extent 800x480 "$tmp/$1_screen.png"
}
expect starry_night; expect the_scream
shot "$tmp/shot1.png"
a=$("$bin" psnr "$tmp/shot1.png" "$tmp/starry_night_screen.png"); b=$("$bin" psnr "$tmp/shot1.png" "$tmp/the_scream_screen.png")
echo "window shows starry_night: ${a} dB to the engine's starry_night, ${b} dB to the_scream"
awk -v a="$a" -v b="$b" 'BEGIN { exit !(a > 24 && a > b + 4) }' || fail "the window does not show the stylized picture"

# Focus follows the pointer: put it on the window, hold Right for a few frames.
DISPLAY=$disp xdotool mousemove 400 240
DISPLAY=$disp xdotool keydown Right; sleep 0.15; DISPLAY=$disp xdotool keyup Right
for _ in $(seq 50); do grep -q "style: the_scream" "$tmp/log" && break; sleep 0.1; done
grep -q "style: the_scream" "$tmp/log" || fail "the held key did not change the style"
sleep 3
shot "$tmp/shot2.png"
a=$("$bin" psnr "$tmp/shot2.png" "$tmp/starry_night_screen.png"); b=$("$bin" psnr "$tmp/shot2.png" "$tmp/the_scream_screen.png")
echo "after Right: ${b} dB to the_scream, ${a} dB to starry_night"
awk -v a="$a" -v b="$b" 'BEGIN { exit !(b > 24 && b > a + 4) }' || fail "the window did not turn into the_scream"
kill -TERM "$daemon"; wait "$daemon" || fail "exit status $? after SIGTERM"
daemon=
echo "xvfb daemon test passed"
