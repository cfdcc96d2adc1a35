#!/usr/bin/env bash
# Real-window test of the display stage on a virtual X server.
# Starts Xvfb (800x480, like the Pi's 7" screen), runs the ignored test
# tests/display_xvfb.rs against it, leaves the screenshots in $STYLEFRAME_SHOT_DIR.
#
#   tests/lab/xvfb_window.sh            # uses display :99
#   XVFB_DISPLAY=:42 tests/lab/xvfb_window.sh
#   XVFB_WM=openbox tests/lab/xvfb_window.sh   # under a window manager instead:
#                                              # checks the EWMH full-screen request
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
for tool in Xvfb xwd convert xdotool xset; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "installing for: ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y xvfb x11-apps imagemagick xdotool x11-xserver-utils
fi

disp="${XVFB_DISPLAY:-:99}"
export STYLEFRAME_SHOT_DIR="${STYLEFRAME_SHOT_DIR:-/tmp/styleframe_xvfb}"
mkdir -p "$STYLEFRAME_SHOT_DIR"

Xvfb "$disp" -screen 0 800x480x24 -nolisten tcp >"$STYLEFRAME_SHOT_DIR/xvfb.log" 2>&1 &
xvfb_pid=$!
# Wait for the server to exit so an immediate re-run can reuse the display number.
trap 'kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true' EXIT

# Wait until the server answers (up to 10 s).
for _ in $(seq 50); do
    DISPLAY="$disp" xdotool getdisplaygeometry >/dev/null 2>&1 && break
    kill -0 "$xvfb_pid" 2>/dev/null || { cat "$STYLEFRAME_SHOT_DIR/xvfb.log"; exit 1; }
    sleep 0.2
done

if [ -n "${XVFB_WM:-}" ]; then
    command -v "$XVFB_WM" >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y "$XVFB_WM"; }
    DISPLAY="$disp" "$XVFB_WM" >"$STYLEFRAME_SHOT_DIR/wm.log" 2>&1 &
    wm_pid=$!
    trap 'kill "$wm_pid" "$xvfb_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
    sleep 1
    filter=()  # both tests; the key test also works under a WM
else
    # Without a WM nobody grants full screen: only the plain window test applies.
    filter=(--exact window_shows_the_picture_and_maps_a_held_key_once
        window_power_off_without_dpms_is_black_and_says_so)
fi

# One window at a time: the tests screenshot the whole X screen.
DISPLAY="$disp" cargo test --release --test display_xvfb -- \
    --ignored --nocapture --test-threads=1 "${filter[@]}"
echo "screenshots in $STYLEFRAME_SHOT_DIR"
