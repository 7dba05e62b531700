//! Incidents: one open problem per (cluster, kind, container instance, daemon), so a problem
//! pages once, reminds while it lasts and says when it is over. Pure decisions over what the
//! ledger holds; the ledger adapter only reads and writes them.

use crate::finding::InstanceFinding;

pub use crate::key::{GroupKey, IncidentKey};

/// A run's claim on a message: only the run holding `token` may record it sent, until
/// `until` (UNIX seconds); past that, the sender is taken for dead and any later look sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: String,
    pub until: u64,
}

/// A group as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub key: GroupKey,
    /// Every write adds one; every write is conditional on it (0: no record yet).
    pub version: u64,
    /// Until when (UNIX seconds) new incidents of the group are held; 0: no window yet.
    pub window_end: u64,
    /// When its digest is due (UNIX seconds); 0: nothing held.
    pub digest_due: u64,
    /// When an incident was last held (the held index may lag just after).
    pub last_held: u64,
    /// A run sending its digest.
    pub lease: Option<Lease>,
}

impl Group {
    pub fn none(key: GroupKey) -> Self {
        Self {
            key,
            version: 0,
            window_end: 0,
            digest_due: 0,
            last_held: 0,
            lease: None,
        }
    }

    /// Whether what becomes due now waits for the digest: a window is open, or others wait.
    pub fn holds(&self, now: u64) -> bool {
        now < self.window_end || self.digest_due > 0
    }

    /// Whether a run may send its digest now: due, and nobody alive is sending it.
    pub fn digest_due(&self, now: u64) -> bool {
        self.digest_due > 0 && now >= self.digest_due && self.lease.as_ref().is_none_or(|l| l.until <= now)
    }

    /// When the sweep must look at it next (the ledger's outbox index); 0: never.
    pub fn due_at(&self) -> u64 {
        match &self.lease {
            Some(lease) => lease.until,
            None => self.digest_due,
        }
    }
}

/// Where an incident is in its life (DESIGN §7): an outbox, moved only by conditional writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Seen first by the sweep: its grace period runs.
    Pending,
    /// Confirmed: an alert is owed (by itself, or by its group's digest when held).
    Due,
    /// A run holds the lease to send its next notice.
    Sending,
    /// Its alert went out.
    Notified,
    /// It is over and its alert went out: a resolved notice is owed.
    ResolveDue,
    Closed,
}

impl State {
    /// Every state, in the order an incident moves through them.
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Due,
        State::Sending,
        State::Notified,
        State::ResolveDue,
        State::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Due => "due",
            State::Sending => "sending",
            State::Notified => "notified",
            State::ResolveDue => "resolve-due",
            State::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What a lease sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Notice {
    Alert,
    Reminder,
    Resolved,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Alert => "alert",
            Notice::Reminder => "reminder",
            Notice::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Notice::Alert, Notice::Reminder, Notice::Resolved]
            .into_iter()
            .find(|n| n.as_str() == text)
    }

    /// The state a lease of this notice was taken from, and goes back to if it fails.
    pub fn from(self) -> State {
        match self {
            Notice::Alert => State::Due,
            Notice::Reminder => State::Notified,
            Notice::Resolved => State::ResolveDue,
        }
    }

    /// The state once SNS accepted it.
    pub fn to(self) -> State {
        match self {
            Notice::Alert | Notice::Reminder => State::Notified,
            Notice::Resolved => State::Closed,
        }
    }
}

/// An incident as the ledger keeps it. Times are UNIX seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub key: IncidentKey,
    pub state: State,
    /// Every write adds one; every write but a lease's own record is conditional on it.
    pub version: u64,
    /// Set while `Sending`: who sends what, until when.
    pub lease: Option<(Lease, Notice)>,
    /// First sight.
    pub opened_at: u64,
    /// When its last notice went out; 0: none yet.
    pub notified_at: u64,
    /// The finding as confirmed, with what remediation did: what every notice tells.
    pub finding: InstanceFinding,
    /// Held for its group's digest (due, or closed before the digest told it).
    pub held: bool,
    /// When a look found it over while a lease was out; 0: not seen over.
    pub ended_at: u64,
    /// How a look found it over.
    pub resolution: Option<String>,
    /// When it closed; 0 while open.
    pub closed_at: u64,
}

impl Incident {
    /// A new incident, first seen now.
    pub fn new(key: IncidentKey, state: State, finding: InstanceFinding, now: u64) -> Self {
        Self {
            key,
            state,
            version: 0,
            lease: None,
            opened_at: now,
            notified_at: 0,
            finding,
            held: false,
            ended_at: 0,
            resolution: None,
            closed_at: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state != State::Closed
    }

    /// The state a look acts on: a lease past its time is the state it was taken from (its
    /// sender died), and an alerted incident seen over is owed its resolved notice.
    pub fn settled(&self, now: u64) -> State {
        let state = match &self.lease {
            Some((lease, notice)) if self.state == State::Sending && lease.until <= now => notice.from(),
            _ => self.state,
        };
        match state {
            State::Notified if self.ended_at > 0 => State::ResolveDue,
            other => other,
        }
    }

    /// When the silence that held its alert ends (UNIX seconds); 0: none held it.
    pub fn silence_end(&self) -> u64 {
        self.finding
            .silenced_until
            .as_deref()
            .and_then(crate::silence::secs)
            .unwrap_or(0)
    }

    /// When the sweep must look at it without a fresh sight (the ledger's outbox index): an
    /// alert owed and not held (at the end of the silence that holds it), a resolved notice
    /// owed, a lease's end; 0: never.
    pub fn due_at(&self) -> u64 {
        match (self.state, &self.lease) {
            (State::Sending, Some((lease, _))) => lease.until,
            (State::Due, _) if !self.held => self.opened_at.max(self.silence_end()).max(1),
            (State::ResolveDue, _) => self.ended_at.max(1),
            (State::Notified, _) if self.ended_at > 0 => self.ended_at,
            _ => 0,
        }
    }
}

pub use crate::finding::lines::lasted;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::AlertKind;

    #[test]
    fn when_a_lease_expired_then_the_incident_is_what_it_was_before_and_is_owed() {
        let key = IncidentKey::new("c", AlertKind::AgentDisconnected, "arn/ci/x", None);
        let leased = |notice| Incident {
            state: State::Sending,
            lease: Some((
                Lease {
                    token: "t".into(),
                    until: 500,
                },
                notice,
            )),
            ..Incident::new(key.clone(), State::Due, InstanceFinding::default(), 100)
        };
        assert_eq!(leased(Notice::Alert).settled(499), State::Sending);
        assert_eq!(leased(Notice::Alert).settled(500), State::Due);
        assert_eq!(leased(Notice::Reminder).settled(500), State::Notified);
        assert_eq!(leased(Notice::Resolved).settled(500), State::ResolveDue);
        assert_eq!(leased(Notice::Alert).due_at(), 500, "the sweep looks once it expired");
        let seen_over = Incident {
            ended_at: 450,
            ..Incident::new(key.clone(), State::Notified, InstanceFinding::default(), 100)
        };
        assert_eq!(seen_over.settled(460), State::ResolveDue);
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn when_a_group_has_a_window_or_waiting_incidents_then_newcomers_wait_and_its_digest_is_due_after() {
        let key = GroupKey::new("arn:aws:ecs:eu-west-1:1:cluster/prod", AlertKind::AgentDisconnected);
        assert_eq!(
            key.id(),
            "group|firing|agent-disconnected|arn:aws:ecs:eu-west-1:1:cluster/prod"
        );
        let group = |window_end, digest_due| Group {
            window_end,
            digest_due,
            ..Group::none(key.clone())
        };
        // (group, now) -> (holds newcomers, digest due)
        let cases = [
            (group(0, 0), 100, false, false),
            (group(400, 0), 100, true, false),
            (group(400, 0), 400, false, false),
            (group(400, 400), 100, true, false),
            (group(400, 400), 400, true, true),
        ];
        for (group, now, holds, due) in cases {
            assert_eq!(
                (group.holds(now), group.digest_due(now)),
                (holds, due),
                "{group:?} at {now}"
            );
        }
    }

    #[test]
    fn when_keys_differ_only_in_kind_then_their_ids_differ() {
        let agent = IncidentKey::new("c", AlertKind::AgentDisconnected, "arn/ci/x", None);
        let daemon = IncidentKey::new("c", AlertKind::DaemonLost, "arn/ci/x", Some("agent"));
        assert_ne!(agent.id(), daemon.id());
        assert_eq!(agent.instance, "x");
    }

    #[test]
    fn when_a_duration_is_shown_then_it_reads_in_hours_and_minutes() {
        assert_eq!(lasted(40), "40 s");
        assert_eq!(lasted(25 * 60), "25 min");
        assert_eq!(lasted(4 * 3600 + 10 * 60), "4 h 10 min");
    }
}
