#!/bin/bash
# Check a styleframe .deb without installing it on this machine:
# metadata, file list, conffiles, maintainer scripts (syntax), and that the files
# land where the units and the config expect them (dpkg -x into a scratch root).
#
#   cross/check-deb.sh DEB
set -uo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 DEB" >&2; exit 2; }
deb=$1
scratch=$(mktemp -d /tmp/styleframe-checkdeb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
bad=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; bad=$((bad + 1)); }

echo "== dpkg-deb --info"
dpkg-deb --info "$deb" || fail "dpkg-deb --info"
echo "== dpkg-deb --contents"
dpkg-deb --contents "$deb" || fail "dpkg-deb --contents"
echo "=="

field() { dpkg-deb --field "$deb" "$1"; }
debarch=$(field Architecture)
[ "$(field Package)" = styleframe ] && ok "Package: styleframe" || fail "Package is '$(field Package)'"
case "$debarch" in
    arm64) machine=AArch64 ;;
    armhf) machine=ARM ;;
    amd64) machine="Advanced Micro Devices X86-64" ;;
    *) fail "unexpected Architecture $debarch"; machine=none ;;
esac

ctrl=$scratch/control
dpkg-deb --control "$deb" "$ctrl" || fail "dpkg-deb --control"
if [ "$(cat "$ctrl/conffiles" 2>/dev/null)" = "/etc/styleframe/styleframe.toml" ]; then
    ok "conffiles: /etc/styleframe/styleframe.toml"
else
    fail "conffiles: '$(cat "$ctrl/conffiles" 2>/dev/null)'"
fi
for s in postinst prerm postrm; do
    if [ -x "$ctrl/$s" ] && sh -n "$ctrl/$s"; then ok "$s: executable, sh syntax ok"; else fail "$s missing/not executable/bad syntax"; fi
done
grep -q "adduser .*--system" "$ctrl/postinst" && ok "postinst creates the system user" || fail "postinst does not create the user"
grep -q "deb-systemd-helper enable" "$ctrl/postinst" && ok "postinst enables the unit" || fail "postinst does not enable the unit"

root=$scratch/root
dpkg -x "$deb" "$root" || fail "dpkg -x"
expect_file() { # PATH MODE
    local p=$root$1
    if [ ! -f "$p" ]; then fail "missing $1"; return; fi
    local m
    m=$(stat -c %a "$p")
    [ "$m" = "$2" ] && ok "$1 ($m)" || fail "$1 has mode $m, want $2"
}
expect_file /usr/bin/styleframe 755
expect_file /lib/systemd/system/styleframe.service 644
expect_file /usr/lib/systemd/user/styleframe-kiosk.service 644
expect_file /etc/styleframe/styleframe.toml 644
expect_file /usr/share/styleframe/models/styles.json 644
expect_file /usr/share/styleframe/models/manifest.toml 644
expect_file /usr/share/doc/styleframe/copyright 644
expect_file /usr/lib/modules-load.d/styleframe.conf 644
expect_file /usr/lib/udev/rules.d/60-styleframe-gpio.rules 644

# Files owned by root in the archive (--root-owner-group), not by the builder.
owners=$(dpkg-deb --contents "$deb" | awk '{print $2}' | sort -u)
[ "$owners" = "root/root" ] && ok "all files root/root" || fail "owners: $owners"

got=$(LC_ALL=C readelf -h "$root/usr/bin/styleframe" 2>/dev/null | sed -n 's/^ *Machine: *//p')
[ "$got" = "$machine" ] && ok "binary is $machine for $debarch" || fail "binary machine '$got', want $machine"
# Only libc-family shared libraries (anything else would need a Depends:).
needed=$(LC_ALL=C readelf -d "$root/usr/bin/styleframe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
extra=$(tr ' ' '\n' <<<"$needed" | grep -v -E '^(libc|libm|libgcc_s|libdl|libpthread|librt|ld-linux.*)\.so' | grep -v '^$' || true)
[ -z "$extra" ] && ok "NEEDED: $needed" || fail "unexpected shared libraries: $extra"

# Every model the manifest lists (and is not optional) is shipped, with its sha256.
models=$root/usr/share/styleframe/models
n=0
while IFS=' ' read -r file sum optional; do
    if [ -f "$models/$file" ]; then
        [ "$(sha256sum "$models/$file" | cut -d' ' -f1)" = "$sum" ] && n=$((n + 1)) ||
            fail "$file: sha256 differs from manifest"
    elif [ "$optional" != true ]; then
        fail "model $file (manifest) not shipped"
    fi
done < <(awk '
    function flush() { if (file != "") print file, sum, (opt == "" ? "false" : opt); file = ""; sum = ""; opt = "" }
    /^\[\[model\]\]/ { flush() }
    /^file *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); file = v }
    /^sha256 *=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); sum = v }
    /^optional *=/ { v = $0; sub(/^[^=]*= */, "", v); sub(/ .*/, "", v); opt = v }
    END { flush() }' "$models/manifest.toml" 2>/dev/null)
[ "$n" -gt 0 ] && ok "$n model files match the manifest's sha256" || fail "no model files verified"
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$models/styles.json" 2>/dev/null &&
    ok "styles.json is JSON" || fail "styles.json is not valid JSON"

# The paths the unit relies on exist in the package.
unit=$root/lib/systemd/system/styleframe.service
grep -q '^ExecStart=/usr/bin/styleframe run --config /etc/styleframe/styleframe.toml$' "$unit" &&
    ok "unit runs the packaged binary with the packaged config" || fail "unit ExecStart does not match the package paths"

# A real dpkg -i / -r / --purge with the maintainer scripts, in a throwaway
# copy-on-write view of this machine's root (overlayfs in a private mount
# namespace, chroot): the host's users, dpkg database and /etc stay untouched.
# Root only; NO_INSTALL_TEST=1 skips it. Foreign-arch debs install with
# --force-architecture and --force-depends (their libc is not installed here;
# the binary is never run, only the maintainer scripts).
if [ -n "${NO_INSTALL_TEST:-}" ]; then
    echo "skipped: install test (NO_INSTALL_TEST)"
elif [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
    echo "skipped: install test (needs root and unshare)"
else
    out=$scratch/install.log
    mkdir -p "$scratch/inst"
    unshare --mount --propagation private -- sh -c '
        t=$0 deb=$1 debarch=$2
        mount -t tmpfs tmpfs "$t" && mkdir -p "$t/up" "$t/work" "$t/m" || exit 90
        mount -t overlay styleframe-root -o lowerdir=/,upperdir="$t/up",workdir="$t/work" "$t/m" || exit 91
        mount --bind /proc "$t/m/proc" && mount --bind /dev "$t/m/dev" || exit 92
        mount -t tmpfs tmpfs "$t/m/tmp" && mount -t tmpfs tmpfs "$t/m/run" || exit 93
        cp "$deb" "$t/m/tmp/styleframe.deb"
        exec chroot "$t/m" sh -c "
            wants=/etc/systemd/system/multi-user.target.wants/styleframe.service
            dpkg --force-architecture \$([ \"\$(dpkg --print-architecture)\" = $debarch ] || echo --force-depends) -i /tmp/styleframe.deb >/dev/null || echo RESULT install-failed
            id styleframe >/dev/null 2>&1 && echo RESULT user
            for g in video gpio render input; do id -nG styleframe | grep -qw \$g && echo RESULT group-\$g; done
            test \"\$(getent passwd styleframe | cut -d: -f7)\" = /usr/sbin/nologin && echo RESULT nologin
            test -L \$wants && echo RESULT enabled
            test -f /etc/styleframe/styleframe.toml && echo RESULT config
            if [ \"\$(dpkg --print-architecture)\" = $debarch ]; then
                cd /usr/share/styleframe && /usr/bin/styleframe doctor --config /etc/styleframe/styleframe.toml >/tmp/doctor.log 2>&1
                echo RESULT doctor-\$?
                sed \"s/^/    doctor: /\" /tmp/doctor.log | tail -12
                cd /
            fi
            dpkg -r styleframe >/dev/null || echo RESULT remove-failed
            test ! -e /usr/bin/styleframe && echo RESULT binary-removed
            test -f /etc/styleframe/styleframe.toml && echo RESULT conffile-kept
            dpkg --purge styleframe >/dev/null || echo RESULT purge-failed
            test ! -e /etc/styleframe/styleframe.toml && echo RESULT conffile-purged
            test ! -e \$wants && echo RESULT disabled
        "' "$scratch/inst" "$(readlink -f "$deb")" "$debarch" >"$out" 2>&1
    for r in user group-video group-gpio group-render group-input nologin enabled config \
        binary-removed conffile-kept conffile-purged disabled; do
        grep -qx "RESULT $r" "$out" && ok "install test: $r" || fail "install test: $r"
    done
    # Installed as packaged, from the unit's working directory: config and models
    # are found (doctor 12/11 would say otherwise); 10 = no camera on this machine.
    if [ "$debarch" = "$(dpkg --print-architecture)" ]; then
        d=$(sed -n 's/^RESULT doctor-//p' "$out")
        grep '^    doctor: ' "$out"
        case "$d" in
            0 | 10 | 13 | 14) ok "install test: doctor exit $d: config and models of the package are found" ;;
            *) fail "install test: doctor exit '$d' (11 = models, 12 = config)" ;;
        esac
    fi
    if grep -q "RESULT .*-failed" "$out"; then
        fail "install test: $(grep 'RESULT .*-failed' "$out" | tr '\n' ' ')"
        sed 's/^/    /' "$out"
    fi
fi

grep -Eq '^backend = "(auto|framebuffer)"' "$root/etc/styleframe/styleframe.toml" &&
    ok "installed config reaches the framebuffer without a desktop (auto or framebuffer)" ||
    fail "installed config does not use backend = \"auto\" or \"framebuffer\""
grep -q '^WorkingDirectory=/usr/share/styleframe$' "$unit" && [ -d "$root/usr/share/styleframe/models" ] &&
    ok "unit's working directory holds models/ (relative config paths)" ||
    fail "unit WorkingDirectory does not hold models/"

echo
[ $bad -eq 0 ] && echo "check-deb: $deb OK" || echo "check-deb: $deb: $bad problems"
[ $bad -eq 0 ]
