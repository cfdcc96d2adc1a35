//! armv7 (32-bit Pi OS on a Pi 2/3/Zero 2): NEON intrinsics are not stable
//! in Rust there, and LLVM does not vectorize f32 loops with NEON (it
//! flushes denormals), so our portable kernels run scalar. Measured in
//! instructions under qemu-arm (docs/armv7.md), tract's own NEON kernels
//! are cheaper for both kinds of convolution: 4.6x fewer for the f32 one
//! than `DirectConv`, 4-9x fewer for the int8 one than `QConv`'s portable
//! kernel. The requantization pass is ours, in NEON through `asm!`
//! ([`passes`]).

pub(crate) mod passes;

use super::{Isa, Table};

/// NEON, as the kernel reports it (`HWCAP_NEON` in the auxiliary vector):
/// every armv7 board styleframe supports has it (the armv6 Pi 1 and Zero
/// do not run this build at all).
pub(super) fn available(isa: Isa) -> bool {
    /// `HWCAP_NEON` of Linux's `<asm/hwcap.h>` on 32-bit ARM.
    const HWCAP_NEON: libc::c_ulong = 1 << 12;
    // SAFETY: `getauxval` only reads the process's auxiliary vector.
    isa == Isa::Neon && unsafe { libc::getauxval(libc::AT_HWCAP) } & HWCAP_NEON != 0
}

pub(super) fn plug(t: &mut Table) {
    t.fconv = None;
    t.qconv = None;
    if Isa::Neon.available() {
        t.passes = Isa::Neon;
    }
}
