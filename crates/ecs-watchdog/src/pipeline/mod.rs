//! One batch of queue messages, as a pipeline: intake → scope → evidence → decide → act →
//! ledger → report. Each stage is a module with one job; only evidence, act, ledger and report
//! do I/O, through the ports. A failed call leaves only the messages that needed it undecided:
//! they go back to the queue, nothing else does.

mod act;
mod decide;
mod deployments;
mod evidence;
mod gauges;
mod group;
mod hold;
mod hub;
mod impaired;
mod intake;
mod ledger;
mod looks;
mod places;
mod plan;
mod replace;
mod report;
mod restart;
mod scope;
mod services;
mod snapshot;
mod survey;
mod sweep;
mod unregistered;
mod watched;

use std::collections::{BTreeMap, HashSet};

use futures_util::future::join;
use tracing::{info, warn};

pub use evidence::{DESCRIBE_LIMIT, MANAGED_NODE_LIMIT};
pub use hub::{Hub, HubSweep, PLACE_UNREACHABLE, Reach};
pub use intake::{Message, SqsBatch};
pub use places::{CLUSTER_DELETED, NOT_MONITORED};
pub use replace::{REPLACE_STEP, keep_for_sweep};
pub use restart::{RECOVERED_AFTER_RESTART, RESTART_STEP, claim_id as restart_claim_id};
pub use sweep::{Sweep, SweepReport};
pub use unregistered::AUTO_SCALING_GROUP_LIMIT;
pub use watched::Fault;

use crate::alert::{Alert, AlertKind, InstanceFinding};
use crate::config::{Config, Place};
use crate::incident::IncidentKey;
use crate::inventory::cluster_name;
use crate::metrics::{Metric, Tally};
use crate::ports::{
    Clock, Daemons, FindingSink, Inventory, Ledger, MetricsSink, Notifier, Quarantine, SystemClock, error_chain,
};
use crate::remediation::RemediationStep;
use crate::silence::Silences;
use crate::verdict::{Deployment, Verdict};
use decide::{Decision, Outcome};
use intake::Checked;
use scope::{Scope, Scoping};

/// What a batch came to.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Ids of the messages left undecided: the queue delivers them again.
    pub failures: Vec<String>,
    /// The incidents the ledger and report stages left undecided; the monitor gives their
    /// messages back to the queue through intake's map ([`intake::Intake::ids`]).
    pub(crate) undecided: Vec<IncidentKey>,
    pub tally: Tally,
    /// What SNS accepted: firing alerts, then resolved notices.
    pub alerts: Vec<Alert>,
}

/// The doors to the outside the monitor uses.
pub struct Adapters {
    pub inventory: Box<dyn Inventory>,
    pub daemons: Box<dyn Daemons>,
    pub notifier: Box<dyn Notifier>,
    pub quarantine: Box<dyn Quarantine>,
    pub metrics: Box<dyn MetricsSink>,
    /// Remediation steps, in order; empty when remediation is off.
    pub steps: Vec<Box<dyn RemediationStep>>,
    /// Where findings go for custom remediation; empty when none is configured.
    pub findings: Vec<Box<dyn FindingSink>>,
    /// The incident ledger; none: stateless, every confirmation alerts.
    pub ledger: Option<Box<dyn Ledger>>,
    pub clock: Box<dyn Clock>,
}

impl Adapters {
    /// The system clock, no ledger, no remediation, no finding sinks: what is left to give.
    pub fn new(
        inventory: Box<dyn Inventory>,
        daemons: Box<dyn Daemons>,
        notifier: Box<dyn Notifier>,
        quarantine: Box<dyn Quarantine>,
        metrics: Box<dyn MetricsSink>,
    ) -> Self {
        Self {
            inventory,
            daemons,
            notifier,
            quarantine,
            metrics,
            steps: Vec::new(),
            findings: Vec::new(),
            ledger: None,
            clock: Box::new(SystemClock),
        }
    }
}

/// A confirmed problem: its incident, when its newest event happened, and its finding.
#[derive(Debug, Clone)]
pub struct Firing {
    pub key: IncidentKey,
    /// The event's time; none for a look at the current state (the sweep's).
    pub time: Option<u64>,
    pub finding: InstanceFinding,
    /// Seconds the problem must have lasted since first sight before it alerts (the sweep's).
    hold: u64,
}

/// How long a lease lasts: longer than the functions' timeout (template: 120 s), shorter than
/// the queue's visibility timeout (at least six times it), so a redelivery finds a dead
/// sender's lease expired.
const LEASE_SECONDS: u64 = 300;

/// A lease token no other run holds.
fn token(now: u64) -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{now}-{}-{n}", std::process::id())
}

/// The looks of a run: what it confirmed, what it found over, and (when remediation drains)
/// DRAINING instances, whose alert may still be owed after a drain and a refused publish.
fn looks(confirmed: Confirmed<'_>, decisions: &[Decision<'_>], drains: bool) -> Vec<ledger::Seen> {
    let mut seen: Vec<ledger::Seen> = confirmed
        .into_values()
        .flatten()
        .map(|f| ledger::Seen {
            key: f.key,
            look: plan::Look::Confirmed {
                finding: Box::new(f.finding),
                hold: f.hold,
            },
            time: f.time,
            told: true,
        })
        .collect();
    seen.extend(decisions.iter().filter_map(ledger::over));
    seen.extend(
        decisions
            .iter()
            .filter(|d| drains && d.draining())
            .map(|d| ledger::Seen {
                key: d.incident(),
                look: plan::Look::Owed,
                time: d.checked.time,
                told: true,
            }),
    );
    seen
}

/// Confirmed problems by cluster and kind: one alert each.
pub type Confirmed<'a> = BTreeMap<(&'a str, AlertKind), Vec<Firing>>;

/// The monitor with its adapters; built once per Lambda instance, so the tag cache survives
/// warm invocations.
pub struct Monitor {
    config: Config,
    /// The account and region whose clusters it checks.
    place: Place,
    io: Adapters,
    scoping: Scoping,
}

impl Monitor {
    /// The monitor of the hub's own account in `region`.
    pub fn new(config: Config, region: impl Into<String>, io: Adapters) -> Self {
        let place = Place::new(config.accounts.home.clone(), region);
        Self::at(config, place, io)
    }

    /// The monitor of the clusters in `place`, with adapters that reach it.
    pub fn at(config: Config, place: Place, io: Adapters) -> Self {
        let scoping = Scoping::new(config.cluster_filter.clone(), config.tag_cache_ttl);
        Self {
            config,
            place,
            io,
            scoping,
        }
    }

    /// The same monitor as the sweep's: its cluster look-ups renewed early enough to keep the
    /// records it writes fresh for the monitors ([`Scoping::for_sweep`]).
    fn sweeping(self) -> Self {
        let scoping = Scoping::for_sweep(self.config.cluster_filter.clone(), self.config.tag_cache_ttl);
        Self { scoping, ..self }
    }

    /// Runs one batch. Never fails as a whole: what cannot be decided is listed in
    /// [`BatchReport::failures`].
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        self.process_intake(intake::read(messages)).await
    }

    /// Runs one batch as intake read it (the hub parses a batch once, to split it by place).
    async fn process_intake(&self, intake: intake::Intake) -> BatchReport {
        let mut report = BatchReport::default();
        let mut known = ledger::read::Known::default();
        let monitored = self.scope(&intake, &mut known, &mut report).await;
        let mut silences = Silences::default();
        let (decisions, deployments_unknown) = self.evidence(&monitored, &mut silences, &mut report.tally).await;
        decide::tally(&decisions, &mut report.tally);
        let mut confirmed = confirmed(&decisions);
        let undecided = decisions.iter().filter(|d| d.outcome == Outcome::Undecided);
        report
            .failures
            .extend(undecided.flat_map(|d| intake.ids(&d.checked.key)).cloned());
        let now = self.io.clock.now();
        let drains = !self.io.steps.is_empty() && !self.config.remediation.dry_run;
        let grouping = !self.config.incidents.group_interval.is_zero();
        let (looked, keys) = ledger::read::ahead_keys(&confirmed, &decisions, drains, grouping);
        let (inventory, ledger) = (self.io.inventory.as_ref(), self.io.ledger.as_deref());
        let facts = self.scoping.facts(inventory, ledger, &looked, keys, &mut known, now);
        facts.await;
        self.scoping.silences(monitored.iter().map(|(c, _)| *c), &mut silences);
        silences.warn_refused(now);
        // Someone is working on a silenced instance: no drain or replacement under them.
        let silenced = hold::silenced(&mut confirmed, &silences, now);
        act::remediate(&self.io, &self.config.remediation, &mut confirmed, &mut report.tally).await;
        hold::restore(&mut confirmed, silenced);
        let s = plan::Settings {
            silences,
            cluster_sizes: self.scoping.sizes(monitored.iter().map(|(c, _)| *c)),
            ..self.settings(now)
        };
        let context = report::Context {
            place: &self.place,
            action: report::action(self.config.remediation.clone()),
            deployments_unknown: &deployments_unknown,
            settings: &s,
        };
        let mut looks = looks(confirmed, &decisions, drains);
        looks.extend(hold::companions(&looks));
        let groups = ledger::run(&self.io, &context, looks, &s, &mut report, known).await;
        if let Some(ledger) = self.io.ledger.as_deref() {
            group::send_due(&self.io, ledger, &self.place, groups.into_values(), &s, &mut report).await;
        }
        // Two work items of one incident (a deployment's failure and its success) share their
        // messages' ids: each id goes back, and counts, once.
        let mut failing = HashSet::new();
        report.failures.retain(|id| failing.insert(id.clone()));
        for key in std::mem::take(&mut report.undecided) {
            for id in intake.ids(&key) {
                if failing.insert(id.clone()) {
                    report.tally.count(None, Metric::CheckErrors);
                    report.failures.push(id.clone());
                }
            }
        }
        report::metrics(&self.io, &report).await;
        report
    }

    fn settings(&self, now: u64) -> plan::Settings {
        plan::Settings {
            now,
            remind_after: self.config.incidents.remind_after.as_secs(),
            group_interval: self.config.incidents.group_interval.as_secs(),
            lease: LEASE_SECONDS,
            token: token(now),
            silences: Default::default(),
            critical_percent: self.config.critical_percent,
            cluster_sizes: Default::default(),
            flap_threshold: self.config.incidents.flap_threshold,
            dashboard: self.config.dashboard,
        }
    }

    /// Intake's rejects go to the dead-letter queue while the clusters' scope is looked up
    /// (tagged: with what the ledger stage reads of them, into `known`); returns the monitored
    /// clusters with their signals.
    async fn scope<'a>(
        &self,
        intake: &'a intake::Intake,
        known: &mut ledger::read::Known,
        report: &mut BatchReport,
    ) -> Vec<(&'a str, &'a [Checked])> {
        report.tally.add(None, Metric::EventsIgnored, intake.ignored);
        let clusters: Vec<String> = intake.by_cluster.keys().cloned().collect();
        let keys = ledger::read::batch_keys(intake, !self.config.incidents.group_interval.is_zero());
        let (inventory, ledger, now) = (
            self.io.inventory.as_ref(),
            self.io.ledger.as_deref(),
            self.io.clock.now(),
        );
        let (unkept, scopes) = join(
            self.io.quarantine.quarantine(&intake.rejected),
            self.scoping.of_batch(inventory, ledger, &clusters, keys, known, now),
        )
        .await;
        let kept = (intake.rejected.len() - unkept.len()) as u64;
        report.tally.add(None, Metric::EventsRejected, kept);
        report.failures.extend(unkept);
        let mut monitored = Vec::new();
        for (cluster, checked) in &intake.by_cluster {
            match scopes.get(cluster) {
                Some(Scope::Monitored) => monitored.push((cluster.as_str(), checked.as_slice())),
                Some(Scope::NotMonitored) => {
                    info!(
                        cluster = cluster_name(cluster),
                        messages = checked.len(),
                        "cluster not monitored: ignored"
                    )
                }
                _ => {
                    let name = Some(cluster_name(cluster));
                    report.tally.add(name, Metric::CheckErrors, checked.len() as u64);
                    report.failures.extend(intake.cluster_ids(cluster).iter().cloned());
                }
            }
        }
        monitored
    }

    /// ECS first, per cluster; then EC2 once for every cluster's instances (it is regional, so
    /// a storm across clusters costs one call per 100 instances), beside each cluster's daemon
    /// look-ups. Returns the decisions and the clusters whose deployments could not be checked.
    async fn evidence<'a>(
        &self,
        monitored: &[(&'a str, &'a [Checked])],
        silences: &mut Silences,
        tally: &mut Tally,
    ) -> (Vec<Decision<'a>>, HashSet<&'a str>) {
        let (inventory, daemons) = (self.io.inventory.as_ref(), self.io.daemons.as_ref());
        let (snapshots, ec2) = evidence::gather(inventory, daemons, monitored).await;
        let mut decisions = Vec::new();
        let mut deployments_unknown = HashSet::new();
        for ((cluster, checked), snapshot) in monitored.iter().zip(&snapshots) {
            hold::instance_silences(cluster, &snapshot.instances, silences);
            let checks = &snapshot.daemons;
            if let Some(e) = &checks.unavailable {
                tally.count(Some(cluster_name(cluster)), Metric::DaemonApiUnavailable);
                if deployments_unknown.is_empty() {
                    warn!(error = %error_chain(e), "Managed Daemons APIs unavailable: deciding lost daemons from tasks and instance state");
                }
                deployments_unknown.insert(*cluster);
            }
            if checks.deployments.values().any(|d| *d == Some(Deployment::Unknown)) {
                deployments_unknown.insert(*cluster);
            }
            let looks = looks::Looks { snapshot, hosts: &ec2 };
            decisions.extend(decide::decide(checked, &looks));
        }
        (decisions, deployments_unknown)
    }
}

/// The confirmed problems by cluster and kind.
fn confirmed<'a>(decisions: &[Decision<'a>]) -> Confirmed<'a> {
    let mut confirmed = Confirmed::new();
    for decision in decisions {
        if let Outcome::Decided(Verdict::Confirmed, Some(finding)) = &decision.outcome {
            let group = (decision.cluster, decision.kind());
            confirmed.entry(group).or_default().push(Firing {
                key: decision.incident(),
                time: decision.checked.time,
                finding: (**finding).clone(),
                hold: 0,
            });
        }
    }
    confirmed
}

#[cfg(test)]
mod cases;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod places_tests;
#[cfg(test)]
mod races_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sweep_tests;
#[cfg(test)]
mod tests;
