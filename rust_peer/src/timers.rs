//! The single queue of foca timers, ordered by deadline and then by
//! submission, so timers that come due together fire in the order foca
//! submitted them.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use foca::Timer;
use tokio::time::Instant;

/// How far ahead a deadline goes when `now + delay` would overflow
/// `Instant`, which a huge `remove_down_after_ms` can cause. About 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

struct Scheduled<T> {
    deadline: Instant,
    /// Submission counter: breaks ties between equal deadlines.
    seq: u64,
    timer: Timer<T>,
}

impl<T> PartialEq for Scheduled<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Scheduled<T> {}

impl<T> PartialOrd for Scheduled<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Scheduled<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// A min-heap of pending timers.
pub struct TimerQueue<T> {
    heap: BinaryHeap<Reverse<Scheduled<T>>>,
    next_seq: u64,
}

impl<T> TimerQueue<T> {
    pub fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `timer` to fire `delay` after `now`.
    pub fn push(&mut self, now: Instant, delay: Duration, timer: Timer<T>) {
        let deadline = now.checked_add(delay).unwrap_or_else(|| now + FAR_FUTURE);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Scheduled {
            deadline,
            seq,
            timer,
        }));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(entry)| entry.deadline)
    }

    /// Removes and returns the earliest timer whose deadline is at or before
    /// `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer<T>> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry.timer)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_due(queue: &mut TimerQueue<u8>, now: Instant) -> Vec<Timer<u8>> {
        std::iter::from_fn(|| queue.pop_due(now)).collect()
    }

    #[test]
    fn fires_in_deadline_order() {
        let now = Instant::now();
        let mut queue = TimerQueue::new();
        queue.push(now, Duration::from_millis(30), Timer::RemoveDown(3));
        queue.push(now, Duration::from_millis(10), Timer::RemoveDown(1));
        queue.push(now, Duration::from_millis(20), Timer::RemoveDown(2));

        let fired = drain_due(&mut queue, now + Duration::from_millis(30));
        assert_eq!(
            fired,
            [
                Timer::RemoveDown(1),
                Timer::RemoveDown(2),
                Timer::RemoveDown(3)
            ]
        );
    }

    #[test]
    fn equal_deadlines_fire_in_submission_order() {
        let now = Instant::now();
        let delay = Duration::from_millis(5);
        let mut queue = TimerQueue::new();
        // Submitted in the reverse of foca's own Timer ordering on purpose.
        queue.push(now, delay, Timer::PeriodicGossip(0));
        queue.push(now, delay, Timer::ProbeRandomMember(0));
        queue.push(
            now,
            delay,
            Timer::SendIndirectProbe {
                probed_id: 7,
                token: 0,
            },
        );

        let fired = drain_due(&mut queue, now + delay);
        assert_eq!(
            fired,
            [
                Timer::PeriodicGossip(0),
                Timer::ProbeRandomMember(0),
                Timer::SendIndirectProbe {
                    probed_id: 7,
                    token: 0
                },
            ]
        );
    }

    #[test]
    fn keeps_timers_not_yet_due() {
        let now = Instant::now();
        let mut queue = TimerQueue::new();
        queue.push(now, Duration::from_millis(10), Timer::RemoveDown(1));
        queue.push(now, Duration::from_millis(50), Timer::RemoveDown(2));

        let fired = drain_due(&mut queue, now + Duration::from_millis(20));
        assert_eq!(fired, [Timer::RemoveDown(1)]);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next_deadline(), Some(now + Duration::from_millis(50)));
    }

    #[test]
    fn huge_delay_does_not_overflow() {
        let now = Instant::now();
        let mut queue = TimerQueue::new();
        queue.push(now, Duration::MAX, Timer::RemoveDown(1));
        assert_eq!(queue.next_deadline(), Some(now + FAR_FUTURE));
    }
}
