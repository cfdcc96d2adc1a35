//! armv7 (32-bit Pi OS on a Pi 2/3/Zero 2): NEON intrinsics are not stable
//! in Rust there, and LLVM does not vectorize f32 loops with NEON (it
//! flushes denormals), so our portable kernels run scalar. Measured in
//! instructions under qemu-arm (docs/armv7.md), tract's own NEON kernels
//! are cheaper for both kinds of convolution: 4.6x fewer for the f32 one
//! than `DirectConv`, 4-9x fewer for the int8 one than `QConv`'s portable
//! kernel.

use super::Table;

pub(super) fn plug(t: &mut Table) {
    t.fconv = None;
    t.qconv = None;
}
