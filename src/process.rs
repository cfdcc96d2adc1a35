//! Process-wide choices, made by the binary rather than the engine: the
//! allocator's thresholds and the thread pools the networks run on.

use std::sync::Mutex;

use crate::inference::Pool;

/// Keeps freed tensor buffers in the heap between frames. Each frame
/// allocates and frees the same few-MB tensors; glibc returns them to the
/// kernel (mmap'd blocks, heap trimming), so every frame paid for fresh
/// zeroed pages: ~10% of a frame in page faults, measured with `perf`.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator thresholds.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
            }
        });
    }
}

/// The process's pool for `threads` threads, the same one for every network
/// that asks for that many, so their graphs run on one thread and their
/// freed tensors share one heap (see [`Pool`]).
pub fn pool(threads: usize) -> Pool {
    static POOLS: Mutex<Vec<Pool>> = Mutex::new(Vec::new());
    let threads = threads.max(1);
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.iter().find(|p| p.threads() == threads) {
        return p.clone();
    }
    let p = Pool::new(threads);
    pools.push(p.clone());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pool_per_thread_count() {
        assert_eq!(pool(3).threads(), 3);
        assert_eq!(pool(0).threads(), 1);
        let (a, b) = (pool(2), pool(2));
        assert!(a.same_as(&b));
        assert!(!a.same_as(&pool(3)));
    }
}
