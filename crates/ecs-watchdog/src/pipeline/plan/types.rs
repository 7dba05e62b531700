//! What the plan reads and writes: the settings, a run's look at one incident, the moves.

use std::collections::HashMap;

use crate::alert::InstanceFinding;
use crate::incident::{Group, GroupKey, Incident, IncidentKey, Lease, Notice, State};
use crate::silence::Silences;

/// What a run plans with besides what it saw.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UNIX seconds.
    pub now: u64,
    /// Seconds; 0: never remind.
    pub remind_after: u64,
    /// Seconds a page groups what joins its cluster and kind; 0: no grouping.
    pub group_interval: u64,
    /// How long a lease lasts: at least the function's timeout, less than the queue's
    /// visibility timeout, so a redelivery finds a dead sender's lease expired.
    pub lease: u64,
    /// This run's lease token.
    pub token: String,
    /// The silence tags this run read (`ecs-watchdog-silence-until`).
    pub silences: Silences,
    /// `CRITICAL_PERCENT`, and the registered container instances of the clusters this run
    /// counted (by cluster ARN): an outage's share of its cluster, for its severity.
    pub critical_percent: u8,
    pub cluster_sizes: HashMap<String, usize>,
    /// `FLAP_THRESHOLD`: recovered disconnects within an hour that open `agent-flapping`.
    pub flap_threshold: usize,
    /// The stack's dashboard, linked from alerts.
    pub dashboard: Option<&'static str>,
}

impl Settings {
    /// What the severity rule knows of a cluster now.
    pub fn facts(&self, cluster_arn: &str) -> crate::alert::Facts {
        crate::alert::Facts {
            critical_percent: self.critical_percent,
            cluster_instances: self.cluster_sizes.get(cluster_arn).copied(),
            dashboard: self.dashboard,
            ..crate::alert::Facts::at(self.now)
        }
    }
}

impl Settings {
    pub fn lease(&self) -> Lease {
        Lease {
            token: self.token.clone(),
            until: self.now + self.lease,
        }
    }
}

/// What a run saw of one incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// The problem is there; `hold`: how long it must have lasted since first sight before it
    /// alerts (0 for an event, whose queue delay was the grace period).
    Confirmed { finding: Box<InstanceFinding>, hold: u64 },
    /// It is over, as `how` says; `at`: since when, where an event decides it by itself (a
    /// deployment's success, by its EventBridge time); none: a look at the current state, of now.
    /// `event`: the event the look was taken for, where there is one (the flap count takes each
    /// event once, and none older than the record's close).
    Over {
        how: String,
        at: Option<u64>,
        event: Option<EventSeen>,
    },
    /// Nothing seen, but the ledger says something is owed (the sweep's outbox query).
    Owed,
    /// Read for another incident's rule only (the agent incident an impaired one may fold
    /// into): batched with the others, it changes nothing.
    Companion,
}

/// The event behind a look: its EventBridge `time` (UNIX seconds) and `id`, which a redelivery
/// of the same event carries again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSeen {
    pub time: u64,
    pub id: String,
}

/// One record to write, on condition that the stored version is still `version - 1` (0: none).
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub incident: Incident,
    /// Written only once this group's record was: it decided whether the incident pages or waits.
    pub group: Option<GroupKey>,
    /// Leased to send this notice.
    pub sends: Option<Notice>,
    /// A new incident (opened), or one closed now.
    pub opens: bool,
    pub closes: bool,
    /// A silence holds its alert now for the first time (counted `Silenced`).
    pub silenced: bool,
}

/// What a run writes: group records first, then the incidents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub moves: Vec<Move>,
    /// Instance-impaired incidents folded into their instance's agent-disconnected incident:
    /// nothing written, no alert (counted `Folded`).
    pub folded: Vec<IncidentKey>,
    /// Looks to take again after this run: a deployment's failure that came while the
    /// incident's resolved notice is owed (its messages go back to the queue, and the
    /// redelivery opens it anew once the notice went out: no look but its event would).
    pub later: Vec<IncidentKey>,
}

impl Move {
    /// A record written as it is: it neither opens nor closes an incident, sends nothing.
    pub fn mark(incident: Incident) -> Self {
        Move {
            incident,
            group: None,
            sends: None,
            opens: false,
            closes: false,
            silenced: false,
        }
    }

    /// The incident leased to send `notice`.
    pub fn leased(incident: Incident, notice: Notice, group: Option<GroupKey>, opens: bool, s: &Settings) -> Self {
        Move {
            incident: Incident {
                state: State::Sending,
                lease: Some((s.lease(), notice)),
                ..incident
            },
            group,
            sends: Some(notice),
            opens,
            closes: false,
            silenced: false,
        }
    }
}
