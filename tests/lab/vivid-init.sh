#!/bin/sh
# Guest init for tests/lab/vivid.sh: loads vivid (a real V4L2 capture device, /dev/video0) and
# v4l2loopback (/dev/video9, fed MJPEG by the test), runs the opt-in `lab_` camera tests
# (/opt/test = the capture_camera test binary), prints guest-exit=N.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
modprobe vivid n_devs=1 node_types=0x1 && echo "vivid loaded"
# v4l2loopback (built by vivid.sh when kernel headers are available) plays an MJPEG webcam.
SKIP=""
if modprobe v4l2loopback video_nr=9 card_label=styleframe-loopback 2>/dev/null; then
  echo "v4l2loopback loaded"
else
  echo "no v4l2loopback module: skipping the MJPEG loopback test"; SKIP="--skip lab_loopback"
fi
ls -la /dev/video*
if [ -x /opt/test ]; then
  RUST_BACKTRACE=1 /opt/test --ignored --nocapture --test-threads=1 $SKIP lab_
  echo "guest-exit=$?"
fi
poweroff -f
