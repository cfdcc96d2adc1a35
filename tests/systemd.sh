#!/bin/bash
# Checks the shipped systemd units (files in systemd/, unmodified):
#  1. `systemd-analyze verify` of each unit: any stderr line is a failure
#     (verify exits 0 on warnings);
#  2. `systemd-analyze security --offline=yes`: exposure of styleframe.service
#     must be <= 2.0, without and with the control page's drop-in
#     (systemd/styleframe-remote.conf, which must also verify cleanly); the
#     kiosk user unit's score is printed only;
#  3. a real `systemd --user` manager (private mount namespace, private
#     /run/systemd) runs styleframe-kiosk.service with a test drop-in whose
#     ExecStart is the stand-in daemon tests/notify_standin.rs (SdNotifier +
#     WatchdogGate): READY, reload -> SIGHUP, stalled frames -> watchdog restart,
#     stop -> SIGTERM, exit 3 -> no restart, exit 1 -> restart; then, if the
#     built binary has `run`, the real daemon (synthetic source, headless):
#     READY, watchdog fed (no restart), reload, clean stop.
#
# Usage: tests/systemd.sh            (root needed for 3 and for the overlay in 1)
# Env:   CARGO_TARGET_DIR (default: <repo>/target), STYLEFRAME_BIN (a built
#        styleframe; default $CARGO_TARGET_DIR/release/styleframe, built if
#        missing), STANDIN_BIN (a built tests/notify_standin.rs; default: cargo
#        test --no-run), SKIP_MANAGER=1 skips 3, MAX_EXPOSURE (default 2.0).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
max_exposure=${MAX_EXPOSURE:-2.0}
work=$(mktemp -d /tmp/styleframe-systemd.XXXXXX)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

if ! command -v systemd-analyze >/dev/null; then
    echo "installing systemd (for systemd-analyze)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd || exit 1
fi
echo "systemd: $(systemd --version 2>/dev/null | head -1 || systemd-analyze --version | head -1)"

# --- the binary ExecStart= points at -------------------------------------------
bin=${STYLEFRAME_BIN:-$CARGO_TARGET_DIR/release/styleframe}
if [ ! -x "$bin" ]; then
    echo "building $bin"
    (cd "$repo" && cargo build --release --bin styleframe) || { fail "cargo build"; exit 1; }
fi
mkdir -p "$work/bin"
cp "$bin" "$work/bin/styleframe"

# Run "$@" where /usr/bin/styleframe is the built binary: an overlay over /usr/bin
# in a private mount namespace, so the host is untouched and the units are
# checked as shipped (ExecStart=/usr/bin/styleframe must exist for verify).
with_binary() {
    unshare --mount --propagation private -- sh -c '
        mount -t overlay styleframe-bin -o "lowerdir=$0:/usr/bin" /usr/bin || exit 99
        exec "$@"' "$work/bin" "$@"
}

# --- 1. verify -------------------------------------------------------------------
verify() { # MODE(system|user) UNIT
    local mode=$1 unit=$2 err="$work/verify.err" rc
    local args=()
    [ "$mode" = user ] && args=(--user)
    if [ "$(id -u)" -eq 0 ]; then
        XDG_RUNTIME_DIR=$work with_binary systemd-analyze verify "${args[@]}" "$unit" 2>"$err"
        rc=$?
    elif [ "$mode" = system ]; then
        # Fallback without root: a scratch --root holding the binary and the units.
        local r="$work/root"
        mkdir -p "$r/usr/bin" "$r/usr/lib/systemd"
        ln -sfn usr/bin "$r/bin"
        ln -sfn usr/lib "$r/lib"
        cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
        cp "$work/bin/styleframe" "$(type -P kill)" "$r/usr/bin/"
        cp "$unit" "$r/usr/lib/systemd/system/"
        systemd-analyze verify --root="$r" "$(basename "$unit")" 2>"$err"
        rc=$?
    else
        # Fallback without root for a user unit (verify has no --root in user mode):
        # a temporary copy with ExecStart's path substituted.
        sed "s#/usr/bin/styleframe#$work/bin/styleframe#" "$unit" >"$work/$(basename "$unit")"
        XDG_RUNTIME_DIR=$work systemd-analyze verify --user "$work/$(basename "$unit")" 2>"$err"
        rc=$?
    fi
    if [ "$rc" -ne 0 ] || [ -s "$err" ]; then
        fail "verify $unit (rc=$rc):"
        sed 's/^/    /' "$err"
    else
        ok "verify $(basename "$unit") ($mode): no warnings"
    fi
}
verify system "$repo/systemd/styleframe.service"
verify user "$repo/systemd/styleframe-kiosk.service"

# --- 2. security exposure --------------------------------------------------------
score() { # MODE UNIT -> prints the exposure number
    local args=()
    [ "$1" = user ] && args=(--user)
    XDG_RUNTIME_DIR=$work systemd-analyze security "${args[@]}" --offline=yes "$2" 2>&1 |
        sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'
}
s=$(score system "$repo/systemd/styleframe.service")
if [ -z "$s" ]; then
    fail "no exposure score for styleframe.service"
elif awk -v s="$s" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
    ok "styleframe.service exposure $s <= $max_exposure"
else
    fail "styleframe.service exposure $s > $max_exposure"
    systemd-analyze security --offline=yes "$repo/systemd/styleframe.service" | grep '✗'
fi
echo "info: styleframe-kiosk.service (user unit, not gated) exposure $(score user "$repo/systemd/styleframe-kiosk.service")"

# The control page's drop-in (systemd/styleframe-remote.conf) on top of the unit,
# in a scratch root: it verifies cleanly and the exposure stays within the limit.
r="$work/remote-root"
mkdir -p "$r/etc/systemd/system/styleframe.service.d" "$r/usr/bin" "$r/usr/lib/systemd"
ln -sfn usr/bin "$r/bin"
cp -a /usr/lib/systemd/system "$r/usr/lib/systemd/"
cp "$work/bin/styleframe" "$(type -P kill)" "$r/usr/bin/"
cp "$repo/systemd/styleframe.service" "$r/etc/systemd/system/"
cp "$repo/systemd/styleframe-remote.conf" "$r/etc/systemd/system/styleframe.service.d/remote.conf"
if systemd-analyze verify --root="$r" styleframe.service 2>"$work/remote.err" && [ ! -s "$work/remote.err" ]; then
    ok "verify styleframe.service + styleframe-remote.conf: no warnings"
else
    fail "verify styleframe.service + styleframe-remote.conf: $(cat "$work/remote.err")"
fi
s=$(systemd-analyze security --offline=yes --root="$r" styleframe.service 2>&1 |
    sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
if [ -n "$s" ] && awk -v s="$s" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }'; then
    ok "styleframe.service + styleframe-remote.conf exposure $s <= $max_exposure"
else
    fail "styleframe.service + styleframe-remote.conf exposure ${s:-missing} > $max_exposure"
fi

# --- 3. a real user manager --------------------------------------------------------
if [ -n "${SKIP_MANAGER:-}" ]; then
    echo "skipped: systemd --user run (SKIP_MANAGER)"
elif [ "$(id -u)" -ne 0 ]; then
    echo "skipped: systemd --user run (needs root for the private /run/systemd)"
else
    standin=${STANDIN_BIN:-}
    [ -n "$standin" ] || standin=$(cd "$repo" && cargo test --release --test notify_standin --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*notify_standin[^"]*"' | tail -1 | cut -d'"' -f4)
    if [ ! -x "$standin" ]; then
        fail "could not build the stand-in daemon tests/notify_standin.rs"
    else
        unit_dir="$work/sdconf/systemd/user"
        mkdir -p "$unit_dir/styleframe-kiosk.service.d" "$work/xdg"
        cp "$repo/systemd/styleframe-kiosk.service" "$unit_dir/"
        cat >"$unit_dir/styleframe-kiosk.service.d/test.conf" <<EOF
# Test drop-in: the stand-in daemon, and short timings so the test takes seconds.
[Unit]
After=
PartOf=
[Service]
ExecStart=
ExecStart=$standin standin_daemon --exact --ignored --nocapture
WorkingDirectory=$work
Environment=STYLEFRAME_NOTIFY_STANDIN=1 STANDIN_FRAMES_SECS=3
WatchdogSec=2
RestartSec=1
EOF
        # The real daemon too, when the binary has the `run` subcommand: synthetic
        # source, headless display, the mirror's model files.
        real=""
        if "$work/bin/styleframe" --help 2>/dev/null | grep -q '^  run '; then
            real=$work/bin/styleframe
            mirror=${MODEL_MIRROR:-/work/shared/models}
            cat >"$work/real.toml" <<EOF
[models]
dir = "$mirror"
[styles]
file = "$repo/models/styles.json"
[camera]
source = "synthetic"
[display]
backend = "headless"
[inference]
max_pixels = 28672
EOF
        fi
        REAL_BIN=$real WORK=$work UNIT_DIR=$unit_dir unshare --mount --propagation private -- bash "$repo/tests/systemd-manager.sh"
        rc=$?
        if [ "$rc" -eq 0 ]; then ok "systemd --user run"; else fail "systemd --user run ($rc failed checks)"; fi
    fi
fi

echo
if [ "$failures" -eq 0 ]; then echo "tests/systemd.sh: all passed"; else echo "tests/systemd.sh: $failures failed"; fi
[ "$failures" -eq 0 ]
