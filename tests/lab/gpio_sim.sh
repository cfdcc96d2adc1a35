#!/bin/bash
# Opt-in integration test of the button against a REAL gpiochip: builds tests/input_gpio_sim.rs,
# boots Debian's kernel under qemu (TCG) with gpio-sim, runs the test inside, and exits 0 only if
# the guest printed guest-exit=0.
#
# Host needs (Debian 12): apt-get install qemu-system-x86 busybox-static cpio kmod build-essential
#   bc flex bison libelf-dev xz-utils. First run builds the kit (gpio_build_kit.sh: ~220 MB of
#   Debian kernel packages, gpio-sim built out of tree; needs root for apt).
# Env: KIT (default /tmp/styleframe-lab/kit), CARGO_TARGET_DIR, RUST_LOG (guest, default debug),
#   TIMEOUT (seconds for the guest, default 600).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export KIT=${KIT:-/tmp/styleframe-lab/kit}
[ -f "$KIT/vmlinuz" ] && [ -f "$KIT/gpio-sim-oot.ko" ] || bash "$HERE/gpio_build_kit.sh"
KV=$(ls "$KIT/kroot/lib/modules" | head -1)

echo "== building the test binary"
exe=$(cd "$ROOT" && cargo test --release --test input_gpio_sim --no-run 2>&1 |
  tee /dev/stderr | sed -n 's/.*Executable .*(\(.*input_gpio_sim-[^)]*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "no test binary found" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$exe" "$WORK/input_gpio_sim"
sed "s/debug}/${RUST_LOG:-debug}}/" "$HERE/gpio_init.sh" > "$WORK/init.sh"
BINS="$WORK/input_gpio_sim" bash "$HERE/gpio_mkinitrd.sh" "$KIT/kroot" "$KV" "$WORK/gpio.gz" \
  "$WORK/init.sh" gpio-sim-oot configfs

echo "== booting $KV under qemu (TCG)"
LOG=${LOG:-$WORK/console.log}
timeout "${TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
  -kernel "$KIT/vmlinuz" -initrd "$WORK/gpio.gz" -append "console=ttyS0 quiet panic=-1" \
  </dev/null 2>&1 | tee "$LOG" || true
if grep -q "guest-exit=0" "$LOG"; then
  echo "== PASS (guest-exit=0)"
else
  echo "== FAIL: $(grep -o 'guest-exit=[0-9]*' "$LOG" || echo 'no guest-exit line')" >&2
  exit 1
fi
