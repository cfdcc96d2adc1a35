//! A one-place mailbox between two stages: the producer always replaces what
//! is there (a stale frame is dropped, never queued), the consumer takes the
//! newest. Used buffers travel back through a small spare pool, so in steady
//! state no frame buffer is allocated.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct LatestSlot<T> {
    inner: Mutex<Inner<T>>,
    ready: Condvar,
}

struct Inner<T> {
    value: Option<T>,
    spares: Vec<T>,
    dropped: u64,
    closed: bool,
}

/// Spares kept at most: one being filled, one in the slot, one being read.
const MAX_SPARES: usize = 3;

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        LatestSlot {
            inner: Mutex::new(Inner {
                value: None,
                spares: vec![],
                dropped: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> LatestSlot<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panicking stage must not take the others down with a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the newest value; a value nobody took yet is dropped (counted)
    /// and its buffer kept as a spare.
    pub fn put(&self, v: T) {
        let mut g = self.lock();
        if let Some(stale) = g.value.replace(v) {
            g.dropped += 1;
            if g.spares.len() < MAX_SPARES {
                g.spares.push(stale);
            }
        }
        drop(g);
        self.ready.notify_one();
    }

    /// Takes the newest value, waiting up to `timeout` for one.
    pub fn take(&self, timeout: Duration) -> Option<T> {
        let g = self.lock();
        let (mut g, _) = self
            .ready
            .wait_timeout_while(g, timeout, |i| i.value.is_none() && !i.closed)
            .unwrap_or_else(|p| p.into_inner());
        g.value.take()
    }

    pub fn try_take(&self) -> Option<T> {
        self.lock().value.take()
    }

    /// Gives a used buffer back for the producer to refill.
    pub fn recycle(&self, v: T) {
        let mut g = self.lock();
        if g.spares.len() < MAX_SPARES {
            g.spares.push(v);
        }
    }

    /// A buffer to fill, if one came back.
    pub fn spare(&self) -> Option<T> {
        self.lock().spares.pop()
    }

    /// Values replaced before anyone took them.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Wakes every waiter (shutdown).
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_gets_the_newest_value_and_stale_ones_are_dropped() {
        let s = LatestSlot::default();
        s.put(1);
        s.put(2);
        s.put(3);
        assert_eq!(s.take(Duration::ZERO), Some(3));
        assert_eq!(s.dropped(), 2);
        assert_eq!(s.take(Duration::from_millis(1)), None);
    }

    #[test]
    fn dropped_and_recycled_buffers_come_back_as_spares() {
        let s = LatestSlot::default();
        s.put(vec![1u8; 4]);
        s.put(vec![2u8; 4]);
        assert_eq!(s.spare(), Some(vec![1u8; 4]));
        let v = s.take(Duration::ZERO).unwrap();
        s.recycle(v);
        assert_eq!(s.spare(), Some(vec![2u8; 4]));
        assert_eq!(s.spare(), None);
    }

    #[test]
    fn take_wakes_up_when_a_value_arrives() {
        let s = std::sync::Arc::new(LatestSlot::default());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.take(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        s.put(7);
        assert_eq!(t.join().unwrap(), Some(7));
    }
}
