#!/bin/sh
# Guest init for tests/lab/vivid.sh: loads vivid (a real V4L2 capture device, /dev/video0),
# runs the opt-in camera test (/opt/test = the capture_camera test binary), prints guest-exit=N.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp
modprobe vivid n_devs=1 node_types=0x1 && echo "vivid loaded"
ls -la /dev/video*
if [ -x /opt/test ]; then
  RUST_LOG=info RUST_BACKTRACE=1 /opt/test --ignored --nocapture --test-threads=1 vivid
  echo "guest-exit=$?"
fi
poweroff -f
