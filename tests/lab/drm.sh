#!/bin/bash
# Opt-in test of the KMS and framebuffer backends on a REAL DRM driver: boots Debian's kernel
# under qemu (TCG) with `-vga std`, whose `bochs` DRM driver gives /dev/dri/card0 (a connected
# connector, modes, dumb buffers, page flips, DPMS) and the kernel's /dev/fb0 emulation on top
# of it -- the situation of a Pi under vc4-kms-v3d. In the guest `styleframe run` shows a
# stylized image with --display kms, then with --display framebuffer (tests/lab/drm-init.sh);
# the host takes the guest's screen with the qemu monitor's `screendump` and checks that it
# shows the engine's stylization of that image (PSNR against `styleframe still` of the same
# input at the network size the run used), and the guest checks that the night schedule powers
# the connector off (its DPMS in sysfs) and the morning powers it on.
#
# How to run (from the repository root; root is needed only for the apt-get line):
#   apt-get install -y qemu-system-x86 busybox-static cpio kmod imagemagick
#   tests/lab/drm.sh
# Exit 0 iff every guest check passed and every screenshot matched: PSNR >= MIN_PSNR against
# `still` of its backend's style, and 6 dB closer to it than to the other backend's style.
# Environment (all optional):
#   KIT=dir               kernel kit, built once then reused (default /tmp/styleframe-lab/drm-kit)
#   DEBS=dir              a folder already holding linux-image-<version>_*.deb (no download)
#   CARGO_TARGET_DIR=dir  cargo target dir
#   STYLEFRAME_SHARED=dir the shared test data (default ../shared): models and images
#   MIN_PSNR=dB           screenshot vs `still` (default 28)
#   TIMEOUT=seconds       guest time limit (default 900)
# Cost: one ~70 MB download of Debian's linux-image package the first time, a release build,
# then a guest run of a few minutes (the network runs under TCG emulation).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KIT=${KIT:-/tmp/styleframe-lab/drm-kit}
SHARED=${STYLEFRAME_SHARED:-$ROOT/../shared}
TIMEOUT=${TIMEOUT:-900}
MIN_PSNR=${MIN_PSNR:-28}
# One style per backend, so that the second run cannot pass on the first one's leftover picture.
STYLE_KMS=starry_night
STYLE_FB=the_scream
for tool in qemu-system-x86_64 busybox cpio modprobe depmod dpkg-deb convert; do
  command -v $tool >/dev/null || { echo "missing $tool: apt-get install -y qemu-system-x86 busybox-static cpio kmod imagemagick"; exit 2; }
done

# 1. Kernel kit: Debian's current kernel package, unpacked (bochs ships with it).
. "$HERE/kernel-kit.sh"
kernel_kit
echo "kernel $KV from $KIT"

# 2. The binary (host glibc; the guest gets the host's libraries copied in).
cd "$ROOT"
cargo build --release --bin styleframe
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/styleframe
[ -x "$BIN" ] || { echo "no binary at $BIN"; exit 2; }
INPUT="$SHARED/images/content/tubingen.jpg"
[ -f "$INPUT" ] || { echo "missing $INPUT (set STYLEFRAME_SHARED)"; exit 2; }

# 3. initramfs: busybox, bochs and its dependencies, libc, styleframe, models, styles, input.
WORK=$(mktemp -d); R=$WORK/root; trap 'rm -rf "$WORK"' EXIT
mkdir -p $R/{bin,sbin,proc,sys,dev,tmp,run,lib/modules/$KV,lib64,lib/x86_64-linux-gnu,opt/models}
cp "$(command -v busybox)" $R/bin/busybox
for a in $($R/bin/busybox --list | grep -vx busybox); do ln -sf busybox $R/bin/$a; done
copy_modules "$R" bochs
cp "$BIN" $R/opt/styleframe
cp /lib64/ld-linux-x86-64.so.2 $R/lib64/
for lib in $(ldd "$BIN" | awk '/=> \//{print $3}'); do cp "$lib" $R/lib/x86_64-linux-gnu/; done
cp "$SHARED"/models/style_transfer_f16_384.tflite "$SHARED"/models/style_predict_quantized_256.tflite $R/opt/models/
cp "$ROOT/models/styles.json" $R/opt/styles.json
cp "$INPUT" $R/opt/input.jpg
echo $STYLE_KMS > $R/opt/style-kms.txt; echo $STYLE_FB > $R/opt/style-framebuffer.txt
cp "$HERE/drm-init.sh" $R/init; chmod +x $R/init
INITRD="$WORK/initrd.gz"
(cd $R && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$INITRD"

# 4. Boot; the console and the monitor are FIFO pairs (qemu's pipe: chardev).
OUT=${SHOT_DIR:-$KIT/shots}; rm -rf "$OUT"; mkdir -p "$OUT"
mkfifo "$WORK/serial.in" "$WORK/serial.out" "$WORK/mon.in" "$WORK/mon.out"
LOG="$OUT/console.log"
start=$(date +%s)
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -no-reboot -vga std -display none \
  -kernel "$KIT/vmlinuz" -initrd "$INITRD" -append "console=ttyS0 quiet panic=-1" \
  -serial pipe:"$WORK/serial" -monitor pipe:"$WORK/mon" </dev/null >"$OUT/qemu.log" 2>&1 &
qemu=$!
exec 3>"$WORK/serial.in" 4>"$WORK/mon.in"
cat "$WORK/mon.out" >"$OUT/monitor.log" &
while IFS= read -r line; do
  line=${line%$'\r'}
  printf '%s\n' "$line" | tee -a "$LOG"
  case "$line" in
    "SHOT "*)
      name=${line#SHOT }
      echo "screendump $OUT/$name.ppm" >&4
      for _ in $(seq 100); do [ -s "$OUT/$name.ppm" ] && break; sleep 0.1; done
      sleep 0.5   # let qemu finish writing the file
      echo "host: screendump $OUT/$name.ppm"
      echo ok >&3 ;;
    *guest-exit=*) break ;;
  esac
done < "$WORK/serial.out"
wait $qemu || true
echo "guest ran $(( $(date +%s) - start )) s; console log: $LOG"

# 5. The screenshots against `still` of the same input at the network size the run used.
ok=1
grep -q 'CHECK FAILED' "$LOG" && ok=0
grep -q 'guest-exit=0' "$LOG" || ok=0
size=$(grep -o 'network ready at [0-9]*x[0-9]*' "$LOG" | head -1 | grep -o '[0-9]*x[0-9]*' || true)
[ -n "$size" ] || { echo "the guest's log has no network size"; exit 1; }
W=${size%x*}; H=${size#*x}
for style in $STYLE_KMS $STYLE_FB; do
  "$BIN" still "$INPUT" "$OUT/$style.png" --style $style --size "${H}x${W}" \
    --models "$SHARED/models" --styles "$ROOT/models/styles.json"
done
for shot in kms-day kms-morning framebuffer-day framebuffer-morning; do
  case $shot in kms-*) want=$STYLE_KMS; other=$STYLE_FB ;; *) want=$STYLE_FB; other=$STYLE_KMS ;; esac
  if [ ! -s "$OUT/$shot.ppm" ]; then echo "$shot: no screenshot"; ok=0; continue; fi
  convert "$OUT/$shot.ppm" -resize "${W}x${H}!" "$OUT/$shot-small.png"
  p=$("$BIN" psnr "$OUT/$shot-small.png" "$OUT/$want.png")
  q=$("$BIN" psnr "$OUT/$shot-small.png" "$OUT/$other.png")
  echo "$shot: $(head -2 "$OUT/$shot.ppm" | tail -1 | tr ' ' x) screen; PSNR vs still of $want: $p dB (vs $other: $q dB)"
  awk -v p="$p" -v q="$q" -v m="$MIN_PSNR" 'BEGIN{exit !(p >= m && p > q + 6)}' || { echo "  $shot: does not show the stylized picture"; ok=0; }
done
for shot in kms-night framebuffer-night; do
  [ -s "$OUT/$shot.ppm" ] && echo "$shot: mean level $(convert "$OUT/$shot.ppm" -colorspace gray -format '%[fx:mean]' info:) (0 = black)"
done
if [ $ok = 1 ]; then echo "DRM TEST PASSED"; else echo "DRM TEST FAILED"; exit 1; fi
