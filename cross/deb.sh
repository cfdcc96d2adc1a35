#!/bin/bash
# Build the styleframe .deb for one architecture with plain dpkg-deb.
#
#   cross/deb.sh ARCH [MODEL_MIRROR_DIR]
#
# ARCH: aarch64 (-> arm64), armv7 (-> armhf), or x86_64 (-> amd64, for testing).
# Binary: dist/styleframe-ARCH from cross/build.sh (x86_64: $CARGO_TARGET_DIR/release/
#         styleframe); override with BIN=path.
# Models: styles.json and manifest.toml from the repo's models/ (override the folder
#         with MODELS_META_DIR); the .tflite files named in manifest.toml from
#         MODEL_MIRROR_DIR (default /work/shared/models, then ../shared/models), each
#         checked against the manifest's sha256 (and the mirror's SHA256SUMS if any).
#         Optional models (`optional = true`) are skipped when absent.
# Config: config/styleframe.toml (override with CONFIG=path) -> /etc/styleframe (conffile).
# Output: dist/styleframe_VERSION-REV_DEBARCH.deb (REV: DEB_REVISION, default 1).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dist="$repo/dist"

die() { echo "deb.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 aarch64|armv7|x86_64 [MODEL_MIRROR_DIR]" >&2; exit 2; }
arch=$1
case "$arch" in
    aarch64 | arm64) arch=aarch64 debarch=arm64 elf_machine=AArch64 ;;
    armv7 | armhf) arch=armv7 debarch=armhf elf_machine=ARM ;;
    x86_64 | amd64) arch=x86_64 debarch=amd64 elf_machine="Advanced Micro Devices X86-64" ;;
    *) echo "unknown ARCH $arch" >&2; exit 2 ;;
esac

if [ -n "${2:-}" ]; then
    mirror=$2
elif [ -d /work/shared/models ]; then
    mirror=/work/shared/models
else
    mirror="$repo/../shared/models"
fi
[ -d "$mirror" ] || die "model mirror dir $mirror not found"

if [ -n "${BIN:-}" ]; then
    bin=$BIN
elif [ "$arch" = x86_64 ]; then
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/styleframe"
else
    bin="$dist/styleframe-$arch"
fi
[ -x "$bin" ] || die "binary $bin not found (run cross/build.sh $arch)"
# A wrong-architecture binary in the package would only fail on the Pi.
machine=$(LC_ALL=C readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
[ "$machine" = "$elf_machine" ] || die "$bin is for '$machine', not $elf_machine"

meta=${MODELS_META_DIR:-$repo/models}
config=${CONFIG:-$repo/config/styleframe.toml}
for f in "$meta/styles.json" "$meta/manifest.toml" "$config"; do
    [ -f "$f" ] || die "$f not found"
done

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
[ -n "$version" ] || die "no version in Cargo.toml"
debversion="$version-${DEB_REVISION:-1}"

stage=$(mktemp -d /tmp/styleframe-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
models_dst="$stage/usr/share/styleframe/models"
install -d "$stage/DEBIAN" "$models_dst" "$stage/usr/bin" "$stage/etc/styleframe" \
    "$stage/lib/systemd/system" "$stage/usr/lib/systemd/user" \
    "$stage/usr/lib/modules-load.d" "$stage/usr/lib/udev/rules.d" \
    "$stage/usr/share/doc/styleframe"

install -m 0755 "$bin" "$stage/usr/bin/styleframe"
install -m 0644 "$repo/systemd/styleframe.service" "$stage/lib/systemd/system/"
install -m 0644 "$repo/systemd/styleframe-kiosk.service" "$stage/usr/lib/systemd/user/"
# The control page's drop-in is an example the admin copies in (README, "Control").
install -m 0644 "$repo/systemd/styleframe-remote.conf" "$stage/usr/share/doc/styleframe/"
# The config's default display backend is "auto": KMS (else the framebuffer) for the
# system unit (no DISPLAY), a window in the kiosk user unit: installed as shipped.
install -m 0644 "$config" "$stage/etc/styleframe/styleframe.toml"
install -m 0644 "$meta/styles.json" "$meta/manifest.toml" "$models_dst/"

# The unit's DeviceAllow=char-video4linux only takes effect if the class exists when
# the service starts: load videodev at boot even before a camera enumerates.
printf '# styleframe: V4L2 core, so the service may open cameras (DeviceAllow=char-video4linux)\nvideodev\n' \
    >"$stage/usr/lib/modules-load.d/styleframe.conf"
# Pi OS ships this rule (raspberrypi-sys-mods); plain Debian leaves gpiochips root-only.
printf '# styleframe: the push-button needs /dev/gpiochip* for the gpio group\nSUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"\n' \
    >"$stage/usr/lib/udev/rules.d/60-styleframe-gpio.rules"

# --- models: manifest entries, sha256-checked -----------------------------------
# manifest.toml: [[model]] tables with file = "...", sha256 = "...", optional = true.
n_models=0
while IFS=' ' read -r file sum optional; do
    src="$mirror/$file"
    if [ ! -f "$src" ]; then
        [ "$optional" = true ] && { echo "skipping optional model $file (not in $mirror)"; continue; }
        die "model $file not in $mirror"
    fi
    got=$(sha256sum "$src" | cut -d' ' -f1)
    [ "$got" = "$sum" ] || die "$src: sha256 $got, manifest says $sum"
    if [ -f "$mirror/SHA256SUMS" ] && grep -q " \*\?$file\$" "$mirror/SHA256SUMS"; then
        grep -q "^$got  *\*\?$file\$" "$mirror/SHA256SUMS" || die "$src does not match $mirror/SHA256SUMS"
    fi
    install -m 0644 "$src" "$models_dst/$file"
    n_models=$((n_models + 1))
done < <(awk '
    function flush() { if (file != "") print file, sum, (opt == "" ? "false" : opt); file = ""; sum = ""; opt = "" }
    /^\[\[model\]\]/ { flush() }
    /^file *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); file = v }
    /^sha256 *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); sum = v }
    /^optional *=/ { v = $0; sub(/^[^=]*= */, "", v); sub(/ .*/, "", v); opt = v }
    END { flush() }' "$meta/manifest.toml")
[ "$n_models" -gt 0 ] || die "no models listed in $meta/manifest.toml"

# --- docs -------------------------------------------------------------------------
cat >"$stage/usr/share/doc/styleframe/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: styleframe
Source: see README.md

Files: *
Copyright: the styleframe authors
License: Apache-2.0

Files: usr/share/styleframe/models/*.tflite
Copyright: Google LLC (Magenta arbitrary image stylization, Ghiasi et al. 2017,
 arXiv:1705.06830; TFLite conversion by the TensorFlow team)
License: Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
EOF
[ -f "$repo/README.md" ] && install -m 0644 "$repo/README.md" "$stage/usr/share/doc/styleframe/"

# --- control + maintainer scripts --------------------------------------------------
# The newest glibc symbol version the binary needs is the real lower bound
# (built against Debian 12's glibc 2.36; Pi OS bullseye has 2.31).
glibc=$(LC_ALL=C readelf --dyn-syms -W "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
[ -n "$glibc" ] || glibc=2.31
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: styleframe
Version: $debversion
Architecture: $debarch
Maintainer: styleframe maintainers <styleframe@localhost>
Installed-Size: $installed_kb
Depends: libc6 (>= $glibc), libgcc-s1, adduser
Recommends: libx11-6, libxcursor1
Suggests: libcamera-v4l2
Section: video
Priority: optional
Description: live art frame: camera -> neural style transfer -> full-screen painting
 styleframe turns a Raspberry Pi with a camera, a display and a push-button into
 a live painting: camera frames are restyled by Magenta's arbitrary style
 transfer network and shown full screen; the button cycles the styles.
 Runs as the systemd service styleframe.service (KMS or framebuffer) or the user unit
 styleframe-kiosk.service (a window in a desktop session).
EOF
echo "/etc/styleframe/styleframe.toml" >"$stage/DEBIAN/conffiles"

cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
UNIT=styleframe.service
if [ "$1" = configure ]; then
    # The unit's SupplementaryGroups= fails the start (216/GROUP) if a group is
    # missing: gpio exists on Pi OS only, render only with a DRM-aware udev.
    for g in video gpio render input; do
        getent group "$g" >/dev/null || addgroup --quiet --system "$g"
    done
    if ! getent passwd styleframe >/dev/null; then
        adduser --quiet --system --group --no-create-home --home /nonexistent \
            --shell /usr/sbin/nologin --gecos "styleframe art frame" styleframe
    fi
    # Also for `sudo -u styleframe styleframe doctor` outside the unit.
    for g in video gpio render input; do
        adduser --quiet styleframe "$g" >/dev/null || true
    done
    if [ -d /run/udev ] && command -v udevadm >/dev/null; then
        udevadm control --reload-rules >/dev/null 2>&1 || true
        udevadm trigger --subsystem-match=gpio >/dev/null 2>&1 || true
    fi
fi
# From debhelper's systemd snippets (dh_installsystemd): enable on first install,
# keep the admin's choice on upgrades, (re)start when systemd runs.
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper unmask "$UNIT" >/dev/null || true
        if deb-systemd-helper --quiet was-enabled "$UNIT"; then
            deb-systemd-helper enable "$UNIT" >/dev/null || true
        else
            deb-systemd-helper update-state "$UNIT" >/dev/null || true
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then action=restart; else action=start; fi
        deb-systemd-invoke "$action" "$UNIT" >/dev/null || true
    fi
fi
exit 0
EOF

cat >"$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop styleframe.service >/dev/null || true
fi
exit 0
EOF

cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
UNIT=styleframe.service
if [ "$1" = remove ] && [ -x /usr/bin/deb-systemd-helper ]; then
    deb-systemd-helper mask "$UNIT" >/dev/null || true
fi
if [ "$1" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
    deb-systemd-helper purge "$UNIT" >/dev/null || true
    deb-systemd-helper unmask "$UNIT" >/dev/null || true
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
# The system user is kept on purge (Debian practice: files it owned may remain).
exit 0
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"

mkdir -p "$dist"
out="$dist/styleframe_${debversion}_${debarch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "built $out ($(du -h "$out" | cut -f1), $n_models models)"
