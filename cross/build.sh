#!/bin/bash
# Cross-compile styleframe for the Raspberry Pi without Docker.
#
#   cross/build.sh [aarch64|armv7|all]     (default: aarch64)
#
# Env:
#   CROSS_TARGET_DIR  cargo target dir (default /var/tmp/styleframe-cross; kept outside
#                     the clone so repeated builds are warm)
#   TUNED=1           also build per-CPU variants (aarch64: cortex-a72 = Pi 4,
#                     cortex-a76 = Pi 5; armv7: cortex-a53 in 32-bit mode = Pi 3/Zero 2)
#                     as separate artifacts, each in its own target dir.
#   NICE=15           niceness of the build (the build host is shared)
#   NO_INSTALL=1      never apt-get/rustup anything; fail if something is missing
#
# Output: dist/styleframe-<arch>[-<cpu>] (stripped), plus the unstripped binary in
# the target dir. Exit 2 on usage errors, 1 on build errors.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
target_dir=${CROSS_TARGET_DIR:-/var/tmp/styleframe-cross}
nice_level=${NICE:-15}
dist="$root/dist"

usage() { echo "usage: $0 [aarch64|armv7|all]" >&2; exit 2; }

case "${1:-aarch64}" in
    aarch64) arches=(aarch64) ;;
    armv7) arches=(armv7) ;;
    all) arches=(aarch64 armv7) ;;
    -h | --help) usage ;;
    *) usage ;;
esac

triple_of() {
    case "$1" in
        aarch64) echo aarch64-unknown-linux-gnu ;;
        armv7) echo armv7-unknown-linux-gnueabihf ;;
    esac
}
apt_of() {
    case "$1" in
        aarch64) echo gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu ;;
        armv7) echo gcc-arm-linux-gnueabihf libc6-dev-armhf-cross binutils-arm-linux-gnueabihf ;;
    esac
}
strip_of() {
    case "$1" in
        aarch64) echo aarch64-linux-gnu-strip ;;
        armv7) echo arm-linux-gnueabihf-strip ;;
    esac
}
tuned_cpus_of() {
    case "$1" in
        aarch64) echo cortex-a72 cortex-a76 ;;
        armv7) echo cortex-a53 ;;
    esac
}

# --- prerequisites -----------------------------------------------------------
need_pkgs=(qemu-user-static libclang-dev)
for a in "${arches[@]}"; do
    # shellcheck disable=SC2207
    need_pkgs+=($(apt_of "$a"))
done
missing=()
for p in "${need_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ -n "${NO_INSTALL:-}" ]; then
        echo "missing packages: ${missing[*]} (NO_INSTALL set)" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v rustup >/dev/null || { echo "rustup not found (https://rustup.rs)" >&2; exit 1; }
installed_targets=$(rustup target list --installed)
for a in "${arches[@]}"; do
    t=$(triple_of "$a")
    if ! grep -qx "$t" <<<"$installed_targets"; then
        [ -z "${NO_INSTALL:-}" ] || { echo "rust target $t missing (NO_INSTALL set)" >&2; exit 1; }
        rustup target add "$t"
    fi
done

# --- build -------------------------------------------------------------------
mkdir -p "$dist"

# build ARCH TARGET_DIR OUT_NAME [RUSTFLAGS]
build() {
    local arch=$1 tdir=$2 out=$3 flags=${4:-}
    local triple
    triple=$(triple_of "$arch")
    echo "== $out: cargo build --release --target $triple (target dir $tdir${flags:+, RUSTFLAGS=$flags})"
    local start=$SECONDS
    (
        cd "$root"
        # RUSTFLAGS only reach target crates when --target is given (build scripts
        # and proc-macros stay generic), which is what the tuned variants want.
        # An empty RUSTFLAGS would still override config.toml's rustflags (armv7's +neon).
        if [ -n "$flags" ]; then export RUSTFLAGS="$flags"; else unset RUSTFLAGS; fi
        CARGO_TARGET_DIR="$tdir" nice -n "$nice_level" \
            cargo build --release --locked --config "$here/config.toml" \
            --target "$triple" --bin styleframe
    )
    local bin="$tdir/$triple/release/styleframe"
    "$(strip_of "$arch")" -o "$dist/$out" "$bin"
    echo "== $out: built in $((SECONDS - start)) s -> dist/$out ($(du -h "$dist/$out" | cut -f1))"
}

for a in "${arches[@]}"; do
    build "$a" "$target_dir" "styleframe-$a"
    if [ -n "${TUNED:-}" ]; then
        for cpu in $(tuned_cpus_of "$a"); do
            # A separate target dir: different RUSTFLAGS would otherwise evict the
            # generic artifacts and force a full rebuild every other run.
            # RUSTFLAGS replaces config.toml's rustflags: armv7 repeats its +neon.
            flags="-C target-cpu=$cpu"
            [ "$a" = armv7 ] && flags="$flags -C target-feature=+neon"
            build "$a" "$target_dir/tuned-$cpu" "styleframe-$a-$cpu" "$flags"
        done
    fi
done

ls -l "$dist"/styleframe-*
