//! A clock the test moves instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ecs_watchdog::ports::Clock;

/// UNIX seconds, shared by every clone.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub fn at(seconds: u64) -> Self {
        Self(Arc::new(AtomicU64::new(seconds)))
    }

    /// At the system clock's now: where incidents opened by the real binary are.
    pub fn now() -> Self {
        Self::at(ecs_watchdog::ports::SystemClock.now())
    }

    pub fn set(&self, seconds: u64) {
        self.0.store(seconds, Ordering::SeqCst);
    }

    pub fn advance_minutes(&self, minutes: u64) {
        self.0.fetch_add(minutes * 60, Ordering::SeqCst);
    }
}
