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

# Copies the modules named after R (with their dependencies) and the module
# index from $KIT into the guest root R.
copy_modules() {
  local R=$1 m f rel
  shift
  for m in "$@"; do
    for f in $(modprobe -d "$KIT/kroot" -S "$KV" --show-depends "$m" | awk '$1=="insmod"{print $2}'); do
      rel=${f#$KIT/kroot/lib/modules/$KV/}; mkdir -p "$R/lib/modules/$KV/$(dirname "$rel")"; cp "$f" "$R/lib/modules/$KV/$rel"
    done
  done
  cp "$KIT"/kroot/lib/modules/$KV/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KV/" 2>/dev/null || true
  depmod -b "$R" "$KV"
}
