#!/bin/bash
# Opt-in test of the camera source against REAL V4L2 drivers: boots Debian's kernel under
# qemu (TCG, no KVM needed) with the `vivid` virtual capture driver (YUYV/NV12/RGB24/BGR24;
# error injection for a stalled and an unplugged camera) and `v4l2loopback` (fed JPEGs by the
# test: an MJPEG camera), and runs the ignored `lab_*` tests of tests/capture_camera.rs.
#
# How to run (from the repository root; root is needed only for the apt-get line):
#   apt-get install -y qemu-system-x86 busybox-static cpio kmod xz-utils build-essential bc \
#     flex bison libelf-dev            # the last five only to build v4l2loopback
#   tests/lab/vivid.sh
# It prints the guest console and exits 0 iff the guest printed `guest-exit=0`.
# Environment (all optional):
#   KIT=dir               kernel kit (vmlinuz + unpacked modules); built once, then reused
#                         (default /tmp/styleframe-lab/vivid-kit)
#   DEBS=dir              a folder already holding linux-image-<version>_*.deb (no download)
#   CARGO_TARGET_DIR=dir  cargo target dir (the team uses /work/main/target)
#   TIMEOUT=seconds       guest time limit (default 600)
# Cost: one ~70 MB download of Debian's linux-image package the first time, a release build
# of the test binary, then a ~10 s boot; the test itself grabs a few dozen 640x480 frames.
# vivid ships with Debian's kernel; v4l2loopback is built out of tree from Debian's
# v4l2loopback-dkms source (a few seconds; needs linux-headers-<version>, installed via apt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIT=${KIT:-/tmp/styleframe-lab/vivid-kit}
TIMEOUT=${TIMEOUT:-600}
for tool in qemu-system-x86_64 busybox cpio modprobe depmod dpkg-deb; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install -y qemu-system-x86 busybox-static cpio kmod"; exit 2; }
done

# 1. Kernel kit: Debian's current bookworm kernel package, unpacked.
. "$HERE/kernel-kit.sh"
kernel_kit
echo "kernel $KV from $KIT"

# 1b. v4l2loopback, built out of tree (vivid offers no MJPEG; a loopback device fed JPEGs by the
# test does). Needs the kernel headers; without them the MJPEG test is skipped, not failed.
LBKO="$KIT/kroot/lib/modules/$KV/extra/v4l2loopback.ko"
if [ ! -f "$LBKO" ]; then
  if [ -d "/usr/src/linux-headers-$KV" ] || apt-get install -y -qq "linux-headers-$KV" >/dev/null; then
    rm -rf "$KIT/v4l2loopback" && mkdir -p "$KIT/v4l2loopback"
    ( cd "$KIT/v4l2loopback" && apt-get download v4l2loopback-dkms && dpkg-deb -x v4l2loopback-dkms_*.deb x )
    src=$(ls -d "$KIT"/v4l2loopback/x/usr/src/v4l2loopback-*)
    make -s -C "/usr/src/linux-headers-$KV" M="$src" modules
    mkdir -p "$(dirname "$LBKO")" && cp "$src/v4l2loopback.ko" "$LBKO"
    depmod -b "$KIT/kroot" "$KV"
  else
    echo "no linux-headers-$KV: the MJPEG loopback test will be skipped"
  fi
fi

# 2. The test binary (host glibc; the guest gets the host's libc copied in).
cd "$ROOT"
BIN=$(cargo test --release --test capture_camera --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)
[ -x "$BIN" ] || { echo "could not build the capture_camera test binary"; exit 2; }
echo "test binary $BIN"

# 3. initramfs: busybox, vivid and its dependencies, host libc, the test as /opt/test.
R=$(mktemp -d); trap 'rm -rf "$R"' EXIT
mkdir -p $R/{bin,sbin,proc,sys,dev,tmp,run,lib/modules/$KV,lib64,lib/x86_64-linux-gnu,opt}
cp "$(command -v busybox)" $R/bin/busybox
for a in $($R/bin/busybox --list | grep -vx busybox); do ln -sf busybox $R/bin/$a; done
MODS=vivid; [ -f "$LBKO" ] && MODS="vivid v4l2loopback"
copy_modules "$R" $MODS
cp "$BIN" $R/opt/test
cp /lib64/ld-linux-x86-64.so.2 $R/lib64/
for lib in $(ldd "$BIN" | awk '/=> \//{print $3}'); do cp "$lib" $R/lib/x86_64-linux-gnu/; done
cp "$HERE/vivid-init.sh" $R/init; chmod +x $R/init
INITRD="$KIT/vivid-initrd.gz"
(cd $R && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$INITRD"
ls -la "$INITRD"

# 4. Boot and read the verdict from the serial console.
LOG="$KIT/vivid-console.log"
start=$(date +%s)
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 768 -nographic -no-reboot \
  -kernel "$KIT/vmlinuz" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1" \
  </dev/null | tee "$LOG" || true
echo "guest ran $(( $(date +%s) - start )) s; console log: $LOG"
if grep -q 'guest-exit=0' "$LOG"; then echo "VIVID TEST PASSED"; else echo "VIVID TEST FAILED"; exit 1; fi
