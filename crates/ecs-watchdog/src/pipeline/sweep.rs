//! The sweep (DESIGN §8): on a schedule, every monitored cluster's current state through the
//! same verdicts, ledger and report as the event path. Events are edges and can be missed; the
//! sweep is level-triggered. What it sees first is recorded in the ledger and alerts only once
//! it has lasted (the grace period, or `STUCK_AFTER_MINUTES` for a suppression gone stale).

use std::collections::HashSet;

use futures_util::future::join_all;
use tracing::{info, warn};

use super::gauges::{gauges, open_gauge, orphans, totals};
use super::group;
use super::hold;
use super::impaired::Impaired;
use super::ledger;
use super::monitor::Monitor;
use super::places;
use super::plan::{self, Look};
use super::run::{Adapters, BatchReport};
use super::scope::Scope;
use super::survey::{self, Survey};
use super::unregistered;
use super::watched::{self, Fault, Faults};
use super::{replace, report};

mod judge;
use crate::alert;
use crate::config::{Config, Place};
use crate::incident::Group;
use crate::incident::IncidentKey;
use crate::kinds;
use crate::metrics::Metric;
use crate::ports::{AwsError, Ledger, error_chain};

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
            monitor: Monitor::at(config, place, io).sweeping(),
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
        let mut listing = self.survey(ledger, &mut out).await;
        let checked = judge::looks(io.daemons.as_ref(), &mut listing.surveys).await;
        let surveys = &listing.surveys;
        let (confirmed, decisions) = judge::judge(&self.monitor, surveys, &checked, &mut out).await;

        let s = plan::Settings {
            silences: hold::silences(&self.monitor.scoping, surveys, now),
            cluster_sizes: surveys.iter().map(|s| (s.cluster.clone(), s.registered())).collect(),
            ..self.monitor.settings(now)
        };
        let gone = match (&open, out.complete) {
            (Some(open), true) => places::gone(open, &listing.clusters, &listing.scopes),
            _ => Vec::new(),
        };
        let mut seen = super::monitor::looks(confirmed, &decisions, false);
        let within = self.monitor.config.sweep.register_within.as_secs();
        let unregistered = unregistered::look(io.inventory.as_ref(), surveys, now, within).await;
        unregistered::gauges(&unregistered, &mut out.report.tally);
        seen.extend(unregistered::seen(surveys, &unregistered));
        seen.extend(timed(surveys, &seen));
        seen.extend(gone.iter().map(|(key, how)| ledger::Seen {
            key: key.clone(),
            look: Look::Over {
                how: (*how).to_owned(),
                at: None,
                event: None,
            },
            time: None,
            told: false,
        }));
        out.undecided += self.record(ledger, seen, &s, &mut out.report).await;
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
        self.monitor.scoping.record(ledger, &clusters, io.clock.now()).await;
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

    /// The looks through the ledger, with what the whole table owes (the home sweep's to send:
    /// one query per sweep), and the digests due. Returns how many incidents were left
    /// undecided (their ledger write or notice failed), each counted in `CheckErrors`.
    async fn record(
        &self,
        ledger: &dyn Ledger,
        mut seen: Vec<ledger::Seen>,
        s: &plan::Settings,
        report: &mut BatchReport,
    ) -> usize {
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
        // The sweep gives nothing back to a queue: each of its own looks that cannot be written
        // or told counts in CheckErrors (a companion, read for another's rule, is no look of it).
        seen.iter_mut().for_each(|x| x.told = true);
        seen.extend(hold::companions(&seen));
        ledger::run(&m.io, &context, seen, s, report, Default::default()).await;
        group::send_due(&m.io, ledger, &m.place, due_groups, s, report).await;
        count_undecided(report)
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
        let restarts = super::restart::follow_up(&m.io, ledger, surveys, s.now, &m.config.remediation, &s.silences);
        out.replaced.extend(restarts.await);
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

/// A look at each open incident of a kind that ends by time (a flapping agent's quiet hour),
/// which nothing of the instance's state tells: the plan decides whether its time came.
fn timed(surveys: &[Survey], seen: &[ledger::Seen]) -> Vec<ledger::Seen> {
    let looked: HashSet<&IncidentKey> = seen.iter().map(|x| &x.key).collect();
    surveys
        .iter()
        .flat_map(|s| s.open.iter().flatten())
        .filter(|k| kinds::of(k.kind).looked_at_each_sweep() && !looked.contains(k))
        .map(|key| ledger::Seen {
            key: key.clone(),
            look: Look::Owed,
            time: None,
            told: false,
        })
        .collect()
}

/// What the ledger says is owed by now, in the whole table: each incident not seen this run
/// joins the looks (its alert or resolved notice is sent, or its dead lease taken over); the
/// groups whose digest is due are returned.
async fn owed(ledger: &dyn Ledger, now: u64, seen: &mut Vec<ledger::Seen>) -> Vec<Group> {
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
                time: None,
                told: false,
            }),
    );
    groups
}

/// Counts the incidents the ledger left undecided (a write or a notice failed) in `CheckErrors`,
/// per cluster, each once: the monitor's messages go back to the queue for them; the sweep's
/// next run looks again, and the count is what tells that this one could not finish.
fn count_undecided(report: &mut BatchReport) -> usize {
    let keys: HashSet<IncidentKey> = std::mem::take(&mut report.undecided).into_iter().collect();
    for key in &keys {
        let cluster = crate::inventory::cluster_name(&key.cluster_arn);
        report.tally.count(Some(cluster), Metric::CheckErrors);
    }
    keys.len()
}
