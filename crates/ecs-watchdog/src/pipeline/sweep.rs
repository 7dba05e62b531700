//! The sweep (DESIGN §8): on a schedule, every monitored cluster's current state through the
//! same verdicts, ledger and report as the event path. Events are edges and can be missed; the
//! sweep is level-triggered. What it sees first is recorded in the ledger and alerts only once
//! it has lasted (the grace period, or `STUCK_AFTER_MINUTES` for a suppression gone stale).

use std::collections::HashSet;

use futures_util::future::join_all;
use tracing::{info, warn};

use super::decide::{self, Decision, Outcome};
use super::evidence::{self, DaemonChecks, Described};
use super::gauges::{gauges, open_gauge, orphans, totals};
use super::group;
use super::hold;
use super::impaired::Impaired;
use super::intake::{Checked, Message};
use super::ledger;
use super::places;
use super::plan::{self, Look};
use super::scope::Scope;
use super::survey::{self, Survey};
use super::watched::{self, Fault, Faults};
use super::{Adapters, BatchReport, Confirmed, Firing, Monitor, replace, report};
use crate::alert;
use crate::config::{Config, Place};
use crate::event::Signal;
use crate::incident::Group;
use crate::incident::IncidentKey;
use crate::inventory::cluster_name;
use crate::metrics::Metric;
use crate::ports::{AwsError, Daemons, Ledger, error_chain};
use crate::verdict::{Repeat, Verdict};

/// What one sweep came to.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Every place's clusters could be listed: the heartbeat may go out.
    pub complete: bool,
    /// Monitored clusters seen whole enough to judge.
    pub clusters: usize,
    /// Monitored clusters whose instances could not be listed: nothing was judged there.
    pub unseen: Vec<String>,
    /// Looks that could not be decided (a look-up failed); the next sweep tries again.
    pub undecided: usize,
    /// Calls that could not be made.
    pub faults: Vec<Fault>,
    /// Replacements the sweep finished (drain-and-replace), as `cluster/instance: outcome`.
    pub replaced: Vec<String>,
    pub report: BatchReport,
}

/// The sweep: the monitor's adapters, watched for calls that fail.
pub struct Sweep {
    pub(super) monitor: Monitor,
    faults: Faults,
    /// Where its monitor-impaired incidents are filed ([`alert::impaired::scope`]).
    scope: String,
    impaired: Impaired,
    /// The hub's own account and region: its sweep sends what the whole table owes.
    home: bool,
}

impl Sweep {
    /// The sweep of the hub's own account in `region`.
    pub fn new(config: Config, region: impl Into<String>, io: Adapters) -> Self {
        let place = Place::new(config.accounts.home.clone(), region);
        Self::at(config, place, true, io)
    }

    /// The sweep of `place`; `home` when it is the hub's own account and region.
    pub fn at(config: Config, place: Place, home: bool, io: Adapters) -> Self {
        let faults = Faults::default();
        let io = watched::watch(io, &faults);
        Self {
            scope: alert::impaired::scope(&place, home),
            monitor: Monitor::at(config, place, io),
            faults,
            impaired: Impaired::default(),
            home,
        }
    }

    /// One sweep of this place alone, its heartbeat included (a hub sweeps every place with
    /// [`super::HubSweep`]). Never fails as a whole: what could not be seen is reported and counted.
    pub async fn run(&self) -> SweepReport {
        self.faults.take();
        let open = self.open_everywhere().await;
        let open = open.map(|open| places::of_place(&open, &self.monitor.place));
        let mut out = self.pass(open).await;
        if out.complete {
            out.report.tally.count(None, Metric::SweepCompleted);
        }
        self.publish(&out).await;
        out
    }

    /// Every open incident in the ledger, whatever its place; none when it cannot be read (then
    /// nothing is closed for a missing cluster this run).
    pub(super) async fn open_everywhere(&self) -> Option<Vec<IncidentKey>> {
        let ledger = self.monitor.io.ledger.as_deref()?;
        ledger
            .open_everywhere()
            .await
            .inspect_err(
                |e| warn!(error = %error_chain(e), "open incidents not read: none closed for a missing cluster"),
            )
            .ok()
    }

    /// The places that sent an event in the last day; none when they cannot be read.
    pub(super) async fn places_seen(&self) -> Option<Vec<Place>> {
        let io = &self.monitor.io;
        let Some(ledger) = io.ledger.as_deref() else {
            return Some(Vec::new());
        };
        let since = io.clock.now().saturating_sub(places::SEEN_FOR_SECONDS);
        ledger
            .places_seen(since)
            .await
            .inspect_err(|e| warn!(error = %error_chain(e), "places seen not read: swept as configured"))
            .ok()
    }

    /// Forgets the faults noted since the last pass (its own alert's calls).
    pub(super) fn fresh(&self) {
        self.faults.take();
    }

    /// Publishes what the pass counted.
    pub(super) async fn publish(&self, out: &SweepReport) {
        report::metrics(&self.monitor.io, &out.report).await;
    }

    /// One pass over this place, its metrics not yet published. `open`: the place's open
    /// incidents, each closed when its cluster is gone from a complete listing.
    pub(super) async fn pass(&self, open: Option<Vec<IncidentKey>>) -> SweepReport {
        let io = &self.monitor.io;
        let mut out = SweepReport::default();
        let Some(ledger) = io.ledger.as_deref() else {
            warn!("the sweep needs the incident ledger (INCIDENT_TABLE_NAME): nothing swept");
            return out;
        };
        let now = io.clock.now();
        let listing = self.survey(ledger, &mut out).await;
        let surveys = &listing.surveys;

        // Signals, each with a message that names its incident, as the event path has them.
        let signals: Vec<Vec<Signal>> = surveys.iter().map(Survey::signals).collect();
        let messages: Vec<Vec<Message>> = signals.iter().map(|s| s.iter().map(message).collect()).collect();
        let checks = join_all(
            surveys
                .iter()
                .zip(&signals)
                .map(|(survey, signals)| daemon_checks(io.daemons.as_ref(), survey, signals)),
        )
        .await;
        let checked = checked(signals, &messages);
        let (confirmed, decisions) = self.judge(surveys, &checked, &checks, &mut out).await;

        let s = plan::Settings {
            silences: hold::silences(&self.monitor.scoping, surveys, now),
            cluster_sizes: surveys.iter().map(|s| (s.cluster.clone(), s.registered())).collect(),
            ..self.monitor.settings(now)
        };
        let gone = match (&open, out.complete) {
            (Some(open), true) => places::gone(open, &listing.clusters, &listing.scopes),
            _ => Vec::new(),
        };
        let mut seen = super::looks(confirmed, &decisions, false);
        seen.extend(gone.iter().map(|(key, how)| ledger::Seen {
            key: key.clone(),
            look: Look::Over {
                how: (*how).to_owned(),
                at: None,
            },
            messages: Vec::new(),
        }));
        self.record(ledger, seen, &s, &mut out.report).await;
        self.finish(ledger, surveys, &gone, &s, &mut out).await;
        out
    }

    /// The place's clusters listed, their scope looked up, each monitored one surveyed; a
    /// cluster that could not be surveyed is unseen. No listing: the pass is not complete.
    async fn survey(&self, ledger: &dyn Ledger, out: &mut SweepReport) -> Listing {
        let io = &self.monitor.io;
        // A run that cannot list the clusters saw nothing: no heartbeat (the watch is blind).
        let listed = io.inventory.list_clusters().await;
        out.complete = listed.is_ok();
        let clusters = listed.unwrap_or_default();
        let scopes = self
            .monitor
            .scoping
            .scopes(io.inventory.as_ref(), clusters.iter())
            .await;
        let monitored: Vec<&String> = clusters
            .iter()
            .filter(|c| scopes.get(*c) == Some(&Scope::Monitored))
            .collect();
        let looked = join_all(
            monitored
                .iter()
                .map(|c| survey::survey(io.inventory.as_ref(), io.daemons.as_ref(), ledger, c)),
        )
        .await;
        let mut surveys: Vec<Survey> = Vec::new();
        for (cluster, survey) in monitored.iter().zip(looked) {
            match survey {
                Some(survey) => surveys.push(survey),
                None => out.unseen.push((*cluster).clone()),
            }
        }
        out.clusters = surveys.len();
        Listing {
            clusters,
            scopes,
            surveys,
        }
    }

    /// The verdict on each look, with the hosts' evidence (EC2 once for every cluster): what is
    /// confirmed (held for the grace period), or suppressed for longer than `STUCK_AFTER_MINUTES`
    /// (held that long), joins the confirmed; an undecided look is counted.
    async fn judge<'a>(
        &self,
        surveys: &'a [Survey],
        checked: &'a [Vec<Checked<'a>>],
        checks: &[DaemonChecks],
        out: &mut SweepReport,
    ) -> (Confirmed<'a>, Vec<Decision<'a>>) {
        let times = self.monitor.config.sweep;
        let described: Vec<Described<'_>> = surveys
            .iter()
            .zip(checked)
            .map(|(survey, checked)| Described {
                cluster: &survey.cluster,
                checked,
                instances: survey.instances.clone(),
                failed_instances: survey.failed_instances.clone(),
            })
            .collect();
        let ec2 = evidence::hosts(self.monitor.io.inventory.as_ref(), &described).await;
        let mut decisions: Vec<Decision<'_>> = Vec::new();
        let mut confirmed = Confirmed::new();
        for (described, checks) in described.iter().zip(checks) {
            for decision in decide::decide(described, checks, &ec2) {
                let held = match &decision.outcome {
                    Outcome::Decided(Verdict::Confirmed, Some(finding)) => Some(((**finding).clone(), times.grace)),
                    Outcome::Undecided => {
                        let cluster = Some(cluster_name(described.cluster));
                        out.report.tally.count(cluster, Metric::CheckErrors);
                        out.undecided += 1;
                        None
                    }
                    _ => decide::stale(described, checks, &decision).map(|f| (f, times.stuck_after)),
                };
                if let Some((finding, hold)) = held {
                    confirmed
                        .entry((decision.cluster, decision.kind()))
                        .or_default()
                        .push(Firing {
                            messages: vec![decision.checked.message],
                            key: decision.incident(),
                            finding,
                            hold: hold.as_secs(),
                        });
                }
                decisions.push(decision);
            }
        }
        (confirmed, decisions)
    }

    /// The looks through the ledger, with what the whole table owes (the home sweep's to send:
    /// one query per sweep), and the digests due.
    async fn record(
        &self,
        ledger: &dyn Ledger,
        mut seen: Vec<ledger::Seen<'_>>,
        s: &plan::Settings,
        report: &mut BatchReport,
    ) {
        let m = &self.monitor;
        let none = HashSet::new();
        let context = report::Context {
            place: &m.place,
            action: "alerted only: the sweep does not remediate".to_owned(),
            deployments_unknown: &none,
            settings: s,
        };
        let due_groups = match self.home {
            true => owed(ledger, s.now, &mut seen).await,
            false => Vec::new(),
        };
        seen.extend(hold::companions(&seen));
        ledger::run(&m.io, &context, seen, s, report).await;
        group::send_due(&m.io, ledger, &m.place, due_groups, s, report).await;
    }

    /// Replacements finished, the gauges, and the sweep's own faults counted, closed when
    /// recovered and alerted.
    async fn finish(
        &self,
        ledger: &dyn Ledger,
        surveys: &[Survey],
        gone: &[(IncidentKey, &'static str)],
        s: &plan::Settings,
        out: &mut SweepReport,
    ) {
        let m = &self.monitor;
        let replace_after = m.config.remediation.replace_after.as_secs();
        out.replaced = replace::finish(&m.io, ledger, surveys, s.now, replace_after).await;
        let report = &mut out.report;
        for survey in surveys {
            gauges(survey, report);
        }
        let orphans = orphans(gone);
        for (cluster, open) in &orphans {
            open_gauge(cluster, *open, report);
        }
        let names = surveys
            .iter()
            .map(|s| s.cluster.as_str())
            .chain(orphans.keys().map(String::as_str));
        totals(names, report);
        out.faults = self.faults.take();
        for fault in &out.faults {
            report.tally.count_impaired(fault.operation);
        }
        Impaired::close_recovered(ledger, &self.scope, &out.faults, s.now).await;
        if let Some(alert) = self.impaired.alert(&m.io, &m.place, &self.scope, &out.faults, s).await {
            report.alerts.push(alert);
        }
        info!(
            clusters = out.clusters,
            unseen = out.unseen.len(),
            undecided = out.undecided,
            faults = out.faults.len(),
            alerts = report.alerts.len(),
            "sweep done"
        );
    }
}

/// What a pass listed: every cluster of the place, their scopes, and the monitored ones surveyed.
struct Listing {
    clusters: Vec<String>,
    scopes: std::collections::HashMap<String, Scope>,
    surveys: Vec<Survey>,
}

/// Each signal with its message, kept (a survey's looks are never repeats).
fn checked<'a>(signals: Vec<Vec<Signal>>, messages: &'a [Vec<Message>]) -> Vec<Vec<Checked<'a>>> {
    signals
        .into_iter()
        .zip(messages)
        .map(|(signals, messages)| {
            signals
                .into_iter()
                .zip(messages)
                .map(|(signal, message)| Checked {
                    message,
                    signal,
                    repeat: Repeat::Kept,
                })
                .collect()
        })
        .collect()
}

impl Sweep {
    /// A pass that could not start: the place cannot be reached (its role cannot be assumed).
    /// Nothing is judged, and the sweep is not complete; the fault is counted and alerted as
    /// any other.
    pub async fn unreachable(&self, error: AwsError) -> SweepReport {
        let m = &self.monitor;
        let io = &m.io;
        let fault = Fault {
            operation: error.operation,
            error: error_chain(&error),
        };
        warn!(place = %m.place, error = %fault.error, "place not reachable: nothing swept there");
        let mut out = SweepReport::default();
        out.unseen.push(format!("{} (not reachable)", m.place));
        out.report.tally.count_impaired(fault.operation);
        let now = io.clock.now();
        if let Some(alert) = self
            .impaired
            .alert(
                io,
                &m.place,
                &self.scope,
                std::slice::from_ref(&fault),
                &m.settings(now),
            )
            .await
        {
            out.report.alerts.push(alert);
        }
        out.faults.push(fault);
        out
    }
}

/// What the survey says of the daemons, with whether a deployment of each missing one is under
/// way (one `ListDaemonDeployments` per daemon with an instance missing it).
async fn daemon_checks(daemons: &dyn Daemons, survey: &Survey, signals: &[Signal]) -> DaemonChecks {
    let mut checks = survey.daemon_checks(signals);
    let lost: Vec<_> = signals
        .iter()
        .filter_map(|s| match s {
            Signal::DaemonLost(d) => Some(&**d),
            _ => None,
        })
        .filter(|d| !checks.failed.contains(&d.daemon_name) && !checks.live.contains(&evidence::live_key(d)))
        .collect();
    let (deployments, unavailable, _) = evidence::deployments(daemons, &survey.cluster, &lost).await;
    checks.deployments = deployments;
    checks.unavailable = unavailable;
    checks
}

/// What the ledger says is owed by now, in the whole table: each incident not seen this run
/// joins the looks (its alert or resolved notice is sent, or its dead lease taken over); the
/// groups whose digest is due are returned.
async fn owed<'a>(ledger: &dyn Ledger, now: u64, seen: &mut Vec<ledger::Seen<'a>>) -> Vec<Group> {
    let (incidents, groups) = match ledger.owed(now).await {
        Ok(owed) => owed,
        Err(e) => {
            warn!(error = %error_chain(&e), "the outbox could not be read: the next sweep sends what is owed");
            return Vec::new();
        }
    };
    let looked: HashSet<IncidentKey> = seen.iter().map(|x| x.key.clone()).collect();
    seen.extend(
        incidents
            .into_iter()
            .filter(|i| !looked.contains(&i.key))
            .map(|i| ledger::Seen {
                key: i.key,
                look: Look::Owed,
                messages: Vec::new(),
            }),
    );
    groups
}

fn message(signal: &Signal) -> Message {
    Message::new(format!("sweep|{}", IncidentKey::of(signal).id()), String::new())
}
