//! The simulated outside: a fleet whose instances get into trouble (an agent disconnects, the
//! daemon's task is gone, ECS reports the instance IMPAIRED) and out of it on a timeline, and the
//! scheduler's gate. Every port call ([`super::ports`]) first passes the gate, which may let it
//! through, make it wait (another run goes meanwhile), fail it (throttling), or kill the run
//! there; each run reads its own clock, which may step back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use super::super::fakes::FakeLedger;
use crate::alert::{Alert, AlertKind};
use crate::ports::{AwsError, Clock};

/// splitmix64: small, seeded, the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        crate::seeded::splitmix(&mut self.0)
    }
    /// In `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the gate does with one port call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    Go,
    Wait,
    Fail,
    Crash,
}

/// What SNS does with one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publish {
    Accept,
    Refuse,
    /// Accepted, but the caller sees a timeout.
    TimeoutAfterAccept,
    /// Accepted, and the run dies before it hears back.
    CrashAfterAccept,
}

/// One message the topic took.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: u64,
    pub alert: Alert,
    /// The run that published it.
    pub run: usize,
    /// The sender never heard it was accepted: a repeat of what it names is allowed.
    pub unheard: bool,
}

/// The scheduler's shared state: the seeded choices, the clock, the fleet, the topic.
pub struct Gate {
    pub rng: Rng,
    /// Percent chances per port call, while faults are on.
    pub faults: bool,
    pub now: &'static std::sync::atomic::AtomicU64,
    pub crashed: Vec<bool>,
    /// Runs in which a group record could not be read (their pages are ungrouped on purpose).
    pub ungrouped: Vec<bool>,
    pub topic: Vec<Sent>,
    /// What the table's indexes show: the table as it was at a moment, for a little while
    /// (a global secondary index lags its table by well under a minute).
    pub index: Option<(u64, FakeLedger)>,
    /// When the faults stopped (0: not yet).
    pub calm_from: u64,
    /// Per kind and container instance ARN: the times its trouble begins and ends, in order
    /// (even index: begins). An instance has trouble of one kind only.
    pub timeline: HashMap<(AlertKind, String), Vec<u64>>,
    /// Per container instance ARN: when it was deregistered (ECS lists it no more and answers
    /// it `MISSING`), if it was.
    pub gone: HashMap<String, u64>,
    /// Per run: how far its clock is from the world's (Lambda hosts' clocks differ, and NTP
    /// steps one back now and then).
    pub skew: Vec<i64>,
    /// How many times a run's clock stepped back.
    pub stepped_back: usize,
    /// The mutant: an alert's lease is written as sent, before the publish (the simulation
    /// must catch it).
    pub broken: bool,
    /// What the atomic writes came to, so the test knows it exercised them.
    pub together: Together,
    /// The first read or write DynamoDB would refuse outright (too many items, one twice).
    pub refused: Option<String>,
}

/// How many `TransactWriteItems` of whole batches were written, cancelled by a failed
/// condition, cancelled by a conflict or throttling.
#[derive(Debug, Default, Clone, Copy)]
pub struct Together {
    pub written: usize,
    pub moved: usize,
    pub conflicted: usize,
}

pub type Shared = Arc<Mutex<Gate>>;

impl Gate {
    fn turn(&mut self, run: usize, operation: &str) -> Turn {
        if !self.faults {
            return if self.rng.chance(20) { Turn::Wait } else { Turn::Go };
        }
        if self.rng.chance(2) {
            // NTP steps the run's clock back by up to half a minute.
            self.skew[run] -= 1 + self.rng.below(30) as i64;
            self.stepped_back += 1;
        }
        match self.rng.below(1000) {
            0..=14 => {
                self.crashed[run] = true;
                Turn::Crash
            }
            15..=44 if operation != "sns:Publish" => {
                if operation == "dynamodb:groups" {
                    self.ungrouped[run] = true;
                }
                Turn::Fail
            }
            45..=344 => Turn::Wait,
            _ => Turn::Go,
        }
    }

    /// What happens after a write DynamoDB applied: the caller hears it, times out, or dies.
    pub(super) fn after_write(&mut self, run: usize) -> Turn {
        if !self.faults {
            return Turn::Go;
        }
        match self.rng.below(1000) {
            0..=9 => {
                self.crashed[run] = true;
                Turn::Crash
            }
            10..=29 => Turn::Fail,
            _ => Turn::Go,
        }
    }

    /// Whether an index query sees the lagging copy; refreshes it when it is too old.
    pub(super) fn lagging(&mut self, table: &FakeLedger) -> bool {
        const LAG: u64 = 30;
        let now = self.now();
        let fresh = self.index.as_ref().is_some_and(|(at, _)| now <= at + LAG);
        if !fresh {
            self.index = Some((now, table.snapshot()));
        }
        self.faults && self.rng.chance(40)
    }

    /// Whether a transaction conflicts with another one in flight on one of its items
    /// (`TransactionConflict`): DynamoDB cancels it, the adapter sends it again.
    pub(super) fn conflict(&mut self) -> bool {
        self.faults && self.rng.chance(5)
    }

    pub(super) fn publish(&mut self) -> Publish {
        if !self.faults {
            return Publish::Accept;
        }
        match self.rng.below(100) {
            0..=4 => Publish::Refuse,
            5..=7 => Publish::TimeoutAfterAccept,
            8..=9 => Publish::CrashAfterAccept,
            _ => Publish::Accept,
        }
    }

    pub fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the instance was deregistered by `now`.
    pub fn gone(&self, instance: &str, now: u64) -> bool {
        self.gone.get(instance).is_some_and(|at| *at <= now)
    }

    /// Whether the instance has trouble of this kind at `now` (none once it is gone).
    pub fn troubled(&self, kind: AlertKind, instance: &str, now: u64) -> bool {
        if self.gone(instance, now) {
            return false;
        }
        let flips = self
            .timeline
            .get(&(kind, instance.to_owned()))
            .map_or(0, |t| t.iter().filter(|at| **at <= now).count());
        !flips.is_multiple_of(2)
    }
}

/// The doors one run uses: each call passes the gate first.
#[derive(Clone)]
pub struct Door {
    pub gate: Shared,
    pub run: usize,
}

impl Door {
    pub(super) async fn pass(&self, operation: &'static str) -> Result<(), AwsError> {
        let turn = self.gate.lock().unwrap().turn(self.run, operation);
        match turn {
            Turn::Go => Ok(()),
            Turn::Wait => {
                // Pending once, and woken at once, as a call in flight is: without the wake, a
                // `join_all` of more than 30 calls (a `FuturesUnordered` inside) never polls
                // this call again (a 4,000-instance sweep hung for good).
                let mut waited = false;
                std::future::poll_fn(|cx| match std::mem::replace(&mut waited, true) {
                    false => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    true => Poll::Ready(()),
                })
                .await;
                Ok(())
            }
            Turn::Fail => Err(AwsError::new(operation, "injected: throttled")),
            Turn::Crash => std::future::pending().await,
        }
    }
}

/// A run's clock: the world's, moved by the run's skew.
pub struct RunClock(pub Door);

impl Clock for RunClock {
    fn now(&self) -> u64 {
        let gate = self.0.gate.lock().unwrap();
        gate.now().saturating_add_signed(gate.skew[self.0.run])
    }
}
