//! Kernels: one home per CPU architecture, one table of choices.
//!
//! `x86_64/`, `aarch64/` and `arm/` hold each architecture's SIMD kernels;
//! the ops keep their portable code, which is the reference every kernel is
//! tested against. [`table`] is filled once from the CPU's features by the
//! architecture's `plug` (as tract-linalg's per-architecture plug functions
//! or rav1e's function tables do); the ops read their choice from it and
//! never test CPU features themselves.

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "arm")]
pub(crate) mod arm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

use std::sync::OnceLock;

/// A set of instructions kernels are compiled for. Each one's
/// [`Isa::available`] checks every feature its kernels enable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, vectorized by the compiler for the build's baseline
    /// (SSE2 on x86-64, NEON on aarch64 and on armv7 built with `+neon`).
    Portable,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL + FMA.
    Avx512,
    /// [`Isa::Avx512`] + VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// [`Isa::Avx512Vnni`] + VBMI (byte permutes).
    Avx512Vbmi,
    /// NEON: aarch64 (Pi 3, Pi 4), or armv7 built with `+neon`.
    Neon,
    /// aarch64 NEON + the dot product `sdot` (Pi 5).
    NeonDot,
}

impl Isa {
    /// Whether this CPU runs every instruction `self`'s kernels use.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 | Isa::Avx512Vnni | Isa::Avx512Vbmi => x86_64::available(self),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDot => aarch64::available(self),
            #[cfg(target_arch = "arm")]
            Isa::Neon => arm::available(self),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::Avx512Vbmi => "avx512-vbmi",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dotprod",
        }
    }
}

/// The kernels the engine runs on this CPU, per kind of op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// The f32 direct convolution (`DirectConv`, the fp16 file); `None`
    /// where tract's own convolution measured faster than ours.
    pub fconv: Option<Isa>,
    /// The exact int8 convolution (`QConv`); `None` where tract's own
    /// convolution measured faster than ours.
    pub qconv: Option<Isa>,
    /// Element-wise and per-channel int8 passes (requantization, ADD on
    /// bytes, means).
    pub passes: Isa,
}

impl Table {
    /// What runs with no SIMD kernel of ours: on x86-64 without AVX2 the
    /// portable int8 convolution measured slower than tract's f32 path
    /// (predict 141 vs 97 ms), so it is left to tract.
    const PORTABLE: Table = Table {
        fconv: Some(Isa::Portable),
        qconv: None,
        passes: Isa::Portable,
    };

    /// One line for logs, `doctor` and `bench`.
    pub fn describe(&self) -> String {
        format!(
            "{}: f32 conv {}, int8 conv {}, int8 passes {}",
            std::env::consts::ARCH,
            self.fconv.map_or("tract", Isa::name),
            self.qconv.map_or("tract", Isa::name),
            self.passes.name()
        )
    }
}

/// The table for this CPU, filled on first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        #[allow(unused_mut)]
        let mut t = Table::PORTABLE;
        #[cfg(target_arch = "x86_64")]
        x86_64::plug(&mut t);
        #[cfg(target_arch = "aarch64")]
        aarch64::plug(&mut t);
        #[cfg(target_arch = "arm")]
        arm::plug(&mut t);
        log::info!("kernels: {}", t.describe());
        let ours = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
        if t.fconv == Some(Isa::Portable) && ours {
            log::warn!("no SIMD kernels of ours for this CPU: the networks run slower");
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_picks_only_what_this_cpu_runs() {
        let t = table();
        assert!(t.fconv.is_none_or(Isa::available) && t.passes.available());
        assert!(t.qconv.is_none_or(Isa::available));
        assert!(t.describe().starts_with(std::env::consts::ARCH));
    }

    /// Every armv7 board styleframe supports has NEON (the tests run on a
    /// Cortex-A7 under qemu): the requantization takes the NEON pass.
    #[test]
    #[cfg(target_arch = "arm")]
    fn armv7_finds_neon_for_the_passes() {
        assert_eq!(table().passes, Isa::Neon);
    }

    #[test]
    fn portable_is_always_available() {
        assert!(Isa::Portable.available());
    }
}
