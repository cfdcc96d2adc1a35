#!/bin/sh
# Guest init for tests/lab/drm.sh: the bochs DRM driver (/dev/dri/card0 and the kernel's /dev/fb0
# emulation on top of it, as on a Pi under vc4-kms-v3d) and styleframe run on it:
#   1. --display kms: a picture (a second instance is refused: DRM master), then night (SIGHUP with a night window around now) powers the
#      connector off (its DPMS), day powers it on with a picture again, SIGTERM stops it;
#   2. --display framebuffer on /dev/fb0: a picture, then night blanks it (FBIOBLANK -> DPMS off).
# "SHOT name" lines ask the host for a screendump; the host answers a line on the console.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
modprobe bochs && echo "bochs loaded"
for i in 1 2 3 4 5; do [ -e /dev/dri/card0 ] && break; sleep 1; done
ls -la /dev/dri /dev/fb0
DPMS=$(ls /sys/class/drm/card0-*/dpms | head -1)
echo "connector $(dirname $DPMS): $(cat $(dirname $DPMS)/status), dpms $(cat $DPMS)"
cd /opt
fail=0
check() { if [ "$2" = "$3" ]; then echo "CHECK ok: $1 ($2)"; else echo "CHECK FAILED: $1: got $2, want $3"; fail=1; fi; }
shot() { echo "SHOT $1"; read -r ack; }
# waits up to 120 s for the connector's DPMS to read $1
wait_dpms() { i=0; while [ "$(cat $DPMS)" != "$1" ] && [ $i -lt 240 ]; do sleep 0.5; i=$((i+1)); done; cat $DPMS; }
wait_log() { i=0; while ! grep -q "$2" "$1" && [ $i -lt 600 ]; do sleep 0.5; i=$((i+1)); done; grep -c "$2" "$1"; }
config() { # $1 = backend, $2 = night_start, $3 = night_end
cat > /tmp/frame.toml <<CFG
[models]
dir = "/opt/models"
[styles]
file = "/opt/styles.json"
start = "$STYLE"
temporal_smoothing = 0.0
[gallery]
night_start = "$2"
night_end = "$3"
[camera]
source = "image"
path = "/opt/input.jpg"
fps = 2
[inference]
max_pixels = 40960
min_pixels = 40960
threads = 1
degrade_after_ms = 0
[display]
backend = "$1"
crossfade = false
fps = 10
CFG
}
night_on()  { config $1 "$(date -u -d @$(( $(date +%s) - 120 )) +%H:%M)" "$(date -u -d @$(( $(date +%s) + 1800 )) +%H:%M)"; }

for backend in kms framebuffer; do
  echo "=== backend $backend"
  STYLE=$(cat /opt/style-$backend.txt)   # one style per backend: a leftover picture cannot pass
  config $backend "" ""
  RUST_LOG=info /opt/styleframe run --config /tmp/frame.toml > /tmp/$backend.log 2>&1 &
  pid=$!
  n=$(wait_log /tmp/$backend.log "first stylized frame shown")
  check "$backend: a stylized frame was shown" "$n" 1
  sleep 3   # a few more frames of the same still picture
  check "$backend: dpms while showing" "$(cat $DPMS)" On
  if [ $backend = kms ]; then
    # While it holds DRM master, a second KMS instance must be refused with a clear error.
    /opt/styleframe run --config /tmp/frame.toml --seconds 1 > /tmp/second.log 2>&1
    echo "second instance exited with $?: $(grep -o 'another program holds DRM master[^:]*' /tmp/second.log | head -1)"
    check "kms: a second instance names the DRM master problem" \
      "$(grep -q 'another program holds DRM master' /tmp/second.log && echo yes || echo no)" yes
  fi
  shot $backend-day
  night_on $backend; kill -HUP $pid
  check "$backend: dpms at night" "$(wait_dpms Off)" Off
  shot $backend-night
  config $backend "" ""; kill -HUP $pid
  check "$backend: dpms in the morning" "$(wait_dpms On)" On
  n=$(wait_log /tmp/$backend.log "first picture after powering on")
  check "$backend: a new picture after waking" "$n" 1
  shot $backend-morning
  kill -TERM $pid; wait $pid; echo "$backend: styleframe exited with $?"
  cat /tmp/$backend.log
  # Every picture went out by a page flip on vblank (no fallback to a modeset, no lost event).
  check "$backend: no failed or lost page flips" "$(grep -c -e 'page flip failed' -e 'no page-flip event' /tmp/$backend.log)" 0
  echo "$backend: dpms after exit: $(cat $DPMS)"
done
echo "guest-exit=$fail"
poweroff -f
