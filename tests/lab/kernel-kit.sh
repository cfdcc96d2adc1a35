# Sourced by the lab scripts: Debian's current amd64 kernel package, unpacked
# into $KIT (vmlinuz + kroot with its modules), once. Sets KV.
# DEBS=DIR takes the .deb from DIR instead of downloading it.
kernel_kit() {
  local img
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
}
