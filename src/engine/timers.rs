//! A loop's deadlines: tasks to run at a given instant, in deadline order. The earliest deadline
//! bounds the loop's epoll_wait (as libuv's timer heap does), so a loop sleeps no longer than its
//! next timer and no timer costs a thread of its own.

use super::Task;
use std::collections::BTreeMap;
use std::time::Instant;

/// Names one timer of one loop: its deadline and a sequence number (equal deadlines fire in the
/// order they were set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey(Instant, u64);

#[derive(Default)]
pub struct Timers {
    entries: BTreeMap<TimerKey, Task>,
    next: u64,
}

impl Timers {
    /// Adds `task` to run at `at`; true when it is now the earliest (the loop must wake to
    /// shorten its wait).
    pub fn add(&mut self, at: Instant, task: Task) -> (TimerKey, bool) {
        self.next += 1;
        let key = TimerKey(at, self.next);
        let earliest = self.entries.keys().next().map_or(true, |first| key < *first);
        self.entries.insert(key, task);
        (key, earliest)
    }

    /// Removes a timer that has not fired; its task is returned (and dropped by the caller).
    pub fn cancel(&mut self, key: TimerKey) -> Option<Task> {
        self.entries.remove(&key)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.keys().next().map(|k| k.0)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tasks whose deadline has come, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Task> {
        if self.next_deadline().map_or(true, |first| first > now) {
            return Vec::new();
        }
        let later = self.entries.split_off(&TimerKey(now, u64::MAX));
        std::mem::replace(&mut self.entries, later).into_values().collect()
    }

    pub fn clear(&mut self) -> Vec<Task> {
        std::mem::take(&mut self.entries).into_values().collect()
    }
}

/// The epoll_wait timeout (ms, rounded up so a wait never ends before the deadline) for the next
/// deadline; -1 = none.
pub fn timeout_ms(next: Option<Instant>, now: Instant) -> i32 {
    match next {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(now);
            let ms = left.as_micros().div_ceil(1000);
            ms.min(i32::MAX as u128) as i32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_order_and_cancelled_ones_never() {
        let now = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut t = Timers::default();
        let push = |n: u32| {
            let s = seen.clone();
            Box::new(move || s.lock().push(n)) as Task
        };
        let (_, first) = t.add(now + Duration::from_millis(30), push(30));
        let (_, earlier) = t.add(now + Duration::from_millis(10), push(10));
        let (k20, later) = t.add(now + Duration::from_millis(20), push(20));
        assert!(first && earlier && !later);
        assert!(t.cancel(k20).is_some());
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(10)));
        // Before the first deadline nothing is due, and nothing is taken.
        assert!(t.take_due(now + Duration::from_millis(9)).is_empty());
        assert!(!t.is_empty());
        for task in t.take_due(now + Duration::from_millis(10)) {
            task();
        }
        assert_eq!(*seen.lock(), vec![10]);
        for task in t.take_due(now + Duration::from_millis(100)) {
            task();
        }
        assert_eq!(*seen.lock(), vec![10, 30]);
        assert_eq!(t.next_deadline(), None);
        assert!(t.is_empty());
    }

    #[test]
    fn the_wait_never_ends_before_the_deadline() {
        let now = Instant::now();
        assert_eq!(timeout_ms(None, now), -1);
        assert_eq!(timeout_ms(Some(now), now), 0);
        assert_eq!(timeout_ms(Some(now + Duration::from_micros(1)), now), 1);
        assert_eq!(timeout_ms(Some(now + Duration::from_millis(7)), now), 7);
        assert_eq!(timeout_ms(Some(now - Duration::from_millis(7)), now), 0);
    }
}
