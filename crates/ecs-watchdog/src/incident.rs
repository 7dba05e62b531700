//! Incidents: one open problem per (cluster, kind, container instance, daemon), so a problem
//! pages once, reminds while it lasts and says when it is over. Pure decisions over what the
//! ledger holds; the ledger adapter only reads and writes them.

use crate::alert::{AlertKind, InstanceFinding, Status};
use crate::inventory::instance_key;

/// What identifies an incident. The cluster ARN carries the account and the region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentKey {
    pub cluster_arn: String,
    pub kind: AlertKind,
    /// The container instance id (the last part of its ARN, whatever the ARN format).
    pub instance: String,
    /// Set for daemon kinds only.
    pub daemon: Option<String>,
}

impl IncidentKey {
    pub fn new(cluster_arn: &str, kind: AlertKind, container_instance_arn: &str, daemon: Option<&str>) -> Self {
        Self {
            cluster_arn: cluster_arn.to_owned(),
            kind,
            instance: instance_key(container_instance_arn).to_owned(),
            daemon: daemon.map(str::to_owned),
        }
    }

    /// The incident a signal speaks of.
    pub fn of(signal: &crate::event::Signal) -> Self {
        Self::new(
            signal.cluster_arn(),
            signal.kind(),
            signal.container_instance_arn(),
            signal.daemon_name(),
        )
    }

    /// The ledger's partition key: kind first, so a daemon's name can never collide with another
    /// kind's key.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.as_str(),
            self.cluster_arn,
            self.instance,
            self.daemon.as_deref().unwrap_or("-")
        )
    }
}

/// The incidents of one cluster and kind that notify together (DESIGN §7, grouping): one group
/// for alerts, one for resolved notices.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub cluster_arn: String,
    pub kind: AlertKind,
    pub status: Status,
}

impl GroupKey {
    pub fn new(cluster_arn: &str, kind: AlertKind, status: Status) -> Self {
        Self {
            cluster_arn: cluster_arn.to_owned(),
            kind,
            status,
        }
    }

    /// The ledger's key of the group's record, and what its held incidents carry.
    pub fn id(&self) -> String {
        format!(
            "group|{}|{}|{}",
            self.status.as_str(),
            self.kind.as_str(),
            self.cluster_arn
        )
    }
}

/// A group as the ledger keeps it: the window a notification opened, and how many incidents
/// wait for the digest that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub key: GroupKey,
    /// Until when (UNIX seconds) new incidents of the group are held; 0: no window yet.
    pub window_end: u64,
    /// How many incidents are held for the next digest.
    pub held: u64,
    /// When an incident was last counted held (UNIX seconds).
    pub last_held: u64,
}

impl Group {
    pub fn none(key: GroupKey) -> Self {
        Self {
            key,
            window_end: 0,
            held: 0,
            last_held: 0,
        }
    }

    /// Whether what joins the group now is held for a digest: a window is open, or incidents
    /// already wait (they go first, with the newcomers, in the digest).
    pub fn holds(&self, now: u64) -> bool {
        now < self.window_end || self.held > 0
    }

    /// Whether its digest is due: incidents wait and the window is over.
    pub fn digest_due(&self, now: u64) -> bool {
        self.held > 0 && now >= self.window_end
    }
}

/// An incident as the ledger keeps it. Times are UNIX seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub key: IncidentKey,
    pub open: bool,
    pub opened_at: u64,
    /// When an alert naming it last went out; 0: none has yet (the first failed to publish).
    pub notified_at: u64,
    /// The finding as first confirmed, with what remediation did: what a later alert, a
    /// resolved notice or a reminder tells.
    pub finding: InstanceFinding,
    /// Whether an alert carrying `finding.remediation` went out.
    pub remediation_reported: bool,
    /// The group whose digest will tell it (opened, or resolved, while the group's window was
    /// open); none once told.
    pub held: Option<Status>,
    /// How a look found it over, when closed.
    pub resolution: Option<String>,
    /// When it closed; 0 while open.
    pub closed_at: u64,
}

impl Incident {
    /// A new open incident.
    pub fn opened(key: IncidentKey, finding: InstanceFinding, now: u64, notified_at: u64) -> Self {
        Self {
            key,
            open: true,
            opened_at: now,
            notified_at,
            remediation_reported: notified_at > 0 && finding.remediation.is_some(),
            finding,
            held: None,
            resolution: None,
            closed_at: 0,
        }
    }
}

/// Why an incident is named in a firing alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Opened now.
    New,
    /// Open, but no alert naming it went out yet, or what remediation did was not reported.
    Unreported,
    /// Open for longer than the reminder interval since the last alert.
    Reminder,
}

/// What the ledger must do for one confirmed problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create it (on condition that no open incident has the key) and alert.
    Open,
    /// Claim the next alert (on condition that `notified_at` is still `expected`) and send it.
    Notify { notice: Notice, expected: u64 },
    /// Already alerted and not yet due again, or first seen by the sweep less than its hold
    /// ago: nothing to send.
    Quiet,
    /// First seen by the sweep: record it (open, nobody told yet) so a later look can confirm
    /// that it lasted.
    Watch,
}

/// What a confirmed problem means for its incident, given what the ledger holds. `hold` is how
/// long the problem must have lasted before it alerts: 0 for an event (its queue delay was the
/// grace period); for the sweep, which sees a state and not when it began, the grace period or
/// how long a suppression may last, counted from the incident's first sight.
pub fn on_confirmed(
    current: Option<&Incident>,
    remediation_now: bool,
    now: u64,
    remind_after_seconds: u64,
    hold: u64,
) -> Step {
    let Some(incident) = current.filter(|i| i.open) else {
        return if hold > 0 { Step::Watch } else { Step::Open };
    };
    if incident.held.is_some() {
        // Its group's digest tells it.
        return Step::Quiet;
    }
    let expected = incident.notified_at;
    if incident.notified_at == 0 && now.saturating_sub(incident.opened_at) < hold {
        return Step::Quiet;
    }
    let unreported_action =
        remediation_now || (incident.finding.remediation.is_some() && !incident.remediation_reported);
    if incident.notified_at == 0 || unreported_action {
        return Step::Notify {
            notice: Notice::Unreported,
            expected,
        };
    }
    if remind_after_seconds > 0 && now.saturating_sub(incident.notified_at) >= remind_after_seconds {
        return Step::Notify {
            notice: Notice::Reminder,
            expected,
        };
    }
    Step::Quiet
}

/// Whether a look that finds the problem gone closes the incident with a resolved notice: only
/// an open incident whose alert went out (nobody was told of the others).
pub fn closes_with_notice(current: Option<&Incident>) -> Option<bool> {
    // A held one is told by its group's digest, as opened and resolved.
    current
        .filter(|i| i.open)
        .map(|i| i.notified_at > 0 && i.held.is_none())
}

/// How long an incident has lasted, for people: `4 h 10 min`, `25 min`, `40 s`.
pub fn lasted(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(open: bool, notified_at: u64, remediation: Option<&str>, reported: bool) -> Incident {
        Incident {
            key: IncidentKey::new(
                "arn:aws:ecs:eu-west-1:1:cluster/prod",
                AlertKind::AgentDisconnected,
                "ci/a",
                None,
            ),
            open,
            opened_at: 1_000,
            notified_at,
            finding: InstanceFinding {
                remediation: remediation.map(str::to_owned),
                ..Default::default()
            },
            remediation_reported: reported,
            held: None,
            resolution: None,
            closed_at: 0,
        }
    }

    #[test]
    fn when_a_problem_is_confirmed_then_the_incident_decides_whether_to_alert() {
        let hour = 3_600;
        let remind = 4 * hour;
        let cases: Vec<(&str, Option<Incident>, bool, u64, Step)> = vec![
            ("no incident yet", None, false, 5_000, Step::Open),
            (
                "closed before",
                Some(incident(false, 2_000, None, false)),
                false,
                5_000,
                Step::Open,
            ),
            (
                "alerted a minute ago",
                Some(incident(true, 5_000, None, false)),
                false,
                5_060,
                Step::Quiet,
            ),
            (
                "the first alert failed",
                Some(incident(true, 0, None, false)),
                false,
                5_060,
                Step::Notify {
                    notice: Notice::Unreported,
                    expected: 0,
                },
            ),
            (
                "a drain not yet reported",
                Some(incident(true, 5_000, Some("drained"), false)),
                false,
                5_060,
                Step::Notify {
                    notice: Notice::Unreported,
                    expected: 5_000,
                },
            ),
            (
                "a drain reported",
                Some(incident(true, 5_000, Some("drained"), true)),
                false,
                5_060,
                Step::Quiet,
            ),
            (
                "remediation acted now",
                Some(incident(true, 5_000, None, false)),
                true,
                5_060,
                Step::Notify {
                    notice: Notice::Unreported,
                    expected: 5_000,
                },
            ),
            (
                "the reminder is due",
                Some(incident(true, 5_000, None, false)),
                false,
                5_000 + remind,
                Step::Notify {
                    notice: Notice::Reminder,
                    expected: 5_000,
                },
            ),
            (
                "not yet due",
                Some(incident(true, 5_000, None, false)),
                false,
                5_000 + remind - 1,
                Step::Quiet,
            ),
        ];
        for (name, current, remediation_now, now, expected) in cases {
            assert_eq!(
                on_confirmed(current.as_ref(), remediation_now, now, remind, 0),
                expected,
                "{name}"
            );
        }
        assert_eq!(
            on_confirmed(
                Some(&incident(true, 5_000, None, false)),
                false,
                5_000 + 100 * hour,
                0,
                0
            ),
            Step::Quiet,
            "0 turns reminders off"
        );
    }

    #[test]
    fn when_the_sweep_sees_a_problem_then_it_alerts_only_once_it_lasted_the_hold() {
        let grace = 180;
        assert_eq!(on_confirmed(None, false, 1_000, 0, grace), Step::Watch, "first sight");
        let watched = incident(true, 0, None, false);
        assert_eq!(
            on_confirmed(Some(&watched), false, 1_000 + grace - 1, 0, grace),
            Step::Quiet,
            "seen again within the grace period"
        );
        assert_eq!(
            on_confirmed(Some(&watched), false, 1_000 + grace, 0, grace),
            Step::Notify {
                notice: Notice::Unreported,
                expected: 0
            },
            "lasted the grace period"
        );
        assert_eq!(
            on_confirmed(Some(&watched), false, 1_001, 0, 0),
            Step::Notify {
                notice: Notice::Unreported,
                expected: 0
            },
            "an event confirms what the sweep saw first"
        );
    }

    #[test]
    fn when_a_problem_is_gone_then_only_an_alerted_open_incident_gets_a_resolved_notice() {
        assert_eq!(closes_with_notice(None), None);
        assert_eq!(closes_with_notice(Some(&incident(false, 5_000, None, false))), None);
        assert_eq!(
            closes_with_notice(Some(&incident(true, 5_000, None, false))),
            Some(true)
        );
        assert_eq!(closes_with_notice(Some(&incident(true, 0, None, false))), Some(false));
    }

    #[test]
    fn when_an_incident_is_held_for_its_groups_digest_then_it_alerts_and_resolves_only_there() {
        let held = Incident {
            held: Some(Status::Firing),
            ..incident(true, 0, None, false)
        };
        // Not alerted on its own, however long it lasts: the digest tells it.
        assert_eq!(on_confirmed(Some(&held), false, 1_000_000, 3_600, 0), Step::Quiet);
        // Resolving before the digest: the digest says so, no resolved notice of its own.
        assert_eq!(closes_with_notice(Some(&held)), Some(false));
    }

    #[test]
    fn when_a_group_has_a_window_or_waiting_incidents_then_newcomers_wait_and_its_digest_is_due_after() {
        let key = GroupKey::new(
            "arn:aws:ecs:eu-west-1:1:cluster/prod",
            AlertKind::AgentDisconnected,
            Status::Firing,
        );
        assert_eq!(
            key.id(),
            "group|firing|agent-disconnected|arn:aws:ecs:eu-west-1:1:cluster/prod"
        );
        let group = |window_end, held| Group {
            key: key.clone(),
            window_end,
            held,
            last_held: 0,
        };
        // (group, now) -> (holds newcomers, digest due)
        let cases = [
            (group(0, 0), 100, false, false),
            (group(400, 0), 100, true, false),
            (group(400, 0), 400, false, false),
            (group(400, 7), 100, true, false),
            (group(400, 7), 400, true, true),
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
