//! [`prefetch`]: a hint to the CPU to start loading a cache line that is about to be used, for
//! loops that touch many scattered objects one after another (a fan-out to thousands of
//! connections). Only a hint: no effect on what the program does, a no-op on CPUs without it.

/// Starts loading the cache line holding `p` into every cache level (no fault for any address).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
