#!/bin/bash
# Opt-in test of the camera source against a REAL V4L2 driver: boots Debian's kernel under
# qemu (TCG, no KVM needed) with the `vivid` virtual capture driver and runs the ignored test
# `vivid_real_device_delivers_frames_in_each_format` (tests/capture_camera.rs) inside it.
#
# How to run (from the repository root; root is needed only for the apt-get line):
#   apt-get install -y qemu-system-x86 busybox-static cpio kmod xz-utils
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
# Only the kernel image and its modules are needed (vivid ships with Debian's kernel); unlike
# the gpio lab kit nothing is compiled out of tree.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIT=${KIT:-/tmp/styleframe-lab/vivid-kit}
TIMEOUT=${TIMEOUT:-600}
for tool in qemu-system-x86_64 busybox cpio modprobe depmod dpkg-deb; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install -y qemu-system-x86 busybox-static cpio kmod"; exit 2; }
done

# 1. Kernel kit: Debian's current bookworm kernel package, unpacked.
img=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
KV=${img#linux-image-}
if [ ! -f "$KIT/vmlinuz" ] || [ ! -d "$KIT/kroot/lib/modules/$KV" ]; then
  mkdir -p "$KIT/debs" "$KIT/kroot"
  ( cd "$KIT/debs"
    if [ -n "${DEBS:-}" ] && ls "$DEBS"/${img}_*.deb >/dev/null 2>&1; then cp "$DEBS"/${img}_*.deb .
    else apt-get download "$img"; fi )
  dpkg-deb -x "$KIT"/debs/${img}_*.deb "$KIT/kroot"
  depmod -b "$KIT/kroot" "$KV"   # the package ships no modules.dep
  cp "$KIT/kroot/boot/vmlinuz-$KV" "$KIT/vmlinuz"
fi
echo "kernel $KV from $KIT"

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
for f in $(modprobe -d "$KIT/kroot" -S "$KV" --show-depends vivid | awk '$1=="insmod"{print $2}'); do
  rel=${f#$KIT/kroot/lib/modules/$KV/}; mkdir -p $R/lib/modules/$KV/$(dirname $rel); cp $f $R/lib/modules/$KV/$rel
done
cp "$KIT"/kroot/lib/modules/$KV/modules.{order,builtin,builtin.modinfo} $R/lib/modules/$KV/ 2>/dev/null || true
depmod -b $R $KV
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
